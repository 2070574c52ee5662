"""Hostile and broken submissions, graded in one batch with honest ones (`--jobs 2`).

For every case: grading completes, the hostile submission gets no point it did not earn and a
flag with a reason, the honest submissions get their exact scores, the gradebook is intact and
no process survives (the autouse fixture checks psutil and the cgroups after each test).
"""

from __future__ import annotations

import csv
import io
import textwrap
import zipfile
from pathlib import Path

import pytest
from grading_helpers import DEMO_ENVIRONMENT, FIXTURES, grade, isolated

SOLUTION = (FIXTURES / "solutions" / "ex90_demo.py").read_text()
STUB = (FIXTURES / "exercises" / "ex90_demo.py").read_text()
WRONG = """
import numpy as np

def scale(x, a):
    return np.zeros_like(x)

def row_sums(x):
    return np.zeros(1)

def greet(name):
    return "nope"

def positive_exp(x):
    return -np.ones_like(x)
"""
# public checks: 1 + 2 + 1 + 1 points; hidden: 2 points
FULL = 7


def hostile(prefix: str, body: str = WRONG) -> str:
    return textwrap.dedent(prefix) + "\n" + body


def cases(subs: Path, gradebook: Path) -> dict[str, tuple[str, str]]:
    """name -> (exercise source, expected flag kind); each of these is worth 0 points."""
    return {
        "infinite_loop": (SOLUTION.replace("return a * x", "while True:\n        pass"),
                          "timeout"),
        "sleep_forever": (hostile("import time\ntime.sleep(10**6)\n", SOLUTION), "timeout"),
        "memory_bomb": (hostile("blob = b'x' * (2 * 2**30)\n", SOLUTION), "memory"),
        "fork_bomb": (hostile("import os\nwhile True:\n    os.fork()\n", SOLUTION), "suspicious"),
        "sys_exit": (hostile("import sys\nsys.exit(0)\n", SOLUTION), "crashed"),
        "os_exit": (hostile("import os\nos._exit(0)\n", SOLUTION), "crashed"),
        "import_exception": (hostile("raise RuntimeError('boom')\n", SOLUTION), "crashed"),
        "syntax_error": ("def scale(x, a)\n    return a * x\n", "crashed"),
        "fake_output": (hostile("""
            print("scale_values PASSED")
            print('{"score": 100, "passed": true}')
        """), "suspicious"),
        "forged_records": (hostile("""
            import os
            FAKE = b'{"type":"result","check":"scale_values","ok":true,"value":{"y":1}}\\n'
            for fd in os.listdir("/proc/self/fd"):
                try:
                    os.write(int(fd), FAKE * 3)
                except OSError:
                    pass
        """), "suspicious"),
        "always_equal": (hostile("""
            class Anything:
                def __eq__(self, other):
                    return True
            class Number(float):
                def __eq__(self, other):
                    return True
            class Text(str):
                def __eq__(self, other):
                    return True
            def scale(x, a):
                return Anything()
            def row_sums(x):
                return Number(0)
            def greet(name):
                return Text("")
            def positive_exp(x):
                return Anything()
        """, ""), "suspicious"),
        "monkeypatch": (hostile("""
            import builtins
            import numpy as np
            import numpy.testing
            np.allclose = lambda *args, **kwargs: True
            np.testing.assert_allclose = lambda *args, **kwargs: None
            builtins.print = lambda *args, **kwargs: None
        """), "suspicious"),
        "import_solutions": (hostile("from solutions.ex90_demo import *\n", STUB), "crashed"),
        "read_solutions": (hostile(f"""
            exec(open({str(FIXTURES / 'solutions' / 'ex90_demo.py')!r}).read())
        """, ""), "crashed"),
        "read_hidden": (hostile(f"""
            print(open({str(FIXTURES / 'hidden' / 'ex90_demo.py')!r}).read())
        """), "crashed"),
        "write_outside": (hostile(f"""
            import os, shutil
            try:
                os.remove({str(gradebook)!r})
            finally:
                shutil.rmtree({str(subs / 'honest_folder')!r})
        """, SOLUTION), "crashed"),
        "output_flood": (hostile("import sys\nsys.stdout.write('x' * 10**8)\n"), "suspicious"),
        "nan_inf": (hostile("""
            import numpy as np
            def scale(x, a):
                return np.full_like(x, np.nan)
            def row_sums(x):
                return np.full(len(x), np.inf)
            def greet(name):
                return "nan"
            def positive_exp(x):
                return np.full_like(x, np.nan)
        """, ""), "suspicious"),
        "broadcast_shapes": (hostile("""
            import numpy as np
            def scale(x, a):
                return np.float64(2.5)
            def row_sums(x):
                return x.sum(axis=1, keepdims=True)
            def greet(name):
                return "Hello!"
            def positive_exp(x):
                return np.exp(x)[:1]
        """, ""), "suspicious"),
        "daemon": (hostile("""
            import os, time
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    time.sleep(10**6)
                os._exit(0)
        """, STUB), "suspicious"),
    }


def write(folder: Path, source: str | bytes) -> None:
    (folder / "exercises").mkdir(parents=True)
    path = folder / "exercises" / "ex90_demo.py"
    path.write_bytes(source if isinstance(source, bytes) else source.encode())


