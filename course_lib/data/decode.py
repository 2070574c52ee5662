"""Decoders: turn the stored file formats into NumPy arrays.

Every decoder returns ``{"x_train", "y_train", "x_test", "y_test"}`` with ``x`` uint8 images
``(n, 28, 28)`` / ``(n, 32, 32, 3)`` or a 1-D object array of ``str`` reviews, and ``y`` int64
labels ``(n,)``. Folder-per-class archives (CIFAR-10 JPEGs, IMDB texts) are sorted by
(class, file name) and then put in a fixed shuffled order (``SHUFFLE_SEED``, one per split), so that
slices such as Keras' ``validation_split`` hold every class.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from course_lib.data.registry import CIFAR_CLASSES

SHUFFLE_SEED = 0
DECODE_VERSION = 3  # part of the decoded-array cache key: bump when any decoder's output changes
SPLITS = ("train", "test", "unsupervised")  # a split's index seeds its fixed shuffle
Arrays = dict[str, np.ndarray]


def _fixed_shuffle(x: np.ndarray, y: np.ndarray, split: str) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng([SHUFFLE_SEED, SPLITS.index(split)]).permutation(len(y))
    return x[order], y[order]


def _result(parts: dict[str, tuple[np.ndarray, np.ndarray]]) -> Arrays:
    out: Arrays = {}
    for split in SPLITS:
        if split in parts:
            x, y = parts[split]
            out[f"x_{split}"], out[f"y_{split}"] = x, np.asarray(y, dtype=np.int64)
    return out


def decode_npz(paths: list[Path]) -> Arrays:
    """``mnist.npz`` (keras.datasets layout): uint8 ``x_train``/``x_test``, labels ``y_*``."""
    with np.load(paths[0], allow_pickle=False) as f:
        return _result({s: (f[f"x_{s}"], f[f"y_{s}"]) for s in ("train", "test")})


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def decode_idx(paths: list[Path]) -> Arrays:
    """Four gzipped idx files: train images, train labels, test images, test labels."""
    x_train, y_train, x_test, y_test = (_read_idx(p) for p in paths)
    return _result({"train": (x_train, y_train), "test": (x_test, y_test)})


def decode_cifar_bin(paths: list[Path]) -> Arrays:
    """``cifar-10-binary.tar.gz``: records of 1 label byte + 3072 bytes (channels, rows, cols)."""
    batches: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    with tarfile.open(paths[0], "r:gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            name = Path(member.name).name
            split = "test" if name == "test_batch.bin" else "train"
            if member.isfile() and name.endswith(".bin") and "batch" in name:
                raw = tar.extractfile(member).read()
                batches[split].append(np.frombuffer(raw, np.uint8).reshape(-1, 3073))
    parts = {}
    for split, records in batches.items():
        rec = np.concatenate(records)
        parts[split] = (rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), rec[:, 0])
    return _result(parts)


def _folder_archive(
    paths: list[Path], member_re: str, label_of: Callable[[str], int],
    read: Callable[[bytes], object], split_of: Callable[[str, str], str] = lambda s, f: s,
) -> dict[str, list[tuple[tuple, object, int]]]:
    """Items ``(sort key, decoded value, label)`` per split for the members of every archive in
    ``paths`` that match ``member_re``.

    ``member_re`` captures (split folder, class folder, file stem); other members are skipped.
    ``split_of(split folder, class folder)`` names the split (e.g. IMDB's ``train/unsup``
    folder is the "unsupervised" split). "train" and "test" are always present.
    """
    items: dict[str, list[tuple[tuple, object, int]]] = {"train": [], "test": []}
    pattern = re.compile(member_re)
    for path in paths:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                match = pattern.fullmatch(member.name)
                if not member.isfile() or not match:
                    continue
                split_folder, folder, stem = match.groups()
                label = label_of(folder)
                value = read(tar.extractfile(member).read())
                items.setdefault(split_of(split_folder, folder), []).append(
                    ((label, stem), value, label))
    return items


def _jpeg_to_array(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data), formats=["JPEG"]) as img:
        return np.asarray(img if img.mode == "RGB" else img.convert("RGB"), dtype=np.uint8)


def decode_jpeg_tar(paths: list[Path]) -> Arrays:
    """CIFAR-10 JPEG archive: members ``[prefix/]{train,test}/<class>/<name>.jpg``."""
    items = _folder_archive(
        paths, r"(?:.*/)?(train|test)/([a-z]+)/([^/]+)\.jpg", CIFAR_CLASSES.index, _jpeg_to_array
    )
    parts = {}
    for split, rows in items.items():
        rows.sort(key=lambda row: row[0])
        x = np.stack([r[1] for r in rows]) if rows else np.zeros((0, 32, 32, 3), np.uint8)
        parts[split] = _fixed_shuffle(x, np.array([r[2] for r in rows], np.int64), split)
    return _result(parts)


def _review_key(stem: str) -> tuple[int, str]:
    review_id = stem.split("_")[0]
    return (int(review_id) if review_id.isdigit() else -1, stem)


def decode_acl_tar(paths: list[Path]) -> Arrays:
    """IMDB archives: members ``aclImdb/{train,test}/{neg,pos}/<id>_<rating>.txt`` (UTF-8) and
    ``aclImdb/train/unsup/<id>_0.txt``, the "unsupervised" split (label -1, as tfds gives it).
    Several archives (the subset and the rest of the training reviews) are read as one."""
    items = _folder_archive(
        paths,
        r"aclImdb/(train|test)/(neg|pos|unsup)/([0-9]+_[0-9]+)\.txt",
        lambda folder: -1 if folder == "unsup" else ("neg", "pos").index(folder),
        lambda data: data.decode("utf-8"),
        lambda split, folder: "unsupervised" if folder == "unsup" else split,
    )
    parts = {}
    for split, rows in items.items():
        rows.sort(key=lambda row: (row[0][0], _review_key(row[0][1])))
        x = np.empty(len(rows), dtype=object)
        x[:] = [r[1] for r in rows]
        parts[split] = _fixed_shuffle(x, np.array([r[2] for r in rows], np.int64), split)
    return _result(parts)


DECODERS: dict[str, Callable[[list[Path]], Arrays]] = {
    "npz": decode_npz,
    "idx": decode_idx,
    "cifar_bin": decode_cifar_bin,
    "jpeg_tar": decode_jpeg_tar,
    "acl_tar": decode_acl_tar,
}
SLOW_FORMATS = {"cifar_bin", "jpeg_tar", "acl_tar"}  # their decoded arrays are cached as .npz


def decode(fmt: str, paths: list[Path]) -> Arrays:
    """Decode the files ``paths`` stored in format ``fmt`` (a key of ``DECODERS``)."""
    return DECODERS[fmt](paths)
