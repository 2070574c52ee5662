"""Instructor grading draws fresh check inputs per run (a secret run seed, written to the
gradebook's metadata; `--seed S` reproduces a run exactly, judges' held-out data included); a
student's self-check keeps the fixed inputs and the shipped reference outputs."""

from __future__ import annotations

import csv
import json
import zlib

import numpy as np
import pytest
from grading_helpers import FIXTURES, grade

from course_lib.grading import engine, heldout, references, sandbox
from course_lib.grading.command import grade_exercises, meta_path_for

SOLUTION = (FIXTURES / "solutions" / "ex90_demo.py").read_text()
PARTIAL = SOLUTION.replace("x.sum(axis=1)", "x.sum(axis=0)")  # 3 of 5 points


def _demo(run_seed: int | None = None) -> tuple[engine.Grader, engine.Exercise]:
    (exercise,) = engine.select(engine.discover(), ["ex90"])
    return engine.Grader([exercise], run_seed=run_seed), exercise


def _class(tmp_path):
    subs = tmp_path / "subs"
    for student, source in (("ada", SOLUTION), ("bo", PARTIAL)):
        (subs / student).mkdir(parents=True)
        (subs / student / "ex90_demo.py").write_text(source)
    return subs


def test_self_check_keeps_the_fixed_seeds():
    grader, exercise = _demo()
    assert [item.seed for item in grader.checks(exercise)] == [
        zlib.crc32(f"ex90_demo/0/{name}".encode())
        for name in ("scale_values", "row_sums_shape", "greeting_text", "exp_is_positive")]
    assert grader.heldout_seed(exercise, grader.checks(exercise)[0]) is None


def test_a_run_seed_gives_other_inputs_and_references_computed_on_them():
    fixed, exercise = _demo()
    first, _ = _demo(run_seed=1)
    again, _ = _demo(run_seed=1)
    second, _ = _demo(run_seed=2)
    seeds = [[item.seed for item in g.checks(exercise)] for g in (fixed, first, again, second)]
    assert seeds[1] == seeds[2] and len({*seeds[0], *seeds[1], *seeds[3]}) == 12
    assert all(0 <= seed < 2**63 for seed in seeds[1])
    key = (0, "scale_values")
    outputs = [g.reference(exercise)[key]["y"] for g in (fixed, first, again, second)]
    assert np.array_equal(outputs[1], outputs[2])
    assert not np.array_equal(outputs[0], outputs[1]) and not np.array_equal(outputs[1],
                                                                            outputs[3])
    result = first.grade(exercise, SOLUTION)
    assert result.score == result.total == 5 and result.flags == []


def test_fresh_inputs_need_the_reference_solutions(tmp_path, monkeypatch, capsys):
    """No silent fall-back to the fixed seeds (and the shipped outputs) without solutions/."""
    grader, exercise = _demo()
    folder = tmp_path / "references"
    folder.mkdir()
    (folder / f"{exercise.name}.json").write_text(references.dumps(
        exercise.name, grader.check_source(exercise), grader.reference(exercise)))
    monkeypatch.setenv("COURSE_SOLUTIONS_DIR", str(tmp_path / "no-solutions"))
    monkeypatch.setenv("COURSE_GRADING_REFERENCES_DIR", str(folder))
    assert grade_exercises(["ex90"], FIXTURES / "solutions")[0].score == 5  # self-check works
    fresh, exercise = _demo(run_seed=3)
    with pytest.raises(engine.GradingError, match="only the reference solutions can compute"):
        fresh.reference(exercise)
    out = tmp_path / "gradebook.csv"
    assert grade("--submissions", _class(tmp_path), "--out", out) == 2
    error = capsys.readouterr().err
    assert "fresh check inputs" in error and "no-solutions/ex90_demo.py" in error
    assert not out.exists()


