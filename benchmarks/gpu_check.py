"""Run the GPU check's parts under time caps and write one summary table.

Started by ``benchmarks/gpu_check.sh`` (which installs the carried wheels and sets the
environment first): time to accuracy for both recipes, every chapter in full mode with ``course
run``, then the input-pipeline profile with the time left; one summary table at the end.

Every part runs as a child process with a time cap inside one overall budget (the device's
10-minute command limit), so a part that runs long is reported as such ("timeout after N s",
"not run: no time left") and the table is always written. Chapters are found at run time
(``chapters/NN_*.ipynb``) and run ``--jobs`` at a time.

Output folder (``--out``; ``$OUT`` on the device): ``summary.md`` (the table, also printed at
the end), ``gpu_check.log`` (every part's full output), ``gpu_utilisation.csv`` (nvidia-smi
samples, when there is one) and ``executed_chapters.tar.gz`` (the executed notebooks).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("tta", "chapters", "profile")  # in this order; the profile gets what time is left
# Tiny settings of --dry-run (CPU, CI): the shipped sample, a narrow model, one epoch each.
DRY_TTA = ["--sample", "--limit", "512", "--test-limit", "384", "--widths", "8,8,8,8",
           "--max-epochs", "1", "--course-epochs", "1"]  # 384 = 3 x 128: one eval shape
DRY_PROFILE = ["--sample", "--widths", "8,8,8,8", "--batch-size", "64", "--steps", "3",
               "--warmup", "1", "--repeats", "1"]


@dataclass
class Capped:
    """Outcome of one capped child process."""

    status: str  # "ok", "failed (exit N)", "timeout after N s", "not run: ..."
    seconds: float
    output: str = ""


def run_capped(command: list[str], cap: float, env: dict | None = None) -> Capped:
    """Run ``command`` for at most ``cap`` seconds (its whole process group is stopped then)."""
    if cap <= 0:
        return Capped("not run: no time left", 0.0)
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
            start_new_session=True, text=True,
        )
        try:
            code = process.wait(timeout=cap)
            status = "ok" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            _stop_group(process)
            status = f"timeout after {cap:.0f} s"
        log.seek(0)
        output = log.read()
    return Capped(status, time.perf_counter() - start, output)


def _stop_group(process: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


class GpuSampler:
    """Polls nvidia-smi every ``interval`` s in a thread: (time, utilisation %, memory MiB)."""

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.samples: list[tuple[float, float, float]] = []
        self.available = shutil.which("nvidia-smi") is not None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        if self.available:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.available:
            self._thread.join(timeout=5)

    def _poll(self) -> None:
        query = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                 "--format=csv,noheader,nounits"]
        while not self._stop.is_set():
            try:
                text = subprocess.run(query, capture_output=True, text=True, timeout=5).stdout
                util, memory = (float(v) for v in text.splitlines()[0].split(",")[:2])
                self.samples.append((time.time(), util, memory))
            except (subprocess.SubprocessError, ValueError, IndexError, OSError):
                pass
            self._stop.wait(self.interval)

    def between(self, start: float, end: float) -> str:
        """'mean U %, max V %, memory up to M MiB' over [start, end], or '' without samples."""
        chosen = [s for s in self.samples if start <= s[0] <= end]
        if not chosen:
            return ""
        utils = [s[1] for s in chosen]
        return (f"GPU utilisation mean {statistics.mean(utils):.0f} %, max {max(utils):.0f} %, "
                f"memory up to {max(s[2] for s in chosen):,.0f} MiB ({len(chosen)} samples)")


# ---------------------------------------------------------------- time to accuracy
@dataclass
class RecipeRun:
    label: str
    values: dict[str, str] = field(default_factory=dict)
    last_epoch: str = ""


def parse_time_to_accuracy(output: str) -> tuple[list[RecipeRun], dict[str, str]]:
    """Runs (plain, course seed N, ...) and the overall lines of time_to_accuracy.py's output."""
    runs: list[RecipeRun] = []
    overall: dict[str, str] = {}
    for line in output.splitlines():
        if line.startswith("run: "):
            runs.append(RecipeRun(line[5:].strip()))
        elif line.startswith("epoch ") and runs:
            runs[-1].last_epoch = line.strip()
        elif line.startswith("ratio plain/course = "):
            overall["ratio"] = line.split("=", 1)[1].strip()
        elif re.match(r"^(plain|course) [a-z_]+: ", line):
            name, rest = line.split(" ", 1)
            key, value = rest.split(": ", 1)
            if key in ("seconds_to_target_median", "reached_target", "seconds_to_target_per_seed"):
                overall[key] = value.strip()
            elif runs and runs[-1].label.startswith(name):
                runs[-1].values[key] = value.strip()
        elif line.startswith(("keras: ", "task: ", "data: ")):
            key, value = line.split(": ", 1)
            overall[key] = value.split(" course: ")[0].strip()
    return runs, overall


