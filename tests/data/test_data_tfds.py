"""The tensorflow-datasets path, run under tfds.testing.mock_data (no download, no real data)."""

import importlib

import numpy as np
import pytest

from course_lib import data
from course_lib.data import registry, tfds_source

tfds = pytest.importorskip("tensorflow_datasets")


def test_tensorflow_datasets_imports_with_its_undeclared_dependency():
    """tensorflow-datasets 4.9.10 needs importlib_resources without declaring it."""
    importlib.import_module("importlib_resources")
    assert callable(tfds.load) and callable(tfds.as_numpy)


def test_imdb_unsupervised_split_through_tfds_under_mock_data():
    with tfds.testing.mock_data(num_examples=5):
        x, y = tfds_source.load_tfds(registry.DATASETS["imdb"], "unsupervised")
    assert x.shape == (5,) and x.dtype == object and y.dtype == np.int64


@pytest.mark.parametrize("name", ["fashion_mnist", "imdb"])
def test_load_tfds_layout_under_mock_data(name):
    with tfds.testing.mock_data(num_examples=6):
        x, y = tfds_source.load_tfds(registry.DATASETS[name], "test")
    assert y.shape == (6,) and y.dtype == np.int64
    if name == "imdb":
        assert x.shape == (6,) and x.dtype == object and isinstance(x[0], str)
        assert set(y.tolist()) <= {0, 1}
    else:
        assert x.shape == (6, 28, 28) and x.dtype == np.uint8
        assert 0 <= y.min() and y.max() <= 9


def test_load_falls_back_to_a_prepared_tfds_copy(offline, tmp_path, monkeypatch):
    """Offline, no local copy: load() uses a prepared tensorflow-datasets copy."""
    prepared = tmp_path / "tfds" / "fashion_mnist" / "3.0.1"
    prepared.mkdir(parents=True)
    (prepared / "dataset_info.json").write_text("{}")
    assert data.describe("fashion_mnist")["source"] == "tensorflow-datasets"
    with tfds.testing.mock_data(num_examples=4):
        x, y = data.load("fashion_mnist", "train", sample=False)
    assert x.shape == (4, 28, 28) and y.dtype == np.int64
