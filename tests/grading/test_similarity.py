"""Similar submissions: a renamed, re-laid-out copy is found, independent work and the stub's own
lines are not, the report shows the matching lines side by side, and points never change."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from grading_helpers import FIXTURES, grade

from course_lib.grading.similarity import similar_pairs, write_report
from course_lib.grading.submissions import Submission

ROOT = Path(__file__).resolve().parents[2]
NAME = "ex01_foundations"
STUB = (ROOT / "exercises" / f"{NAME}.py").read_text()
# A student's own code: the stub with its first two functions filled in.
BODY = "\n    raise NotImplementedError"
ORIGINAL = STUB.replace(BODY, "\n    out = np.clip(z, -30, 30)\n    "
                        "out = 1 / (1 + np.exp(-out))\n    return out * np.ones_like(z)", 1)
ORIGINAL = ORIGINAL.replace(BODY, "\n    grad = np.where(z > 0, 1.0, 0.0)\n"
                            "    total = grad.sum()\n    return grad if total >= 0 else -grad", 1)
COPY = re.sub(r"\bout\b", "result", ORIGINAL.replace("    ", "  ")).replace("grad", "g")
COPY = "# my own work\n" + COPY
OWN = STUB.replace(BODY, "\n    values = [max(v, 0.0) for v in z.ravel()]\n"
                   "    return np.array(values).reshape(z.shape)", 1)


def test_a_disguised_copy_is_found_and_independent_work_is_not(tmp_path):
    subs = [Submission("ada", {NAME: ORIGINAL}), Submission("bo", {NAME: COPY}),
            Submission("cy", {NAME: OWN}), Submission("di", {NAME: STUB}),
            Submission("ed", {NAME: STUB})]
    pairs = similar_pairs(subs, {NAME: STUB})
    assert [(p.first, p.second) for p in pairs] == [("ada", "bo")]  # stubs alike: not counted
    (pair,) = pairs
    assert pair.similarity >= 0.95
    left, right = pair.blocks[0]
    assert "out = 1 / (1 + np.exp(-out))" in left and "result = 1 / (1 + np.exp(-result))" in right
    index = write_report(pairs, tmp_path)
    assert "| ex01_foundations | ada | bo |" in index.read_text()
    detail = next(index.parent.glob("ex01_ada__bo.md")).read_text()
    assert "<th>ada</th><th>bo</th>" in detail and "np.exp(-result)" in detail


def test_similarity_flags_but_never_changes_points(tmp_path):
    subs = tmp_path / "subs"
    solution = (FIXTURES / "solutions" / "ex90_demo.py").read_text()
    copied = solution.replace("x, a", "v, f").replace("a * x", "f * v").replace("    ", "  ")
    for student, source in (("ada", solution), ("bo", copied)):
        (subs / student).mkdir(parents=True)
        (subs / student / "ex90_demo.py").write_text(source)
    out, feedback = tmp_path / "gradebook.csv", tmp_path / "feedback"
    assert grade("--submissions", subs, "--out", out, "--feedback", feedback) == 0
    rows = {r["student"]: r for r in csv.DictReader(out.open())}
    assert rows["ada"]["total"] == rows["bo"]["total"] == "5"
    assert "similar: ex90: 100% alike with bo" in rows["ada"]["flags"]
    assert "similar" not in (feedback / "bo.md").read_text()  # students never see the other name
    assert "| ex90_demo | ada | bo | 100% |" in (feedback / "similarity" / "index.md").read_text()
    assert grade("--submissions", subs, "--out", out, "--similarity", "1.01") == 0
    rows = {r["student"]: r for r in csv.DictReader(out.open())}
    assert rows["ada"]["flags"] == rows["bo"]["flags"] == ""
