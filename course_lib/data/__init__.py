"""Datasets for the course: ``load(name, split)`` returns NumPy arrays, offline when possible.

``load("mnist")`` / ``"fashion_mnist"``: ``x`` uint8 ``(n, 28, 28)``, 0 = background.
``load("cifar10")``: ``x`` uint8 ``(n, 32, 32, 3)`` RGB. ``load("imdb")``: ``x`` 1-D object array
of ``str`` reviews (with the dataset's ``<br />`` tags). ``y`` is always int64 ``(n,)``.

Where data comes from:

- shipped samples (``course_lib/samples/``) when ``sample=True``, or ``sample=None`` in fast
  mode (``COURSE_FAST=1``): MNIST 3000/1000, CIFAR-10 2000/500, IMDB 1000/500 (train/test);
- full data (``sample=False``, or ``sample=None`` outside fast mode), first that works:
  1. local copy: the file named in the registry in ``$COURSE_DATA_DIR`` (sha256-checked);
  2. cache: files downloaded before, in ``cache_dir()/downloads``;
  3. download from the original origin (or ``$COURSE_DATA_ORIGIN``) into the cache;
  4. a prepared tensorflow-datasets copy (fashion_mnist, imdb);
  otherwise :class:`DatasetUnavailable` (within a few seconds) saying what was tried and how
  to fix it. A file whose sha256 is wrong raises :class:`ChecksumError` (a subclass of both
  ``DatasetUnavailable`` and ``ValueError``) naming the file and both hashes.

Archives with one folder per class (CIFAR-10 JPEGs, IMDB texts) come back in one fixed
shuffled order (not class-sorted), the same on every machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from course_lib.data import download as _download
from course_lib.data import registry, sources, tfds_source
from course_lib.data.errors import ChecksumError, DatasetUnavailable
from course_lib.data.files import cache_dir, cache_writable, sha256_file
from course_lib.data.samples import load_sample, sample_path
from course_lib.environment import fast_mode

__all__ = [
    "ChecksumError", "DatasetUnavailable", "cache_dir", "cache_writable",
    "class_names", "datasets", "describe", "describe_splits", "duplicate_mask", "fetch", "load",
    "path",
    "provenance", "verify",
]


def load(
    name: str, split: str = "train", *, sample: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of dataset ``name`` (see :func:`datasets`), ``split`` "train" or "test".

    ``x``: uint8 ``(n, 28, 28)`` (mnist, fashion_mnist), uint8 ``(n, 32, 32, 3)`` (cifar10), or
    a 1-D object array of ``str`` (imdb); ``y``: int64 ``(n,)`` labels, see :func:`class_names`.

    ``sample=None``: the shipped samples in fast mode, else the full data; ``True``/``False``
    force one. Raises ``ValueError`` for unknown names/splits, :class:`DatasetUnavailable`
    when no source works.

    IMDB has tensorflow-datasets' three splits: "train" (25,000 labelled reviews; the local
    copy's 10,000-review subset alone, with a one-line notice, when
    ``imdb_train_rest.tar.gz`` is not beside it), "test" (the local subset's 10,000, or the
    official 25,000 from a download or tfds) and "unsupervised" (50,000 unlabelled reviews,
    ``y`` = -1; the shipped sample holds 1,000 of them).
    """
    dataset = registry.get(name)
    registry.check_split(dataset, split)
    if sample is not None and not isinstance(sample, bool):
        raise TypeError(f"sample must be None, True or False, got {sample!r}")
    if fast_mode() if sample is None else sample:
        return load_sample(dataset, split)
    return sources.load_full(dataset, split)


def datasets() -> list[str]:
    """The dataset names :func:`load` accepts."""
    return list(registry.DATASETS)


def class_names(name: str) -> list[str]:
    """The class names of dataset ``name``, indexed by label."""
    return list(registry.get(name).classes)


def path(name: str) -> Path:
    """Where the full data of ``name`` is (or would be downloaded to).

    The local copy if ``$COURSE_DATA_DIR`` holds it; else the cached download (a file, or the
    folder for multi-file datasets such as fashion_mnist); else a prepared tensorflow-datasets
    folder; else where a download would put it.
    """
    dataset = registry.get(name)
    local = sources.local_path(dataset)
    if local is not None and local.is_file():
        return local
    downloads = sources.download_paths(dataset)
    target = downloads[0] if len(downloads) == 1 else downloads[0].parent
    if all(p.is_file() for p in downloads):
        return target
    prepared = tfds_source.prepared_dir(dataset) if tfds_source.installed() else None
    return prepared / dataset.tfds_name if prepared else target


def provenance(name: str) -> list[dict]:
    """The files the full data of ``name`` is read from right now, with the sha256 each is
    checked against: ``[{"file", "sha256", "source"}]`` ("local copy", with its extra files
    when present, or "cache"), or ``[{"source": "tensorflow-datasets or download"}]`` when
    neither is on disk. For a model's metadata: what it was trained on, to the byte. Reads no
    file (the loaders check them)."""
    dataset = registry.get(name)
    local = sources.local_path(dataset)
    if local is not None and local.is_file():
        extras = {f.name: f for split in dataset.splits
                  for f, _ in sources.local_extra_paths(dataset, split)}
        return [{"file": f.name, "sha256": f.sha256, "source": "local copy"}
                for f in [dataset.local, *extras.values()]]
    downloads = sources.download_paths(dataset)
    if all(p.is_file() for p in downloads):
        return [{"file": f.name, "sha256": f.sha256, "source": "cache"} for f in dataset.remote]
    return [{"source": "tensorflow-datasets or download"}]


