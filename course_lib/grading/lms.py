"""Bulk downloads of a Canvas or Moodle assignment: one zip for the whole class.

The student is in each member's name:

- Canvas: ``lastnamefirstname_userid_submissionid_filename`` (``_late_`` after the name for a
  late submission; a file uploaded again under the same name gets ``-1``, ``-2``... before its
  extension);
- Moodle: ``Full Name_participantid_assignsubmission_file_/filename`` (with "download
  submissions in folders"), or ``Full Name_participantid_assignsubmission_file_filename``.

Files are mapped to the exercises by name (``ex02.py``, ``ex02_mlp_from_scratch.py``,
``ex02_mlp_from_scratch-1.py``, a zip of the student's course folder). When several files map
to one exercise the newest is kept (highest Canvas submission id, then zip timestamp, then
``-N`` suffix) and the others are named in a ``resubmitted`` flag. A file that maps to no
exercise is named in an ``unmapped`` flag, and a member that names no student is returned as
unassigned: nothing is dropped silently. Nothing is extracted to disk.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from course_lib.grading.submissions import (
    MAX_SOURCE_BYTES,
    MAX_ZIP_BYTES,
    MAX_ZIP_MEMBERS,
    Submission,
    pick_exercise_files,
    unsafe_member,
)

MAX_BULK_MEMBERS = 20 * MAX_ZIP_MEMBERS
MAX_BULK_BYTES = 20 * MAX_ZIP_BYTES
CANVAS = re.compile(r"^(?P<name>[^_/]+?)(?P<late>_late)?_(?P<id>\d+)_(?P<sub>\d+)_(?P<file>.+)$",
                    re.I)
MOODLE = re.compile(r"^(?P<name>[^/]+?)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_"
                    r"(?P<file>.*)$")
EXERCISE_NAME = re.compile(r"^(?P<key>ex\d+)(?P<rest>[a-z0-9_]*?)(?:-\d+| ?\(\d+\))?\.py$")
COPY_NUMBER = re.compile(r"(?:-(\d+)| ?\((\d+)\))\.py$")


@dataclass
class _Candidate:
    """One file of a student that maps to an exercise, with what ranks it (newer is larger)."""

    exercise: str
    member: str
    data: bytes
    rank: tuple


@dataclass
class _Student:
    name: str
    student_id: str
    lms: str
    candidates: list[_Candidate] = field(default_factory=list)
    flags: list[tuple[str, str]] = field(default_factory=list)


def lms_of(names: list[str]) -> str | None:
    """``"canvas"`` or ``"moodle"`` when the zip member ``names`` follow that LMS's layout."""
    tops = [PurePosixPath(n).parts[0] for n in names if n and not n.endswith("/")]
    if not tops:
        return None
    for lms, pattern in (("moodle", MOODLE), ("canvas", CANVAS)):
        if sum(bool(pattern.match(top)) for top in tops) >= max(1, len(tops) // 2):
            return lms
    return None


def is_bulk_download(path: Path) -> bool:
    """Whether ``path`` is a Canvas or Moodle bulk-download zip (not one student's zip)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return lms_of(archive.namelist()[:MAX_BULK_MEMBERS]) is not None
    except (OSError, zipfile.BadZipFile):
        return False


def _exercise_for(filename: str, keys: dict[str, str]) -> str | None:
    match = EXERCISE_NAME.match(filename.lower())
    return keys.get(match.group("key")) if match else None


def _copy_number(filename: str) -> int:
    match = COPY_NUMBER.search(filename)
    return int(match.group(1) or match.group(2)) if match else 0


def read_bulk_download(path: Path, exercise_names: list[str]) -> tuple[list[Submission], list[str]]:
    """The students of a bulk-download zip as submissions, and the members that name no
    student. Raises ``ValueError`` for an unsafe, oversized or unknown zip."""
    keys = {name.split("_")[0]: name for name in exercise_names}
    students: dict[tuple[str, str], _Student] = {}
    unassigned: list[str] = []
    with zipfile.ZipFile(path) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > MAX_BULK_MEMBERS:
            raise ValueError(f"{path.name} has {len(members)} members (more than "
                             f"{MAX_BULK_MEMBERS})")
        if sum(m.file_size for m in members) > MAX_BULK_BYTES:
            raise ValueError(f"{path.name} expands to more than {MAX_BULK_BYTES} bytes")
        lms = lms_of([m.filename for m in members])
        if lms is None:
            raise ValueError(f"{path.name} is not a Canvas or Moodle bulk download")
        pattern = MOODLE if lms == "moodle" else CANVAS
        for member in members:
            name = member.filename.replace("\\", "/")
            if unsafe_member(name):
                unassigned.append(f"{name[:80]} (unsafe path, not read)")
                continue
            parts = PurePosixPath(name).parts
            match = pattern.match(parts[0])
            if match is None:
                unassigned.append(name)
                continue
            key = (match.group("name"), match.group("id"))
            student = students.setdefault(key, _Student(*key, lms))
            filename = "/".join(parts[1:]) if len(parts) > 1 else match.group("file")
            if lms == "moodle" and len(parts) > 1 and match.group("file"):
                filename = match.group("file") + "/" + filename
            if lms == "moodle" and match.group("plugin") != "file":
                student.flags.append(("unmapped", f"{filename or parts[0]}: online text, not "
                                                  "an exercise file"))
                continue
            submission_id = int(match.group("sub")) if lms == "canvas" else 0
            _add_file(archive, member, filename, submission_id, keys, student)
    submissions = [_submission(student, exercise_names) for student in students.values()]
    return submissions, unassigned


def _add_file(archive: zipfile.ZipFile, member: zipfile.ZipInfo, filename: str,
              submission_id: int, keys: dict[str, str], student: _Student) -> None:
    base = PurePosixPath(filename).name
    rank = (submission_id, member.date_time, _copy_number(base))
    if base.lower().endswith(".zip"):
        found = _nested_zip(archive, member, keys, student, filename)
        for exercise, data in found.items():
            student.candidates.append(_Candidate(exercise, filename, data, rank))
        return
    exercise = _exercise_for(base, keys)
    if exercise is None:
        reason = ("no such exercise" if EXERCISE_NAME.match(base.lower())
                  else "not an exercise file")
        student.flags.append(("unmapped", f"{filename}: {reason}"))
        return
    if member.file_size > MAX_SOURCE_BYTES:
        student.flags.append(("malformed", f"{filename} is larger than {MAX_SOURCE_BYTES} bytes"))
        return
    with archive.open(member) as handle:
        student.candidates.append(_Candidate(exercise, filename, handle.read(), rank))


def _nested_zip(archive: zipfile.ZipFile, member: zipfile.ZipInfo, keys: dict[str, str],
                student: _Student, filename: str) -> dict[str, bytes]:
    """A student's zip inside the bulk download (their course folder): its exercise files."""
    if member.file_size > MAX_ZIP_BYTES:
        student.flags.append(("malformed", f"{filename} is larger than {MAX_ZIP_BYTES} bytes"))
        return {}
    try:
        with archive.open(member) as handle, zipfile.ZipFile(io.BytesIO(handle.read())) as inner:
            infos = inner.infolist()
            if (len(infos) > MAX_ZIP_MEMBERS or sum(i.file_size for i in infos) > MAX_ZIP_BYTES
                    or any(unsafe_member(i.filename.replace("\\", "/")) for i in infos)):
                student.flags.append(("malformed", f"{filename}: unsafe or oversized zip"))
                return {}
            paths = [PurePosixPath(i.filename) for i in infos if not i.is_dir()]
            chosen = pick_exercise_files([p for p in paths if len(p.parts) <= 4])
            found = {}
            for name, path in chosen.items():
                exercise = _exercise_for(name, keys)
                if exercise is not None:
                    found[exercise] = inner.read(str(path))[: MAX_SOURCE_BYTES + 1]
    except zipfile.BadZipFile as error:
        student.flags.append(("malformed", f"{filename}: {error}"))
        return {}
    if not found:
        student.flags.append(("unmapped", f"{filename}: a zip without exercise files"))
    return found


def _submission(student: _Student, exercise_names: list[str]) -> Submission:
    sub = Submission(student=student.name, student_id=student.student_id, lms=student.lms,
                     flags=list(student.flags))
    for exercise in exercise_names:
        found = sorted((c for c in student.candidates if c.exercise == exercise),
                       key=lambda c: c.rank)
        if not found:
            sub.flags.append(("malformed", f"missing exercises/{exercise}.py"))
            continue
        newest = found[-1]
        if len(found) > 1:
            older = ", ".join(c.member for c in found[:-1])
            sub.flags.append(("resubmitted", f"{exercise.split('_')[0]}: graded {newest.member} "
                                             f"(the newest), not {older}"))
        if len(newest.data) > MAX_SOURCE_BYTES:
            sub.flags.append(("malformed", f"{newest.member} is larger than {MAX_SOURCE_BYTES} "
                                           "bytes"))
            continue
        try:
            sub.sources[exercise] = newest.data.decode("utf-8")
        except UnicodeDecodeError as error:
            sub.flags.append(("malformed", f"{newest.member} is not UTF-8 text ({error.reason})"))
    return sub
