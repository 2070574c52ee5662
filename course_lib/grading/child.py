"""The sandboxed child: runs a module's functions through the checks, reports plain data.

The grader starts ``python -I -S -c <this source> RESULT_FD`` in a fresh temporary directory, so
neither the repository root nor ``solutions/`` is on ``sys.path`` and no ``.pth`` file runs. The
job (module source, check sources, seeds) arrives on stdin; one JSON line per event goes to the
dedicated pipe ``RESULT_FD``. The child computes, the grader judges: nothing here knows the
expected values, so nothing the student's code does here can mark a check as passed.
"""

import importlib.machinery
import importlib.util
import json
import os
import sys
import types

WORKDIR_SIZE = "256m"  # the isolated child's writable space (tmpfs, counted in its memory)
WATCHED_NUMPY = ("allclose", "isclose", "array_equal", "asarray", "save", "load")
WATCHED_TESTING = ("assert_allclose", "assert_array_equal", "assert_array_almost_equal")
# Names that pybind11 extension modules (TensorFlow, jaxlib) add to ``builtins`` when they load:
# importing Keras in a check or a submission is not tampering.
PYBIND11_BUILTINS = "__pybind11_internals_"


class CourseLibFinder:
    """Makes exactly the package ``course_lib`` importable (not the repository around it)."""

    def __init__(self, package_dir):
        self.package_dir = package_dir

    def find_spec(self, name, path=None, target=None):
        if name != "course_lib":
            return None
        init = os.path.join(self.package_dir, "__init__.py")
        return importlib.util.spec_from_file_location(
            name, init, submodule_search_locations=[self.package_dir]
        )


def isolate(workdir, hide, files):
    """Linux, as root: private mount + PID namespaces, a read-only filesystem except ``workdir``
    (a fresh tmpfs of at most WORKDIR_SIZE holding ``files``), empty read-only tmpfs over
    ``hide``, then the student's process (PID 1 of the new namespace) drops every capability.
    Returns ``(ok, detail)``; the caller is then that process.
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def call(name, *args):
        if getattr(libc, name)(*args) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"{name}{args[:2]}: {os.strerror(errno)}")

    def mount(source, target, fstype, flags, data=None):
        call("mount", source and source.encode(), target.encode(), fstype and fstype.encode(),
             ctypes.c_ulong(flags), data and data.encode())

    ms_rdonly, ms_remount, ms_bind, ms_rec, ms_private = 1, 32, 4096, 16384, 1 << 18
    keep = {"nosuid": 2, "nodev": 4, "noexec": 8, "noatime": 1024, "nodiratime": 2048,
            "relatime": 1 << 21}
    call("unshare", 0x00020000 | 0x20000000)  # CLONE_NEWNS | CLONE_NEWPID
    mount(None, "/", None, ms_rec | ms_private)
    mount("tmpfs", workdir, "tmpfs", 2 | 4, f"size={WORKDIR_SIZE},mode=700")
    for name, text in files.items():
        with open(os.path.join(workdir, name), "w", encoding="utf-8") as handle:
            handle.write(text)
    with open("/proc/self/mountinfo") as handle:
        mounts = [line.split() for line in handle]
    failed = []
    for fields in mounts:
        point = fields[4].encode().decode("unicode_escape")
        if point == workdir:
            continue
        flags = sum(keep.get(option, 0) for option in fields[5].split(","))
        try:
            mount(None, point, None, ms_remount | ms_bind | ms_rdonly | flags)
        except OSError:
            failed.append(point)
    for path in hide:
        if os.path.isdir(path):
            mount("tmpfs", path, "tmpfs", ms_rdonly | 2 | 4 | 8, "size=4k,mode=000")
    pid = os.fork()
    if pid:  # the runner stays outside the student's PID namespace and reports its exit
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) % 256)
    cap = 0
    while libc.prctl(24, cap, 0, 0, 0) == 0:  # PR_CAPBSET_DROP for every capability
        cap += 1
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    call("capset", header, (ctypes.c_uint32 * 6)())
    call("prctl", 38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS
    if "/" in failed:
        return False, "could not make / read-only"
    return True, f"namespaces; {len(mounts) - len(failed)} mounts read-only; {cap} caps dropped"


def count_children():
    """Processes still parented to this one (daemons re-parent here, PID 1 of the namespace)."""
    count = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:  # no /proc (macOS): the grader's sweep still finds them
        return 0
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children") as handle:
                count += len(handle.read().split())
        except OSError:
            pass
    return count


def finish(emit, record):
    """Flush what the student printed, send the last record, exit without atexit handlers."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    emit(record)
    os._exit(0)


