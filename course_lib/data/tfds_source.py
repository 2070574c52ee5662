"""The tensorflow-datasets path (``tfds.load``, ``tfds.as_numpy``) for fashion_mnist and imdb.

Used when a prepared tensorflow-datasets copy already exists (``$TFDS_DATA_DIR``,
``~/tensorflow_datasets`` or the course cache), so it never waits on the network.
Importing ``tensorflow_datasets`` imports TensorFlow, so this module imports it lazily.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from course_lib.data.files import cache_dir
from course_lib.data.registry import Dataset

BATCH = 8192


def installed() -> bool:
    """True when tensorflow-datasets can be imported (checked without importing it)."""
    return importlib.util.find_spec("tensorflow_datasets") is not None


def data_dirs() -> list[Path]:
    """Folders searched for prepared tensorflow-datasets copies, in order."""
    dirs = [Path(os.environ["TFDS_DATA_DIR"])] if os.environ.get("TFDS_DATA_DIR") else []
    return dirs + [Path.home() / "tensorflow_datasets", cache_dir() / "tensorflow_datasets"]


def prepared_dir(dataset: Dataset) -> Path | None:
    """The first data dir holding a prepared copy of ``dataset``, or None."""
    if not dataset.tfds_name:
        return None
    for folder in data_dirs():
        root = folder / dataset.tfds_name  # <name>/<version>/ or <name>/<config>/<version>/
        if any(root.glob("*/dataset_info.json")) or any(root.glob("*/*/dataset_info.json")):
            return folder
    return None


def load_tfds(
    dataset: Dataset, split: str, data_dir: Path | None = None, download: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of ``split`` through ``tfds.load(..., as_supervised=True)`` + ``tfds.as_numpy``.

    Returns the course's layout: Fashion-MNIST ``x`` uint8 ``(n, 28, 28)`` (channel axis
    dropped), IMDB ``x`` a 1-D object array of ``str``; ``y`` int64 ``(n,)``.
    """
    import tensorflow_datasets as tfds

    ds = tfds.load(
        dataset.tfds_name,
        split=split,
        as_supervised=True,
        batch_size=BATCH,  # not -1: whole-split batches crash under tfds.testing.mock_data
        data_dir=None if data_dir is None else str(data_dir),
        download=download,
    )
    batches = list(tfds.as_numpy(ds))
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    if x.dtype.kind in "SO":  # text: bytes -> str
        texts = np.empty(len(x), dtype=object)
        texts[:] = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in x]
        x = texts
    elif x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    return x, np.asarray(y, dtype=np.int64)
