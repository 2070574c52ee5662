"""File helpers: the cache folder, sha256 checks and atomic writes."""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from course_lib.data.errors import ChecksumError

APP_NAME = "course_lib"


def cache_dir() -> Path:
    """The cache folder: ``$COURSE_CACHE`` if set, else the user cache dir + ``course_lib``.

    The user cache dir follows platformdirs: ``~/Library/Caches`` (macOS),
    ``%LOCALAPPDATA%`` (Windows), ``$XDG_CACHE_HOME`` or ``~/.cache`` (elsewhere).
    The folder is not created here.
    """
    if os.environ.get("COURSE_CACHE"):
        return Path(os.environ["COURSE_CACHE"]).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / APP_NAME


def cache_writable() -> bool:
    """True when the cache folder exists or can be created, and a file can be written in it."""
    try:
        folder = cache_dir()
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        return True
    except OSError:
        return False


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(path: Path, expected: str, hint: str = "") -> None:
    """Raise :class:`ChecksumError` naming ``path`` and both hashes when they differ."""
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumError(path, expected, actual, hint)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` through ``write(file)`` into a temp file in the same folder, then rename.

    If ``write`` raises (or the process dies), no file named ``path`` appears and the temp
    file is removed (a killed process may leave a ``.tmp-*`` file, never a half-written
    ``path``).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.name}-")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