def build(root: Path) -> tuple[Path, Path, dict[str, tuple[str, str]]]:
    subs = root / "submissions"
    subs.mkdir()
    gradebook = root / "out" / "gradebook.csv"
    gradebook.parent.mkdir()
    gradebook.write_text("an earlier gradebook\n")
    hostile_cases = cases(subs, gradebook)
    for name, (source, _) in hostile_cases.items():
        write(subs / name, source)
    write(subs / "honest_folder", SOLUTION)
    write(subs / "stub", STUB)
    write(subs / "partial", SOLUTION.replace("x.sum(axis=1)", "x.sum(axis=0)")
          .replace("np.exp(x)", "-np.exp(x)"))
    with zipfile.ZipFile(subs / "honest_zip.zip", "w") as archive:
        archive.writestr("course/README.md", "my course folder")
        archive.writestr("course/exercises/ex90_demo.py", SOLUTION)
        archive.writestr("course/solutions/ex90_demo.py", "raise SystemExit")
    (subs / "empty_folder").mkdir()
    (subs / "missing_file" / "exercises").mkdir(parents=True)
    (subs / "missing_file" / "exercises" / "notes.py").write_text("x = 1\n")
    write(subs / "non_utf8", "# caf\xe9\n".encode("latin-1") + SOLUTION.encode())
    with zipfile.ZipFile(subs / "zip_slip.zip", "w") as archive:
        archive.writestr("exercises/ex90_demo.py", SOLUTION)
        archive.writestr("../../escaped.py", "print('out')")
    with zipfile.ZipFile(subs / "zip_bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("exercises/ex90_demo.py", SOLUTION)
        archive.writestr("exercises/padding.bin", b"\0" * (60 * 2**20))
    return subs, gradebook, hostile_cases


MALFORMED = ["empty_folder", "missing_file", "non_utf8", "zip_slip", "zip_bomb"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if not isolated():
        pytest.skip("needs root with cgroups (the fallback is tested in test_sandbox.py)")
    root = tmp_path_factory.mktemp("class")
    subs, gradebook, hostile_cases = build(root)
    feedback = root / "feedback"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in DEMO_ENVIRONMENT.items():
            patch.setenv(name, str(value))
        code = grade("--submissions", subs, "--out", gradebook, "--feedback", feedback,
                     "--hidden-tests", FIXTURES / "hidden", "--jobs", 2, "--timeout", 3,
                     "--memory", 300)
    rows = {row["student"]: row for row in csv.DictReader(io.StringIO(gradebook.read_text()))}
    return code, rows, subs, gradebook, feedback, hostile_cases


def test_grading_completes_with_every_student(graded):
    code, rows, _, _, _, hostile_cases = graded
    assert code == 0
    expected = set(hostile_cases) | set(MALFORMED) | {"honest_folder", "honest_zip", "stub",
                                                      "partial"}
    assert set(rows) == expected
    assert list(next(iter(rows.values()))) == ["student", "id", "ex90_demo", "total", "flags"]


def test_honest_submissions_get_exact_scores(graded):
    _, rows, *_ = graded
    assert rows["honest_folder"]["total"] == rows["honest_zip"]["total"] == str(FULL)
    assert rows["partial"]["total"] == "4"  # scale 1 + greet 1 + hidden scale 2
    assert rows["stub"]["total"] == "0"
    for name in ("honest_folder", "honest_zip", "stub", "partial"):
        flags = [f for f in rows[name]["flags"].split("; ") if f and not f.startswith("similar:")]
        assert flags == [], name
    assert "similar: ex90: 100% alike with honest_zip" in rows["honest_folder"]["flags"]


@pytest.mark.parametrize("name", sorted(cases(Path("s"), Path("g"))))
def test_hostile_gets_no_point_and_a_flag(graded, name):
    _, rows, _, _, _, hostile_cases = graded
    kind = hostile_cases[name][1]
    assert rows[name]["total"] == "0"
    assert f"{kind}: ex90: " in rows[name]["flags"], rows[name]["flags"]


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_is_flagged(graded, name):
    _, rows, *_ = graded
    assert rows[name]["total"] == "0"
    assert rows[name]["flags"].startswith("malformed: "), rows[name]["flags"]


def test_flag_reasons_are_specific(graded):
    _, rows, *_ = graded
    assert "stopped after 3 s" in rows["infinite_loop"]["flags"]
    assert "300 MiB" in rows["memory_bomb"]["flags"]
    assert "processes" in rows["fork_bomb"]["flags"]
    assert "SystemExit: 0" in rows["sys_exit"]["flags"]
    assert "No module named 'solutions'" in rows["import_solutions"]["flags"]
    assert "Permission denied" in rows["read_solutions"]["flags"]
    assert "Permission denied" in rows["write_outside"]["flags"]  # submissions are hidden
    assert "numpy.allclose" in rows["monkeypatch"]["flags"]
    assert "not plain data" in rows["always_equal"]["flags"]
    assert "process(es) running after it ended" in rows["daemon"]["flags"]
    assert "unsafe path" in rows["zip_slip"]["flags"]
    assert "zip bomb" in rows["zip_bomb"]["flags"]
    assert "not UTF-8" in rows["non_utf8"]["flags"]
    assert "would broadcast" in rows["broadcast_shapes"]["flags"]


def test_gradebook_and_other_students_are_intact(graded):
    _, _, subs, gradebook, _, _ = graded
    backup = gradebook.with_name("gradebook.backup-1.csv")
    assert backup.read_text() == "an earlier gradebook\n"
    assert (subs / "honest_folder" / "exercises" / "ex90_demo.py").read_text() == SOLUTION
    assert sorted(p.name for p in gradebook.parent.iterdir()) == [
        "gradebook-meta.json", "gradebook.backup-1.csv", "gradebook.csv"]  # meta: the run seed


def test_feedback_shows_hidden_checks_by_name_and_points_only(graded):
    *_, feedback, _ = graded
    text = (feedback / "partial.md").read_text()
    assert "| scale_negative_factor (hidden) | | 2/2 | |" in text
    assert "negative factors" not in text  # the hidden check's docstring
    assert "expected shape (4,), got shape (3,)" in text  # public reasons in full
    assert len(list(feedback.glob("*.md"))) == len(graded[1])