def tta_table(runs: list[RecipeRun], overall: dict[str, str], part: Capped) -> list[str]:
    lines = ["| recipe | seconds to target | epochs | accuracy | examples/s | first epoch s | "
             "epoch s | status |", "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        v = run.values
        if not v:  # killed while training
            lines.append(f"| {run.label} | did not finish | | | | | | {part.status}; last: "
                         f"{run.last_epoch or 'no epoch finished'} |")
            continue
        if v.get("seconds_to_target", "not reached") != "not reached":
            status = "target reached"
        elif v.get("stopped_by_time_limit") == "True":
            status = f"not reached: stopped at the {overall.get('time_limit', '')} s limit"
        else:
            status = "not reached in its epochs"
        epochs = v.get("epochs_to_target")
        epochs = epochs if epochs not in (None, "None") else f"{v.get('epochs_run')} run"
        lines.append(
            f"| {run.label} | {v.get('seconds_to_target', '?')} | {epochs} | "
            f"{v.get('final_accuracy', '?')} | {v.get('examples_per_second', '?')} | "
            f"{v.get('first_epoch_seconds', '?')} | {v.get('epoch_seconds', '?')} | {status} |"
        )
    if "seconds_to_target_median" in overall:
        lines.append(f"| course median | {overall['seconds_to_target_median']} | | | | | | "
                     f"{overall.get('reached_target', '')} |")
    lines.append("")
    lines.append(f"ratio plain/course = {overall.get('ratio', 'n/a (not printed)')}")
    return lines


def ratio_lines(output: str) -> list[str]:
    """The ``name: value`` and ``ratio ... = x`` lines of the profiler's output."""
    keep = ("steps_per_second_", "examples_per_second_", "pipeline_", "ratio ", "model: ")
    return [f"- {line.strip()}" for line in output.splitlines() if line.startswith(keep)]


# ---------------------------------------------------------------- chapters
def discover_chapters(selection: str) -> list[str]:
    """Chapter stems present now (``chapters/NN_*.ipynb``), all or those named in selection
    ("00,03")."""
    found = sorted(p.stem for p in (ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    if selection == "all":
        return found
    wanted = [s.strip() for s in selection.split(",") if s.strip()]
    return [stem for stem in found if any(stem.startswith(w.zfill(2)) for w in wanted)]


def chapter_row(stem: str, part: Capped) -> str:
    """'| chapter | seconds | status |': seconds from course run's own table when it printed it."""
    seconds, status = f"{part.seconds:.1f}", part.status
    match = re.search(rf"^{re.escape(stem)}\s+(ok|failed)\s+([\d.]+)\s*(.*)$", part.output, re.M)
    if match:
        seconds = match.group(2)
        status = "ok" if match.group(1) == "ok" else f"failed: {match.group(3).strip()}"
    elif part.status.startswith("not run"):
        seconds = "-"
    return f"| {stem} | {seconds} | {status.replace('|', '/')} |"


# ---------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for summary.md and the logs")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, one chapter fast")
    parser.add_argument("--budget", type=float, help="seconds for everything (560; dry run 300)")
    parser.add_argument("--parts", default=",".join(PARTS), help="tta,chapters,profile")
    parser.add_argument("--seeds", help="course recipe seeds (0,1,2; dry run 0)")
    parser.add_argument("--time-limit", type=float, default=100.0,
                        help="seconds cap of each recipe run in time_to_accuracy.py")
    parser.add_argument("--tta-cap", type=float, default=330.0, help="time_to_accuracy.py cap")
    parser.add_argument("--profile-cap", type=float, default=90.0, help="profiler cap")
    parser.add_argument("--chapters", help="'all' or e.g. 00,03 (all; dry run 00)")
    parser.add_argument("--chapter-cap", type=float, default=300.0, help="seconds per chapter")
    parser.add_argument("--jobs", type=int, help="chapters at a time (3; dry run 1)")
    parser.add_argument("--pretrain-cap", type=float, default=200.0,
                        help="seconds for `course pretrain` before chapters 07-09")
    parser.add_argument("--tta-args", default="", help="extra time_to_accuracy.py arguments")
    args = parser.parse_args(argv)
    dry = args.dry_run
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if set(parts) - set(PARTS):
        parser.error(f"--parts takes {', '.join(PARTS)}, got {args.parts!r}")
    budget = args.budget or (300.0 if dry else 560.0)
    seeds = args.seeds or ("0" if dry else "0,1,2")
    selection = args.chapters or ("00" if dry else "all")
    jobs = args.jobs or (1 if dry else 3)
    start = float(os.environ.get("GPU_CHECK_START", time.time()))
    deadline = start + budget
    reserve = 10.0  # for the summary and the archive

    def left() -> float:
        return deadline - reserve - time.time()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    env = {**os.environ, "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "jax"),
           "PYTHONUNBUFFERED": "1"}
    env.setdefault("COURSE_CACHE", str(work / "cache"))
    env.pop("COURSE_FAST", None)  # full mode unless a chapter run asks for --fast
    py = sys.executable
    log = open(out / "gpu_check.log", "w")  # kept open for the whole run

    def record(title: str, part: Capped) -> None:
        log.write(f"\n===== {title}: {part.status}, {part.seconds:.1f} s\n{part.output}\n")
        log.flush()
        print(f"[{time.time() - start:5.0f} s] {title}: {part.status} ({part.seconds:.1f} s)",
              flush=True)

    mode = "dry run (CPU, tiny sizes, fast mode)" if dry else "full"
    summary = [f"# GPU check ({mode})", ""]
    with GpuSampler() as sampler:
        info = run_capped([py, "-c", (  # versions without importing Keras (a second faster)
            "import os, platform, importlib.metadata as m; print('python', "
            "platform.python_version()); print('keras', m.version('keras'), 'backend', "
            "os.environ['KERAS_BACKEND']); import jax; print('jax', jax.__version__, "
            "'devices', jax.devices())")], min(60.0, left()), env)
        record("environment", info)
        smi = ""
        if shutil.which("nvidia-smi"):
            smi = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap",
                 "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
        summary += [f"- {line}" for line in info.output.strip().splitlines()[-3:]]
        summary += [f"- nvidia-smi: {smi or 'none'}", f"- budget {budget:.0f} s, parts: "
                    f"{', '.join(parts)}; chapters {jobs} at a time", ""]

        if "tta" in parts:
            command = [py, "benchmarks/time_to_accuracy.py", "--seeds", seeds,
                       "--time-limit", str(args.time_limit), *(DRY_TTA if dry else []),
                       *args.tta_args.split()]
            t0 = time.time()
            part = run_capped(command, min(args.tta_cap, left()), env)
            record("time_to_accuracy", part)
            runs, overall = parse_time_to_accuracy(part.output)
            overall["time_limit"] = f"{args.time_limit:g}"
            summary += ["## Time to accuracy", "",
                        f"`{' '.join(command[1:])}`: {part.status}, {part.seconds:.0f} s; "
                        f"task {overall.get('task', '?')}", ""]
            summary += tta_table(runs, overall, part)
            summary += [sampler.between(t0, time.time()), ""]

        if "chapters" in parts:
            stems = discover_chapters(selection)
            executed = work / "executed"
            chapter_env = dict(env)
            if jobs > 1:  # several JAX processes share the GPU: allocate on demand
                chapter_env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"

            # Chapters 07-09 load models the course pre-trains itself; train them once, one
            # after the other, before chapters run side by side (two chapters must not train
            # the same model into the same cache at the same time).
            if not dry and any(int(stem[:2]) >= 7 for stem in stems):
                from course_lib.pretrained import REGISTRY

                names = sorted(REGISTRY)
                part = run_capped([py, "-m", "course_lib", "pretrain", *names],
                                  min(args.pretrain_cap, left()), chapter_env)
                record("pretrain " + " ".join(names), part)
                summary += ["## Pre-trained models (`course pretrain`, full mode)", "",
                            f"{', '.join(names)}: {part.status}, {part.seconds:.0f} s", "",
                            *[f"    {line}" for line in part.output.splitlines()
                              if "trained in" in line], ""]

            def run_chapter(stem: str) -> Capped:
                command = [py, "-m", "course_lib", "run", stem, "--output-dir", str(executed)]
                if dry:
                    command.append("--fast")
                cap = min(args.chapter_cap, left())
                return run_capped(command, cap if cap >= 15 else 0, chapter_env)

            t0 = time.time()
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                results = list(pool.map(run_chapter, stems))
            rows = []
            for stem, part in zip(stems, results, strict=True):
                record(f"chapter {stem}", part)
                rows.append(chapter_row(stem, part))
            how = "fast mode" if dry else "full mode"
            summary += [f"## Chapters ({how}, `course run`, KERAS_BACKEND="
                        f"{env['KERAS_BACKEND']}, {jobs} at a time, cap {args.chapter_cap:.0f} s "
                        "each)", "", "| chapter | seconds | status |", "|---|---|---|", *rows,
                        "", sampler.between(t0, time.time()), ""]
            if executed.is_dir():
                with tarfile.open(out / "executed_chapters.tar.gz", "w:gz") as archive:
                    archive.add(executed, arcname="executed_chapters")
        if "profile" in parts:
            command = [py, "benchmarks/profile_input_pipeline.py", *(DRY_PROFILE if dry else [])]
            t0 = time.time()
            part = run_capped(command, min(args.profile_cap, left()), env)
            record("profile_input_pipeline", part)
            summary += ["## Input pipeline vs step (course recipe)", "",
                        f"`{' '.join(command[1:])}`: {part.status}, {part.seconds:.0f} s", ""]
            summary += ratio_lines(part.output) + [sampler.between(t0, time.time()), ""]

        if sampler.samples:
            with open(out / "gpu_utilisation.csv", "w") as csv:
                csv.write("unix_time,utilisation_percent,memory_mib\n")
                csv.writelines(f"{t:.1f},{u:.0f},{m:.0f}\n" for t, u, m in sampler.samples)

    summary.append(f"total wall time: {time.time() - start:.0f} s")
    text = "\n".join(summary) + "\n"
    (out / "summary.md").write_text(text)
    log.close()
    shutil.rmtree(work, ignore_errors=True)
    print("\n" + text, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
