"""Shipped reference outputs (the student edition) and the held-out helpers of result checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from grading_helpers import FIXTURES

from course_lib.grading import engine, heldout, references, sandbox
from course_lib.grading.command import grade_exercises


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """The demo exercise as in a student edition: reference outputs, no solutions."""
    (exercise,) = engine.select(engine.discover(), ["ex90"])
    grader = engine.Grader([exercise])
    folder = tmp_path / "references"
    folder.mkdir()
    text = references.dumps(exercise.name, grader.check_source(exercise),
                            grader.reference(exercise))
    (folder / f"{exercise.name}.json").write_text(text)
    monkeypatch.setenv("COURSE_SOLUTIONS_DIR", str(tmp_path / "no-solutions"))
    monkeypatch.setenv("COURSE_GRADING_REFERENCES_DIR", str(folder))
    return folder / f"{exercise.name}.json"


def test_shipped_references_grade_like_the_solution(shipped):
    (solution,) = grade_exercises(["ex90"], FIXTURES / "solutions")
    (stub,) = grade_exercises(["ex90"], FIXTURES / "exercises")
    assert (solution.score, stub.score, solution.total) == (5, 0, 5)
    record = json.loads(shipped.read_text())
    assert record["checks_sha256"] == references.checks_hash(
        (FIXTURES / "checks" / "ex90_demo.py").read_text())
    assert "pickle" not in shipped.read_text()


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: p.unlink(), "neither a reference solution nor shipped reference outputs"),
    (lambda p: p.write_text("{not json"), "are unreadable"),
    (lambda p: p.write_text(p.read_text().replace('"check":"greeting_text"', '"check":"x"')),
     "lack greeting_text"),
    (lambda p: p.write_text(p.read_text().replace('"__ndarray__":"', '"__ndarray__":"!')),
     "are corrupt"),
])
def test_missing_or_corrupt_references_are_refused(shipped, change, message):
    change(shipped)
    with pytest.raises(engine.GradingError, match=message):
        grade_exercises(["ex90"], FIXTURES / "solutions")


def test_hidden_checks_need_the_solution(shipped):
    (exercise,) = engine.select(engine.discover(FIXTURES / "hidden"), ["ex90"])
    with pytest.raises(engine.GradingError, match="hidden checks of ex90_demo need"):
        engine.Grader([exercise]).reference(exercise)


def test_fresh_rng_is_for_judges_only(monkeypatch):
    assert heldout.CHILD_MARKER == sandbox.MARKER_VARIABLE
    first, second = heldout.fresh_rng().integers(2**62), heldout.fresh_rng().integers(2**62)
    assert first != second  # a new seed every time
    monkeypatch.setenv(sandbox.MARKER_VARIABLE, "1-x")
    with pytest.raises(RuntimeError, match="never in the check function"):
        heldout.fresh_rng()


def test_noisy_subset_and_accuracy():
    rng = np.random.default_rng(0)
    x, y = np.full((10, 4), 0.5), np.arange(10)
    held_x, held_y = heldout.noisy_subset(rng, x, y, n=6, noise=0.1)
    assert held_x.shape == (6, 4) and held_y.shape == (6,) and held_y.dtype == np.int64
    assert not np.array_equal(held_x, x[:6]) and held_x.min() >= 0 and held_x.max() <= 1
    assert heldout.accuracy(np.array([1, 2, 3]), np.array([1, 2, 0])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="predictions have shape"):
        heldout.accuracy(np.zeros((3, 1)), np.zeros(3))
    with pytest.raises(ValueError, match="n must be between 1 and 10"):
        heldout.noisy_subset(rng, x, y, n=11)
