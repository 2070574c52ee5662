"""The download path: fetch a registry file from its origin into the cache, verified, atomically.

The origin is the file's URL in the registry, or ``$COURSE_DATA_ORIGIN/<file name>`` when that
variable is set (any ``urllib`` URL, e.g. ``file:///srv/mirror/`` for a class mirror or a test).
Opening the connection is bounded by ``CONNECT_TIMEOUT`` seconds, DNS included, so an offline
machine fails fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import threading
import urllib.request
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from course_lib.data.errors import ChecksumError
from course_lib.data.files import atomic_write
from course_lib.data.registry import DataFile

CONNECT_TIMEOUT = 3.0  # seconds to get an answer from the origin (DNS + connect + headers)
READ_TIMEOUT = 30.0  # seconds a running download may stall
urlopen = urllib.request.urlopen  # module attribute so tests can replace it


def origin_url(file: DataFile) -> str:
    """Where ``file`` is downloaded from: ``$COURSE_DATA_ORIGIN`` + name, else its registry URL."""
    base = os.environ.get("COURSE_DATA_ORIGIN", "").strip()
    return f"{base.rstrip('/')}/{file.name}" if base else file.url


def open_url(url: str, timeout: float | None = None) -> BinaryIO:
    """``urlopen(url)`` that gives up after ``timeout`` s (default ``CONNECT_TIMEOUT``) even
    when name resolution hangs.

    Raises ``OSError`` with the reason (no answer, refused, unknown host, HTTP error...).
    """
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    answer: queue.Queue = queue.Queue(maxsize=1)

    def attempt() -> None:
        try:
            answer.put(urlopen(url, timeout=READ_TIMEOUT))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            answer.put(exc)

    threading.Thread(target=attempt, daemon=True).start()
    try:
        result = answer.get(timeout=timeout)
    except queue.Empty:
        raise OSError(f"no answer from {url} within {timeout:g} s") from None
    if isinstance(result, BaseException):
        raise OSError(f"{type(result).__name__}: {result}") from result
    return result


def download(file: DataFile, dest: Path) -> Path:
    """Download ``file`` to ``dest``, check its sha256, and only then rename it into place.

    On any failure (network error, interruption, checksum mismatch) ``dest`` is not created
    and no temp file is left. Raises ``OSError`` or :class:`ChecksumError`.
    """
    url = origin_url(file)
    digest = hashlib.sha256()

    def write(out: BinaryIO) -> None:
        with open_url(url) as response:
            size = int(response.headers.get("Content-Length") or 0) if response.headers else 0
            # A progress bar on a terminal only (disable=None): notebooks and tests stay quiet.
            with tqdm(total=size or None, unit="B", unit_scale=True, desc=file.name,
                      disable=None, leave=False) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
                    bar.update(len(block))
        if digest.hexdigest() != file.sha256:
            raise ChecksumError(url, file.sha256, digest.hexdigest(), "Nothing was saved.")

    try:
        return atomic_write(dest, write)
    except BaseException:
        with contextlib.suppress(OSError):
            dest.parent.rmdir()  # leave no empty folder behind (fails when it holds files)
        raise

