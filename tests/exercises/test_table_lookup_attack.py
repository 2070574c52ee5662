"""Issue 29: a submission built from the student edition alone, which implements nothing and answers
every graded function from a table (see table_lookup.py), scores full marks under a student's
self-check (fixed inputs, shipped reference outputs: the attack is real) and 0 under instructor
grading (fresh inputs of several secret run seeds), where the reference solution scores full
marks; the embedded table is flagged for review."""

from __future__ import annotations

import shutil

import pytest
from exercise_helpers import ROOT, RUN_SEEDS, grade_source, reference_source
from table_lookup import table_lookup_submission

from course_lib import release
from course_lib.grading import engine, opaque

NAMES = [exercise.name for exercise in engine.discover()]
ATTACK_SEEDS = RUN_SEEDS[:3]


@pytest.fixture(scope="module")
def student_edition(tmp_path_factory):
    """The grading side of a student edition: the checks as released and the reference outputs
    `course release` ships with them (computed by its own code, release.compute_references)."""
    stage = tmp_path_factory.mktemp("student-edition")
    shutil.copytree(ROOT / "course_lib" / "grading" / "checks",
                    stage / "course_lib" / "grading" / "checks")
    folder = stage / "course_lib" / "grading" / "references"
    folder.mkdir()
    for name, text in release.compute_references(stage, ROOT, progress=False).items():
        (folder / f"{name}.json").write_text(text)
    return folder


@pytest.mark.parametrize("name", NAMES)
def test_a_table_of_the_public_answers_scores_zero_on_fresh_inputs(
        name, grader, fresh_graders, student_edition, monkeypatch, tmp_path):
    attack = table_lookup_submission(grader, grader.exercises[name], ROOT)
    monkeypatch.setenv("COURSE_SOLUTIONS_DIR", str(tmp_path / "no-solutions"))
    monkeypatch.setenv("COURSE_GRADING_REFERENCES_DIR", str(student_edition))
    (exercise,) = engine.select(engine.discover(), [name])
    self_check = engine.Grader([exercise]).grade(exercise, attack)
    failed = {c.name: c.reason for c in self_check.checks if not c.passed}
    assert not failed and self_check.score == self_check.total > 0  # the attack is real
    for seed in ATTACK_SEEDS:
        fresh = fresh_graders[seed]
        graded = grade_source(fresh, name, attack)
        passed = [c.name for c in graded.checks if c.passed]
        assert passed == [] and graded.score == 0, (seed, passed)
        assert [kind for kind, _ in graded.flags] == [opaque.KIND], graded.flags
        assert "embeds" in graded.flags[0][1]
        reference = grade_source(fresh, name, reference_source(name))
        assert reference.score == reference.total > 0, seed