def last_line(error):
    message = str(error).strip()
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return text.splitlines()[-1][:500]


def main():
    result_fd = int(sys.argv[1])
    write = os.write
    job = json.loads(sys.stdin.buffer.read())
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    for procs in job.get("cgroup_procs", []):
        with open(procs, "w") as handle:
            handle.write(str(os.getpid()))
    isolation = (False, "not requested")
    if job.get("isolate") and sys.platform == "linux" and os.geteuid() == 0:
        try:
            files = {os.path.basename(job["module_file"]): job["module_source"]}
            isolation = isolate(job["workdir"], job.get("hide", []), files)
        except OSError as error:
            isolation = (False, str(error))
    os.chdir(job["workdir"])
    sys.path[:0] = [job["workdir"]]
    sys.path.extend(job["site"])
    sys.meta_path.append(CourseLibFinder(job["course_lib_dir"]))

    import builtins

    import numpy as np
    import numpy.testing

    from course_lib.grading import spec, wire

    def emit(record):
        data = wire.dumps(record)
        while data:
            data = data[write(result_fd, data) :]

    checks = {}
    for index, source in enumerate(job["check_sources"]):
        module = types.ModuleType(f"course_checks_{index}")
        sys.modules[module.__name__] = module
        exec(compile(source, f"<checks {index}>", "exec"), module.__dict__)
        for found in spec.collect(module.__dict__):
            checks[(index, found.name)] = found.func

    watched = {f"numpy.{n}": getattr(np, n) for n in WATCHED_NUMPY}
    watched.update({f"numpy.testing.{n}": getattr(np.testing, n) for n in WATCHED_TESTING})
    watched.update({f"builtins.{n}": v for n, v in vars(builtins).items()
                    if not n.startswith(PYBIND11_BUILTINS)})
    watched["json.dumps"] = json.dumps

    def tampered():
        now = {f"numpy.{n}": getattr(np, n, None) for n in WATCHED_NUMPY}
        now.update({f"numpy.testing.{n}": getattr(np.testing, n, None) for n in WATCHED_TESTING})
        now.update({f"builtins.{n}": v for n, v in vars(builtins).items()
                    if not n.startswith(PYBIND11_BUILTINS)})
        now["json.dumps"] = json.dumps
        return sorted(name for name, value in now.items() if watched.get(name) is not value)

    emit({"type": "start", "isolated": isolation[0], "isolation": isolation[1]})
    name = job["module_name"]
    student = types.ModuleType(name)
    student.__file__ = job["module_file"]
    sys.modules[name] = student
    try:
        code = compile(job["module_source"], job["module_file"], "exec")
        exec(code, student.__dict__)
    except BaseException as error:  # SystemExit and KeyboardInterrupt at import included
        emit({"type": "import", "ok": False, "error": last_line(error)})
        emit({"type": "tamper", "names": tampered()})
        finish(emit, {"type": "done", "children": count_children()})
    emit({"type": "import", "ok": True})

    for item in job["checks"]:
        func = checks.get((item["source"], item["name"]))
        rng = np.random.default_rng(item["seed"])
        try:
            value = func(student, rng)
            if type(value) is not dict:
                raise wire.WireError(f"check returned {type(value).__name__}, not dict")
            record = {"type": "result", "check": item["name"], "source": item["source"],
                      "ok": True, "value": wire.encode(value)}
        except BaseException as error:
            record = {"type": "result", "check": item["name"], "source": item["source"],
                      "ok": False, "error": last_line(error)}
        emit(record)
        changed = tampered()
        if changed:
            emit({"type": "tamper", "names": changed})
    finish(emit, {"type": "done", "children": count_children()})


main()
