"""Run one job in a sandboxed child process and collect its records.

Limits and how they are enforced (see the README section "Trust model"):

- wall clock: the grader kills the child's whole session after ``timeout`` seconds;
- memory, process count, CPU: per-child cgroups (v1 ``memory``, ``pids``, and ``cpu`` capped at one
  core) when the grader may create them (root on Linux); the kernel enforces them. Otherwise a
  watchdog polls every process of the child (its session, or carrying the child's marker
  variable) and kills them all when their summed RSS or their number exceeds the cap. No
  ``RLIMIT_AS``: it breaks TensorFlow, which reserves far more address space than it uses;
- filesystem and processes (Linux, as root): see ``child.isolate``: own mount and PID
  namespaces, a read-only filesystem except the working directory, the solutions, hidden
  checks and submissions hidden, no capabilities left;
- output: stdout and stderr are drained, the first ``output_cap`` bytes are kept;
- no child outlives grading: at the end the session, the cgroup and every process carrying the
  marker are killed, and leftovers (daemons) are reported.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from course_lib.grading import wire

MARKER_VARIABLE = "COURSE_GRADER_MARKER"  # value: "<grader pid>-<uuid>"


def owner_prefix(pid: int | None = None) -> str:
    """Cgroup-name prefix of the children started by grader process ``pid`` (default: this one)."""
    return f"course-grader-{pid or os.getpid()}-"
CGROUP_ROOT = Path("/sys/fs/cgroup")
RESULT_CAP = 64 * 2**20
SCAN_S = 0.1  # watchdog period when there is no cgroup (a scan of /proc costs a few ms)
CHILD_SOURCE = (Path(__file__).with_name("child.py")).read_text()


@dataclass(frozen=True)
class Limits:
    """Resource limits of one child: seconds, MiB, processes (tasks), kept output bytes.

    ``use_cgroups``/``isolate`` switch off the kernel mechanisms (cgroups; namespaces with a
    read-only filesystem), leaving the portable watchdog (tests of the fallback use this).
    """

    timeout: float = 60.0
    memory_mb: int = 2048
    max_processes: int = 256
    output_cap: int = 100_000
    use_cgroups: bool = True
    isolate: bool = True


@dataclass
class ChildRun:
    """What a child left behind: its records and why it stopped, if it was stopped."""

    records: list[dict] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)
    output: bytes = b""
    output_bytes: int = 0
    returncode: int | None = None
    timed_out: bool = False
    isolated: bool = False
    memory_exceeded: bool = False
    processes_exceeded: bool = False
    leftovers: int = 0
    wall: float = 0.0


def site_directories() -> list[str]:
    """The interpreter's site-packages folders (the child gets them without running .pth files)."""
    return [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]