def test_the_seed_is_recorded_and_reproduces_the_run(tmp_path, capsys):
    subs = _class(tmp_path)
    runs = []
    for number, seed in enumerate((None, None, "123456789", "123456789")):
        out = tmp_path / f"run{number}" / "gradebook.csv"
        argv = ["--submissions", subs, "--out", out, "--feedback", out.parent / "feedback"]
        assert grade(*argv, *(["--seed", seed] if seed else [])) == 0
        meta = json.loads(meta_path_for(out).read_text())
        runs.append((meta, out.read_text(), (out.parent / "feedback" / "bo.md").read_text()))
        assert f"--seed {meta['seed']} reproduces" in capsys.readouterr().out
    assert meta_path_for(tmp_path / "gradebook.csv") == tmp_path / "gradebook-meta.json"
    (first, _, _), (second, _, _), (third, book, feedback), (fourth, book2, feedback2) = runs
    assert first["seed"] != second["seed"] and third["seed"] == fourth["seed"] == 123456789
    assert third["reproduce"] == "--seed 123456789"
    assert set(third["exercises"]) == {"ex90_demo"}
    assert third["exercises"]["ex90_demo"]["checks_sha256"] == references.checks_hash(
        (FIXTURES / "checks" / "ex90_demo.py").read_text())
    assert book == book2 and feedback == feedback2
    rows = {row["student"]: row for row in csv.DictReader(book.splitlines())}
    assert (rows["ada"]["total"], rows["bo"]["total"]) == ("5", "3")
    assert "123456789" not in feedback  # the students' feedback does not carry the seed


def test_json_output_carries_the_seed(tmp_path, capsys):
    out = tmp_path / "gradebook.csv"
    assert grade("--submissions", _class(tmp_path), "--out", out, "--seed", "42", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["seed"] == 42 and data["meta"] == str(meta_path_for(out))


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "", "0x10", str(2**63), "1e3", "٣"])
def test_bad_seeds_are_refused_with_a_clear_message(tmp_path, capsys, value):
    out = tmp_path / "gradebook.csv"
    assert grade("--submissions", _class(tmp_path), "--out", out, "--seed", value) == 2
    error = capsys.readouterr().err
    assert "--seed: a run seed must be a whole number from 0 to 9223372036854775807" in error
    assert not out.exists()


def test_parse_seed_and_the_grader_check_their_values():
    assert engine.parse_seed(" 42 ") == 42 and engine.parse_seed(2**63 - 1) == 2**63 - 1
    for value in (-1, 2**63, 1.0, True, None, "4 2"):
        with pytest.raises(ValueError, match="whole number from 0 to"):
            engine.parse_seed(value)
    with pytest.raises(ValueError, match="whole number from 0 to"):
        engine.Grader([], run_seed=-5)
    assert 0 <= engine.new_run_seed() < 2**63 and engine.new_run_seed() != engine.new_run_seed()


def test_a_seed_needs_submissions(capsys):
    assert grade("ex90", "--seed", "5") == 2
    assert "--seed need --submissions" in capsys.readouterr().err


HELDOUT_CHECKS = '''
from course_lib.grading import heldout
from course_lib.grading.spec import check


def _judge(student, reference):
    draws = [int(heldout.fresh_rng().integers(2**62)) for _ in range(2)]
    return True, f"held-out draws {draws[0]} {draws[1]}"


@check(points=1, judge=_judge)
def judged(module, rng):
    """A judge that reports its held-out draws."""
    return {"x": module.f(rng.standard_normal(3))}
'''


def test_judges_held_out_data_follows_the_run_seed(tmp_path, monkeypatch):
    for folder, text in (("checks", HELDOUT_CHECKS), ("solutions", "def f(x):\n    return x\n")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "ex91_heldout.py").write_text(text)
    monkeypatch.setenv("COURSE_GRADING_CHECKS_DIR", str(tmp_path / "checks"))
    monkeypatch.setenv("COURSE_SOLUTIONS_DIR", str(tmp_path / "solutions"))
    (exercise,) = engine.discover()
    source = "def f(x):\n    return x\n"

    def reason(run_seed):
        grader = engine.Grader([exercise], run_seed=run_seed)
        run = grader.run(exercise, source)
        return [grader.judge(exercise, run).checks[0].reason for _ in range(2)]

    same, other, unseeded = reason(7), reason(8), reason(None)
    assert same[0] == same[1] == reason(7)[0]  # reproducible, judged twice or in another run
    draws = same[0].split()[-2:]
    assert draws[0] != draws[1]  # successive generators of one judge differ
    assert other[0] != same[0] and unseeded[0] != unseeded[1]  # no seed: the OS's entropy


def test_seeded_held_out_generators(monkeypatch):
    with heldout.seeded(5):
        first = [heldout.fresh_rng().integers(2**62) for _ in range(3)]
    with heldout.seeded(5):
        again = [heldout.fresh_rng().integers(2**62) for _ in range(3)]
        with heldout.seeded(None):
            assert heldout.fresh_rng().integers(2**62) != heldout.fresh_rng().integers(2**62)
    assert first == again and len(set(first)) == 3
    monkeypatch.setenv(sandbox.MARKER_VARIABLE, "1-x")
    with heldout.seeded(5), pytest.raises(RuntimeError, match="never in the check function"):
        heldout.fresh_rng()
