"""Helpers shared by the grader tests: the demo course, stray-process checks, the CLI."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import psutil

from course_lib.grading import command, sandbox

FIXTURES = Path(__file__).parent / "fixtures"
DEMO_ENVIRONMENT = {
    "COURSE_GRADING_CHECKS_DIR": FIXTURES / "checks",
    "COURSE_SOLUTIONS_DIR": FIXTURES / "solutions",
    "COURSE_EXERCISES_DIR": FIXTURES / "exercises",
}


def stray_processes() -> list[int]:
    """Processes started by this test process's graded children that are still alive.

    Only this process's children count: under pytest-xdist another worker may be grading.
    """
    found = []
    needle = f"{sandbox.MARKER_VARIABLE}={os.getpid()}-".encode()
    for proc in psutil.process_iter():
        try:
            with open(f"/proc/{proc.pid}/environ", "rb") as handle:
                marked = needle in handle.read()
            if marked and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (OSError, psutil.Error):
            continue
    return found


def stray_cgroups() -> list[Path]:
    return sorted(sandbox.CGROUP_ROOT.glob(f"*/{sandbox.owner_prefix()}*"))


def grade(*argv: str) -> int:
    """``course grade ARGV`` through the functions the CLI wires in."""
    parser = argparse.ArgumentParser()
    command.add_grade_arguments(parser)
    return command.run_grade_command(parser.parse_args([str(a) for a in argv]))


def isolated() -> bool:
    """Whether this machine gives the grader cgroups and namespaces (root on Linux)."""
    return os.geteuid() == 0 and Path("/sys/fs/cgroup/pids").is_dir()
