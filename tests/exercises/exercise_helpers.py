"""Helpers for the exercise tests: the reference scores 100 %, the untouched stub 0, and the checks
are not fooled (an object whose ``__eq__`` is always True, wrong shapes that broadcast, returning the
input unchanged). Everything goes through the real, sandboxed grader. Instructor grading draws
fresh inputs per run: the reference must score 100 % on every run seed of ``RUN_SEEDS`` too."""

from pathlib import Path

from course_lib.grading import engine

ROOT = Path(__file__).resolve().parents[2]
# Run seeds of instructor grading (fresh inputs), drawn once with secrets.randbits(63).
RUN_SEEDS = (7112189110101214358, 5502461647375998006, 6844519461693941800, 2290463435030597623,
             4158656164529786307)

ALWAYS_EQUAL = """
class AlwaysEqual:
    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False
"""


def grade_source(grader, name: str, source: str) -> engine.ExerciseResult:
    """Grade `source` as exercise `name` through the sandboxed grader."""
    return grader.grade(grader.exercises[name], source)


def reference_source(name: str) -> str:
    return (ROOT / "solutions" / f"{name}.py").read_text()


def stub_source(name: str) -> str:
    return (ROOT / "exercises" / f"{name}.py").read_text()


def assert_full_marks(grader, name: str) -> None:
    result = grade_source(grader, name, reference_source(name))
    failed = {c.name: c.reason for c in result.checks if not c.passed}
    assert not failed
    assert result.score == result.total > 0


def assert_full_marks_on_fresh_inputs(fresh_graders: dict, name: str) -> None:
    """The reference solution scores 100 % under instructor grading with every run seed of
    ``fresh_graders`` (fresh inputs, judges with held-out data of that run)."""
    failed = {}
    for seed, fresh in fresh_graders.items():
        result = grade_source(fresh, name, reference_source(name))
        failed.update({(seed, c.name): c.reason for c in result.checks if not c.passed})
        assert result.total > 0 and result.flags == [], (seed, result.flags)
    assert not failed


def assert_stub_scores_zero(grader, name: str) -> None:
    result = grade_source(grader, name, stub_source(name))
    assert result.score == 0
    assert all("NotImplementedError" in c.reason for c in result.checks)


def assert_not_fooled(grader, name: str, patch: str, check_name: str) -> None:
    """The reference solution with `patch` appended must fail check `check_name`."""
    result = grade_source(grader, name, reference_source(name) + "\n\n" + patch)
    verdict = {c.name: c.passed for c in result.checks}
    assert verdict[check_name] is False


def _zeroed(value):
    """The shape of a result with no work in it: arrays and numbers zero, structure kept."""
    import numpy as np

    if isinstance(value, dict):
        return {key: _zeroed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_zeroed(item) for item in value]
    if isinstance(value, np.ndarray | bool | int | float) and not isinstance(value, str):
        return np.zeros_like(value) if isinstance(value, np.ndarray) else type(value)(0)
    return value


def assert_judges_need_work(grader, name: str) -> None:
    """Every result-judged check (``judge=``) of exercise `name` passes the reference's own output
    and fails the same output with every number zeroed (the shape of an answer that did no
    work); see the rule in ``course_lib.grading.heldout``. Exercise-specific cheats (untrained
    parameters with a made-up loss history, looked-up labels) belong in the exercise's FOOLS."""
    exercise = grader.exercises[name]
    reference = grader.reference(exercise)
    judged = [item for item in grader.checks(exercise) if item.check.judge is not None]
    for item in judged:
        output = reference[(item.source, item.check.name)]
        passed, reason = item.check.judge(output, output)
        assert passed, f"{item.check.name}: the reference's own output fails its judge: {reason}"
        passed, reason = item.check.judge(_zeroed(output), output)
        assert not passed, f"{item.check.name}: a zeroed output passes its judge: {reason}"
