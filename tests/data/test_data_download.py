"""The download path with a file:// origin: checksum, atomic write, then served from cache."""

import io

import numpy as np
import pytest
from data_helpers import cache_files, set_remote, sha256, write_idx, write_tar_gz

from course_lib import data
from course_lib.data import download


@pytest.fixture
def no_local(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "no_data"))


def test_download_verifies_and_caches(tiny_mnist, origin, no_local, monkeypatch):
    x, y = data.load("mnist", "train", sample=False)
    assert (
        (x == tiny_mnist["x_train"]).all() and y.dtype == np.int64 and y.tolist() == list(range(6))
    )
    cached = data.cache_dir() / "downloads" / "mnist" / "mnist.npz"
    assert cache_files(data.cache_dir()) == [cached]  # no temp file left behind
    assert sha256(cached) == sha256(origin / "mnist.npz")
    assert data.path("mnist") == cached

    (origin / "mnist.npz").unlink()  # the second call must not touch the origin
    monkeypatch.setattr(download, "urlopen", lambda *a, **k: pytest.fail("origin touched"))
    x_test, _ = data.load("mnist", "test", sample=False)
    assert (x_test == tiny_mnist["x_test"]).all()
    assert data.describe("mnist")["source"] == "cache"
    assert [(r["kind"], r["ok"]) for r in data.verify("mnist")] == [
        ("cache", True),
        ("sample", True),
    ]


def test_fetch_returns_the_cached_file(tiny_mnist, no_local):
    assert data.describe("mnist")["source"] == "download"
    path = data.fetch("mnist")
    assert path == data.cache_dir() / "downloads" / "mnist" / "mnist.npz" and path.is_file()


def test_wrong_checksum_at_origin_saves_nothing(tiny_mnist, origin, no_local):
    (origin / "mnist.npz").write_bytes(b"<html>captive portal</html>")
    with pytest.raises(data.ChecksumError) as info:
        data.load("mnist", sample=False)
    assert (origin / "mnist.npz").as_uri() in str(info.value)
    assert sha256(origin / "mnist.npz") in str(info.value)
    assert cache_files(data.cache_dir()) == []


class _BrokenResponse(io.BytesIO):
    """A response that delivers some bytes and then fails like a dropped connection."""

    headers = {"Content-Length": "100000"}

    def __init__(self, error: BaseException):
        super().__init__(b"x" * 5000)
        self.error = error

    def read(self, size=-1):
        if self.tell() >= 5000:
            raise self.error
        return super().read(min(size, 1000))


@pytest.mark.parametrize("error", [ConnectionResetError("reset by peer"), KeyboardInterrupt()])
def test_interrupted_download_leaves_nothing(tiny_mnist, no_local, monkeypatch, error):
    expected = data.DatasetUnavailable if isinstance(error, OSError) else KeyboardInterrupt
    with monkeypatch.context() as patch, pytest.raises(expected):
        patch.setattr(download, "urlopen", lambda url, timeout: _BrokenResponse(error))
        data.load("mnist", sample=False)
    assert cache_files(data.cache_dir()) == []
    assert not (data.cache_dir() / "downloads" / "mnist").exists()
    assert data.load("mnist", sample=False)[0].shape == (6, 28, 28)  # a fresh download works


def test_corrupted_cache_file_is_replaced(tiny_mnist, no_local):
    data.fetch("mnist")
    cached = data.cache_dir() / "downloads" / "mnist" / "mnist.npz"
    cached.write_bytes(b"garbage")
    assert data.load("mnist", sample=False)[0].shape == (6, 28, 28)
    assert [r["ok"] for r in data.verify("mnist") if r["kind"] == "cache"] == [True]


def test_fashion_mnist_idx_files(origin, no_local, monkeypatch):
    rng = np.random.default_rng(1)
    images = {"train": rng.integers(0, 256, (5, 28, 28)), "test": rng.integers(0, 256, (3, 28, 28))}
    files = {
        "train-images-idx3-ubyte.gz": write_idx(
            origin / "train-images-idx3-ubyte.gz", images["train"]
        ),
        "train-labels-idx1-ubyte.gz": write_idx(
            origin / "train-labels-idx1-ubyte.gz", np.arange(5)
        ),
        "t10k-images-idx3-ubyte.gz": write_idx(
            origin / "t10k-images-idx3-ubyte.gz", images["test"]
        ),
        "t10k-labels-idx1-ubyte.gz": write_idx(origin / "t10k-labels-idx1-ubyte.gz", np.arange(3)),
    }
    set_remote(monkeypatch, "fashion_mnist", files)
    x, y = data.load("fashion_mnist", "test", sample=False)
    assert x.dtype == np.uint8 and (x == images["test"]).all() and y.tolist() == [0, 1, 2]
    assert data.path("fashion_mnist") == data.cache_dir() / "downloads" / "fashion_mnist"


def test_cifar10_binary_archive(origin, no_local, monkeypatch):
    rng = np.random.default_rng(2)
    chw = rng.integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    records = np.concatenate([np.array([[3], [1], [4], [1]], np.uint8), chw.reshape(4, -1)], 1)
    members = {f"cifar-10-batches-bin/data_batch_{i}.bin": records.tobytes() for i in range(1, 6)}
    members["cifar-10-batches-bin/test_batch.bin"] = records[:2].tobytes()
    members["cifar-10-batches-bin/batches.meta.txt"] = b"airplane\n"
    write_tar_gz(origin / "cifar-10-binary.tar.gz", members)
    set_remote(
        monkeypatch, "cifar10", {"cifar-10-binary.tar.gz": origin / "cifar-10-binary.tar.gz"}
    )
    x, y = data.load("cifar10", "train", sample=False)
    assert x.shape == (20, 32, 32, 3) and y[:4].tolist() == [3, 1, 4, 1]
    assert (x[0] == chw[0].transpose(1, 2, 0)).all()
    assert data.load("cifar10", "test", sample=False)[0].shape == (2, 32, 32, 3)


def test_imdb_full_archive_reads_labelled_and_unlabelled_reviews(origin, no_local, monkeypatch):
    members = {
        "aclImdb/train/pos/0_9.txt": b"Great <br />film.",
        "aclImdb/train/neg/0_2.txt": "Dull, caf\u00e9-grade.".encode(),
        "aclImdb/train/unsup/0_0.txt": b"unlabelled",
        "aclImdb/train/labeledBow.feat": b"0 0:1",
        "aclImdb/test/pos/3_8.txt": b"Fine.",
        "aclImdb/test/neg/7_1.txt": b"Bad.",
    }
    write_tar_gz(origin / "aclImdb_v1.tar.gz", members)
    set_remote(monkeypatch, "imdb", {"aclImdb_v1.tar.gz": origin / "aclImdb_v1.tar.gz"})
    for _ in range(2):  # decoded once, then read from the decoded-array cache
        x, y = data.load("imdb", "train", sample=False)
        assert x.dtype == object
        assert dict(zip(x.tolist(), y.tolist(), strict=True)) == {
            "Great <br />film.": 1,
            "Dull, caf\u00e9-grade.": 0,
        }
    assert len(cache_files(data.cache_dir() / "decoded")) == 1
    x, y = data.load("imdb", "unsupervised", sample=False)   # train/unsup, as tfds names it
    assert x.tolist() == ["unlabelled"] and y.tolist() == [-1]
    assert data.load("imdb", "test", sample=False)[0].shape == (2,)
