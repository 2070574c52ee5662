"""Canvas and Moodle bulk downloads in, gradebook and LMS import files out, roster handling.

The bulk zips are fabricated here with each LMS's file-name layout; the demo exercise ex90_demo
(5 public points) is graded."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

from grading_helpers import FIXTURES, grade

from course_lib.grading import export, lms
from course_lib.grading.intake import collect

SOLUTION = (FIXTURES / "solutions" / "ex90_demo.py").read_text()
STUB = (FIXTURES / "exercises" / "ex90_demo.py").read_text()
PARTIAL = SOLUTION.replace("x.sum(axis=1)", "x.sum(axis=0)")  # 3 of 5 points
NAMES = ["ex90_demo"]


def _zip(path: Path, members: dict[str, str | bytes], dates: dict[str, tuple] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, (dates or {}).get(name, (2024, 5, 1, 12, 0, 0)))
            archive.writestr(info, data)
    return path


def _course_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("course/README.md", "mine")
        archive.writestr("course/exercises/ex90_demo.py", SOLUTION)
        archive.writestr("course/solutions/ex90_demo.py", "print('not this one')")
    return buffer.getvalue()


def canvas_bulk(folder: Path) -> Path:
    return _zip(folder / "submissions.zip", {
        "doejohn_101_5001_ex90_demo.py": STUB,                # first try...
        "doejohn_101_5002_ex90_demo-1.py": SOLUTION,          # ...resubmitted: the newest counts
        "smithjane_late_102_5003_ex90_demo.py": PARTIAL,
        "leeann_103_5004_notes.txt": "my notes",
        "leeann_103_5005_mywork.zip": _course_zip(),
        "kimghost_105_5006_ex90.py": SOLUTION,                # graded, but not on the roster
        "README.txt": "not a student's file",
    })


CANVAS_ROSTER = """Student,ID,SIS User ID,SIS Login ID,Section,Homework 1 (771)
    Points Possible,,,,,10
