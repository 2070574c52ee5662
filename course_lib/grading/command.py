"""``course grade``: students check their exercises, instructors grade a class.

Students::

    course grade [exNN ...] [--path DIR] [--json]

Instructors::

    course grade --submissions DIR|BULK.zip --out gradebook.csv [--feedback DIR]
                 [--hidden-tests DIR] [--roster CSV] [--export canvas|moodle|csv]
                 [--similarity S] [--jobs N] [--timeout S] [--memory MB] [--seed S]

A student's self-check uses fixed check inputs (judged against the reference solutions or the
reference outputs shipped with the student edition). Grading a class draws fresh inputs: a
secret run seed (``--seed S`` to reproduce a run) is mixed into every check's seed and the
reference solutions are run on the same inputs; the seed is written to ``<gradebook>-meta.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from course_lib.grading import batch, engine, export, intake, report, sandbox, similarity
from course_lib.grading.engine import ExerciseResult, GradingError


def add_grade_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the student and instructor options of ``course grade`` to ``parser``."""
    parser.add_argument("exercises", nargs="*", metavar="exNN",
                        help="exercises to grade, e.g. ex02 (default: all)")
    parser.add_argument("--path", type=Path, default=None,
                        help="folder with your exNN_*.py files (default: the course's exercises/)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    teacher = parser.add_argument_group("instructors")
    teacher.add_argument("--submissions", type=Path, metavar="DIR",
                         help="folder with one sub-folder or .zip per student, or a Canvas or "
                              "Moodle bulk-download zip (also inside the folder)")
    teacher.add_argument("--out", type=Path, metavar="CSV", help="gradebook to write")
    teacher.add_argument("--feedback", type=Path, metavar="DIR",
                         help="write one Markdown feedback file per student here")
    teacher.add_argument("--hidden-tests", type=Path, metavar="DIR",
                         help="folder with hidden check modules named like the exercises")
    teacher.add_argument("--roster", type=Path, metavar="CSV",
                         help="class list: a Canvas gradebook export, a Moodle grading worksheet "
                              "or a CSV with a 'student' column")
    teacher.add_argument("--export", action="append", choices=export.FORMATS, default=[],
                         help="also write a grades file for the LMS next to --out "
                              "(gradebook-canvas.csv, gradebook-moodle.csv, gradebook-grades.csv)")
    teacher.add_argument("--similarity", type=float, default=similarity.THRESHOLD, metavar="S",
                         help="report pairs of submissions at least this alike, 0..1 (default "
                              f"{similarity.THRESHOLD}; 1.01 turns the report off)")
    teacher.add_argument("--jobs", type=int, default=1, metavar="N",
                         help="submissions graded in parallel (default 1)")
    teacher.add_argument("--timeout", type=float, default=60.0, metavar="S",
                         help="wall-clock limit per exercise and submission (default 60)")
    teacher.add_argument("--memory", type=int, default=2048, metavar="MB",
                         help="memory cap per exercise and submission (default 2048)")
    teacher.add_argument("--seed", default=None, metavar="S",
                         help="run seed of the check inputs, 0 to 2**63-1, to reproduce an "
                              "earlier grading run (default: a new secret seed each run; the "
                              "seed is written to <gradebook>-meta.json)")


def run_grade_command(args: argparse.Namespace) -> int:
    """Run ``course grade``; 0 when grading ran (whatever the scores), 2 on a usage error."""
    limits = sandbox.Limits(timeout=args.timeout, memory_mb=args.memory)
    try:
        if args.submissions is not None:
            return _grade_class(args, limits)
        if (args.out or args.feedback or args.hidden_tests or args.roster or args.export
                or args.seed is not None):
            raise GradingError("--out, --feedback, --hidden-tests, --roster, --export and --seed "
                               "need --submissions (checking your own exercises always uses "
                               "the same inputs)")
        results = grade_exercises(args.exercises, args.path, limits)
    except (GradingError, OSError) as error:
        print(f"course grade: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(report.json_report(results))
    else:
        print("\n\n".join(report.text_table(r) for r in results))
    return 0


def grade_exercises(names: list[str] | None = None, path: Path | None = None,
                    limits: sandbox.Limits | None = None) -> list[ExerciseResult]:
    """Grade the student's own exercise files (``path`` or the course's ``exercises/``) with
    the fixed check inputs (a self-check: the shipped reference outputs apply)."""
    folder = Path(path) if path else engine.exercises_dir()
    exercises = engine.select(engine.discover(), names)
    grader = engine.Grader(exercises, limits)
    results = []
    with ThreadPoolExecutor(max_workers=2) as pool:  # reference and student run side by side
        for ex in exercises:
            pool.submit(grader.reference, ex)
        for ex in exercises:
            file = folder / f"{ex.name}.py"
            try:
                source = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                result = ExerciseResult(ex.name)
                result.flag("malformed", f"cannot read {file}: {error}")
                result.checks = [engine.missing_check(c, "exercise file missing or unreadable")
                                 for c in grader.checks(ex)]
            else:
                result = grader.grade(ex, source)
            results.append(result)
    return results


def _grade_class(args: argparse.Namespace, limits: sandbox.Limits) -> int:
    if args.out is None:
        raise GradingError("--submissions needs --out gradebook.csv")
    try:
        run_seed = engine.new_run_seed() if args.seed is None else engine.parse_seed(args.seed)
    except ValueError as error:
        raise GradingError(f"--seed: {error}") from None
    source = args.submissions
    if not source.is_dir() and not (source.is_file() and source.suffix == ".zip"):
        raise GradingError(f"--submissions {source} is neither a folder nor a .zip")
    if args.hidden_tests is not None and not args.hidden_tests.is_dir():
        raise GradingError(f"--hidden-tests {args.hidden_tests} is not a folder")
    try:
        roster = export.read_roster(args.roster) if args.roster is not None else None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise GradingError(f"--roster: {error}") from None
    exercises = engine.select(engine.discover(args.hidden_tests), args.exercises)
    missing = [ex for ex in exercises if not ex.solution_file.is_file()]
    if missing:
        raise GradingError(engine.missing_solutions_message(missing))
    grader = engine.Grader(exercises, limits, run_seed=run_seed)
    for folder in (source if source.is_dir() else source.parent, args.out.resolve().parent,
                   args.feedback):
        if folder is not None and Path(folder).is_dir() and not any(
                _inside(path, Path(folder).resolve()) for path in _needed_by_child()):
            grader.hide.append(str(Path(folder).resolve()))  # unless the child needs it
    if args.feedback is not None:
        args.feedback.mkdir(parents=True, exist_ok=True)
        grader.hide.append(str(args.feedback.resolve()))
    start = time.monotonic()
    subs, unassigned = intake.collect(source, [ex.name for ex in exercises])
    students = batch.grade_submissions(subs, grader, exercises, jobs=args.jobs)
    pairs = similarity.similar_pairs(
        subs, {ex.name: _stub(ex) for ex in exercises}, args.similarity)
    if pairs:
        for sub, student in zip(subs, students, strict=True):
            student.flags += similarity.flags_for(pairs, similarity.who(sub))
    book = export.match_roster(students, roster, grader, exercises)
    students = [student for _, student in book.rows]
    backup = batch.write_atomic(args.out, batch.gradebook_csv(students, exercises))
    meta_path = meta_path_for(args.out)
    batch.write_atomic(meta_path, run_metadata(grader, exercises, args))
    written = []
    for kind in dict.fromkeys(args.export):
        path = export.export_path(args.out, kind)
        batch.write_atomic(path, export.EXPORTERS[kind](book, grader, exercises))
        written.append(path)
    report_path = None
    if args.feedback is not None:
        batch.write_feedback(students, args.feedback)
        report_path = similarity.write_report(pairs, args.feedback, args.similarity)
    wall = time.monotonic() - start
    if args.json:
        print(json.dumps({"students": [
            {"student": s.student, "id": s.student_id, "total": s.total,
             "exercises": {n: r.score for n, r in s.exercises.items()},
             "flags": [{"kind": k, "reason": r} for k, r in s.all_flags()]} for s in students],
            "seed": run_seed, "meta": str(meta_path),
            "unassigned": unassigned, "exports": [str(p) for p in written],
            "similar": [{"exercise": p.exercise, "first": p.first, "second": p.second,
                         "similarity": round(p.similarity, 4)} for p in pairs]}, indent=2))
        return 0
    top = sum(c.check.points for ex in exercises for c in grader.checks(ex))
    for s in students:
        flags = ", ".join(sorted({kind for kind, _ in s.all_flags()}))
        who = f"{s.student} ({s.student_id})" if s.student_id else s.student
        print(f"{who}: {s.total:g}/{top:g}" + (f"  [{flags}]" if flags else ""))
    for s in students:
        for kind, reason in s.flags:
            if kind in ("unmapped", "resubmitted"):
                print(f"  {kind}: {s.student}: {reason}")
    for name in unassigned:
        print(f"  not mapped to any student: {name}")
    outsiders = book.not_on_roster
    if outsiders:
        print(f"not on the roster ({len(outsiders)}, left out of the LMS files): "
              + ", ".join(s.student for s in outsiders))
    if pairs:
        print(f"similar submissions: {len(pairs)} pair(s) at >= {args.similarity:.0%}"
              + (f" (see {report_path})" if report_path else ""))
    print(f"graded {len(subs)} submissions in {wall:.1f} s; gradebook: {args.out}"
          + (f" (previous one kept as {backup})" if backup else "")
          + "".join(f"; {path}" for path in written))
    print(f"fresh check inputs of run seed {run_seed} (in {meta_path}; --seed {run_seed} "
          "reproduces this grading)")
    return 0


def meta_path_for(gradebook: Path) -> Path:
    """Where a grading run's metadata goes, next to the gradebook: ``gradebook-meta.json``."""
    return Path(gradebook).with_name(f"{Path(gradebook).stem}-meta.json")


def run_metadata(grader: engine.Grader, exercises: list[engine.Exercise],
                 args: argparse.Namespace) -> str:
    """The metadata of a grading run (JSON text): the run seed that reproduces it with
    ``--seed``, when it ran, its limits, and the sha256 of every check module and reference
    solution it used (a re-run with other checks would not reproduce it)."""
    from course_lib.grading.references import checks_hash

    def digest(path: Path | None) -> str | None:
        return checks_hash(path.read_text(encoding="utf-8")) if path is not None else None

    record = {
        "format": 1,
        "seed": grader.run_seed,
        "reproduce": f"--seed {grader.run_seed}",
        "graded_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "submissions": str(args.submissions),
        "timeout_s": grader.limits.timeout,
        "memory_mb": grader.limits.memory_mb,
        "exercises": {ex.name: {"checks_sha256": digest(ex.checks_file),
                                "hidden_checks_sha256": digest(ex.hidden_file),
                                "solution_sha256": digest(ex.solution_file)}
                      for ex in exercises},
    }
    return json.dumps(record, indent=2) + "\n"


def _stub(exercise: engine.Exercise) -> str:
    path = engine.exercises_dir() / f"{exercise.name}.py"
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _needed_by_child() -> list[Path]:
    return [Path(p).resolve() for p in (sys.prefix, sys.base_prefix, engine.PACKAGE_DIR,
                                        *sandbox.site_directories())]


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def main(argv: list[str] | None = None) -> int:
    """``python -m course_lib.grading``: the same options as ``course grade``."""
    parser = argparse.ArgumentParser(prog="python -m course_lib.grading", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_grade_arguments(parser)
    return run_grade_command(parser.parse_args(argv))
