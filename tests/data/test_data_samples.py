"""The samples shipped in course_lib/samples/: shapes, dtypes, labels, checksums, fast mode."""

import shutil

import numpy as np
import pytest

from course_lib import data
from course_lib.data import registry, samples

SIZES = {
    ("mnist", "train"): 3000,
    ("mnist", "test"): 1000,
    ("cifar10", "train"): 2000,
    ("cifar10", "test"): 500,
    ("imdb", "train"): 1000,
    ("imdb", "test"): 500,
}


@pytest.mark.parametrize(("name", "split"), list(SIZES))
def test_sample_shapes_dtypes_labels(name, split):
    x, y = data.load(name, split, sample=True)
    n = SIZES[name, split]
    assert y.shape == (n,) and y.dtype == np.int64
    classes = len(data.class_names(name))
    assert y.min() == 0 and y.max() == classes - 1
    if name == "imdb":
        assert x.shape == (n,) and x.dtype == object
        assert all(isinstance(text, str) and len(text) > 20 for text in x)
    else:
        assert x.dtype == np.uint8
        assert x.shape == ((n, 28, 28) if name == "mnist" else (n, 32, 32, 3))
        assert x.max() > 200 and x.min() < 10
    if name != "mnist":  # CIFAR-10 and IMDB samples are balanced and not class-sorted
        assert len(set(np.bincount(y))) == 1
        assert len(set(y[: 4 * classes].tolist())) > 1


def test_imdb_sample_has_unlabelled_reviews():
    x, y = data.load("imdb", "unsupervised", sample=True)
    assert x.shape == (1000,) and x.dtype == object and set(y.tolist()) == {-1}
    train, _ = data.load("imdb", "train", sample=True)
    assert not set(x) & set(train)


def test_a_split_the_sample_lacks_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown split='unsupervised' for 'cifar10'"):
        data.load("cifar10", "unsupervised", sample=True)


def test_mnist_sample_is_the_first_images():
    _, y_train = data.load("mnist", "train", sample=True)
    _, y_test = data.load("mnist", "test", sample=True)
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_each_call_gets_its_own_copy():
    x, _ = data.load("mnist", sample=True)
    x[:] = 0
    assert data.load("mnist", sample=True)[0].max() == 255


def test_fast_mode_uses_samples_by_default(monkeypatch, offline):
    monkeypatch.setenv("COURSE_FAST", "1")
    assert len(data.load("cifar10", "test")[1]) == 500
    monkeypatch.setenv("COURSE_FAST", "0")
    with pytest.raises(data.DatasetUnavailable):
        data.load("cifar10", "test")


def test_no_fashion_mnist_sample():
    with pytest.raises(data.DatasetUnavailable, match="no sample of 'fashion_mnist'"):
        data.load("fashion_mnist", sample=True)


def test_altered_sample_is_rejected(tmp_path, monkeypatch):
    copy = tmp_path / "samples"
    shutil.copytree(samples.SAMPLES_DIR, copy)
    raw = bytearray((copy / "mnist_sample.npz").read_bytes())
    raw[1000] ^= 0xFF
    (copy / "mnist_sample.npz").write_bytes(bytes(raw))
    monkeypatch.setattr(samples, "SAMPLES_DIR", copy)
    with pytest.raises(data.ChecksumError, match="mnist_sample.npz"):
        data.load("mnist", sample=True)


def test_sample_checksums_match_registry_and_readme():
    results = [r for r in data.verify() if r["kind"] == "sample"]
    assert [r["name"] for r in results] == ["mnist", "cifar10", "imdb"]
    assert all(r["ok"] for r in results), results
    readme = (samples.SAMPLES_DIR / "README.md").read_text()
    for dataset in registry.DATASETS.values():
        if dataset.sample:
            assert dataset.sample.sha256 in readme and dataset.sample.name in readme


def test_samples_stay_small():
    total = sum(p.stat().st_size for p in samples.SAMPLES_DIR.iterdir())
    assert total < 4_000_000
