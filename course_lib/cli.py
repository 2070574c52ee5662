"""The `course` command (also `python -m course_lib`).

    course doctor                      what this machine has, and whether the course can run
    course data list|fetch|verify|path datasets and where they come from
    course run [CHAPTER ...] [--fast]  execute chapter notebooks headless, in a copy
    course lab [JUPYTER ARGS ...]      JupyterLab on chapters/ (what `make lab` starts)
    course grade ...                   check exercises (students) or grade a class (instructors)
    course pretrain [NAME ...]         list or train the models the course pre-trains itself
    course study imdb                  run chapter 09's study (resumable)
"""

from __future__ import annotations

import argparse
import sys


def _cmd_doctor(args: argparse.Namespace) -> int:
    from course_lib.doctor import run_doctor

    return run_doctor()


def _cmd_data(args: argparse.Namespace) -> int:
    from course_lib import data

    if args.data_command == "list":
        print(f"{'dataset':15s} {'full data from':20s} {'fast-mode sample':17s} path")
        for name in data.datasets():
            info = data.describe(name)
            sample = "shipped" if info.get("sample") else "none"
            print(f"{name:15s} {info['source']:20s} {sample:17s} {info.get('path') or ''}")
            for split, where in data.describe_splits(name).items():
                print(f"  {split:13s} {where}")
        return 0
    if args.data_command == "path":
        print(data.path(args.name))
        return 0
    if args.data_command == "fetch":
        try:
            print(data.fetch(args.name))
        except data.DatasetUnavailable as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return 0
    # verify
    results = data.verify(args.name)
    bad = 0
    for result in results:
        status = "ok" if result["ok"] else "BAD"
        bad += not result["ok"]
        print(f"{status:4s} {result['name']:15s} {result['kind']:11s} {result['path']}  {result.get('reason', '')}")
    if not results:
        print("nothing to verify: no local copy or cached file found")
    return 1 if bad else 0


def _cmd_run(args: argparse.Namespace) -> int:
    from course_lib.notebooks import run_chapters

    return run_chapters(args.chapters, fast=args.fast, timeout=args.timeout, output_dir=args.output_dir)


def _cmd_publish(args: argparse.Namespace) -> int:
    from course_lib.publish import publish

    return publish(args.chapters, from_run=args.from_run, timeout=args.timeout)


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from course_lib import pretrained

    fast = True if args.fast else None
    return pretrained.run_cli(args.names, fast=fast, force=args.force, list_only=args.list)


def _cmd_study(args: argparse.Namespace) -> int:
    import os

    if args.fast:
        os.environ["COURSE_FAST"] = "1"
    from course_lib import imdb_study

    return imdb_study.run_cli(args.out, methods=args.methods, budgets=args.budgets)


