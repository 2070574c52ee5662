"""Reference outputs shipped with the student edition (``course release``), in place of solutions.

A release runs every reference solution through its public checks once and writes, per
exercise, ``references/exNN_topic.json``: the sha256 of the check module it was computed with
and each check's output in the wire format (JSON; arrays as ``.npy`` bytes in base64, loaded
with ``allow_pickle=False``: no pickle, no code). Where ``solutions/`` is missing, the grader
judges against these. A check module that differs from the one hashed is refused with a clear
message rather than judged against stale outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from course_lib.grading import wire

FORMAT = 1
PACKAGE_DIR = Path(__file__).resolve().parent


class ReferenceFileError(ValueError):
    """Shipped reference outputs that are missing, corrupt, or made for other checks."""


def references_dir() -> Path:
    """Where a student edition keeps its reference outputs (``COURSE_GRADING_REFERENCES_DIR``
    overrides, for tests)."""
    return Path(os.environ.get("COURSE_GRADING_REFERENCES_DIR") or PACKAGE_DIR / "references")


def checks_hash(source: str) -> str:
    """The sha256 of a check module's source text."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def dumps(exercise: str, checks_source: str, outputs: dict[tuple[int, str], object]) -> str:
    """The reference file of ``exercise``: deterministic text (same outputs, same bytes).

    ``outputs`` maps ``(source index, check name)`` to a decoded output; only the public checks
    (source 0) are kept: hidden checks are never released.
    """
    public = [{"check": name, "value": wire.encode(value)}
              for (source, name), value in outputs.items() if source == 0]
    record = {"format": FORMAT, "exercise": exercise, "checks_sha256": checks_hash(checks_source),
              "outputs": public}
    return json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"


def load(exercise: str, checks_source: str, check_names: list[str],
         folder: Path | None = None) -> dict[tuple[int, str], object]:
    """The shipped outputs of ``exercise``'s public checks, keyed like the grader's references.

    Raises :class:`ReferenceFileError` when the file is missing or corrupt, or was made for a check
    module other than ``checks_source``.
    """
    path = Path(folder or references_dir()) / f"{exercise}.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReferenceFileError(
            f"cannot grade {exercise}: there is neither a reference solution nor shipped "
            f"reference outputs ({path}). In a student edition, ask your instructor for a "
            "release made with `course release`.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReferenceFileError(f"the reference outputs {path} are unreadable: {error}") from None
    if type(record) is not dict or record.get("format") != FORMAT:
        raise ReferenceFileError(f"the reference outputs {path} are not in format {FORMAT}")
    stored, current = record.get("checks_sha256"), checks_hash(checks_source)
    if stored != current:
        raise ReferenceFileError(
            f"the checks of {exercise} changed since this course was released: its shipped "
            f"reference outputs were computed for checks with sha256 {str(stored)[:12]}..., the "
            f"check module now has {current[:12]}.... Judging against outdated references "
            f"would give wrong scores, so {exercise} is not graded: restore "
            f"course_lib/grading/checks/{exercise}.py as released, or get an updated release.")
    outputs: dict[tuple[int, str], object] = {}
    try:
        for item in record["outputs"]:
            outputs[(0, str(item["check"]))] = wire.decode(item["value"])
    except (KeyError, TypeError, wire.WireError) as error:
        raise ReferenceFileError(f"the reference outputs {path} are corrupt: {error}") from None
    missing = [name for name in check_names if (0, name) not in outputs]
    if missing:
        raise ReferenceFileError(f"the reference outputs {path} lack {', '.join(missing)}")
    return outputs
