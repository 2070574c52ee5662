"""Read a class's submissions safely: one folder or ``.zip`` per student.

Nothing is extracted to disk: the exercise files are read into memory (UTF-8 text, size-capped).
A zip with unsafe member names (``../``, absolute paths), too many members or too many
uncompressed bytes is refused as malformed, never unpacked.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

MAX_SOURCE_BYTES = 1_000_000
MAX_ZIP_MEMBERS = 2_000
MAX_ZIP_BYTES = 50 * 2**20
EXERCISE_FILE = re.compile(r"^ex\d+\w*\.py$")


@dataclass
class Submission:
    """A student's exercise sources (name -> text) and what was wrong with the submission.

    ``student_id`` and ``lms`` are set for a submission from a Canvas or Moodle bulk download.
    """

    student: str
    sources: dict[str, str] = field(default_factory=dict)
    flags: list[tuple[str, str]] = field(default_factory=list)
    student_id: str = ""
    lms: str = ""


def find_submissions(folder: Path) -> list[Path]:
    """The student entries of ``folder``: sub-folders and ``.zip`` files, sorted."""
    entries = [p for p in sorted(Path(folder).iterdir()) if not p.name.startswith(".")]
    return [p for p in entries if (p.is_dir() and not p.is_symlink()) or p.suffix == ".zip"]


def unsafe_member(name: str) -> bool:
    """A zip member name that would escape a folder (``../``, absolute, a drive letter)."""
    parts = PurePosixPath(name).parts
    return name.startswith("/") or ".." in parts or bool(parts and ":" in parts[0])


def read_submission(path: Path, exercise_names: list[str]) -> Submission:
    """Read the exercises of one student folder or zip; problems become ``malformed`` flags."""
    sub = Submission(student=path.stem if path.suffix == ".zip" else path.name)
    try:
        files = _zip_files(path, sub) if path.suffix == ".zip" else _folder_files(path)
    except (OSError, zipfile.BadZipFile, ValueError) as error:
        sub.flags.append(("malformed", f"unreadable submission: {error}"))
        return sub
    if files is None:
        return sub
    if not files:
        sub.flags.append(("malformed", "no exercise files (exNN_*.py) found"))
        return sub
    for name in exercise_names:
        data = files.get(name + ".py")
        if data is None:
            sub.flags.append(("malformed", f"missing exercises/{name}.py"))
        elif len(data) > MAX_SOURCE_BYTES:
            sub.flags.append(("malformed", f"{name}.py is larger than {MAX_SOURCE_BYTES} bytes"))
        else:
            try:
                sub.sources[name] = data.decode("utf-8")
            except UnicodeDecodeError as error:
                sub.flags.append(("malformed", f"{name}.py is not UTF-8 text ({error.reason} at "
                                               f"byte {error.start})"))
    return sub


def pick_exercise_files(paths: list[PurePosixPath]) -> dict[str, PurePosixPath]:
    """Exercise files, preferring ones in an ``exercises/`` folder, shallowest first."""
    chosen: dict[str, PurePosixPath] = {}
    ranked = sorted(paths, key=lambda p: ("exercises" not in p.parts[:-1], len(p.parts), str(p)))
    for path in ranked:
        if EXERCISE_FILE.match(path.name) and "solutions" not in path.parts:
            chosen.setdefault(path.name, path)
    return chosen


def _folder_files(folder: Path) -> dict[str, bytes]:
    paths = []
    for path in folder.rglob("ex*.py"):
        relative = path.relative_to(folder)
        if len(relative.parts) <= 4 and path.is_file() and not path.is_symlink():
            paths.append(PurePosixPath(relative.as_posix()))
    return {name: (folder / rel).read_bytes()[: MAX_SOURCE_BYTES + 1]
            for name, rel in pick_exercise_files(paths).items()}


def _zip_files(path: Path, sub: Submission) -> dict[str, bytes] | None:
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            sub.flags.append(("malformed", f"zip has {len(members)} members "
                                           f"(more than {MAX_ZIP_MEMBERS})"))
            return None
        declared = sum(m.file_size for m in members)
        if declared > MAX_ZIP_BYTES:
            sub.flags.append(("malformed", f"zip expands to {declared} bytes "
                                           f"(more than {MAX_ZIP_BYTES}): zip bomb?"))
            return None
        for member in members:
            name = member.filename.replace("\\", "/")
            if unsafe_member(name):
                sub.flags.append(("malformed", f"zip member with an unsafe path: {name[:80]!r}"))
                return None
        files = [PurePosixPath(m.filename) for m in members if not m.is_dir()]
        chosen = pick_exercise_files([p for p in files if len(p.parts) <= 4])
        out = {}
        for name, member in chosen.items():
            with archive.open(str(member)) as handle:
                out[name] = handle.read(MAX_SOURCE_BYTES + 1)
        return out
