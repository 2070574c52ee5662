"""The child process: its import path, its isolation, and the limits with and without cgroups."""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap
import threading

import pytest
from grading_helpers import FIXTURES, isolated

from course_lib.grading import sandbox
from course_lib.grading.engine import course_root

PROBE = """
import json, os, sys
facts = {"path": sys.path, "cwd": os.getcwd()}
try:
    import solutions
    facts["solutions"] = "imported"
except ImportError as error:
    facts["solutions"] = type(error).__name__
open("scratch.txt", "w").write("the working directory is writable")
facts["scratch"] = open("scratch.txt").read()
attacks = {
    "read_solutions": lambda: open(SOLUTION).read(),
    "write_repo": lambda: open(os.path.join(ROOT, "pwned.txt"), "w"),
    "escape_cgroup": lambda: open("/sys/fs/cgroup/pids/cgroup.procs", "w").write("0"),
    "signal_grader": lambda: os.kill(GRADER, 0),  # 0: only asks whether it could
    "fill_disk": lambda: [open("big.bin", "ab").write(bytes(2**24)) for _ in range(20)],
}
for name, action in (attacks.items() if ATTACK else ()):
    try:
        action()
        facts[name] = "allowed"
    except Exception as error:
        facts[name] = type(error).__name__
print(json.dumps(facts))
"""


def run_module(source: str, limits: sandbox.Limits, hide: tuple[str, ...] = ()) -> sandbox.ChildRun:
    job = {"module_name": "probe", "module_source": source, "check_sources": [], "checks": [],
           "hide": list(hide)}
    return sandbox.run_child(job, {"probe.py": source}, limits)


def facts_of(run: sandbox.ChildRun) -> dict:
    return json.loads(run.output.decode().strip().splitlines()[-1])


def probe(limits: sandbox.Limits, attack: bool) -> tuple[sandbox.ChildRun, dict]:
    """Run the probe; ``attack`` only where the child is isolated (it tries to write the repo)."""
    solution = FIXTURES / "solutions" / "ex90_demo.py"
    source = f"SOLUTION = {str(solution)!r}\nROOT = {str(course_root())!r}\nATTACK = {attack}\n"
    source += f"GRADER = {os.getpid()}\n"
    source += PROBE
    run = run_module(source, limits, hide=(str(solution.parent),))
    return run, facts_of(run)


def test_import_path_holds_neither_the_repository_nor_solutions():
    run, facts = probe(sandbox.Limits(isolate=False, use_cgroups=False), attack=False)
    root = str(course_root())
    assert facts["solutions"] == "ModuleNotFoundError"
    assert root not in facts["path"] and str(course_root() / "solutions") not in facts["path"]
    assert facts["path"][0] == facts["cwd"] != root
    assert facts["scratch"].startswith("the working directory")


@pytest.mark.skipif(not isolated(), reason="namespaces and cgroups need root on Linux")
def test_isolated_child_cannot_read_solutions_write_escape_or_kill():
    run, facts = probe(sandbox.Limits(), attack=True)
    assert run.isolated
    assert facts["read_solutions"] == "PermissionError"
    assert facts["write_repo"] == "OSError"  # read-only file system
    assert facts["escape_cgroup"] == "OSError"
    assert facts["signal_grader"] == "ProcessLookupError"  # the grader is outside its PID space
    assert facts["fill_disk"] == "OSError"  # no space left: the working directory is capped
    assert facts["scratch"].startswith("the working directory")
    assert not (course_root() / "pwned.txt").exists()


SLOW_BOMB = """
import os, time
for _ in range(200):
    if os.fork() == 0:
        time.sleep(60)
        os._exit(0)
    time.sleep(0.005)
"""
DAEMON = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(10**6)
    os._exit(0)
time.sleep(0.3)
"""


def test_watchdog_without_cgroups_or_namespaces():
    """The portable fallback: memory (summed RSS), process count, timeout, leftover daemons."""
    limits = sandbox.Limits(timeout=8, memory_mb=1000, max_processes=10, use_cgroups=False,
                            isolate=False)
    sources = {"memory": "blob = b'x' * (3 * 2**30)\nimport time\ntime.sleep(30)\n",
               "processes": SLOW_BOMB, "daemon": DAEMON,
               "timeout": "while True:\n    pass\n"}
    runs: dict[str, sandbox.ChildRun] = {}
    quick = dataclasses.replace(limits, timeout=2)
    threads = [threading.Thread(target=lambda k=k, s=s: runs.update(
        {k: run_module(s, quick if k == "timeout" else limits)})) for k, s in sources.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert runs["memory"].memory_exceeded and not runs["memory"].timed_out
    assert runs["processes"].processes_exceeded and not runs["processes"].timed_out
    assert runs["daemon"].leftovers >= 1 and not runs["daemon"].timed_out
    assert runs["timeout"].timed_out


@pytest.mark.skipif(not isolated(), reason="cgroups need root on Linux")
def test_memory_cap_allows_large_address_space_reservations():
    """The cgroup cap counts memory used, not address space: a 16 GiB reservation (TensorFlow
    and JAX reserve that way; RLIMIT_AS would refuse it) works under a 300 MiB cap while 100 MiB
    are touched, and touching 1 GiB is stopped."""
    reserve = textwrap.dedent("""
        import mmap
        area = mmap.mmap(-1, 16 * 2**30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
                         | getattr(mmap, "MAP_NORESERVE", 0x4000))
        area[: 100 * 2**20] = b"x" * (100 * 2**20)
        print("reserved and used")
    """)
    limits = sandbox.Limits(memory_mb=300, timeout=20)
    ok = run_module(reserve, limits)
    assert b"reserved and used" in ok.output and not ok.memory_exceeded
    too_much = run_module(reserve.replace("100 * 2**20", "1024 * 2**20"), limits)
    assert too_much.memory_exceeded and b"reserved and used" not in too_much.output


def test_output_is_capped_and_stdin_is_empty():
    source = "import sys\nprint(repr(sys.stdin.read()))\nsys.stdout.write('y' * 10**6)\n"
    run = run_module(source, sandbox.Limits(output_cap=1000, isolate=False))
    assert run.output_bytes > 10**6 and len(run.output) == 1000
    assert run.output.startswith(b"''\n")
    assert os.environ.get(sandbox.MARKER_VARIABLE) is None


def test_names_pybind11_adds_to_builtins_are_not_tampering():
    """Importing TensorFlow (a check or submission that uses Keras) adds pybind11's internals to
    ``builtins``: no flag for those; any other name added to builtins is still flagged."""
    from course_lib.grading import engine

    solution = (FIXTURES / "solutions" / "ex90_demo.py").read_text()
    (exercise,) = engine.select(engine.discover(), ["ex90"])
    grader = engine.Grader([exercise])
    added = "import builtins\nsetattr(builtins, {!r}, object())\n"   # (importing builtins: opaque)
    quiet = grader.grade(exercise, added.format("__pybind11_internals_v4_gcc_libstdcpp__")
                         + solution)
    assert quiet.score == quiet.total
    assert [kind for kind, _ in quiet.flags] == ["opaque"]
    loud = grader.grade(exercise, added.format("helper") + solution)
    assert loud.score == loud.total
    assert ("suspicious", "changed builtins.helper") in loud.flags
