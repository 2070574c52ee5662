"""`course doctor`: what this machine has, and whether the course can run on it."""

from __future__ import annotations

import importlib
import platform
import sys

from course_lib.environment import (
    MIN_VERSIONS,
    _parse_version,
    accelerators,
    fast_mode,
    quiet_tensorflow,
)

LIBRARIES = ["numpy", "tensorflow", "keras", "tensorflow_datasets", "matplotlib", "jupyterlab", "nbval"]
REQUIRED = {"numpy", "keras", "matplotlib"}  # the course cannot run without these


def library_versions() -> dict[str, str | None]:
    """Installed version of each library the course uses (None when it does not import)."""
    quiet_tensorflow()
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = getattr(importlib.import_module(name), "__version__", "?")
        except Exception:  # a broken install must be reported, not crash the doctor
            versions[name] = None
    return versions


def collect() -> tuple[list[tuple[str, str]], list[str]]:
    """Rows of (label, value) for the report and the list of problems that stop the course."""
    rows: list[tuple[str, str]] = [
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("mode", "fast (COURSE_FAST=1: shipped samples, few epochs)" if fast_mode() else "full"),
    ]
    problems: list[str] = []
    for name, version in library_versions().items():
        rows.append((name, version or "NOT INSTALLED"))
        short = name.split("_")[0] if name == "tensorflow_datasets" else name
        if version is None and name in REQUIRED:
            problems.append(f"{name} does not import: run `make lab` (or `pip install -e .`)")
        minimum = MIN_VERSIONS.get(short)
        if version and minimum and _parse_version(version) < minimum:
            problems.append(f"{name} {version} is older than {'.'.join(map(str, minimum))}")
    try:
        import keras

        rows.append(("keras backend", keras.backend.backend()))
        gpus = accelerators()
        rows.append(("GPUs", ", ".join(gpus) if gpus else "none (CPU only; see README 'GPU set-up')"))
    except Exception as error:
        problems.append(f"Keras backend failed to start: {error}")
    from course_lib import data

    rows.append(("cache dir", f"{data.cache_dir()} ({'writable' if data.cache_writable() else 'NOT writable'})"))
    for name in data.datasets():
        info = data.describe(name)
        where = info["source"] + (f": {info['path']}" if info.get("path") else "")
        if info["source"] == "unavailable":
            hint = "fast-mode sample shipped; " if info.get("sample") else ""
            where += f" ({hint}full data: set COURSE_DATA_DIR or run `course data fetch {name}`)"
        rows.append((f"data {name}", where))
    return rows, problems


def run_doctor() -> int:
    """Print the report; return 1 when the course cannot run."""
    rows, problems = collect()
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:{width}s}  {value}")
    if problems:
        print("\nProblems:")
        for problem in problems:
            print(f"  - {problem}")
        return 1
    print("\nAll good: the course can run here.")
    return 0
