"""The small real samples shipped in ``course_lib/samples/`` (see the README there).

Each sample file is checked against its sha256 in the registry when first read in a process;
the decoded arrays are then kept in memory and each call gets its own copy.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from course_lib.data.decode import Arrays, decode
from course_lib.data.errors import DatasetUnavailable
from course_lib.data.files import check_sha256
from course_lib.data.registry import Dataset

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"


def sample_path(dataset: Dataset) -> Path | None:
    """The shipped sample file of ``dataset``, or None when the course ships none."""
    return SAMPLES_DIR / dataset.sample.name if dataset.sample else None


@cache
def _decoded(dataset: Dataset) -> Arrays:
    path = sample_path(dataset)
    if path is None:
        raise DatasetUnavailable(
            f"the course ships no sample of {dataset.name!r}; load it with sample=False "
            f"(full data: run `course data fetch {dataset.name}` online first)"
        )
    if not path.is_file():
        raise DatasetUnavailable(f"the shipped sample {path} is missing; reinstall course_lib")
    check_sha256(path, dataset.sample.sha256, "Reinstall course_lib to restore the sample.")
    return decode(dataset.sample_format, [path])


def load_sample(dataset: Dataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of the shipped sample's ``split`` (fresh copies on every call)."""
    arrays = _decoded(dataset)
    return arrays[f"x_{split}"].copy(), arrays[f"y_{split}"].copy()
