"""Grade one exercise source: find the exercises, run the child, judge against the reference.

Exercises are discovered from the check modules (every ``checks/ex*.py``), so a new exercise
plugs in by adding its check module and its reference in ``solutions/``.

Check inputs. Each check gets a generator seeded with :func:`check_seed`. Without a run seed
(a student's self-check, ``course release``) the seed is fixed, derived from the exercise and
check names, so the shipped reference outputs apply. With a run seed (instructor grading, a
secret drawn per run) every check's seed is mixed with it: fresh inputs each run, whose
expected outputs only the reference solution can compute, and the judges' held-out data is
derived from it too (:mod:`course_lib.grading.heldout`), so the same run seed reproduces a
grading run exactly.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import sys
import threading
import types
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.grading import heldout, opaque, references, sandbox, wire
from course_lib.grading.judge import flag_for, judge_outputs
from course_lib.grading.spec import Check, collect

PACKAGE_DIR = Path(__file__).resolve().parent
SEED_LIMIT = 2**63  # run seeds are whole numbers 0 <= seed < SEED_LIMIT
FAKE_RESULTS = re.compile(rb"\bPASS(ED)?\b|\"passed\"\s*:|\"score\"\s*:|\"ok\"\s*:\s*true", re.I)


class GradingError(RuntimeError):
    """The grader itself cannot grade (no such exercise, a reference that fails its checks)."""


def parse_seed(value: object) -> int:
    """A run seed from ``--seed`` text or an int: a whole number from 0 to 2**63 - 1.

    Raises ``ValueError`` with a message naming the accepted range for anything else (a
    negative or too large number, a fraction, text, a bool).
    """
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.isascii() and text.isdigit():
        text = int(text)
    if type(text) is not int or not 0 <= text < SEED_LIMIT:
        raise ValueError(f"a run seed must be a whole number from 0 to {SEED_LIMIT - 1}, "
                         f"got {value!r}")
    return text


def new_run_seed() -> int:
    """A secret run seed from the operating system's randomness (63 bits)."""
    return secrets.randbits(63)


def check_seed(exercise: str, source: int, check: str, run_seed: int | None = None) -> int:
    """The seed of one check's ``rng``: fixed (a CRC-32 of the names) without ``run_seed``;
    with one, 63 bits of a SHA-256 of the run seed and the names, which reveal nothing about
    the run seed to the child that receives them."""
    label = f"{exercise}/{source}/{check}"
    if run_seed is None:
        return zlib.crc32(label.encode())
    return _derive(run_seed, label)


