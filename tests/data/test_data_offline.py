"""No local copy, no network: a fast DatasetUnavailable saying what was tried and how to fix it."""

import time

import pytest

from course_lib import data
from course_lib.data import download, registry


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "imdb"])
def test_offline_raises_dataset_unavailable_fast(name, offline):
    start = time.perf_counter()
    with pytest.raises(data.DatasetUnavailable) as info:
        data.load(name, "train", sample=False)
    assert time.perf_counter() - start < 5
    message = str(info.value)
    assert f"dataset {name!r}" in message
    assert "local copy:" in message and "cache:" in message
    assert "download: http://127.0.0.1:9/" in message and "Connection refused" in message
    assert f"`course data fetch {name}`" in message
    if name != "fashion_mnist":
        local = registry.DATASETS[name].local
        assert (
            f"set COURSE_DATA_DIR to a folder holding {local.name} (sha256 {local.sha256})"
            in message
        )
        assert "sample=True" in message
    else:
        assert "tensorflow-datasets: no prepared 'fashion_mnist'" in message
    assert not isinstance(info.value, data.ChecksumError)


def test_hanging_origin_gives_up_quickly(offline, monkeypatch):
    """A name lookup or connect that hangs (captive portal, dead DNS) is cut off."""
    monkeypatch.setattr(download, "CONNECT_TIMEOUT", 0.5)
    monkeypatch.setattr(download, "urlopen", lambda url, timeout: time.sleep(30))
    start = time.perf_counter()
    with pytest.raises(data.DatasetUnavailable, match="no answer from .* within 0.5 s"):
        data.load("mnist", sample=False)
    assert time.perf_counter() - start < 2


def test_describe_offline(offline):
    info = data.describe("cifar10")
    assert info["source"] == "unavailable"
    assert "Connection refused" in info["detail"]
    assert info["sample"].endswith("cifar10_sample.tar.gz")


def test_verify_offline_lists_only_samples(offline):
    assert {r["kind"] for r in data.verify("mnist")} == {"sample"}
