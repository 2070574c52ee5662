"""Full data: try the local copy, the cache, the download, tensorflow-datasets, in this order.

Cache layout (under :func:`course_lib.data.files.cache_dir`):

- ``downloads/<dataset>/<file>``: downloaded files, kept only after their sha256 matched;
- ``decoded/<dataset>-<sha256 prefix>-v<DECODE_VERSION>.npz``: decoded arrays of slow formats
  (JPEG/text archives), keyed by the source file's sha256 and the decoder version, written
  atomically.

Every source file is hashed before use (about 1 GB/s), so a file altered after it was
cached is caught; arrays are only decoded and cached from files that passed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from course_lib.data import download as dl
from course_lib.data import tfds_source
from course_lib.data.decode import DECODE_VERSION, SLOW_FORMATS, Arrays, decode
from course_lib.data.errors import ChecksumError, DatasetUnavailable
from course_lib.data.files import atomic_write, cache_dir, cache_writable, check_sha256
from course_lib.data.registry import DataFile, Dataset


def local_path(dataset: Dataset) -> Path | None:
    """``$COURSE_DATA_DIR/<local file>``, or None when the variable or the format is missing."""
    folder = os.environ.get("COURSE_DATA_DIR", "").strip()
    return Path(folder).expanduser() / dataset.local.name if folder and dataset.local else None


def local_extra_paths(dataset: Dataset, split: str) -> list[tuple[DataFile, Path]]:
    """The local copy's extra files that hold ``split`` and are in ``$COURSE_DATA_DIR``."""
    folder = os.environ.get("COURSE_DATA_DIR", "").strip()
    if not folder:
        return []
    found = [(f, Path(folder).expanduser() / f.name) for f in dataset.local_extra
             if split in f.splits]
    return [(f, p) for f, p in found if p.is_file()]


def _serves(dataset: Dataset, split: str) -> bool:
    """Whether the main local file holds ``split`` (IMDB's subset has no "unsupervised")."""
    return not any(split in f.splits and not (set(f.splits) & {"train", "test"})
                   for f in dataset.local_extra)


_NOTICES_SHOWN: set[str] = set()


def _notice_partial(dataset: Dataset, split: str) -> None:
    """One line, once per process, when an extra file that would complete ``split`` is absent."""
    missing = [f for f in dataset.local_extra if split in f.splits and _serves(dataset, split)
               and not any(f is g for g, _ in local_extra_paths(dataset, split))]
    key = f"{dataset.name}/{split}"
    if missing and key not in _NOTICES_SHOWN:
        _NOTICES_SHOWN.add(key)
        print(f"note: {dataset.name} {split!r} comes from {dataset.local.name} alone; add "
              f"{', '.join(f.name for f in missing)} to COURSE_DATA_DIR for the complete split.")


def download_paths(dataset: Dataset) -> list[Path]:
    """Where the downloaded files of ``dataset`` live in the cache."""
    return [cache_dir() / "downloads" / dataset.name / f.name for f in dataset.remote]


def _decoded_path(dataset: Dataset, sha256: str) -> Path:
    return cache_dir() / "decoded" / f"{dataset.name}-{sha256[:16]}-v{DECODE_VERSION}.npz"


def _combined_sha256(files: list[DataFile]) -> str:
    """The cache key of several files decoded together (one file: its own sha256)."""
    if len(files) == 1:
        return files[0].sha256
    import hashlib

    return hashlib.sha256("+".join(f.sha256 for f in files).encode()).hexdigest()


def _save_arrays(path: Path, arrays: Arrays) -> None:
    """Save arrays as an uncompressed .npz (fast to read); text arrays as UTF-8 bytes + offsets."""
    stored: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        if value.dtype == object:
            encoded = [s.encode("utf-8") for s in value]
            stored[f"{key}__utf8"] = np.frombuffer(b"".join(encoded), np.uint8)
            stored[f"{key}__ends"] = np.cumsum([len(b) for b in encoded], dtype=np.int64)
        else:
            stored[key] = value
    atomic_write(path, lambda f: np.savez(f, **stored))