def duplicate_mask(texts, among) -> np.ndarray:
    """Which of ``texts`` (1-D, str) also occur in ``among`` once surrounding whitespace is
    stripped: a bool mask ``(len(texts),)``. IMDB has such cross-split duplicates (its
    unlabelled and training reviews repeat some test reviews word for word); drop them from
    anything trained or pre-trained on before evaluating on ``among``. Compared by the sha256
    of the UTF-8 text, so large corpora cost little memory."""
    import hashlib

    def key(text) -> bytes:
        if not isinstance(text, str):
            raise TypeError(f"texts must be str, got {type(text).__name__}")
        return hashlib.sha256(text.strip().encode("utf-8")).digest()

    seen = {key(t) for t in np.asarray(among, dtype=object).ravel()}
    return np.array([key(t) in seen for t in np.asarray(texts, dtype=object).ravel()], dtype=bool)


def describe_splits(name: str) -> dict[str, str]:
    """For a dataset whose local copy comes in several files (IMDB): split -> the local files it
    is read from, or why it is partial or not local. Empty for the other datasets."""
    dataset = registry.get(name)
    if not dataset.local_extra or sources.local_path(dataset) is None:
        return {}
    out = {}
    for split in dataset.splits:
        present = [f.name for f, _ in sources.local_extra_paths(dataset, split)]
        wanted = [f.name for f in dataset.local_extra if split in f.splits]
        main = [dataset.local.name] if sources._serves(dataset, split) else []
        main = main if main and sources.local_path(dataset).is_file() else []
        files = main + present
        missing = [n for n in wanted if n not in present]
        if not files:
            out[split] = f"not in the local copy (needs {', '.join(missing)})"
        else:
            out[split] = "local copy: " + " + ".join(files) + (
                f" (partial: without {', '.join(missing)})" if missing else "")
    return out


def _size(target: Path) -> int:
    files = [target] if target.is_file() else [p for p in target.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files)


def describe(name: str) -> dict:
    """Where the full data of ``name`` would come from right now, without downloading.

    Returns ``{"name", "source", "path", "size", "detail", "sample"}``: ``source`` is one of
    "local copy", "cache", "download", "tensorflow-datasets", "unavailable"; ``path`` the file
    or folder (str, or None); ``size`` in bytes (None when not on disk); ``detail`` a reason;
    ``sample`` the shipped sample file (str, or None). Files on disk are sha256-checked (a
    cached download that fails is deleted, as :func:`load` would); the download origin is
    probed (at most a few seconds).
    """
    dataset = registry.get(name)
    sample = sample_path(dataset)
    info = {"name": name, "source": "unavailable", "path": None, "size": None, "detail": "",
            "sample": str(sample) if sample else None}
    tried: list[str] = []
    try:
        local = sources.try_local(dataset, tried)
        cached = None if local else sources.try_cache(dataset, tried)
    except ChecksumError as exc:
        return {**info, "detail": str(exc)}
    if local or cached:
        where = path(name)
        return {**info, "source": "local copy" if local else "cache", "path": str(where),
                "size": _size(where), "detail": "sha256 ok"}
    url = _download.origin_url(dataset.remote[0])
    try:
        _download.open_url(url).close()
        return {**info, "source": "download", "path": str(path(name)), "detail": url}
    except OSError as exc:
        tried.append(f"download: {url}: {exc}")
    prepared = tfds_source.prepared_dir(dataset) if tfds_source.installed() else None
    if prepared:
        where = prepared / dataset.tfds_name
        return {**info, "source": "tensorflow-datasets", "path": str(where), "size": _size(where)}
    return {**info, "detail": "; ".join(tried)}


def fetch(name: str) -> Path:
    """Make the full data of ``name`` available offline (download + decode once); its path."""
    dataset = registry.get(name)
    sources.load_full(dataset, dataset.splits[0])
    return path(name)


def _check(name: str, kind: str, file: Path, expected: str) -> dict:
    actual = sha256_file(file)
    reason = "sha256 ok" if actual == expected else f"sha256 {actual}, expected {expected}"
    return {"name": name, "kind": kind, "path": str(file), "ok": actual == expected,
            "reason": reason}


def verify(name: str | None = None) -> list[dict]:
    """sha256-check the local copies, cached downloads and shipped samples that exist.

    One dict per file: ``{"name", "kind", "path", "ok", "reason"}`` with ``kind`` "local copy",
    "cache" or "sample". ``name=None`` checks every dataset. Files that are not there are not
    listed (except a missing shipped sample, which is reported as not ok).
    """
    results = []
    for dataset in [registry.get(name)] if name else registry.DATASETS.values():
        local = sources.local_path(dataset)
        if local is not None and local.is_file():
            results.append(_check(dataset.name, "local copy", local, dataset.local.sha256))
        if local is not None:
            for extra in dataset.local_extra:
                if (local.parent / extra.name).is_file():
                    results.append(_check(dataset.name, "local copy", local.parent / extra.name,
                                          extra.sha256))
        for file, cached in zip(dataset.remote, sources.download_paths(dataset), strict=True):
            if cached.is_file():
                results.append(_check(dataset.name, "cache", cached, file.sha256))
        sample = sample_path(dataset)
        if sample is not None and sample.is_file():
            results.append(_check(dataset.name, "sample", sample, dataset.sample.sha256))
        elif sample is not None:
            results.append({"name": dataset.name, "kind": "sample", "path": str(sample),
                            "ok": False, "reason": "missing (reinstall course_lib)"})
    return results