def _cmd_lab(args: argparse.Namespace) -> int:
    from course_lib.notebooks import start_lab

    return start_lab(args.jupyter_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course",
        description="The deep-learning course: check your set-up, data, notebooks and exercises.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    doctor = commands.add_parser(
        "doctor",
        help="show versions, backend, GPUs and data sources; exit 1 if the course cannot run",
        description="Show versions, Keras backend, GPUs, where each dataset would come from, "
        "and whether the cache is writable. Exit code 1 if the course cannot run.",
    )
    doctor.set_defaults(func=_cmd_doctor)

    data_parser = commands.add_parser(
        "data", help="list, fetch, verify datasets", description="Datasets used by the course."
    )
    data_commands = data_parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    data_commands.add_parser("list", help="each dataset and where it would come from now")
    fetch = data_commands.add_parser("fetch", help="download (or copy) a dataset into the cache")
    fetch.add_argument("name", help="dataset name, e.g. mnist")
    verify = data_commands.add_parser("verify", help="check sha256 of local and cached files")
    verify.add_argument("name", nargs="?", default=None, help="one dataset (default: all)")
    path = data_commands.add_parser("path", help="print the file a dataset is read from")
    path.add_argument("name", help="dataset name, e.g. mnist")
    data_parser.set_defaults(func=_cmd_data)

    run = commands.add_parser(
        "run",
        help="execute chapter notebooks headless (in a copy)",
        description="Execute chapter notebooks top to bottom in a copy (your notebooks are never "
        "modified) and print a summary table. CHAPTER is a number (00, 3) or a file name.",
    )
    run.add_argument("chapters", nargs="*", metavar="CHAPTER", help="chapters to run (default: all)")
    run.add_argument("--fast", action="store_true", help="small data, few epochs (COURSE_FAST=1)")
    run.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    run.add_argument(
        "--output-dir", default=None, help="where executed copies go (default: a new temporary folder)"
    )
    run.set_defaults(func=_cmd_run)

    publish = commands.add_parser(
        "publish",
        help="maintainers: store each chapter's full-mode run in chapters/",
        description="Run chapters in full mode with the shipped pre-trained models and store "
        "their outputs and a record of the run (metadata course.run) in chapters/; the text "
        "cells are kept. Refuses a run that failed, ran in fast mode, ran other code, or loaded "
        "a pre-trained model that is not the shipped one. The only command that writes into "
        "chapters/.",
    )
    publish.add_argument("chapters", nargs="*", metavar="CHAPTER", help="chapters (default: all)")
    publish.add_argument("--from-run", default=None, metavar="DIR",
                         help="adopt the executed copies `course run --output-dir DIR` made "
                         "(same checks) instead of running again")
    publish.add_argument("--timeout", type=int, default=5000, help="seconds per cell (default 5000)")
    publish.set_defaults(func=_cmd_publish)

    lab = commands.add_parser(
        "lab",
        usage="course lab [-h] [JUPYTER_ARGS ...]",
        help="start JupyterLab on chapters/",
        description="Start JupyterLab on the chapters folder. Extra arguments go to jupyter lab, "
        "e.g. `course lab --no-browser --port 8899`.",
    )
    lab.set_defaults(func=_cmd_lab, jupyter_args=[])

    pretrain = commands.add_parser(
        "pretrain",
        help="list or train the models the course pre-trains itself (cached with a checksum)",
        description="Pre-train the course's own source models once and keep them in the course cache "
        "with their sha256 and recipe (chapters 07-09 load them). Without NAME: list them and what is "
        "cached. A corrupt or stale cached model is refused, kept aside, and trained anew.",
    )
    pretrain.add_argument("names", nargs="*", metavar="NAME", help="models to train (default: list)")
    pretrain.add_argument("--fast", action="store_true", help="the small fast-mode version")
    pretrain.add_argument("--force", action="store_true", help="train again even if a valid one is cached")
    pretrain.add_argument("--list", action="store_true", help="list models and their cache status")
    pretrain.set_defaults(func=_cmd_pretrain)

    study = commands.add_parser(
        "study",
        help="run chapter 09's study (every method, label budget and seed); resumable",
        description="Chapter 09's study: every method at every label budget and seed on the same "
        "labelled subsets, chosen on the validation reviews, scored once on the test reviews. "
        "Hours on 2 CPU cores in full mode; the records file is saved after each run, and a "
        "second call runs only what it lacks. The course ships its own records "
        "(course_lib/studies/imdb.json), which chapter 09 shows.",
    )
    study.add_argument("name", choices=["imdb"], help="the study (chapter 09: imdb)")
    study.add_argument("--out", default=None,
                       help="records file (default: studies/imdb-<full|fast>.json in the cache)")
    study.add_argument("--fast", action="store_true", help="the smoke-test plan on the samples")
    study.add_argument("--methods", nargs="*", default=None, help="only these methods")
    study.add_argument("--budgets", nargs="*", default=None,
                       help="only these budgets (labels per class, or all)")
    study.set_defaults(func=_cmd_study)

    from course_lib.grading.command import add_grade_arguments, run_grade_command

    grade = commands.add_parser(
        "grade",
        help="check your exercises, or grade a class (--submissions)",
        description="Students: grade exercises/ and print a table per exercise. Instructors: grade "
        "a folder of submissions into a gradebook (see README, 'Grading').",
    )
    add_grade_arguments(grade)
    grade.set_defaults(func=run_grade_command)

    from course_lib.release import add_release_arguments, run_release_command

    release = commands.add_parser(
        "release",
        help="write the student edition (no solutions) to a new folder",
        description="Instructors: write the student edition of the course to OUT: chapters, "
        "course_lib, exercise stubs, tests and reference outputs, without solutions or hidden "
        "checks (see README, 'Grading').",
    )
    add_release_arguments(release)
    release.set_defaults(func=run_release_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "lab":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.jupyter_args = extra  # `course lab` passes unknown arguments on to jupyter lab
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
