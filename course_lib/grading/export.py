"""Grades for the LMS: a class roster, and import files for Canvas, Moodle or a plain CSV.

- ``canvas``: the layout of a Canvas gradebook export, which Canvas imports back (Grades >
  Import): ``Student, ID, SIS User ID, SIS Login ID, Section``, one column per exercise and
  the total, and a ``Points Possible`` row under the header. Students are matched by Canvas
  user ``ID`` (the id in the bulk download's file names); columns Canvas does not know become
  new assignments when imported.
- ``moodle``: the assignment's offline grading worksheet (Grading action > Upload grading
  worksheet): ``Identifier`` (``Participant N``, the id in the bulk download's folder names),
  ``Full name, Email address, Status, Grade, Maximum Grade, Grade can be changed, Last modified
  (submission), Last modified (grade), Feedback comments``; the grade is the total (scaled to
  the roster's ``Maximum Grade`` when it differs), the points per exercise are in the comments.
- ``csv``: ``student, id, email, exNN..., total, max, status, flags`` for anything else.

A roster (``--roster``) is a Canvas gradebook export, a Moodle grading worksheet, or a CSV with
a ``student`` (or ``name``) column and optional ``id`` and ``email``. Students on it without a
submission get 0 and an ``absent`` flag; students with a submission who are not on it get a
``not on roster`` flag, are listed, and are left out of the Canvas and Moodle files (the LMS
would not know them).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.grading.batch import cell, missing_result
from course_lib.grading.engine import Exercise, Grader, StudentResult

FORMATS = ("canvas", "moodle", "csv")
CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_COLUMNS = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                  "Grade can be changed", "Last modified (submission)", "Last modified (grade)",
                  "Feedback comments"]
TOTAL_COLUMN = "Exercises total"


@dataclass
class RosterEntry:
    """One student of the class list: display name, LMS id, and the roster's own columns."""

    name: str
    student_id: str = ""
    email: str = ""
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class Roster:
    kind: str  # "canvas", "moodle" or "csv"
    entries: list[RosterEntry]


def _key(name: str) -> str:
    """A name for matching: "Doe, John", "doejohn" and "John Doe" differ, case and punctuation
    do not."""
    return re.sub(r"[\W_]+", "", name.casefold())


def read_roster(path: Path) -> Roster:
    """Read a Canvas gradebook export, a Moodle grading worksheet or a plain CSV class list.

    Raises ``ValueError`` when the file has none of these layouts.
    """
    text = Path(path).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    header = list(rows[0]) if rows else next(csv.reader(io.StringIO(text)), [])
    if "Identifier" in header and "Full name" in header:
        entries = [RosterEntry(r["Full name"], re.sub(r"\D", "", r["Identifier"] or ""),
                               r.get("Email address") or "", r) for r in rows]
        return Roster("moodle", entries)
    if {"Student", "ID"} <= set(header):
        entries = [RosterEntry(r["Student"], (r["ID"] or "").strip(), "", r) for r in rows
                   if (r["Student"] or "").strip() and "Points Possible" not in r["Student"]]
        return Roster("canvas", entries)
    lowered = {h.strip().lower(): h for h in header}
    name = lowered.get("student") or lowered.get("name")
    if name is None:
        raise ValueError(f"{path}: no roster layout recognised (need a Canvas gradebook export, "
                         "a Moodle grading worksheet, or a CSV with a 'student' column)")
    id_column, email = lowered.get("id"), lowered.get("email")
    entries = [RosterEntry(r[name], (r.get(id_column) or "").strip() if id_column else "",
                           (r.get(email) or "").strip() if email else "", r) for r in rows
               if (r[name] or "").strip()]
    return Roster("csv", entries)


@dataclass
class Gradebook:
    """Students matched with the roster: ``(entry or None, result)`` pairs, in roster order then
    the students not on the roster."""

    rows: list[tuple[RosterEntry | None, StudentResult]]

    @property
    def not_on_roster(self) -> list[StudentResult]:
        return [student for entry, student in self.rows if entry is None]


def match_roster(students: list[StudentResult], roster: Roster | None, grader: Grader,
                 exercises: list[Exercise]) -> Gradebook:
    """Pair every student with their roster entry (by LMS id, else by name); roster students
    without a submission get a result of 0 with an ``absent`` flag (added to ``students``)."""
    if roster is None:
        return Gradebook([(None, s) for s in students])
    by_id = {s.student_id: s for s in students if s.student_id}
    by_name: dict[str, list[StudentResult]] = {}
    for s in students:
        by_name.setdefault(_key(s.student), []).append(s)
    rows, matched = [], set()
    for entry in roster.entries:
        found = by_id.get(entry.student_id) if entry.student_id else None
        if found is None:
            found = next((s for s in by_name.get(_key(entry.name), []) if id(s) not in matched
                          and (not s.student_id or not entry.student_id)), None)
        if found is None or id(found) in matched:
            found = StudentResult(entry.name, flags=[("absent", "on the roster, no submission")],
                                  student_id=entry.student_id)
            for ex in exercises:
                found.exercises[ex.name] = missing_result(grader, ex, "no submission")
            students.append(found)
        matched.add(id(found))
        rows.append((entry, found))
    for s in students:
        if id(s) not in matched:
            s.flags.append(("not on roster", "graded, but not on the roster: left out of the "
                                             "LMS import files"))
            rows.append((None, s))
    return Gradebook(rows)


