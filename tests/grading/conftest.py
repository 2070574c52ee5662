"""Grader tests run against the demo exercise ex90_demo in fixtures/ (checks, solution, stub,
hidden checks), and make sure no process of a graded child survives a test."""

import pytest
from grading_helpers import DEMO_ENVIRONMENT, stray_cgroups, stray_processes


@pytest.fixture(autouse=True)
def demo_course(monkeypatch):
    for name, value in DEMO_ENVIRONMENT.items():
        monkeypatch.setenv(name, str(value))


@pytest.fixture(autouse=True)
def no_strays():
    yield
    assert stray_processes() == []
    assert stray_cgroups() == []