"Doe, John",101,S101,jdoe,Section A,
"Smith, Jane",102,S102,jsmith,Section A,
"Lee, Ann",103,S103,alee,Section B,
"Absent, Al",104,S104,aabsent,Section B,
"""


def test_canvas_round_trip_bulk_zip_to_gradebook_to_import_file(tmp_path, capsys):
    bulk = canvas_bulk(tmp_path)
    roster = tmp_path / "canvas-gradebook-export.csv"
    roster.write_text(CANVAS_ROSTER)
    out = tmp_path / "grades" / "gradebook.csv"
    assert grade("--submissions", bulk, "--out", out, "--roster", roster,
                 "--export", "canvas") == 0
    printed = capsys.readouterr().out
    rows = {r["id"]: r for r in csv.DictReader(out.open())}
    assert {k: (r["student"], r["ex90_demo"]) for k, r in rows.items()} == {
        "101": ("doejohn", "5"), "102": ("smithjane", "3"), "103": ("leeann", "5"),
        "104": ("Absent, Al", "0"), "105": ("kimghost", "5")}
    assert "resubmitted: ex90: graded doejohn_101_5002_ex90_demo-1.py" not in rows["101"]["flags"]
    assert "resubmitted: ex90: graded ex90_demo-1.py (the newest), not ex90_demo.py" in rows["101"]["flags"]
    assert "unmapped: notes.txt: not an exercise file" in rows["103"]["flags"]
    assert rows["104"]["flags"] == "absent: on the roster, no submission"
    assert "not on roster: graded, but not on the roster" in rows["105"]["flags"]
    assert "not mapped to any student: submissions.zip: README.txt" in printed
    assert "not on the roster (1, left out of the LMS files): kimghost" in printed
    canvas = list(csv.reader(export.export_path(out, "canvas").open()))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "ex90_demo",
                         "Exercises total"]
    assert canvas[1] == ["    Points Possible", "", "", "", "", "5", "5"]
    assert canvas[2:] == [["Doe, John", "101", "S101", "jdoe", "Section A", "5", "5"],
                          ["Smith, Jane", "102", "S102", "jsmith", "Section A", "3", "3"],
                          ["Lee, Ann", "103", "S103", "alee", "Section B", "5", "5"],
                          ["Absent, Al", "104", "S104", "aabsent", "Section B", "0", "0"]]


def test_moodle_bulk_zip_folders_and_flat_names_to_grading_worksheet(tmp_path):
    bulk = _zip(tmp_path / "moodle.zip", {
        "John Doe_201_assignsubmission_file_/ex90_demo.py": SOLUTION,
        "Jane Roe_202_assignsubmission_file_/ex90.py": PARTIAL,
        "Jane Roe_202_assignsubmission_onlinetext_/onlinetext.html": "<p>hello</p>",
        "John Doe_203_assignsubmission_file_/ex90_demo (1).py": STUB,  # same name, other person
        "Max Mustermann_204_assignsubmission_file_ex90_demo.py": SOLUTION,
        "Max Mustermann_204_assignsubmission_file_ex90_demo (1).py": PARTIAL,
    }, dates={"Max Mustermann_204_assignsubmission_file_ex90_demo.py": (2024, 5, 2, 9, 0, 0)})
    worksheet = tmp_path / "worksheet.csv"
    worksheet.write_text(
        "Identifier,Full name,Email address,Status,Grade,Maximum Grade,Grade can be changed,"
        "Last modified (submission),Last modified (grade),Feedback comments\n"
        "Participant 201,John Doe,jd@example.org,Submitted,,100.00,Yes,\"1 May 2024\",-,\n"
        "Participant 202,Jane Roe,jr@example.org,Submitted,,100.00,Yes,\"1 May 2024\",-,\n"
        "Participant 203,John Doe,jd2@example.org,Submitted,,100.00,Yes,\"1 May 2024\",-,\n"
        "Participant 204,Max Mustermann,mm@example.org,Submitted,,100.00,Yes,\"2 May 2024\",-,\n")
    out = tmp_path / "gradebook.csv"
    assert grade("--submissions", bulk, "--out", out, "--roster", worksheet,
                 "--export", "moodle", "--export", "csv") == 0
    rows = list(csv.DictReader(export.export_path(out, "moodle").open()))
    assert list(rows[0]) == export.MOODLE_COLUMNS
    got = {r["Identifier"]: (r["Full name"], r["Grade"], r["Maximum Grade"]) for r in rows}
    assert got == {"Participant 201": ("John Doe", "100.00", "100.00"),
                   "Participant 202": ("Jane Roe", "60.00", "100.00"),
                   "Participant 203": ("John Doe", "0.00", "100.00"),
                   "Participant 204": ("Max Mustermann", "100.00", "100.00")}  # newer zip date
    assert rows[1]["Feedback comments"] == "3/5 points: ex90 3/5 (scaled to 100)"
    plain = {r["id"]: r for r in csv.DictReader(export.export_path(out, "csv").open())}
    assert plain["202"]["email"] == "jr@example.org" and plain["202"]["status"] == "graded"
    assert "unmapped: onlinetext.html: online text" in plain["202"]["flags"]


def test_folder_submissions_with_a_plain_roster(tmp_path, capsys):
    subs = tmp_path / "subs"
    for student, source in (("ada", SOLUTION), ("bob", PARTIAL)):
        (subs / student / "exercises").mkdir(parents=True)
        (subs / student / "exercises" / "ex90_demo.py").write_text(source)
    roster = tmp_path / "class.csv"
    roster.write_text("student,email\nAda,ada@example.org\nCy,cy@example.org\n")
    out = tmp_path / "gradebook.csv"
    assert grade("--submissions", subs, "--out", out, "--roster", roster, "--export", "csv") == 0
    plain = {r["student"]: r for r in csv.DictReader(export.export_path(out, "csv").open())}
    assert {k: (r["total"], r["max"], r["status"]) for k, r in plain.items()} == {
        "Ada": ("5", "5", "graded"), "Cy": ("0", "5", "absent"), "bob": ("3", "5", "not on roster")}
    assert "not on the roster (1, left out of the LMS files): bob" in capsys.readouterr().out


def test_bulk_reader_edge_cases(tmp_path):
    bulk = _zip(tmp_path / "b.zip", {
        "doejohn_101_1_ex90_demo.py": SOLUTION,
        "doejohn_101_2_ex77_other.py": "x = 1",              # no such exercise
        "doejohn_101_3_../../evil.py": "x = 1",              # unsafe: listed, never read
        "roejane_102_4_ex90_demo.py": b"\xff\xfe not utf-8",
    })
    assert lms.is_bulk_download(bulk)
    subs, unassigned = collect(bulk, NAMES)
    by_id = {s.student_id: s for s in subs}
    assert by_id["101"].sources == {"ex90_demo": SOLUTION}
    assert ("unmapped", "ex77_other.py: no such exercise") in by_id["101"].flags
    assert any("unsafe path" in name for name in unassigned)
    assert by_id["102"].sources == {} and by_id["102"].flags[0][0] == "malformed"
    one_student = _zip(tmp_path / "ada.zip", {"course/exercises/ex90_demo.py": SOLUTION})
    assert not lms.is_bulk_download(one_student)
    (ada,), none = collect(tmp_path / "ada.zip", NAMES)
    assert ada.student == "ada" and ada.sources == {"ex90_demo": SOLUTION} and none == []


def test_roster_layouts_and_bad_roster(tmp_path, capsys):
    canvas = tmp_path / "c.csv"
    canvas.write_text(CANVAS_ROSTER)
    roster = export.read_roster(canvas)
    assert roster.kind == "canvas" and [e.student_id for e in roster.entries] == [
        "101", "102", "103", "104"]
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert grade("--submissions", tmp_path, "--out", tmp_path / "g.csv", "--roster", bad) == 2
    assert "no roster layout recognised" in capsys.readouterr().err
