"""Fixtures for the data-layer tests: an isolated cache, an offline machine, fake origins."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from data_helpers import set_remote

from course_lib.data import samples

# Set by tests/conftest.py when the shared offline copies exist (captured before monkeypatching).
SHARED_DATA = os.environ.get("COURSE_DATA_DIR", "")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test gets its own cache and no tensorflow-datasets copies from the home folder."""
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("COURSE_DATA_ORIGIN", raising=False)
    samples._decoded.cache_clear()
    yield
    samples._decoded.cache_clear()


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No local copy, an empty cache and an origin that refuses connections."""
    empty = tmp_path / "no_data"
    empty.mkdir()
    monkeypatch.setenv("COURSE_DATA_DIR", str(empty))
    monkeypatch.setenv("COURSE_DATA_ORIGIN", "http://127.0.0.1:9/")
    return empty


@pytest.fixture
def shared_data() -> Path:
    """The shared offline copies (skip when absent)."""
    folder = Path(SHARED_DATA) if SHARED_DATA else None
    if folder is None or not (folder / "mnist.npz").is_file():
        pytest.skip("shared offline data not found (COURSE_DATA_DIR unset)")
    return folder


@pytest.fixture
def origin(tmp_path, monkeypatch) -> Path:
    """An empty folder served as the download origin through a file:// URL."""
    folder = tmp_path / "origin"
    folder.mkdir()
    monkeypatch.setenv("COURSE_DATA_ORIGIN", folder.as_uri() + "/")
    return folder


@pytest.fixture
def tiny_mnist(origin, monkeypatch) -> dict[str, np.ndarray]:
    """A 6/4-image mnist.npz at the origin, registered with its sha256."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "y_train": np.arange(6, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "y_test": np.arange(4, dtype=np.uint8),
    }
    np.savez(origin / "mnist.npz", **arrays)
    set_remote(monkeypatch, "mnist", {"mnist.npz": origin / "mnist.npz"})
    return arrays
