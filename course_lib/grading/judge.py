"""Judging in the grader: a student's decoded output against the reference output.

Keys come from the reference (never from the student); arrays must have the exact shape (no
broadcasting), a numeric dtype, finite values where the reference is finite, and be
``np.allclose`` within the check's tolerances.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from course_lib.grading.spec import Judge

BROADCASTS = "the shapes would broadcast; the exact shape is required"
NON_FINITE = "contains NaN or inf where the expected values are finite"


def flag_for(reason: str) -> str | None:
    """A flag reason for failures worth an instructor's look (NaN/inf, broadcasting shapes)."""
    return reason if BROADCASTS in reason or NON_FINITE in reason else None


def compare(student: Any, reference: Any, rtol: float, atol: float, where: str = "") -> str | None:
    """``None`` when ``student`` matches ``reference``, else a short reason."""
    label = where or "output"
    if isinstance(reference, dict):
        if not isinstance(student, dict):
            return f"{label}: expected a dict, got {_kind(student)}"
        for key, value in reference.items():
            if key not in student:
                return f"missing key {key!r}" + (f" in {where}" if where else "")
            reason = compare(student[key], value, rtol, atol, f"{where}[{key!r}]" if where else key)
            if reason:
                return reason
        return None
    if isinstance(reference, list):
        if not isinstance(student, list) or len(student) != len(reference):
            got = f"length {len(student)}" if isinstance(student, list) else _kind(student)
            return f"{label}: expected a list of length {len(reference)}, got {got}"
        for index, (mine, theirs) in enumerate(zip(student, reference, strict=True)):
            reason = compare(mine, theirs, rtol, atol, f"{label}[{index}]")
            if reason:
                return reason
        return None
    if reference is None or isinstance(reference, str):
        if student != reference or type(student) is not type(reference):
            return f"{label}: expected {reference!r}, got {_short(student)}"
        return None
    return _compare_numbers(student, reference, rtol, atol, label)


def _compare_numbers(student: Any, reference: Any, rtol: float, atol: float,
                     label: str) -> str | None:
    if not (isinstance(student, np.ndarray | bool | int | float)):
        return f"{label}: expected numbers, got {_kind(student)}"
    mine, theirs = np.asarray(student), np.asarray(reference)
    if mine.shape != theirs.shape:
        try:
            np.broadcast_shapes(mine.shape, theirs.shape)
            note = f" ({BROADCASTS})"
        except ValueError:
            note = ""
        return f"{label}: expected shape {theirs.shape}, got shape {mine.shape}{note}"
    if theirs.dtype.kind == "b":
        if mine.dtype.kind not in "bi" or not np.array_equal(mine.astype(bool), theirs):
            return f"{label}: expected booleans {_short(theirs)}, got {_short(mine)}"
        return None
    if mine.dtype.kind not in "biufc":
        return f"{label}: expected a numeric array, got dtype {mine.dtype}"
    if not np.all(np.isfinite(mine) | ~np.isfinite(theirs)):
        return f"{label}: {NON_FINITE}"
    if not np.allclose(mine, theirs, rtol=rtol, atol=atol, equal_nan=True):
        diff = np.abs(mine.astype(np.complex128) - theirs.astype(np.complex128))
        diff = np.where(np.isnan(diff), np.inf, diff)
        index = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
        at = f" at index {tuple(int(i) for i in index)}" if index else ""
        return (
            f"{label}: expected {_short(theirs[index])}, got {_short(mine[index])}{at} "
            f"(rtol={rtol:g}, atol={atol:g})"
        )
    return None


def judge_outputs(student: dict, reference: dict, rtol: float, atol: float,
                  judge: Judge | None) -> tuple[bool, str]:
    """Pass/fail and a reason, with the check's own ``judge`` when it has one."""
    if judge is not None:
        try:
            passed, reason = judge(student, reference)
        except Exception as error:  # a malformed student output must not crash the grader
            return False, f"judge could not read the output: {type(error).__name__}: {error}"
        return bool(passed), str(reason)
    reason = compare(student, reference, rtol, atol)
    return reason is None, reason or "matches the reference"


def _kind(value: Any) -> str:
    return type(value).__name__ if not isinstance(value, np.ndarray) else f"array {value.shape}"


def _short(value: Any) -> str:
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        text = np.array2string(value, precision=6, threshold=6, edgeitems=2)
    else:
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."