def _load_arrays(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        y = f[f"y_{split}"]
        if f"x_{split}" in f.files:
            return f[f"x_{split}"], y
        data, ends = f[f"x_{split}__utf8"].tobytes(), f[f"x_{split}__ends"]
    starts = np.concatenate([[0], ends[:-1]])
    x = np.empty(len(ends), dtype=object)
    x[:] = [data[a:b].decode("utf-8") for a, b in zip(starts, ends, strict=True)]
    return x, y


def _from_files(
    dataset: Dataset, fmt: str, paths: list[Path], sha256: str, split: str
) -> tuple[np.ndarray, np.ndarray]:
    """Decode verified files; slow formats go through the decoded-array cache."""
    if fmt not in SLOW_FORMATS:
        arrays = decode(fmt, paths)
        return arrays[f"x_{split}"], arrays[f"y_{split}"]
    cached = _decoded_path(dataset, sha256)
    if not cached.is_file():
        arrays = decode(fmt, paths)
        if f"y_{split}" not in arrays:
            raise DatasetUnavailable(f"{', '.join(p.name for p in paths)} holds no {split!r} split "
                                     f"of {dataset.name!r}")
        try:
            _save_arrays(cached, arrays)
        except OSError:  # read-only or full cache: the data are still good, just not cached
            return arrays[f"x_{split}"], arrays[f"y_{split}"]
    return _load_arrays(cached, split)


def fix_hint(dataset: Dataset) -> str:
    """The ways to make ``dataset`` available, one per line."""
    lines = []
    if dataset.local:
        lines.append(f"set COURSE_DATA_DIR to a folder holding {dataset.local.name} "
                     f"(sha256 {dataset.local.sha256})")
    for extra in dataset.local_extra:
        lines.append(f"for its {'/'.join(extra.splits)} split: {extra.name} in the same folder "
                     f"(sha256 {extra.sha256})")
    lines.append(f"connect to the internet and run `course data fetch {dataset.name}`")
    if dataset.tfds_name:
        lines.append(f"prepare it with tensorflow-datasets (tfds.load({dataset.tfds_name!r})) "
                     "into $TFDS_DATA_DIR or ~/tensorflow_datasets")
    if dataset.sample:
        lines.append(f"use the shipped samples: load({dataset.name!r}, sample=True) "
                     "or fast mode (COURSE_FAST=1)")
    return "\n".join(f"  - {line}" for line in lines)


def try_local_split(dataset: Dataset, split: str,
                    tried: list[str]) -> list[tuple[DataFile, Path]] | None:
    """The verified local files that make up ``split``: the main local copy (when it holds the
    split) and the extra files present for it; None with the reason in ``tried``."""
    files = []
    if _serves(dataset, split):
        path = try_local(dataset, tried)
        if path is None:
            return None
        files.append((dataset.local, path))
    extras = local_extra_paths(dataset, split)
    if not files and not extras:
        names = ", ".join(f.name for f in dataset.local_extra if split in f.splits)
        tried.append(f"local copy: COURSE_DATA_DIR holds no {names} (the {split!r} split)"
                     if os.environ.get("COURSE_DATA_DIR", "").strip()
                     else "local copy: COURSE_DATA_DIR is not set")
        return None
    for file, path in extras:
        check_sha256(path, file.sha256, "Replace the file with a good copy.")
    return files + extras


def try_local(dataset: Dataset, tried: list[str]) -> Path | None:
    """The verified local copy, or None (reason appended to ``tried``); ChecksumError if bad."""
    path = local_path(dataset)
    if dataset.local is None:
        tried.append(f"local copy: the course has no local-copy format for {dataset.name}")
    elif path is None:
        tried.append("local copy: COURSE_DATA_DIR is not set")
    elif not path.is_file():
        tried.append(f"local copy: {path} does not exist")
    else:
        check_sha256(path, dataset.local.sha256, "Replace the file with a good copy.")
        return path
    return None


def try_cache(dataset: Dataset, tried: list[str]) -> list[Path] | None:
    """The verified downloaded files, or None. A cached file that fails its check is deleted."""
    paths = download_paths(dataset)
    missing = [p for p in paths if not p.is_file()]
    if missing:
        tried.append(f"cache: {missing[0]} is not there")
        return None
    for file, path in zip(dataset.remote, paths, strict=True):
        try:
            check_sha256(path, file.sha256)
        except ChecksumError as exc:
            path.unlink(missing_ok=True)
            tried.append(f"cache: {exc} The file was deleted")
            return None
    return paths


def try_download(dataset: Dataset, tried: list[str]) -> list[Path] | None:
    """Download the missing files into the cache, or None with the reason in ``tried``."""
    if not cache_writable():
        tried.append(f"download: the cache folder {cache_dir()} is not writable "
                     "(set COURSE_CACHE to a writable folder)")
        return None
    paths = download_paths(dataset)
    for file, path in zip(dataset.remote, paths, strict=True):
        if path.is_file():
            continue
        try:
            dl.download(file, path)
        except OSError as exc:
            origin = " (set by COURSE_DATA_ORIGIN)" if os.environ.get("COURSE_DATA_ORIGIN") else ""
            tried.append(f"download: {dl.origin_url(file)}{origin}: {exc}")
            return None
    return paths


def try_tfds(dataset: Dataset, split: str, tried: list[str]):
    """``(x, y)`` from a prepared tensorflow-datasets copy, or None."""
    if not dataset.tfds_name:
        return None
    folder = tfds_source.prepared_dir(dataset) if tfds_source.installed() else None
    if folder is None:
        where = ", ".join(str(d) for d in tfds_source.data_dirs())
        tried.append(f"tensorflow-datasets: no prepared {dataset.tfds_name!r} in {where}"
                     if tfds_source.installed() else "tensorflow-datasets: not installed")
        return None
    return tfds_source.load_tfds(dataset, split, data_dir=folder)


def load_full(dataset: Dataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of the full ``split``; :class:`DatasetUnavailable` listing every source tried."""
    tried: list[str] = []
    local = try_local_split(dataset, split, tried)
    if local is not None:
        _notice_partial(dataset, split)
        files = [f for f, _ in local]
        return _from_files(dataset, dataset.local_format, [p for _, p in local],
                           _combined_sha256(files), split)
    paths = try_cache(dataset, tried) or try_download(dataset, tried)
    if paths is not None:
        return _from_files(dataset, dataset.remote_format, paths, dataset.remote[0].sha256, split)
    found = try_tfds(dataset, split, tried)
    if found is not None:
        return found
    steps = "\n".join(f"  {i}. {line}" for i, line in enumerate(tried, 1))
    raise DatasetUnavailable(
        f"dataset {dataset.name!r} (full data) is not available. Tried:\n{steps}\n"
        f"Fix it in one of these ways:\n{fix_hint(dataset)}"
    )