def _derive(run_seed: int, label: str) -> int:
    digest = hashlib.sha256(f"{parse_seed(run_seed)}/{label}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def course_root() -> Path:
    """The course folder that holds ``course_lib/``, ``exercises/`` and ``solutions/``."""
    return PACKAGE_DIR.parents[1]


def checks_dir() -> Path:
    """Public check modules (``COURSE_GRADING_CHECKS_DIR`` overrides, for tests)."""
    return Path(os.environ.get("COURSE_GRADING_CHECKS_DIR") or PACKAGE_DIR / "checks")


def solutions_dir() -> Path:
    """Reference solutions (``COURSE_SOLUTIONS_DIR`` overrides, for tests)."""
    return Path(os.environ.get("COURSE_SOLUTIONS_DIR") or course_root() / "solutions")


def exercises_dir() -> Path:
    """The student's exercises (``COURSE_EXERCISES_DIR`` overrides, for tests)."""
    return Path(os.environ.get("COURSE_EXERCISES_DIR") or course_root() / "exercises")


@dataclass(frozen=True)
class Exercise:
    """An exercise ``exNN_topic``: its public checks, optional hidden checks and its reference."""

    name: str
    checks_file: Path
    solution_file: Path
    hidden_file: Path | None = None

    @property
    def key(self) -> str:
        return self.name.split("_")[0]


def discover(hidden_dir: Path | None = None) -> list[Exercise]:
    """Every exercise with a check module, sorted by name."""
    found = []
    for path in sorted(checks_dir().glob("ex*.py")):
        hidden = Path(hidden_dir) / path.name if hidden_dir else None
        found.append(Exercise(path.stem, path, solutions_dir() / path.name,
                              hidden if hidden and hidden.is_file() else None))
    return found


def select(exercises: list[Exercise], names: list[str] | None) -> list[Exercise]:
    """The exercises named ``ex02`` or ``ex02_mlp_from_scratch``; all when ``names`` is empty."""
    if not names:
        return exercises
    chosen = []
    for name in names:
        match = [ex for ex in exercises if name in (ex.name, ex.key)]
        if not match:
            known = ", ".join(ex.key for ex in exercises) or "none"
            raise GradingError(f"unknown exercise {name!r} (known: {known})")
        chosen += [ex for ex in match if ex not in chosen]
    return chosen


@dataclass
class CheckResult:
    """One check's verdict. ``reason`` is shown to the student unless the check is hidden."""

    name: str
    points: float
    passed: bool
    reason: str
    doc: str
    hidden: bool = False

    @property
    def earned(self) -> float:
        return self.points if self.passed else 0.0


@dataclass
class ExerciseResult:
    """The checks of one exercise for one submission, and the flags it raised."""

    exercise: str
    checks: list[CheckResult] = field(default_factory=list)
    flags: list[tuple[str, str]] = field(default_factory=list)
    wall: float = 0.0

    @property
    def score(self) -> float:
        return sum(c.earned for c in self.checks)

    @property
    def total(self) -> float:
        return sum(c.points for c in self.checks)

    def flag(self, kind: str, reason: str) -> None:
        if (kind, reason) not in self.flags:
            self.flags.append((kind, reason))


@dataclass
class StudentResult:
    """One student's exercises and flags (``kind``, ``reason``); ``student_id`` is the LMS id
    (Canvas user id, Moodle participant id) when the submission came from a bulk download."""

    student: str
    exercises: dict[str, ExerciseResult] = field(default_factory=dict)
    flags: list[tuple[str, str]] = field(default_factory=list)
    student_id: str = ""

    @property
    def total(self) -> float:
        return sum(r.score for r in self.exercises.values())

    def all_flags(self) -> list[tuple[str, str]]:
        found = list(self.flags)
        for name, result in self.exercises.items():
            found += [(kind, f"{name.split('_')[0]}: {reason}") for kind, reason in result.flags]
        return found


@dataclass(frozen=True)
class LoadedCheck:
    source: int
    check: Check
    hidden: bool
    seed: int


def missing_check(item: LoadedCheck, reason: str) -> CheckResult:
    """A failed check for an exercise that could not be run at all."""
    spec = item.check
    return CheckResult(spec.name, spec.points, False, reason, spec.doc, item.hidden)


class Grader:
    """Grades sources of exercises; reference outputs are computed once and cached.

    ``run_seed`` None: fixed check inputs, judged against the reference solution or, where it
    is missing, the shipped reference outputs (a student's self-check). ``run_seed`` an int
    (see :func:`parse_seed`): fresh inputs for that run, judged against the reference solution
    run on the same inputs (instructor grading); without the solution grading is refused.
    """

    def __init__(self, exercises: list[Exercise], limits: sandbox.Limits | None = None,
                 run_seed: int | None = None):
        self.exercises = {ex.name: ex for ex in exercises}
        self.limits = limits or sandbox.Limits()
        self.run_seed = None if run_seed is None else parse_seed(run_seed)
        self.hide = [str(solutions_dir().resolve())]
        self.hide += [str(ex.hidden_file.parent.resolve()) for ex in exercises if ex.hidden_file]
        self._sources: dict[str, list[str]] = {}
        self._checks: dict[str, list[LoadedCheck]] = {}
        self._references: dict[str, dict[tuple[int, str], object]] = {}
        self._lock = threading.Lock()
        self._reference_locks = {name: threading.Lock() for name in self.exercises}

    def checks(self, exercise: Exercise) -> list[LoadedCheck]:
        """The exercise's public then hidden checks, loaded in the grader (for points, judges)."""
        with self._lock:
            if exercise.name not in self._checks:
                files = [exercise.checks_file]
                files += [exercise.hidden_file] if exercise.hidden_file else []
                sources = [path.read_text(encoding="utf-8") for path in files]
                loaded = []
                for index, source in enumerate(sources):
                    module = types.ModuleType(f"course_checks.{exercise.name}.{index}")
                    sys.modules[module.__name__] = module
                    exec(compile(source, str(files[index]), "exec"), module.__dict__)
                    for found in collect(module.__dict__):
                        seed = check_seed(exercise.name, index, found.name, self.run_seed)
                        loaded.append(LoadedCheck(index, found, index > 0, seed))
                if not loaded:
                    raise GradingError(f"{exercise.checks_file} defines no @check functions")
                self._sources[exercise.name] = sources
                self._checks[exercise.name] = loaded
            return self._checks[exercise.name]

    def _job(self, exercise: Exercise, source: str) -> dict:
        checks = self.checks(exercise)
        return {
            "module_name": exercise.name,
            "module_source": source,
            "hide": sorted(set(self.hide)),
            "check_sources": self._sources[exercise.name],
            "checks": [{"source": c.source, "name": c.check.name, "seed": c.seed} for c in checks],
        }

    def reference(self, exercise: Exercise) -> dict[tuple[int, str], object]:
        """Decoded reference outputs per check: from the solution run in the same sandbox, or,
        where there is no solution (the student edition), from the reference outputs shipped
        with the release (refused when the checks changed since). With a run seed (fresh
        inputs) only the solution can give them: its absence is a :class:`GradingError`."""
        with self._reference_locks[exercise.name]:
            if exercise.name not in self._references:
                checks = self.checks(exercise)
                if exercise.solution_file.is_file():
                    outputs = self._run_reference(exercise)
                elif self.run_seed is not None:
                    raise GradingError(missing_solutions_message([exercise]))
                elif exercise.hidden_file is not None:
                    raise GradingError(f"hidden checks of {exercise.name} need its reference "
                                       f"solution ({exercise.solution_file} is missing)")
                else:
                    try:
                        outputs = references.load(exercise.name, self._sources[exercise.name][0],
                                                  [c.check.name for c in checks])
                    except references.ReferenceFileError as error:
                        raise GradingError(str(error)) from None
                self._references[exercise.name] = outputs
            return self._references[exercise.name]

    def _run_reference(self, exercise: Exercise) -> dict[tuple[int, str], object]:
        try:
            source = exercise.solution_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise GradingError(f"no reference solution for {exercise.name}: {error}") from None
        run = sandbox.run_child(self._job(exercise, source),
                                {exercise.solution_file.name: source}, self.limits)
        outputs, problems = _outputs(run, self.checks(exercise))
        failed = [c.check.name for c in self.checks(exercise)
                  if (c.source, c.check.name) not in outputs]
        if failed or problems:
            detail = "; ".join(problems) or "no output"
            raise GradingError(f"the reference solution of {exercise.name} fails "
                               f"{', '.join(failed) or 'its checks'}: {detail}")
        return outputs

    def heldout_seed(self, exercise: Exercise, item: LoadedCheck) -> int | None:
        """The seed of the held-out data a judge draws (``heldout.fresh_rng``) for ``item``:
        derived from the run seed (the same for every submission of the run, never sent to a
        child), or None without a run seed (then the operating system's randomness)."""
        if self.run_seed is None:
            return None
        return _derive(self.run_seed, f"heldout/{exercise.name}/{item.source}/{item.check.name}")

    def check_source(self, exercise: Exercise) -> str:
        """The public check module's source, as the grader loaded it (what a release hashes)."""
        self.checks(exercise)
        return self._sources[exercise.name][0]

    def grade(self, exercise: Exercise, source: str) -> ExerciseResult:
        """Run ``source`` (the student's exercise file) through the checks and judge it; flag
        (``opaque``, for a person to review; points unchanged) source that embeds opaque data
        or loads code or data at run time (see :mod:`course_lib.grading.opaque`)."""
        result = self.judge(exercise, self.run(exercise, source))
        for reason in opaque.findings(source):
            result.flag(opaque.KIND, reason)
        return result

    def run(self, exercise: Exercise, source: str) -> sandbox.ChildRun:
        """Run ``source`` through the exercise's checks in a sandboxed child (no judging)."""
        return sandbox.run_child(self._job(exercise, source), {f"{exercise.name}.py": source},
                                 self.limits)

    def judge(self, exercise: Exercise, run: sandbox.ChildRun,
              reference: dict[tuple[int, str], object] | None = None) -> ExerciseResult:
        """Judge a child's records against ``reference`` (default: this grader's references)."""
        checks = self.checks(exercise)
        reference = self.reference(exercise) if reference is None else reference
        result = ExerciseResult(exercise.name, wall=run.wall)
        _flag_run(run, result, self.limits)
        records = [r for r in run.records if r.get("type") == "result"]
        seen: dict[tuple, dict] = {}
        keys = {(c.source, c.check.name) for c in checks}
        for record in records:
            key = (record.get("source"), record.get("check"))
            if key not in keys or key in seen:
                result.flag("suspicious",
                            f"forged or repeated result record for {str(key[1])[:40]!r}")
                seen[key] = {"ok": False, "error": "forged or repeated result"}
            else:
                seen[key] = record
        stopped = _stop_reason(run, result)
        for item in checks:
            spec = item.check
            record = seen.get((item.source, spec.name))
            passed, reason = False, stopped
            if record is not None and record.get("ok") is True:
                try:
                    output = wire.decode(record.get("value"))
                    with heldout.seeded(self.heldout_seed(exercise, item)):
                        passed, reason = judge_outputs(output,
                                                       reference[(item.source, spec.name)],
                                                       spec.rtol, spec.atol, spec.judge)
                    if not passed and flag_for(reason):
                        shown = "NaN/inf or a broadcasting shape" if item.hidden else reason
                        result.flag("suspicious", f"{spec.name}: {shown}")
                except wire.WireError as error:
                    result.flag("suspicious", f"{spec.name}: {error}")
                    reason = f"unreadable output: {error}"
            elif record is not None:
                reason = str(record.get("error", "failed"))[:500]
                if reason.startswith("WireError"):
                    result.flag("suspicious", f"{spec.name}: {reason.split(': ', 1)[-1]}")
                elif reason.startswith("MemoryError"):
                    result.flag("memory", f"{spec.name}: MemoryError")
            result.checks.append(CheckResult(spec.name, spec.points, passed, reason, spec.doc,
                                             item.hidden))
        return result


def missing_solutions_message(exercises: list[Exercise]) -> str:
    """Why grading with fresh inputs cannot run without the reference solutions."""
    names = ", ".join(str(ex.solution_file) for ex in exercises)
    return (f"grading a class draws fresh check inputs each run, and only the reference "
            f"solutions can compute their expected outputs: missing {names}. Grade from the "
            "instructor's copy of the course (with solutions/), not from a student edition.")


def _outputs(run: sandbox.ChildRun, checks: list[LoadedCheck]) -> tuple[dict, list[str]]:
    """Decoded outputs of a trusted (reference) run, and what went wrong in it."""
    by_key = {(c.source, c.check.name): c for c in checks}
    outputs, problems = {}, []
    for record in run.records:
        if record.get("type") == "import" and not record.get("ok"):
            problems.append(f"import failed: {record.get('error')}")
        if record.get("type") == "result":
            item = by_key.get((record.get("source"), record.get("check")))
            if item is not None and record.get("ok"):
                outputs[(item.source, item.check.name)] = wire.decode(record["value"])
            elif item is not None:
                problems.append(f"{item.check.name}: {record.get('error')}")
    if run.timed_out:
        problems.append("timeout")
    if run.memory_exceeded:
        problems.append("memory cap exceeded")
    if not any(r.get("type") == "done" for r in run.records) and not problems:
        tail = run.output[-2000:].decode("utf-8", "replace").strip().splitlines()
        problems.append(f"the child stopped early (exit code {run.returncode})"
                        + (f": {tail[-1]}" if tail else ""))
    return outputs, problems


def _flag_run(run: sandbox.ChildRun, result: ExerciseResult, limits: sandbox.Limits) -> None:
    if run.timed_out:
        result.flag("timeout", f"stopped after {limits.timeout:g} s")
    if run.memory_exceeded:
        result.flag("memory", f"exceeded the {limits.memory_mb} MiB memory cap")
    if run.processes_exceeded:
        result.flag("suspicious", f"hit the cap of {limits.max_processes} processes/threads")
    done = [r for r in run.records if r.get("type") == "done"]
    leftovers = max([run.leftovers] + [r.get("children", 0) for r in done
                                       if type(r.get("children")) is int])
    if leftovers:
        result.flag("suspicious", f"left {leftovers} process(es) running after it ended "
                                  "(killed)")
    if run.output_bytes > limits.output_cap:
        result.flag("suspicious", f"printed {run.output_bytes} bytes (only "
                                  f"{limits.output_cap} kept)")
    if FAKE_RESULTS.search(run.output):
        result.flag("suspicious", "printed text that looks like grading results (ignored)")
    if run.bad_lines:
        result.flag("suspicious", "wrote malformed records to the result channel")
    for record in run.records:
        if record.get("type") == "tamper" and record.get("names"):
            names = [str(n) for n in record["names"]][:5]
            result.flag("suspicious", "changed " + ", ".join(names))
        if record.get("type") == "import" and not record.get("ok"):
            result.flag("crashed", f"import failed: {str(record.get('error'))[:300]}")


def _stop_reason(run: sandbox.ChildRun, result: ExerciseResult) -> str:
    """Why a check has no result (the reason shown when its record is missing)."""
    if run.timed_out:
        return "not finished: timeout"
    if run.memory_exceeded:
        return "not finished: memory cap exceeded"
    for record in run.records:
        if record.get("type") == "import" and not record.get("ok"):
            return f"module import failed: {str(record.get('error'))[:300]}"
    if not any(r.get("type") == "done" for r in run.records):
        result.flag("crashed", f"the process exited (code {run.returncode}) before reporting "
                               "all results")
        return f"no result: the process exited (code {run.returncode})"
    return "no result"
