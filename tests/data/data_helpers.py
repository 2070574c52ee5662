"""Helpers for the data-layer tests: hashes, cache listings, registry patches, fake files."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np

from course_lib.data import registry


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cache_files(root: Path) -> list[Path]:
    """Every file under the cache folder (temp files included)."""
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def set_remote(monkeypatch, name: str, files: dict[str, Path]) -> None:
    """Make the registry's remote files of ``name`` match ``files`` (name -> path)."""
    remote = tuple(
        registry.DataFile(f.name, sha256(files[f.name]), f.url)
        for f in registry.DATASETS[name].remote
    )
    replaced = dataclasses.replace(registry.DATASETS[name], remote=remote)
    monkeypatch.setitem(registry.DATASETS, name, replaced)


def set_local(monkeypatch, name: str, file: Path) -> None:
    """Make the registry's local copy of ``name`` be ``file`` (its name and sha256)."""
    local = registry.DataFile(file.name, sha256(file))
    replaced = dataclasses.replace(registry.DATASETS[name], local=local)
    monkeypatch.setitem(registry.DATASETS, name, replaced)


def write_tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_idx(path: Path, array: np.ndarray) -> Path:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))
    return path
