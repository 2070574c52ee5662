"""Exceptions raised by :mod:`course_lib.data`."""

from __future__ import annotations

from pathlib import Path


class DatasetUnavailable(RuntimeError):
    """No source could provide the dataset; the message lists what was tried and how to fix it."""


class ChecksumError(DatasetUnavailable, ValueError):
    """A data file's sha256 differs from the known value (truncated, altered or wrong file).

    It is a :class:`DatasetUnavailable` (the data cannot be used) and a ``ValueError``
    (the file's content is bad). Nothing is cached from a file that fails its check.
    """

    def __init__(self, file: Path | str, expected: str, actual: str, hint: str = "") -> None:
        self.file = file  # a Path, or the URL of a download
        self.expected = expected
        self.actual = actual
        message = (
            f"checksum mismatch for {self.file}: expected sha256 {expected}, got {actual} "
            "(the file is truncated, altered or not the expected file)."
        )
        super().__init__(f"{message} {hint}".strip())
