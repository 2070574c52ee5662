"""Fixtures for the exercise tests."""

import pytest
from exercise_helpers import RUN_SEEDS

from course_lib.grading import engine


@pytest.fixture(scope="session")
def grader():
    """The grader with every exercise's public checks (reference outputs cached per session)."""
    return engine.Grader(engine.discover())


@pytest.fixture(scope="session")
def fresh_graders():
    """Instructor graders, one per run seed of RUN_SEEDS: fresh check inputs, each judged
    against the reference solution run on them (computed once per seed and exercise)."""
    return {seed: engine.Grader(engine.discover(), run_seed=seed) for seed in RUN_SEEDS}
