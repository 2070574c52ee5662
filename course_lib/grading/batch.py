"""Grade a class: every submission, in parallel children, into a gradebook and feedback files."""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from course_lib.grading import report
from course_lib.grading.engine import Exercise, ExerciseResult, Grader, StudentResult, missing_check
from course_lib.grading.intake import collect
from course_lib.grading.submissions import Submission


def grade_class(submissions_dir: Path, grader: Grader, exercises: list[Exercise],
                jobs: int = 1) -> list[StudentResult]:
    """Grade every submission of ``submissions_dir`` (read in full before any code runs) with
    ``grader``, whose run seed decides the check inputs (``course grade --submissions`` gives it
    a fresh one per run; see :class:`course_lib.grading.engine.Grader`)."""
    grader.hide.append(str(Path(submissions_dir).resolve()))
    subs, _ = collect(submissions_dir, [ex.name for ex in exercises])
    return grade_submissions(subs, grader, exercises, jobs)


def grade_submissions(subs: list[Submission], grader: Grader, exercises: list[Exercise],
                      jobs: int = 1) -> list[StudentResult]:
    """Grade submissions already read into memory, ``jobs`` children at a time."""
    for ex in exercises:  # the reference runs once, before any student code
        grader.reference(ex)
    results = [StudentResult(sub.student, flags=list(sub.flags), student_id=sub.student_id)
               for sub in subs]
    tasks = [(index, ex) for index, sub in enumerate(subs) for ex in exercises
             if ex.name in sub.sources]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        graded = pool.map(lambda task: grader.grade(task[1], subs[task[0]].sources[task[1].name]),
                          tasks)
        for (index, ex), result in zip(tasks, graded, strict=True):
            results[index].exercises[ex.name] = result
    for index, sub in enumerate(subs):
        for ex in exercises:
            if ex.name not in sub.sources:
                results[index].exercises[ex.name] = missing_result(grader, ex)
    return results


def missing_result(grader: Grader, exercise: Exercise,
                   reason: str = "exercise file missing or unreadable") -> ExerciseResult:
    """An exercise graded 0 because there was nothing to run."""
    result = ExerciseResult(exercise.name)
    for item in grader.checks(exercise):
        result.checks.append(missing_check(item, reason))
    return result


def gradebook_csv(students: list[StudentResult], exercises: list[Exercise]) -> str:
    """The gradebook: student, id (the LMS id, if any), one column per exercise, total, flags
    (``kind: reason; ...``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["student", "id", *[ex.name for ex in exercises], "total", "flags"])
    for student in students:
        scores = [f"{student.exercises[ex.name].score:g}" for ex in exercises]
        flags = "; ".join(f"{kind}: {reason}" for kind, reason in student.all_flags())
        writer.writerow([cell(student.student), cell(student.student_id), *scores,
                         f"{student.total:g}", cell(flags)])
    return buffer.getvalue()


def cell(text: str) -> str:
    """Guard against formula injection when the CSV is opened in a spreadsheet."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_atomic(path: Path, text: str, keep_backup: bool = True) -> Path | None:
    """Write ``text`` to ``path`` atomically; an existing file is first kept as a backup.

    Returns the backup's path (``gradebook.backup-N.csv``) when there was a file to keep.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if keep_backup and path.exists():
        number = 1
        while (candidate := path.with_name(f"{path.stem}.backup-{number}{path.suffix}")).exists():
            number += 1
        os.link(path, candidate)
        backup = candidate
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return backup


def safe_filename(student: str) -> str:
    """A student name usable as a file name (no path separators, no leading dot)."""
    cleaned = re.sub(r"[^\w.-]+", "_", student).strip("._")
    return cleaned[:100] or "student"


def write_feedback(students: list[StudentResult], folder: Path) -> list[Path]:
    """One Markdown file per student: public checks in full, hidden checks by name and points."""
    written = []
    for student in students:
        path = Path(folder) / f"{safe_filename(student.student)}.md"
        write_atomic(path, report.feedback_markdown(student), keep_backup=False)
        written.append(path)
    return written
