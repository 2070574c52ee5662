"""A class's submissions, whatever form they came in: one folder or ``.zip`` per student
(:mod:`course_lib.grading.submissions`) or a Canvas or Moodle bulk download of the whole class
(:mod:`course_lib.grading.lms`)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from course_lib.grading import lms
from course_lib.grading.submissions import Submission, find_submissions, read_submission


def collect(path: Path, exercise_names: list[str]) -> tuple[list[Submission], list[str]]:
    """Every submission of ``path`` and the files that name no student.

    ``path`` is a folder of student folders and zips, where a zip may also be a Canvas or
    Moodle bulk download (many students), or such a bulk-download zip itself.
    """
    path = Path(path)
    entries = [path] if path.is_file() else find_submissions(path)
    subs: list[Submission] = []
    unassigned: list[str] = []
    for entry in entries:
        if entry.suffix == ".zip" and lms.is_bulk_download(entry):
            try:
                found, orphans = lms.read_bulk_download(entry, exercise_names)
            except (OSError, zipfile.BadZipFile, ValueError) as error:
                subs.append(Submission(entry.stem, flags=[("malformed", f"unreadable bulk "
                                                                      f"download: {error}")]))
                continue
            subs += found
            unassigned += [f"{entry.name}: {name}" for name in orphans]
        else:
            subs.append(read_submission(entry, exercise_names))
    return subs, unassigned
