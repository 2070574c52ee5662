"""A truncated or altered local copy: ChecksumError naming the file and both hashes, no cache."""

import shutil

import pytest
from data_helpers import cache_files, set_local, sha256

from course_lib import data
from course_lib.data import decode, samples


@pytest.fixture
def local_cifar(tmp_path, monkeypatch):
    """A local CIFAR-10 JPEG archive (the shipped sample's bytes), registered with its sha256."""
    folder = tmp_path / "local"
    folder.mkdir()
    path = folder / "cifar10_jpeg.tar.gz"
    shutil.copy(samples.SAMPLES_DIR / "cifar10_sample.tar.gz", path)
    set_local(monkeypatch, "cifar10", path)
    monkeypatch.setenv("COURSE_DATA_DIR", str(folder))
    monkeypatch.setenv("COURSE_DATA_ORIGIN", "http://127.0.0.1:9/")
    return path


def _damage(path, how):
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    else:
        altered = bytearray(raw)
        altered[len(raw) // 3] ^= 0x01
        path.write_bytes(bytes(altered))


@pytest.mark.parametrize("how", ["truncated", "altered"])
def test_damaged_local_copy_raises_checksum_error(local_cifar, how):
    expected = sha256(local_cifar)
    _damage(local_cifar, how)
    with pytest.raises(data.ChecksumError) as info:
        data.load("cifar10", sample=False)
    error = info.value
    assert isinstance(error, ValueError) and isinstance(error, data.DatasetUnavailable)
    assert str(local_cifar) in str(error)
    assert expected in str(error) and sha256(local_cifar) in str(error)
    assert cache_files(data.cache_dir()) == []
    assert data.describe("cifar10")["source"] == "unavailable"
    assert [r["ok"] for r in data.verify("cifar10") if r["kind"] == "local copy"] == [False]


def test_good_local_copy_is_decoded_once_and_cached(local_cifar, monkeypatch):
    x, y = data.load("cifar10", "train", sample=False)
    assert x.shape == (2000, 32, 32, 3) and y.shape == (2000,)
    cached = cache_files(data.cache_dir())
    assert [p.name for p in cached] == [
        f"cifar10-{sha256(local_cifar)[:16]}-v{decode.DECODE_VERSION}.npz"
    ]
    assert data.describe("cifar10")["source"] == "local copy"

    def no_decoding(*args):
        raise AssertionError("decoded again although cached")

    monkeypatch.setitem(decode.DECODERS, "jpeg_tar", no_decoding)
    x2, y2 = data.load("cifar10", "train", sample=False)
    assert (x2 == x).all() and (y2 == y).all()


def test_local_copy_altered_after_caching_is_still_caught(local_cifar):
    data.load("cifar10", "test", sample=False)
    _damage(local_cifar, "altered")
    with pytest.raises(data.ChecksumError, match="cifar10_jpeg.tar.gz"):
        data.load("cifar10", "test", sample=False)
