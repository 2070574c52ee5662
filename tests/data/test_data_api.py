"""The small public helpers of course_lib.data: names, errors for bad arguments, cache dir."""

import sys

import pytest

from course_lib import data


def test_datasets_lists_the_course_datasets():
    assert data.datasets() == ["mnist", "fashion_mnist", "cifar10", "imdb"]
    assert data.class_names("cifar10")[:2] == ["airplane", "automobile"]
    assert len(data.class_names("fashion_mnist")) == 10


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match=r"name='svhn'.*mnist, fashion_mnist, cifar10, imdb"):
        data.load("svhn")


def test_unknown_split_lists_valid_splits():
    with pytest.raises(ValueError, match=r"split='validation'.*train, test"):
        data.load("mnist", "validation")


def test_sample_must_be_bool_or_none():
    with pytest.raises(TypeError, match="sample"):
        data.load("mnist", sample="yes")


def test_cache_dir_honours_course_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "c"))
    assert data.cache_dir() == tmp_path / "c"
    assert data.cache_writable()
    assert (tmp_path / "c").is_dir()


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="XDG cache dir: Linux/BSD")
def test_cache_dir_default_is_the_user_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "course_lib"


def test_cache_not_writable(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv("COURSE_CACHE", str(blocker / "cache"))
    assert not data.cache_writable()


def test_duplicate_mask_compares_stripped_texts():
    import numpy as np

    from course_lib import data

    mask = data.duplicate_mask(["a good film ", "bad", "Good film", "\na good film"],
                               ["a good film", "other"])
    assert mask.dtype == bool and mask.tolist() == [True, False, False, True]
    assert data.duplicate_mask(np.array([], dtype=object), ["x"]).shape == (0,)
    import pytest

    with pytest.raises(TypeError, match="texts must be str"):
        data.duplicate_mask([b"bytes"], ["x"])
