"""Gradebook writing (atomic, never losing an earlier one) and the shipped hidden checks."""

import csv
import io
import zipfile
from pathlib import Path

import pytest

from course_lib.grading import batch, engine
from course_lib.grading.command import grade_exercises

PACKAGE = Path(engine.__file__).parent


def test_write_atomic_keeps_every_earlier_gradebook(tmp_path):
    path = tmp_path / "grades" / "gradebook.csv"
    assert batch.write_atomic(path, "first\n") is None
    assert batch.write_atomic(path, "second\n") == path.with_name("gradebook.backup-1.csv")
    assert batch.write_atomic(path, "third\n") == path.with_name("gradebook.backup-2.csv")
    texts = {p.name: p.read_text() for p in path.parent.iterdir()}
    assert texts == {"gradebook.csv": "third\n", "gradebook.backup-1.csv": "first\n",
                     "gradebook.backup-2.csv": "second\n"}


def test_feedback_file_names_are_safe():
    assert batch.safe_filename("../../etc/passwd") == "etc_passwd"
    assert batch.safe_filename("...") == "student"


@pytest.mark.skipif(not (PACKAGE / "hidden_example").is_dir(),
                    reason="the student edition has neither hidden checks nor solutions")
def test_shipped_hidden_example_with_the_real_ex01(monkeypatch):
    """The example hidden set plugs into the real exercise 01: reference 100%, stub 0%."""
    for name in ("COURSE_GRADING_CHECKS_DIR", "COURSE_SOLUTIONS_DIR", "COURSE_EXERCISES_DIR"):
        monkeypatch.delenv(name)
    (ex01,) = engine.select(engine.discover(PACKAGE / "hidden_example"), ["ex01"])
    assert ex01.hidden_file == PACKAGE / "hidden_example" / "ex01_foundations.py"
    grader = engine.Grader([ex01])
    solution = grader.grade(ex01, ex01.solution_file.read_text())
    stub = grader.grade(ex01, (engine.exercises_dir() / "ex01_foundations.py").read_text())
    hidden = [c for c in solution.checks if c.hidden]
    assert [c.name for c in hidden] == ["sigmoid_extreme_inputs", "relu_grad_at_zero",
                                       "softmax_single_row"]
    assert solution.score == solution.total and solution.flags == []
    assert stub.score == 0
    assert grade_exercises(["ex01"])[0].total == solution.total - 3  # students: public only


def test_gradebook_guards_against_spreadsheet_formulas():
    student = batch.StudentResult("=HYPERLINK(\"http://x\")", flags=[("malformed", "x")])
    rows = list(csv.reader(io.StringIO(batch.gradebook_csv([student], []))))
    assert rows[1] == ["'=HYPERLINK(\"http://x\")", "", "0", "malformed: x"]


def test_submission_reading_caps_and_layouts(tmp_path):
    from course_lib.grading.submissions import read_submission

    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as archive:
        for index in range(2001):
            archive.writestr(f"junk/{index}.txt", "")
    assert "2001 members" in read_submission(many, ["ex90_demo"]).flags[0][1]
    course = tmp_path / "course"
    (course / "exercises").mkdir(parents=True)
    (course / "exercises" / "ex90_demo.py").write_text("A = 1\n")
    (course / "ex90_demo.py").write_text("A = 2\n")  # a stray copy: exercises/ wins
    (course / "exercises" / "ex91_other.py").symlink_to("/etc/hostname")
    sub = read_submission(course, ["ex90_demo", "ex91_other"])
    assert sub.sources == {"ex90_demo": "A = 1\n"}
    assert sub.flags == [("malformed", "missing exercises/ex91_other.py")]