def _possible(grader: Grader, exercise: Exercise) -> float:
    return sum(item.check.points for item in grader.checks(exercise))


def _points(value: float) -> str:
    return f"{value:g}"


def canvas_csv(book: Gradebook, grader: Grader, exercises: list[Exercise]) -> str:
    """The Canvas gradebook import file (students on the roster, or all without one)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*CANVAS_IDENTITY, *[ex.name for ex in exercises], TOTAL_COLUMN])
    possible = [_possible(grader, ex) for ex in exercises]
    writer.writerow(["    Points Possible", "", "", "", "", *map(_points, possible),
                     _points(sum(possible))])
    for entry, student in book.rows:
        if entry is None and any(e is not None for e, _ in book.rows):
            continue
        fields = entry.fields if entry is not None else {}
        identity = [fields.get("Student") or student.student,
                    fields.get("ID") or student.student_id,
                    fields.get("SIS User ID", ""), fields.get("SIS Login ID", ""),
                    fields.get("Section", "")]
        scores = [_points(student.exercises[ex.name].score) for ex in exercises]
        writer.writerow([*map(cell, identity), *scores, _points(student.total)])
    return buffer.getvalue()


def moodle_csv(book: Gradebook, grader: Grader, exercises: list[Exercise]) -> str:
    """The Moodle grading worksheet (students on the roster, or all without one)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(MOODLE_COLUMNS)
    possible = sum(_possible(grader, ex) for ex in exercises)
    for entry, student in book.rows:
        if entry is None and any(e is not None for e, _ in book.rows):
            continue
        fields = entry.fields if entry is not None else {}
        maximum = _number(fields.get("Maximum Grade")) or possible
        grade = student.total * maximum / possible if possible else 0.0
        parts = [f"{ex.key} {student.exercises[ex.name].score:g}/{_possible(grader, ex):g}"
                 for ex in exercises]
        comment = f"{student.total:g}/{possible:g} points: " + ", ".join(parts)
        if maximum != possible:
            comment += f" (scaled to {maximum:g})"
        identifier = fields.get("Identifier") or (f"Participant {student.student_id}"
                                                  if student.student_id else "")
        writer.writerow([cell(identifier), cell(fields.get("Full name") or student.student),
                         cell(fields.get("Email address", "")), cell(fields.get("Status", "")),
                         f"{grade:.2f}", f"{maximum:.2f}", fields.get("Grade can be changed")
                         or "Yes", cell(fields.get("Last modified (submission)", "")),
                         cell(fields.get("Last modified (grade)", "")), cell(comment)])
    return buffer.getvalue()


def plain_csv(book: Gradebook, grader: Grader, exercises: list[Exercise]) -> str:
    """``student, id, email, exNN..., total, max, status, flags``: every student."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", "id", "email", *[ex.name for ex in exercises], "total", "max",
                     "status", "flags"])
    possible = sum(_possible(grader, ex) for ex in exercises)
    for entry, student in book.rows:
        kinds = {kind for kind, _ in student.flags}
        status = ("absent" if "absent" in kinds else "not on roster" if "not on roster" in kinds
                  else "graded")
        flags = "; ".join(f"{kind}: {reason}" for kind, reason in student.all_flags())
        writer.writerow([cell(entry.name if entry else student.student),
                         cell(student.student_id or (entry.student_id if entry else "")),
                         cell(entry.email if entry else ""),
                         *[_points(student.exercises[ex.name].score) for ex in exercises],
                         _points(student.total), _points(possible), status, cell(flags)])
    return buffer.getvalue()


EXPORTERS = {"canvas": canvas_csv, "moodle": moodle_csv, "csv": plain_csv}


def export_path(gradebook: Path, kind: str) -> Path:
    """Where ``--export KIND`` writes, next to the gradebook: ``gradebook-canvas.csv``,
    ``gradebook-moodle.csv``, ``gradebook-grades.csv``."""
    suffix = "grades" if kind == "csv" else kind
    return Path(gradebook).with_name(f"{Path(gradebook).stem}-{suffix}.csv")


def _number(text: str | None) -> float | None:
    try:
        value = float(str(text).replace(",", "."))
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None
