"""benchmarks/gpu_check.sh: its runner's caps, parsing and table (in-process, no training), and
the whole --dry-run (CPU, TensorFlow hidden, JAX, tiny sizes, chapter 00 in fast mode)."""

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def load_runner():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_a_part_past_its_cap_is_stopped_with_its_children(tmp_path):
    runner = load_runner()
    pid_file = tmp_path / "child.pid"
    command = ["bash", "-c", f"sleep 60 & echo $! > {pid_file}; echo started; wait"]
    start = time.perf_counter()
    part = runner.run_capped(command, cap=1.0)
    assert time.perf_counter() - start < 10
    assert part.status == "timeout after 1 s" and "started" in part.output
    child = int(pid_file.read_text())
    for _ in range(40):  # the background child went with the group (a zombie at most)
        if not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"child {child} of the stopped part still runs")
    assert runner.run_capped(["true"], cap=0).status == "not run: no time left"
    assert runner.run_capped(["bash", "-c", "exit 3"], cap=10).status == "failed (exit 3)"


TTA_OUTPUT = """keras: 3.15.1 backend: jax device: NVIDIA H200
task: cifar10 target: 0.94 plain_max_epochs: 50 course: CourseConfig(batch_size=512)
run: plain
epoch 1: 20,000 examples/s, 3.0s, elapsed 9.0s, ETA 100s val_accuracy 0.5000
plain seconds_to_target: not reached
plain epochs_to_target: None
plain final_accuracy: 0.8800
plain epochs_run: 31
plain total_seconds: 101.0
plain examples_per_second: 20,000
plain stopped_by_time_limit: True
plain first_epoch_seconds: 9.0
plain epoch_seconds: 3.05
run: course seed 0
epoch 1: 90,000 examples/s, 8.0s, elapsed 8.5s, ETA 20s val_accuracy 0.6000
course seconds_to_target: 14.2
course epochs_to_target: 9
course final_accuracy: 0.9410
course examples_per_second: 90,000
course stopped_by_time_limit: False
run: course seed 1
epoch 1: 90,000 examples/s, 8.0s, elapsed 8.5s, ETA 20s val_accuracy 0.6100
"""


def test_time_to_accuracy_table_reports_a_killed_seed():
    runner = load_runner()
    runs, overall = runner.parse_time_to_accuracy(TTA_OUTPUT)
    assert [r.label for r in runs] == ["plain", "course seed 0", "course seed 1"]
    assert overall["task"] == "cifar10 target: 0.94 plain_max_epochs: 50"
    overall["time_limit"] = "100"
    part = runner.Capped("timeout after 330 s", 330.0)
    table = "\n".join(runner.tta_table(runs, overall, part))
    assert "| plain | not reached | 31 run | 0.8800 | 20,000 | 9.0 | 3.05 | not reached: stopped at the 100 s limit |" in table
    assert "| course seed 0 | 14.2 | 9 | 0.9410 | 90,000 |" in table and "target reached" in table
    assert "| course seed 1 | did not finish |" in table and "timeout after 330 s" in table
    assert "epoch 1: 90,000 examples/s" in table  # its last epoch line
    assert "ratio plain/course = n/a (not printed)" in table


def test_chapter_rows_and_discovery():
    runner = load_runner()
    table = (
        "chapter             status  seconds  first error\n"
        "02_mlp_from_scratch  failed     12.5  ValueError: x has shape (3,)\n"
    )
    failed = runner.chapter_row("02_mlp_from_scratch", runner.Capped("failed (exit 1)", 15.0, table))
    assert failed == "| 02_mlp_from_scratch | 12.5 | failed: ValueError: x has shape (3,) |"
    timeout = runner.chapter_row("05_x", runner.Capped("timeout after 300 s", 300.2))
    assert timeout == "| 05_x | 300.2 | timeout after 300 s |"
    assert runner.chapter_row("09_x", runner.Capped("not run: no time left", 0.0)) == (
        "| 09_x | - | not run: no time left |"
    )
    found = runner.discover_chapters("all")
    assert "00_getting_started" in found and found == sorted(found)
    assert runner.discover_chapters("0") == [s for s in found if s.startswith("00")]


def test_dry_run_writes_the_summary_table(tmp_path):
    pytest.importorskip("jax")
    env = {**os.environ, "OUT": str(tmp_path / "out"), "COURSE_CACHE": str(tmp_path / "cache"),
           "PYTHON": sys.executable}
    result = subprocess.run(
        ["bash", str(SCRIPT), "--dry-run", "--parts", "tta,chapters"],
        env=env, capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "- keras 3." in summary and "backend jax" in summary
    assert "| plain | not reached | 1 run |" in summary
    assert "| course seed 0 | not reached | 1 run |" in summary
    assert "ratio plain/course = n/a (course recipe did not reach the target)" in summary
    assert "| 00_getting_started |" in summary and "| ok |" in summary
    log = (tmp_path / "out" / "gpu_check.log").read_text()
    assert "TensorFlow is hidden" not in log  # nothing tried to import it
    assert (tmp_path / "out" / "executed_chapters.tar.gz").stat().st_size > 0
