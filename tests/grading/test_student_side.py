"""Student side: `course grade`, its JSON, the notebook `check()`, the reference and the stub."""

import json

import pytest
from grading_helpers import FIXTURES, grade

from course_lib.grading import check
from course_lib.grading.command import grade_exercises


def test_reference_scores_full_points_and_stub_zero():
    (solution,) = grade_exercises(["ex90"], FIXTURES / "solutions")
    (stub,) = grade_exercises(["ex90"], FIXTURES / "exercises")
    assert (solution.score, solution.total) == (5, 5)
    assert all(c.passed for c in solution.checks) and solution.flags == []
    assert stub.score == 0 and stub.total == 5
    assert all(c.reason == "NotImplementedError" for c in stub.checks)
    assert not any(c.hidden for c in stub.checks)  # hidden checks are for instructors only


def test_text_table_and_exit_code(capsys):
    assert grade("ex90", "--path", FIXTURES / "exercises") == 0
    out = capsys.readouterr().out
    assert "ex90_demo: 0/5 points" in out
    assert "FAIL  row_sums_shape" in out and "NotImplementedError" in out


def test_json_output(capsys):
    assert grade("ex90_demo", "--path", FIXTURES / "solutions", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    (exercise,) = data["exercises"]
    assert exercise["score"] == exercise["total"] == 5
    assert [c["name"] for c in exercise["checks"]] == [
        "scale_values", "row_sums_shape", "greeting_text", "exp_is_positive"]


def test_failure_reasons_name_shapes_and_values(tmp_path):
    source = (FIXTURES / "solutions" / "ex90_demo.py").read_text()
    source = source.replace("return x.sum(axis=1)", "return x.sum(axis=0)")
    source = source.replace("return a * x", "return a * x + 0.001")
    (tmp_path / "ex90_demo.py").write_text(source)
    (result,) = grade_exercises(["ex90"], tmp_path)
    reasons = {c.name: c.reason for c in result.checks}
    assert reasons["row_sums_shape"] == "s: expected shape (4,), got shape (3,)"
    assert reasons["scale_values"].startswith("y: expected ")
    assert "rtol=1e-06, atol=1e-08" in reasons["scale_values"]
    assert result.score == 2 and result.flags == []


def test_missing_file_and_unknown_exercise(tmp_path, capsys):
    (result,) = grade_exercises(["ex90"], tmp_path)
    assert result.score == 0 and result.flags[0][0] == "malformed"
    assert grade("ex77") == 2
    assert "unknown exercise 'ex77'" in capsys.readouterr().err


def test_notebook_check_prints_text_outside_ipython(capsys):
    check("ex90")  # default folder: the course's exercises/ (the demo stub here)
    assert "ex90_demo: 0/5 points" in capsys.readouterr().out


def test_notebook_check_shows_html_in_ipython(monkeypatch):
    ipython = pytest.importorskip("IPython")
    shown = []
    monkeypatch.setattr(ipython, "get_ipython", lambda: object())
    monkeypatch.setattr("IPython.display.display", shown.append)
    check("ex90", path=FIXTURES / "solutions")
    assert "<table>" in shown[0].data and "5/5 points" in shown[0].data



def test_a_reference_that_fails_its_checks_stops_grading(tmp_path, monkeypatch, capsys):
    source = (FIXTURES / "solutions" / "ex90_demo.py").read_text()
    (tmp_path / "ex90_demo.py").write_text(source.replace("return a * x", "raise ValueError()"))
    monkeypatch.setenv("COURSE_SOLUTIONS_DIR", str(tmp_path))
    assert grade("ex90") == 2
    assert "the reference solution of ex90_demo fails scale_values" in capsys.readouterr().err
