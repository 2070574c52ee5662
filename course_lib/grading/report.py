"""Render grading results: a text table (terminal), JSON, HTML (notebooks), Markdown feedback."""

from __future__ import annotations

import html
import json

from course_lib.grading.engine import ExerciseResult, StudentResult

INSTRUCTOR_ONLY = {"similar"}


def text_table(result: ExerciseResult) -> str:
    """A plain-text table: one line per check, then the score and the flags."""
    width = max([len(c.name) for c in result.checks] + [5])
    lines = [f"{result.exercise}: {result.score:g}/{result.total:g} points"]
    for c in result.checks:
        mark = "PASS" if c.passed else "FAIL"
        reason = "" if c.passed or c.hidden else f"  {c.reason}"
        lines.append(f"  {mark}  {c.name:<{width}}  {c.earned:g}/{c.points:g}{reason}")
    lines += [f"  flag: {kind}: {reason}" for kind, reason in result.flags]
    return "\n".join(lines)


def as_dict(result: ExerciseResult) -> dict:
    """JSON-ready result; hidden checks keep only their name and points."""
    checks = []
    for c in result.checks:
        item = {"name": c.name, "points": c.points, "earned": c.earned, "passed": c.passed,
                "hidden": c.hidden}
        if not c.hidden:
            item.update(reason=c.reason, description=c.doc)
        checks.append(item)
    return {"exercise": result.exercise, "score": result.score, "total": result.total,
            "checks": checks, "flags": [{"kind": k, "reason": r} for k, r in result.flags]}


def json_report(results: list[ExerciseResult]) -> str:
    return json.dumps({"exercises": [as_dict(r) for r in results]}, indent=2)


def html_table(result: ExerciseResult) -> str:
    """An HTML table for notebooks: check, result, points, reason (or the check's description)."""
    rows = []
    for c in result.checks:
        colour = "#1a7f37" if c.passed else "#cf222e"
        mark = "passed" if c.passed else "failed"
        detail = c.doc if c.passed else c.reason
        rows.append(
            f"<tr><td><code>{html.escape(c.name)}</code></td>"
            f'<td style="color:{colour}"><b>{mark}</b></td>'
            f"<td>{c.earned:g}/{c.points:g}</td><td>{html.escape(detail)}</td></tr>"
        )
    flags = "".join(f"<p>flag <b>{html.escape(k)}</b>: {html.escape(r)}</p>"
                    for k, r in result.flags)
    return (
        f"<h4>{html.escape(result.exercise)}: {result.score:g}/{result.total:g} points</h4>"
        "<table><thead><tr><th>check</th><th>result</th><th>points</th><th>details</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>{flags}"
    )


def feedback_markdown(student: StudentResult) -> str:
    """A student's feedback: public checks with reasons, hidden checks by name and points only."""
    total = sum(r.total for r in student.exercises.values())
    lines = [f"# Feedback for {student.student}", "", f"Total: {student.total:g}/{total:g} points",
             ""]
    for kind, reason in student.all_flags():
        if kind not in INSTRUCTOR_ONLY:  # e.g. a similarity flag names another student
            lines.append(f"- flag **{kind}**: {reason}")
    for result in student.exercises.values():
        lines += ["", f"## {result.exercise}: {result.score:g}/{result.total:g} points", "",
                  "| check | result | points | details |", "|---|---|---|---|"]
        for c in result.checks:
            if c.hidden:
                lines.append(f"| {c.name} (hidden) | | {c.earned:g}/{c.points:g} | |")
                continue
            detail = c.doc if c.passed else f"{c.reason} (check: {c.doc})"
            mark = "passed" if c.passed else "failed"
            lines.append(f"| {c.name} | {mark} | {c.earned:g}/{c.points:g} | "
                         f"{_cell(detail)} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())
