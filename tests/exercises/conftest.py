"""Fixtures for the exercise tests."""

import pytest

from course_lib.grading import engine


@pytest.fixture(scope="session")
def grader():
    """The grader with every exercise's public checks (reference outputs cached per session)."""
    return engine.Grader(engine.discover())
