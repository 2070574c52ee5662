"""The real shared offline copies (skipped when COURSE_DATA_DIR has none): shapes, labels, cache."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from data_helpers import sha256

from course_lib import data
from course_lib.data import decode, registry, samples

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One cache for the module, so the 60,000 CIFAR-10 JPEGs are decoded once."""
    return tmp_path_factory.mktemp("shared_cache")


@pytest.fixture
def full(shared_data, shared_cache, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(shared_data))
    monkeypatch.setenv("COURSE_CACHE", str(shared_cache))
    monkeypatch.setenv("COURSE_DATA_ORIGIN", "http://127.0.0.1:9/")


def test_mnist(full):
    x, y = data.load("mnist", "train", sample=False)
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    x, y = data.load("mnist", "test", sample=False)
    assert x.shape == (10000, 28, 28) and y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_cifar10(full, monkeypatch):
    x, y = data.load("cifar10", "train", sample=False)
    assert x.shape == (50000, 32, 32, 3) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [5000] * 10
    assert y[:10].tolist() == [5, 1, 2, 5, 1, 8, 5, 4, 0, 9]  # fixed shuffle, not class-sorted
    assert np.allclose(x.mean(axis=(0, 1, 2)) / 255, [0.4913, 0.4821, 0.4465], atol=2e-4)
    monkeypatch.setitem(decode.DECODERS, "jpeg_tar", lambda paths: pytest.fail("decoded twice"))
    x, y = data.load("cifar10", "test", sample=False)  # from the decoded-array cache
    assert x.shape == (10000, 32, 32, 3) and np.bincount(y).tolist() == [1000] * 10
    assert y[:10].tolist() == [1, 1, 6, 4, 6, 3, 4, 5, 0, 9]


def test_imdb_complete_training_split_and_unlabelled_reviews(full, capsys):
    x, y = data.load("imdb", "train", sample=False)
    assert x.shape == (25000,) and x.dtype == object and np.bincount(y).tolist() == [12500, 12500]
    assert "note:" not in capsys.readouterr().out       # complete: no notice
    test_x, test_y = data.load("imdb", "test", sample=False)
    assert test_x.shape == (10000,) and np.bincount(test_y).tolist() == [5000, 5000]
    assert test_x[0].startswith("This is about one of the worst movies")
    x_u, y_u = data.load("imdb", "unsupervised", sample=False)
    assert x_u.shape == (50000,) and set(y_u.tolist()) == {-1}
    # IMDB's cross-split duplicates, as the data README counts them (stripped texts equal).
    assert data.duplicate_mask(x_u, test_x).sum() == 99
    assert data.duplicate_mask(x, test_x).sum() == 44 + 10
    splits = data.describe_splits("imdb")
    assert splits["train"] == "local copy: imdb_reviews_subset.tar.gz + imdb_train_rest.tar.gz"
    assert splits["unsupervised"] == "local copy: imdb_unsup.tar.gz"
    assert [p["file"] for p in data.provenance("imdb")] == [
        "imdb_reviews_subset.tar.gz", "imdb_train_rest.tar.gz", "imdb_unsup.tar.gz"]


def test_imdb_subset_alone_gives_10000_training_reviews_with_a_notice(shared_data, tmp_path,
                                                                      monkeypatch, capsys):
    from course_lib.data import sources

    only = tmp_path / "only_subset"
    only.mkdir()
    (only / "imdb_reviews_subset.tar.gz").symlink_to(shared_data / "imdb_reviews_subset.tar.gz")
    monkeypatch.setenv("COURSE_DATA_DIR", str(only))
    monkeypatch.setenv("COURSE_DATA_ORIGIN", "http://127.0.0.1:9/")
    monkeypatch.setattr(sources, "_NOTICES_SHOWN", set())
    x, y = data.load("imdb", "train", sample=False)
    assert x.shape == (10000,) and x[0].startswith("This early Pia Zadora vehicle")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "add imdb_train_rest.tar.gz to COURSE_DATA_DIR" in out
    data.load("imdb", "train", sample=False)
    assert capsys.readouterr().out == ""                      # once per process
    with pytest.raises(data.DatasetUnavailable, match="(?s)holds no imdb_unsup.tar.gz.*"
                                                      "imdb_unsup.tar.gz in the same folder"):
        data.load("imdb", "unsupervised", sample=False)
    assert "partial: without imdb_train_rest.tar.gz" in data.describe_splits("imdb")["train"]


def test_verify_and_describe(full):
    results = data.verify()
    assert {r["kind"] for r in results} == {"local copy", "sample"} and all(
        r["ok"] for r in results
    )
    assert {"imdb_train_rest.tar.gz", "imdb_unsup.tar.gz"} <= {Path(r["path"]).name
                                                                for r in results}
    info = data.describe("cifar10")
    assert info["source"] == "local copy" and info["size"] == 19_214_849


def test_make_samples_reproduces_the_shipped_samples(shared_data, tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_samples.py"), str(shared_data), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for dataset in registry.DATASETS.values():
        if dataset.sample:
            shipped = samples.SAMPLES_DIR / dataset.sample.name
            made = tmp_path / dataset.sample.name
            assert sha256(made) == sha256(shipped) == dataset.sample.sha256
