"""`course release`: the student edition holds no solution code, grades like the instructor's copy,
refuses changed checks, zips reproducibly, and its own `make test`/`make lab` are wired.

The release is built once per session (it runs every reference solution once)."""

from __future__ import annotations

import hashlib
import json
import os
import py_compile
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_lib import release
from course_lib.grading import engine, references

ROOT = Path(__file__).resolve().parents[2]
GRADING_VARIABLES = ("COURSE_GRADING_CHECKS_DIR", "COURSE_SOLUTIONS_DIR", "COURSE_EXERCISES_DIR",
                     "COURSE_GRADING_REFERENCES_DIR")


@pytest.fixture(scope="session")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "course-student"
    made = release.build_release(ROOT, out, out.with_name("course-student.zip"), progress=False)
    return made


def _edition_env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in GRADING_VARIABLES}
    env["PYTHONPATH"] = str(folder)
    return env


def _grade_in(folder: Path, path: Path) -> dict[str, dict]:
    """`course grade --path PATH --json` run from the course folder `folder`."""
    done = subprocess.run([sys.executable, "-m", "course_lib", "grade", "--path", str(path),
                           "--json"], cwd=folder, env=_edition_env(folder), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return {ex["exercise"]: ex for ex in json.loads(done.stdout)["exercises"]}


def test_release_holds_the_course_and_no_solutions(released):
    files = set(released.files)
    assert not (released.folder / "solutions").exists()
    assert not (released.folder / "course_lib" / "grading" / "hidden_example").exists()
    assert not (released.folder / "tests" / "exercises").exists()
    assert not list(released.folder.rglob("*.pyc")) and not list(released.folder.rglob("__pycache__"))
    for name in ("Makefile", "pyproject.toml", "README.md", "course_lib/__init__.py"):
        assert name in files
    chapters = sorted(p.name for p in (ROOT / "chapters").glob("*.ipynb")
                      if p.relative_to(ROOT).as_posix() in release.source_files(ROOT))
    assert chapters and all((released.folder / "chapters" / n).read_bytes()
                            == (ROOT / "chapters" / n).read_bytes() for n in chapters)
    for exercise in released.exercises:
        stub = f"exercises/{exercise}.py"
        assert (released.folder / stub).read_bytes() == (ROOT / stub).read_bytes()
        assert f"course_lib/grading/references/{exercise}.json" in files
    assert "Student edition" in (released.folder / "README.md").read_text()
    assert set(released.exercises) == {p.stem for p in (ROOT / "course_lib/grading/checks").glob(
        "ex*.py") if p.relative_to(ROOT).as_posix() in release.source_files(ROOT)}


def test_no_solution_function_body_anywhere_in_the_release(released):
    fingerprints = release.solution_fingerprints(ROOT / "solutions", ROOT / "exercises")
    solved = {file for file, _ in fingerprints}
    assert solved >= {f"{name}.py" for name in released.exercises}  # every solution is searched
    assert release.find_solution_code(released.folder, ROOT / "solutions",
                                      ROOT / "exercises") == []
    with zipfile.ZipFile(released.zip_path) as archive:  # the zip holds exactly the folder
        names = {n.split("/", 1)[1] for n in archive.namelist()}
    assert names == set(released.files)


def test_the_search_finds_solution_code_however_it_is_hidden(tmp_path):
    name = "ex02_mlp_from_scratch"
    solution = (ROOT / "solutions" / f"{name}.py").read_text()
    forward = solution[solution.index("def forward("):solution.index("def loss(")]
    tabs = forward.replace("    ", "\t").replace(")\n", ")  # a comment\n\n")
    inserted = forward.replace("    h1 = np.maximum", "    pass\n    h1 = np.maximum", 1)
    folder = tmp_path / "course"
    (folder / "chapters").mkdir(parents=True)
    nbformat.write(new_notebook(cells=[new_markdown_cell("# x"), new_code_cell(forward)]),
                   folder / "chapters" / "nb.ipynb")
    (folder / "notes.md").write_text("text\n\n```python\n" + forward + "```\n")
    (folder / "tabs.py").write_text(tabs)  # other layout, comments added: the same tokens
    (folder / "other.py").write_text(inserted)  # a statement inserted: not the same body
    shutil.copy(ROOT / "solutions" / f"{name}.py", folder / "copy_src.py")
    py_compile.compile(str(folder / "copy_src.py"), cfile=str(folder / "hidden.pyc"))
    (folder / "copy_src.py").unlink()
    stub = (ROOT / "exercises" / f"{name}.py").read_text()
    (folder / "stub.py").write_text(stub)  # init_params is given in the stub: not a leak
    leaks = {(leak.path, leak.function) for leak in release.find_solution_code(
        folder, ROOT / "solutions", ROOT / "exercises")}
    for path in ("chapters/nb.ipynb", "notes.md", "tabs.py", "hidden.pyc"):
        assert (path, "forward") in leaks, path
    assert ("hidden.pyc", "train") in leaks
    assert not any(path in ("stub.py", "other.py") for path, _ in leaks)
    assert not any(function == "init_params" for _, function in leaks)


def _partial(name: str) -> str:
    """The solution with its first graded function broken."""
    fingerprints = release.solution_fingerprints(ROOT / "solutions", ROOT / "exercises")
    first = next(function for file, function in fingerprints if file == f"{name}.py")
    source = (ROOT / "solutions" / f"{name}.py").read_text()
    return source + f"\n\ndef {first}(*args, **kwargs):\n    raise NotImplementedError\n"


def test_both_editions_give_the_same_scores(released, tmp_path):
    """Every stub, partial and solution scores the same against the live references (the
    instructor's copy) and the shipped ones (the student edition): each child runs once and is
    judged both ways. The partials are also graded end to end by `course grade` in the release."""
    variants = {}
    for variant in ("stub", "solution", "partial"):
        folder = tmp_path / variant
        folder.mkdir()
        for name in released.exercises:
            source = {"stub": (ROOT / "exercises" / f"{name}.py").read_text(),
                      "solution": (ROOT / "solutions" / f"{name}.py").read_text(),
                      "partial": _partial(name)}[variant]
            (folder / f"{name}.py").write_text(source)
        variants[variant] = folder
    with ThreadPoolExecutor(max_workers=2) as pool:
        end_to_end = pool.submit(_grade_in, released.folder, variants["partial"])
        grader = engine.Grader(engine.select(engine.discover(), released.exercises))
        shipped = released.folder / "course_lib" / "grading" / "references"
        jobs = {(variant, name): pool.submit(grader.run, grader.exercises[name],
                                             (folder / f"{name}.py").read_text())
                for variant, folder in variants.items() for name in released.exercises}
        scores = {}
        for (variant, name), job in jobs.items():
            exercise = grader.exercises[name]
            live = grader.judge(exercise, job.result())
            student = grader.judge(exercise, job.result(), references.load(
                name, grader.check_source(exercise), [c.check.name for c in grader.checks(exercise)],
                shipped))
            assert [c.passed for c in student.checks] == [c.passed for c in live.checks], name
            scores[(variant, name)] = live.score
            total = live.total
            expected = {"stub": live.score == 0, "solution": live.score == total,
                        "partial": 0 < live.score < total}
            assert expected[variant], (variant, name, live.score, total)
        for name, result in end_to_end.result().items():
            assert result["score"] == scores[("partial", name)], name


def test_a_changed_check_is_refused_with_a_clear_message(released, tmp_path, monkeypatch):
    from course_lib.grading.command import grade_exercises

    checks = tmp_path / "checks"
    shutil.copytree(released.folder / "course_lib" / "grading" / "checks", checks)
    path = checks / "ex01_foundations.py"
    path.write_text(path.read_text().replace("4.0 * rng", "5.0 * rng"))
    monkeypatch.setenv("COURSE_GRADING_CHECKS_DIR", str(checks))
    monkeypatch.setenv("COURSE_SOLUTIONS_DIR", str(tmp_path / "no-solutions"))
    monkeypatch.setenv("COURSE_GRADING_REFERENCES_DIR",
                       str(released.folder / "course_lib" / "grading" / "references"))
    with pytest.raises(engine.GradingError, match="the checks of ex01_foundations changed since "
                       "this course was released"):
        grade_exercises(["ex01"], ROOT / "exercises")
    (result,) = grade_exercises(["ex03"], ROOT / "exercises")  # unchanged checks still grade
    assert result.score == 0 and result.total > 0


def test_release_is_reproducible(released, tmp_path):
    again = tmp_path / released.folder.name
    shutil.copytree(released.folder, again)
    release.write_zip(again, tmp_path / "again.zip")
    assert (tmp_path / "again.zip").read_bytes() == released.zip_path.read_bytes()
    with zipfile.ZipFile(released.zip_path) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {i.date_time for i in infos} == {release.ZIP_EPOCH}
    stage = tmp_path / "stage"
    shutil.copytree(released.folder / "course_lib" / "grading" / "checks",
                    stage / "course_lib" / "grading" / "checks")
    for path in (stage / "course_lib" / "grading" / "checks").glob("ex*.py"):
        if path.stem != "ex01_foundations":
            path.unlink()
    texts = release.compute_references(stage, ROOT, progress=False)
    shipped = released.folder / "course_lib" / "grading" / "references" / "ex01_foundations.json"
    assert texts["ex01_foundations"] == shipped.read_text()
    record = json.loads(shipped.read_text())
    checks_file = released.folder / "course_lib" / "grading" / "checks" / "ex01_foundations.py"
    assert record["checks_sha256"] == hashlib.sha256(checks_file.read_bytes()).hexdigest()
    assert references.checks_hash(checks_file.read_text()) == record["checks_sha256"]


def test_the_release_runs_its_own_tests_and_lab(released):
    folder, env = released.folder, _edition_env(released.folder)
    for target, expected in (("test", "-m pytest"), ("lab", "course lab")):
        done = subprocess.run(["make", "-n", target], cwd=folder, capture_output=True, text=True)
        assert done.returncode == 0 and expected in done.stdout, done.stdout + done.stderr
    lab = subprocess.run([sys.executable, "-c", "from course_lib import notebooks; "
                          "print(notebooks.lab_command([])[2])"], cwd=folder, env=env,
                         capture_output=True, text=True)
    assert lab.stdout.strip() == f"--notebook-dir={folder / 'chapters'}"
    # A representative part of its suite (the grader, end to end); the chapters are byte-equal
    # to the instructor's copy, whose suite tests them.
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist",
                           "tests/grading/test_student_side.py"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_release_refuses_to_overwrite_or_to_leak(tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep me")
    with pytest.raises(release.ReleaseError, match="not an empty folder"):
        release.build_release(ROOT, taken)
    assert (taken / "mine.txt").read_text() == "keep me"
    fixtures = ROOT / "tests" / "grading" / "fixtures"
    course = tmp_path / "course"
    for folder, source in (("course_lib/grading/checks", "checks"), ("solutions", "solutions"),
                           ("exercises", "exercises")):
        (course / folder).mkdir(parents=True)
        shutil.copy(fixtures / source / "ex90_demo.py", course / folder)
    (course / "chapters").mkdir()
    nbformat.write(new_notebook(cells=[new_code_cell("def row_sums(x):\n    return x.sum(axis=1)")]),
                   course / "chapters" / "90_demo.ipynb")
    with pytest.raises(release.ReleaseError, match=r"chapters/90_demo.ipynb: the body of "
                       r"ex90_demo.py:row_sums\(\)"):
        release.build_release(course, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if "staging" in p.name]
    (course / "chapters" / "90_demo.ipynb").unlink()
    made = release.build_release(course, tmp_path / "out", progress=False)
    assert made.exercises == ["ex90_demo"] and not (made.folder / "solutions").exists()
