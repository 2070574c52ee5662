"""Grade one exercise source: find the exercises, run the child, judge against the reference.

Exercises are discovered from the check modules (every ``checks/ex*.py``), so a new exercise
plugs in by adding its check module and its reference in ``solutions/``.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import types
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.grading import references, sandbox, wire
from course_lib.grading.judge import flag_for, judge_outputs
from course_lib.grading.spec import Check, collect

PACKAGE_DIR = Path(__file__).resolve().parent
FAKE_RESULTS = re.compile(rb"\bPASS(ED)?\b|\"passed\"\s*:|\"score\"\s*:|\"ok\"\s*:\s*true", re.I)


class GradingError(RuntimeError):
    """The grader itself cannot grade (no such exercise, a reference that fails its checks)."""


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
    """Grades sources of exercises; reference outputs are computed once and cached."""

    def __init__(self, exercises: list[Exercise], limits: sandbox.Limits | None = None):
        self.exercises = {ex.name: ex for ex in exercises}
        self.limits = limits or sandbox.Limits()
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
                        seed = zlib.crc32(f"{exercise.name}/{index}/{found.name}".encode())
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
        with the release (refused when the checks changed since)."""
        with self._reference_locks[exercise.name]:
            if exercise.name not in self._references:
                checks = self.checks(exercise)
                if exercise.solution_file.is_file():
                    outputs = self._run_reference(exercise)
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

    def check_source(self, exercise: Exercise) -> str:
        """The public check module's source, as the grader loaded it (what a release hashes)."""
        self.checks(exercise)
        return self._sources[exercise.name][0]

    def grade(self, exercise: Exercise, source: str) -> ExerciseResult:
        """Run ``source`` (the student's exercise file) through the checks and judge it."""
        return self.judge(exercise, self.run(exercise, source))

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
                    passed, reason = judge_outputs(output, reference[(item.source, spec.name)],
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
