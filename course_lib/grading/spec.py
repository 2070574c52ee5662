"""The ``check`` decorator that exercise checks use, and the registry that collects them.

A check module (``course_lib/grading/checks/exNN_topic.py`` or an instructor's hidden file) is
plain Python: each function decorated with ``@check(points=...)`` takes ``(module, rng)`` and
returns a dict of plain data. The grader runs it in a sandboxed child, once with the student's
module and once with the reference solution, and compares the two outputs in the parent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Judge = Callable[[dict, dict], "tuple[bool, str]"]
MARKER = "__course_check__"


@dataclass(frozen=True)
class Check:
    """One registered check: its function, points, tolerances and optional parent-side judge."""

    name: str
    func: Callable[[Any, Any], dict]
    points: float
    rtol: float
    atol: float
    judge: Judge | None
    doc: str


def check(
    points: float = 1, *, rtol: float = 1e-6, atol: float = 1e-8, judge: Judge | None = None
) -> Callable[[Callable], Callable]:
    """Mark ``func(module, rng) -> dict`` as a graded check worth ``points``.

    ``rtol``/``atol`` are the ``np.allclose`` tolerances; ``judge(student, reference)`` replaces
    the comparison and returns ``(passed, reason)``; it runs in the grader, never in the child.
    """
    if points < 0:
        raise ValueError(f"points must be >= 0, got {points}")

    def mark(func: Callable) -> Callable:
        setattr(func, MARKER, {"points": float(points), "rtol": rtol, "atol": atol, "judge": judge})
        return func

    return mark


def collect(namespace: dict[str, Any]) -> list[Check]:
    """The checks defined in a module namespace, in definition order."""
    found = []
    for name, obj in namespace.items():
        meta = getattr(obj, MARKER, None) if callable(obj) else None
        if isinstance(meta, dict):
            doc = " ".join((obj.__doc__ or name).split())
            found.append(Check(name=name, func=obj, doc=doc, **meta))
    return found
