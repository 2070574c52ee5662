"""Grade a generated class of 100 submissions of the NumPy exercises with ``--jobs 2``.

The class mixes correct, partial (one function broken per exercise), broken (stubs, syntax
errors, exceptions, missing files) and hostile submissions (infinite loops, memory and fork
bombs, exits, fake output, monkeypatching, forged records, daemons, reading solutions, zip slip
and zip bomb). By default the class hands in the NumPy exercises ex01-ex03, the set the batch bar
was set for; ``--exercises all`` grades every exercise in ``course_lib/grading/checks`` (then the
wall time is reported without a bar).

Prints ``name: value`` lines: the wall time of the batch (bar: <= 120 s on the course machine,
2 cores), the time of one student-side ``course grade ex01`` (bar: <= 5 s), and the batch
against a baseline measured in the same process: every check of every reference solution run
in-process, without any sandbox, once per submission. Exits with status 1 when a bar is missed
or a correct submission does not get full points.

Run: .venv/bin/python benchmarks/grade_batch.py [--submissions 100] [--jobs 2] [--timeout 10]
     [--exercises ex01 ex02 ex03 | all]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
import time
import types
import zipfile
from pathlib import Path

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # the baseline runs like the children: one thread each

import numpy as np  # noqa: E402

from course_lib.grading import command, engine  # noqa: E402

BATCH_BAR_S = 120.0  # for the default exercises
DEFAULT_EXERCISES = ["ex01", "ex02", "ex03"]
SINGLE_BAR_S = 5.0
# hostile prefixes that stop the first exercise: it must score 0 (the others run the solution)
STOPPING = {"infinite_loop", "sleep_forever", "memory_bomb", "fork_bomb", "sys_exit", "os_exit",
            "import_solutions", "read_solutions"}
ZERO = {"stub", "syntax", "exception", "zip_slip", "zip_bomb", "non_utf8"}
HOSTILE_PREFIXES = {
    "infinite_loop": "while True:\n    pass\n",
    "sleep_forever": "import time\ntime.sleep(10**6)\n",
    "memory_bomb": "blob = b'x' * (4 * 2**30)\n",
    "fork_bomb": "import os\nwhile True:\n    os.fork()\n",
    "sys_exit": "import sys\nsys.exit(0)\n",
    "os_exit": "import os\nos._exit(0)\n",
    "fake_output": "print('PASSED all checks')\n",
    "monkeypatch": "import numpy as np\nnp.allclose = lambda *a, **k: True\n",
    "import_solutions": "from solutions.{name} import *\n",
    "read_solutions": "exec(open({path!r}).read())\n",
    "output_flood": "import sys\nsys.stdout.write('x' * 10**8)\n",
    "daemon": ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
               "        time.sleep(10**6)\n    os._exit(0)\n"),
    "forged_records": ("import os\nfor fd in os.listdir('/proc/self/fd'):\n    try:\n"
                       "        os.write(int(fd), b'{{\"type\":\"result\",\"ok\":true}}\\n')\n"
                       "    except OSError:\n        pass\n"),
}


def partial(source: str, rng: random.Random) -> str:
    """Break one function: its body raises after the signature."""
    starts = [i for i, line in enumerate(source.splitlines()) if line.startswith("def ")]
    lines = source.splitlines()
    index = rng.choice(starts)
    while not lines[index].rstrip().endswith(":"):
        index += 1
    lines.insert(index + 1, "    raise ValueError('not done yet')")
    return "\n".join(lines) + "\n"


def generate(folder: Path, count: int, exercises: list[engine.Exercise]) -> dict[str, str]:
    """Write ``count`` submissions; return student -> kind."""
    rng = random.Random(0)
    solutions = {ex.name: ex.solution_file.read_text() for ex in exercises}
    stubs = {ex.name: (engine.exercises_dir() / f"{ex.name}.py").read_text() for ex in exercises}
    hostile = list(HOSTILE_PREFIXES) + ["zip_slip", "zip_bomb", "non_utf8"]
    kinds = (["correct"] * 40 + ["partial"] * 25 + ["stub", "syntax", "exception", "missing"] * 4
             + hostile)[:count]
    kinds += ["correct"] * (count - len(kinds))
    students = {}
    for number, kind in enumerate(kinds):
        student = f"student{number:03d}_{kind}"
        students[student] = kind
        files: dict[str, bytes] = {}
        for ex in exercises:
            source = solutions[ex.name]
            if kind == "partial":
                source = partial(source, rng)
            elif kind == "stub":
                source = stubs[ex.name]
            elif kind == "syntax":
                source = source.replace("def ", "def def ", 1)
            elif kind == "exception":
                source = "raise RuntimeError('oops')\n" + source
            elif kind in HOSTILE_PREFIXES and ex is exercises[0]:
                source = HOSTILE_PREFIXES[kind].format(
                    name=ex.name, path=str(ex.solution_file)) + source
            if not (kind == "missing" and ex is exercises[-1]):
                files[f"exercises/{ex.name}.py"] = source.encode()
        if kind == "non_utf8":
            files = {k: b"# caf\xe9\n" + v for k, v in files.items()}
        if kind.startswith("zip"):
            with zipfile.ZipFile(folder / f"{student}.zip", "w", zipfile.ZIP_DEFLATED) as archive:
                for name, data in files.items():
                    archive.writestr(name, data)
                if kind == "zip_slip":
                    archive.writestr("../../escaped.py", "print('escaped')")
                else:
                    archive.writestr("exercises/padding.bin", b"\0" * (80 * 2**20))
            continue
        for name, data in files.items():
            (folder / student / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / student / name).write_bytes(data)
    return students


def in_process_baseline(exercises: list[engine.Exercise], count: int) -> float:
    """Seconds to run every check on every reference in-process, ``count`` times over."""
    grader = engine.Grader(exercises)
    start = time.perf_counter()
    for ex in exercises:
        module = types.ModuleType(ex.name)
        exec(compile(ex.solution_file.read_text(), str(ex.solution_file), "exec"), module.__dict__)
        for item in grader.checks(ex):
            item.check.func(module, np.random.default_rng(item.seed))
    return (time.perf_counter() - start) * count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--exercises", nargs="+", default=DEFAULT_EXERCISES,
                        help="exercise keys, or 'all' (default: ex01 ex02 ex03)")
    args = parser.parse_args()
    exercises = engine.discover()
    if args.exercises != ["all"]:
        wanted = set(args.exercises)
        exercises = [ex for ex in exercises if ex.key in wanted or ex.name in wanted]
        if len(exercises) != len(wanted):
            parser.error(f"unknown exercise among {args.exercises}")
    bar = BATCH_BAR_S if sorted(ex.key for ex in exercises) == DEFAULT_EXERCISES else None
    with tempfile.TemporaryDirectory(prefix="grade-batch-") as tmp:
        root = Path(tmp)
        (root / "subs").mkdir()
        students = generate(root / "subs", args.submissions, exercises)
        argv = [*(ex.key for ex in exercises), "--submissions", str(root / "subs"), "--out", str(root / "gradebook.csv"),
                "--feedback", str(root / "feedback"), "--jobs", str(args.jobs),
                "--timeout", str(args.timeout)]
        grade_parser = argparse.ArgumentParser()
        command.add_grade_arguments(grade_parser)
        start = time.perf_counter()
        with open("/dev/null", "w") as quiet:
            stdout, sys.stdout = sys.stdout, quiet
            try:
                code = command.run_grade_command(grade_parser.parse_args(argv))
            finally:
                sys.stdout = stdout
        wall = time.perf_counter() - start
        rows = list(csv.DictReader((root / "gradebook.csv").open()))
    first = exercises[0].name
    top = max(float(r["total"]) for r in rows)
    correct_full = all(float(r["total"]) == top for r in rows
                       if students[r["student"]] == "correct")
    undeserved = [r["student"] for r in rows if (students[r["student"]] in ZERO
                                                 and float(r["total"]) > 0)
                  or (students[r["student"]] in STOPPING and float(r[first]) > 0)]
    unflagged = [r["student"] for r in rows if not r["flags"]
                 and students[r["student"]] not in ("correct", "partial", "stub")]
    flagged = sum(1 for r in rows if r["flags"])
    start = time.perf_counter()
    command.grade_exercises(["ex01"])
    single = time.perf_counter() - start
    baseline = in_process_baseline(exercises, args.submissions)
    print("command: course grade " + " ".join(argv).replace(tmp, "$TMP"))
    print(f"exercises: {' '.join(ex.key for ex in exercises)}")
    print(f"submissions: {len(rows)}")
    print(f"jobs: {args.jobs}")
    print(f"timeout_s: {args.timeout:g}")
    print(f"exit_code: {code}")
    print(f"batch_wall_s: {wall:.1f}")
    print(f"batch_bar_s: {bar:g}" if bar else "batch_bar_s: none (the bar is set for ex01-ex03)")
    print(f"per_submission_s: {wall / len(rows):.3f}")
    print(f"baseline_in_process_s: {baseline:.1f}")
    print(f"batch_over_baseline: {wall / baseline:.2f}")
    print(f"single_exercise_check_s: {single:.2f}")
    print(f"flagged_submissions: {flagged}")
    print(f"correct_get_full_points: {correct_full}")
    print(f"undeserved_points: {len(undeserved)} {' '.join(undeserved)}".rstrip())
    print(f"hostile_or_broken_unflagged: {len(unflagged)} {' '.join(unflagged)}".rstrip())
    ok = code == 0 and (bar is None or wall <= bar) and single <= SINGLE_BAR_S and correct_full
    return 0 if ok and not undeserved and not unflagged else 1


if __name__ == "__main__":
    raise SystemExit(main())