class Cgroup:
    """cgroup v1 groups (memory, pids, cpu) for one child; ``create`` returns ``None`` when the
    grader may not create them (not root, no cgroup v1 hierarchy: the watchdog takes over)."""

    def __init__(self, dirs: dict[str, Path]):
        self.dirs = dirs

    @classmethod
    def create(cls, limits: Limits) -> Cgroup | None:
        if not limits.use_cgroups or os.geteuid() != 0:
            return None
        name = f"{owner_prefix()}{uuid.uuid4().hex[:12]}"
        dirs: dict[str, Path] = {}
        try:
            for controller in ("memory", "pids", "cpu"):
                path = CGROUP_ROOT / controller / name
                path.mkdir()
                dirs[controller] = path
            memory = str(limits.memory_mb * 2**20)
            (dirs["memory"] / "memory.limit_in_bytes").write_text(memory)
            memsw = dirs["memory"] / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                memsw.write_text(memory)
            (dirs["pids"] / "pids.max").write_text(str(limits.max_processes))
            (dirs["cpu"] / "cpu.cfs_quota_us").write_text("100000")  # at most one core
        except OSError:
            cls(dirs).remove()
            return None
        return cls(dirs)

    def procs_files(self) -> list[str]:
        return [str(path / "cgroup.procs") for path in self.dirs.values()]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.dirs.values():
            try:
                found.update(int(x) for x in (path / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return found

    def counter(self, controller: str, filename: str, key: str) -> int:
        try:
            lines = (self.dirs[controller] / filename).read_text().splitlines()
        except (OSError, KeyError):
            return 0
        for line in lines:
            parts = line.split()
            if len(parts) == 2 and parts[0] == key:
                return int(parts[1])
        return 0

    def oom_killed(self) -> bool:
        return self.counter("memory", "memory.oom_control", "oom_kill") > 0

    def forks_refused(self) -> bool:
        return self.counter("pids", "pids.events", "max") > 0

    def remove(self) -> None:
        for path in self.dirs.values():
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    for pid in self.pids():
                        _kill(pid)
                    time.sleep(0.01)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def marked_processes(marker: str) -> list[psutil.Process]:
    """Every process whose environment carries ``marker`` or whose session is the child's."""
    found = []
    needle = f"{MARKER_VARIABLE}={marker}".encode()
    for pid in psutil.pids():
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                if needle in handle.read():
                    found.append(psutil.Process(pid))
        except (OSError, psutil.Error):
            continue
    return found


def _session_processes(leader: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == leader:
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def child_processes(leader: int, marker: str, cgroup: Cgroup | None,
                    scan: bool = True) -> dict[int, psutil.Process]:
    """The processes of one child: its cgroup's, and with ``scan`` its session's and those
    carrying its marker (a scan of /proc: the fallback, and the sweep when not isolated)."""
    procs = {}
    if scan:
        procs = {p.pid: p for p in _session_processes(leader) + marked_processes(marker)}
    if cgroup is not None:
        for pid in cgroup.pids():
            try:
                procs.setdefault(pid, psutil.Process(pid))
            except psutil.Error:
                pass
    procs.pop(os.getpid(), None)
    return procs


def kill_all(leader: int, marker: str, cgroup: Cgroup | None, scan: bool = True) -> int:
    """Kill the child's process group, cgroup (and marked processes with ``scan``); return how
    many processes were still alive."""
    try:
        os.killpg(leader, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    seen: set[int] = set()
    for _ in range(50):
        procs = {
            pid: p for pid, p in child_processes(leader, marker, cgroup, scan).items()
            if _alive(p)
        }
        if not procs:
            break
        seen.update(procs)
        for pid in procs:
            _kill(pid)
        time.sleep(0.01)
    return len(seen)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _rss(procs: dict[int, psutil.Process]) -> int:
    total = 0
    for proc in procs.values():
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


def _drain(stream, keep: int, run: ChildRun) -> None:
    kept = bytearray()
    while chunk := stream.read(65536):
        run.output_bytes += len(chunk)
        if len(kept) < keep:
            kept += chunk[: keep - len(kept)]
    run.output = bytes(kept)


def _read_results(fd: int, run: ChildRun) -> None:
    buffer = bytearray()
    with os.fdopen(fd, "rb") as stream:
        while chunk := stream.read(65536):
            if len(buffer) < RESULT_CAP:
                buffer += chunk
    for line in bytes(buffer[:RESULT_CAP]).splitlines():
        try:
            run.records.append(wire.loads(line))
        except wire.WireError:
            run.bad_lines.append(line[:200].decode("utf-8", "replace"))
    if len(buffer) > RESULT_CAP:
        run.bad_lines.append("result channel exceeded its size cap")


def child_environment(marker: str, workdir: str) -> dict[str, str]:
    """A small, fixed environment: no PYTHON* variables, one thread per maths library."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF_ENABLE_ONEDNN_OPTS": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        MARKER_VARIABLE: marker,
    }
    for name in ("COURSE_FAST", "COURSE_DATA_DIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def run_child(job: dict, files: dict[str, str], limits: Limits) -> ChildRun:
    """Run ``job`` (see child.py) with ``files`` written into a fresh temporary directory.

    ``job`` holds ``module_name``, ``module_source``, ``check_sources`` and ``checks``
    (``{"source": index, "name": ..., "seed": ...}``); the rest is filled in here.
    """
    run = ChildRun()
    marker = f"{os.getpid()}-{uuid.uuid4().hex}"
    cgroup = Cgroup.create(limits)
    with tempfile.TemporaryDirectory(prefix="course-grade-") as workdir:
        for name, text in files.items():
            Path(workdir, name).write_text(text, encoding="utf-8")
        job = dict(job, workdir=workdir, site=site_directories(), isolate=limits.isolate,
                   module_file=os.path.join(workdir, job["module_name"] + ".py"),
                   course_lib_dir=str(Path(__file__).resolve().parents[1]))
        if cgroup is not None:
            job["cgroup_procs"] = cgroup.procs_files()
        read_fd, write_fd = os.pipe()
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", CHILD_SOURCE, str(write_fd)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                cwd=workdir, env=child_environment(marker, workdir), pass_fds=(write_fd,),
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        readers = [
            threading.Thread(target=_read_results, args=(read_fd, run), daemon=True),
            threading.Thread(target=_drain, args=(proc.stdout, limits.output_cap, run),
                             daemon=True),
        ]
        for reader in readers:
            reader.start()
        try:
            proc.stdin.write(json.dumps(job).encode())
            proc.stdin.close()
        except OSError:
            pass
        _watch(proc, marker, cgroup, limits, run, start)
        run.returncode = proc.returncode
        run.leftovers = kill_all(proc.pid, marker, cgroup, scan=cgroup is None)
        for reader in readers:
            reader.join(timeout=5)
        run.isolated = any(r.get("type") == "start" and r.get("isolated") is True
                           for r in run.records[:1])
        if cgroup is not None and not run.isolated:  # a root child may have left its cgroup
            run.leftovers += kill_all(proc.pid, marker, None)
        run.wall = time.monotonic() - start
        if cgroup is not None:
            run.memory_exceeded |= cgroup.oom_killed()
            run.processes_exceeded |= cgroup.forks_refused()
            cgroup.remove()
    return run


def _watch(proc, marker: str, cgroup: Cgroup | None, limits: Limits, run: ChildRun,
           start: float) -> None:
    """Wait for the child; enforce the timeout, and the memory/process caps without cgroups."""
    cap = limits.memory_mb * 2**20
    try:
        pidfd = os.pidfd_open(proc.pid)  # wakes up the moment the child exits (Linux >= 5.3)
    except (AttributeError, OSError):
        pidfd = None
    try:
        while True:
            remaining = start + limits.timeout - time.monotonic()
            wait = remaining if cgroup is not None else min(remaining, SCAN_S)
            if _exited(proc, pidfd, max(wait, 0)):
                return
            if time.monotonic() - start >= limits.timeout:
                run.timed_out = True
            elif cgroup is None:
                procs = {p: q for p, q in child_processes(proc.pid, marker, None).items()
                         if _alive(q)}
                run.processes_exceeded = len(procs) > limits.max_processes
                run.memory_exceeded = _rss(procs) > cap
            if run.timed_out or run.processes_exceeded or run.memory_exceeded:
                kill_all(proc.pid, marker, cgroup)
                proc.wait()
                return
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _exited(proc, pidfd: int | None, seconds: float) -> bool:
    if pidfd is not None:
        select.select([pidfd], [], [], seconds)
        return proc.poll() is not None
    try:
        proc.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        return False
