"""``course release OUT``: the student edition of the course, without solutions.

The release is a folder (and, with ``--zip``, a reproducible zip) holding what a student needs:
the chapters with their stored outputs, ``course_lib``, the exercise stubs, the tests that need
no solution, the README, ``pyproject.toml`` and the ``Makefile``. It holds no ``solutions/``, no
hidden checks and no reference source: before anything is written to ``OUT`` the staged copy is
searched for the body of every function of every reference solution (Python files, notebooks
with their outputs, Markdown, compiled ``.pyc``), and a find stops the release.

Self-checking keeps working: every reference solution is run through its public checks at
release time and the outputs are shipped as data in ``course_lib/grading/references/`` (see
:mod:`course_lib.grading.references`), with the sha256 of the check code they belong to.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import marshal
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tokenize
import types
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

# Left out of the student edition (path prefixes, relative to the course folder), and why.
EXCLUDED = {
    "solutions/": "reference solutions",
    "course_lib/grading/hidden_example/": "hidden checks (an instructor's example set)",
    "course_lib/grading/references/": "reference outputs (made anew by each release)",
    "tests/exercises/": "tests that grade the reference solutions",
    "tests/release/": "tests of the release itself (they need the solutions)",
    "benchmarks/grade_batch.py": "grading benchmark (it grades the reference solutions)",
    "tools/": "maintainers' tools",
    "notes/": "maintainers' notes",
}
# Never copied, whatever lists them (a folder without git is walked with these rules).
IGNORED_PARTS = {".git", ".venv", "__pycache__", ".ipynb_checkpoints", ".pytest_cache",
                 ".ruff_cache", "build", "dist", ".course_run", "runs", "logs"}
IGNORED_SUFFIXES = (".pyc", ".pyo", ".egg-info")
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
STUDENT_NOTE = """> **Student edition.** This copy of the course has no reference solutions: `course grade`
> checks your exercises against reference outputs shipped in `course_lib/grading/references/`
> (made by `course release`). The instructor's grading may add hidden checks.

"""


class ReleaseError(RuntimeError):
    """The release cannot be made (an existing OUT, a failing reference, solution code found)."""


@dataclass(frozen=True)
class Leak:
    """Solution code found in a released file: which file, which solution function."""

    path: str
    solution: str
    function: str

    def __str__(self) -> str:
        return f"{self.path}: the body of {self.solution}:{self.function}()"


def _normalise_python(source: str) -> str:
    """Python source as its tokens without comments, layout or whitespace ("" when it is empty).

    Text that does not tokenize (a notebook cell with magics, Markdown) loses its comments and
    whitespace instead.
    """
    try:
        tokens = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
                  if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE,
                                    tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return re.sub(r"\s+", "", re.sub(r"#[^\n]*", "", source))
    return "".join(tokens)


def _bodies(source: str) -> dict[str, ast.AST]:
    """Every function of a module (methods and nested ones too), by qualified name."""
    found: dict[str, ast.AST] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    found[name] = child
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def _body_source(source: str, function: ast.AST) -> str:
    body = list(function.body)
    first = body[0] if body else None
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)):
        body = body[1:]  # the docstring: the stub has it too
    if not body:
        return ""
    lines = source.splitlines()
    text = "\n".join(lines[body[0].lineno - 1: body[-1].end_lineno])
    return _normalise_python(text)


def solution_fingerprints(solutions_dir: Path, stubs_dir: Path) -> dict[tuple[str, str], str]:
    """``(solution file, function) -> normalised body`` for every solution function whose body
    differs from the stub's (code the stub gives the student is not a leak)."""
    found = {}
    for path in sorted(Path(solutions_dir).glob("ex*.py")):
        source = path.read_text(encoding="utf-8")
        stub_path = Path(stubs_dir) / path.name
        stub = stub_path.read_text(encoding="utf-8") if stub_path.is_file() else ""
        stub_bodies = {name: _body_source(stub, node) for name, node in
                       (_bodies(stub).items() if stub else [])}
        for name, node in _bodies(source).items():
            body = _body_source(source, node)
            if body and body != stub_bodies.get(name) and body != "raiseNotImplementedError":
                found[(path.name, name)] = body
    return found


def _code_key(code: types.CodeType) -> tuple:
    """What identifies a function's compiled body: bytecode, names, variables and constants
    (not its docstring, file name or line numbers)."""
    consts = tuple(repr(c) for c in code.co_consts[1:] if not isinstance(c, types.CodeType))
    return code.co_code, code.co_names, code.co_varnames, consts


def _solution_code_objects(solutions_dir: Path,
                           fingerprints: dict[tuple[str, str], str]) -> dict[tuple, tuple[str, str]]:
    """Compiled solution functions that count (compiled here), for ``.pyc`` files."""
    found = {}
    for path in sorted(Path(solutions_dir).glob("ex*.py")):
        wanted = {name.split(".")[-1]: (path.name, name) for (file, name) in fingerprints
                  if file == path.name}
        for code in _code_objects(compile(path.read_text(encoding="utf-8"), path.name, "exec")):
            if code.co_name in wanted:
                found[_code_key(code)] = wanted[code.co_name]
    return found


def _code_objects(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _searchable_texts(path: Path) -> list[str]:
    """The normalised texts of one file to search: a notebook's cells and outputs, a Python
    file, the code blocks and text of Markdown or any other text file; binaries give none."""
    data = path.read_bytes()
    if path.suffix == ".ipynb":
        try:
            notebook = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return [_normalise_python(data.decode("utf-8", "replace"))]
        texts = []
        for cell in notebook.get("cells", []):
            source = cell.get("source", "")
            texts.append(_normalise_python("".join(source) if isinstance(source, list) else source))
            for output in cell.get("outputs", []):
                parts = [output.get("text", "")] + list(output.get("data", {}).values())
                for part in parts:
                    texts.append(_normalise_python("".join(part) if isinstance(part, list)
                                                   else str(part)))
        return texts
    if b"\0" in data[:8192]:
        return []
    text = data.decode("utf-8", "replace")
    if path.suffix == ".py":
        return [_normalise_python(text)]
    blocks = re.findall(r"```[a-zA-Z0-9]*\n(.*?)```", text, flags=re.S)
    return [_normalise_python(block) for block in blocks] + [_normalise_python(text)]


def find_solution_code(folder: Path, solutions_dir: Path, stubs_dir: Path) -> list[Leak]:
    """Every file under ``folder`` that holds the body of a reference solution's function.

    Bodies are compared as tokens (comments, blank lines and indentation do not matter); a
    ``.pyc`` is compared by the bytecode of its functions. Functions whose body the stub gives
    the student are not searched for.
    """
    fingerprints = solution_fingerprints(solutions_dir, stubs_dir)
    bytecode = _solution_code_objects(solutions_dir, fingerprints)
    leaks = []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink()):
        relative = path.relative_to(folder).as_posix()
        if path.suffix in (".pyc", ".pyo"):
            try:
                code = marshal.loads(path.read_bytes()[16:])
                hits = {bytecode[key] for c in _code_objects(code)
                        if (key := _code_key(c)) in bytecode}
            except (ValueError, EOFError, TypeError):
                hits = set()
            leaks += [Leak(relative, file, name) for file, name in sorted(hits)]
            continue
        texts = _searchable_texts(path)
        for (file, name), body in fingerprints.items():
            if any(body in text for text in texts):
                leaks.append(Leak(relative, file, name))
    return leaks


def source_files(root: Path) -> list[str]:
    """The course's files, relative POSIX paths, sorted: what git tracks where ``root`` is a git
    checkout (their working-tree contents), else every file but build outputs and caches."""
    root = Path(root)
    if (root / ".git").exists() and shutil.which("git"):
        done = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True,
                              check=False)
        if done.returncode == 0:
            names = [n for n in done.stdout.decode("utf-8", "surrogateescape").split("\0") if n]
            return sorted(n for n in names if (root / n).is_file() and not _ignored(n))
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not path.is_symlink() and not _ignored(relative):
            found.append(relative)
    return sorted(found)


def _ignored(relative: str) -> bool:
    parts = relative.split("/")
    return (any(part in IGNORED_PARTS or part.endswith(IGNORED_SUFFIXES) for part in parts)
            or relative.startswith("gradebook"))


def excluded_reason(relative: str) -> str | None:
    """Why ``relative`` stays out of the student edition (``None``: it goes in)."""
    for prefix, reason in EXCLUDED.items():
        if relative == prefix.rstrip("/") or relative.startswith(prefix):
            return reason
    return None


def uncommitted_changes(root: Path) -> list[str]:
    """Tracked files that differ from the last commit (empty outside git)."""
    if not (Path(root) / ".git").exists() or not shutil.which("git"):
        return []
    done = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                          capture_output=True, text=True, check=False)
    return [line[3:] for line in done.stdout.splitlines() if line.strip()]


def compute_references(stage: Path, root: Path, jobs: int = 2,
                       progress: bool = True) -> dict[str, str]:
    """Run every reference solution through its public checks (from the staged copy) in the
    sandbox; returns ``exercise name -> reference file text``."""
    from tqdm.auto import tqdm

    from course_lib.grading import engine, references

    checks = sorted((stage / "course_lib" / "grading" / "checks").glob("ex*.py"))
    exercises = []
    for path in checks:
        solution = Path(root) / "solutions" / path.name
        if not solution.is_file():
            raise ReleaseError(f"{path.stem} has checks but no reference solution "
                               f"(solutions/{path.name}): a release needs both")
        exercises.append(engine.Exercise(path.stem, path, solution))
    grader = engine.Grader(exercises)
    texts: dict[str, str] = {}
    bar = tqdm(total=len(exercises), desc="reference outputs", unit="exercise",
               disable=not progress, file=sys.stdout)

    def one(exercise: engine.Exercise) -> None:
        outputs = grader.reference(exercise)
        texts[exercise.name] = references.dumps(exercise.name, grader.check_source(exercise),
                                                outputs)
        bar.update()

    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for future in [pool.submit(one, ex) for ex in exercises]:
                future.result()
    except engine.GradingError as error:
        raise ReleaseError(str(error)) from None
    finally:
        bar.close()
    return dict(sorted(texts.items()))


def write_zip(folder: Path, destination: Path) -> None:
    """Zip ``folder`` reproducibly: sorted members under ``folder.name/``, fixed timestamps
    (``SOURCE_DATE_EPOCH`` when set, else 1980-01-01), fixed permissions, written atomically."""
    folder, destination = Path(folder), Path(destination)
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    stamp = ZIP_EPOCH
    if epoch and epoch.isdigit():
        import time

        stamp = tuple(time.gmtime(max(int(epoch), 315532800))[:6])
    files = sorted((p for p in folder.rglob("*") if p.is_file()),
                   key=lambda p: p.relative_to(folder).as_posix())
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
            for path in files:
                info = zipfile.ZipInfo(f"{folder.name}/{path.relative_to(folder).as_posix()}",
                                       date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = 3
                mode = 0o755 if os.access(path, os.X_OK) else 0o644
                info.external_attr = (0o100000 | mode) << 16
                archive.writestr(info, path.read_bytes())
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass
class Release:
    """What a release wrote: its folder, zip, files, exercises, and what it left out."""

    folder: Path
    zip_path: Path | None
    files: list[str]
    exercises: list[str]
    left_out: dict[str, str]
    uncommitted: list[str]

    @property
    def size(self) -> int:
        return sum((self.folder / name).stat().st_size for name in self.files)


def build_release(root: Path, out: Path, zip_path: Path | None = None, jobs: int = 2,
                  progress: bool = True) -> Release:
    """Make the student edition of the course folder ``root`` in ``out`` (a new or empty folder;
    nothing existing is overwritten) and, with ``zip_path``, its reproducible zip.

    Raises :class:`ReleaseError` when ``out`` or ``zip_path`` exists, a reference solution fails
    its checks, or solution code is found in the staged copy (then nothing is written).
    """
    root, out = Path(root).resolve(), Path(out).absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ReleaseError(f"{out} exists and is not an empty folder: choose a new one")
    if zip_path is not None and Path(zip_path).exists():
        raise ReleaseError(f"{zip_path} exists: choose a new name or remove it first")
    if root == out or root in out.parents:
        raise ReleaseError(f"{out} is inside the course folder {root}: choose a folder outside it")
    if not (root / "course_lib" / "grading" / "checks").is_dir():
        raise ReleaseError(f"{root} is not a course folder (no course_lib/grading/checks)")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging-"))
    try:
        files, left_out = [], {}
        for relative in source_files(root):
            reason = excluded_reason(relative)
            if reason:
                left_out[relative] = reason
                continue
            target = stage / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / relative, target)
            if os.access(root / relative, os.X_OK):
                target.chmod(0o755)
            files.append(relative)
        readme = stage / "README.md"
        if readme.is_file():
            title, _, rest = readme.read_text(encoding="utf-8").partition("\n\n")
            readme.write_text(f"{title}\n\n{STUDENT_NOTE}{rest}", encoding="utf-8")
        texts = compute_references(stage, root, jobs=jobs, progress=progress)
        folder = stage / "course_lib" / "grading" / "references"
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            (folder / f"{name}.json").write_text(text, encoding="utf-8")
            files.append(f"course_lib/grading/references/{name}.json")
        leaks = find_solution_code(stage, root / "solutions", root / "exercises")
        if leaks:
            listed = "\n  ".join(str(leak) for leak in leaks[:20])
            raise ReleaseError(f"solution code found in {len(leaks)} place(s); nothing was "
                               f"released:\n  {listed}")
        if out.exists():
            out.rmdir()
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if zip_path is not None:
        write_zip(out, Path(zip_path))
    return Release(out, Path(zip_path) if zip_path else None, sorted(files), sorted(texts),
                   left_out, uncommitted_changes(root))


def add_release_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``course release``."""
    parser.add_argument("out", type=Path, metavar="OUT",
                        help="new (or empty) folder for the student edition, outside the course")
    parser.add_argument("--zip", action="store_true",
                        help="also write OUT.zip (reproducible: same files, same bytes)")
    parser.add_argument("--jobs", type=int, default=2, metavar="N",
                        help="reference solutions run in parallel (default 2)")


def run_release_command(args: argparse.Namespace) -> int:
    """``course release``: 0 when the release was written, 2 when it could not be made."""
    from course_lib.grading import engine

    root = engine.course_root()
    zip_path = args.out.with_name(args.out.name + ".zip") if args.zip else None
    print(f"releasing the student edition of {root}")
    try:
        made = build_release(root, args.out, zip_path, jobs=args.jobs)
    except ReleaseError as error:
        print(f"course release: {error}", file=sys.stderr)
        return 2
    if made.uncommitted:
        shown = ", ".join(made.uncommitted[:3]) + (", ..." if len(made.uncommitted) > 3 else "")
        print(f"warning: {len(made.uncommitted)} tracked file(s) have uncommitted changes, which "
              f"are in the release ({shown}): commit them for a release that its commit "
              "reproduces", file=sys.stderr)
    reasons: dict[str, int] = {}
    for reason in made.left_out.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    print(f"{made.folder}: {len(made.files)} files, {made.size / 2**20:.1f} MiB; reference "
          f"outputs for {', '.join(made.exercises)}; no solution code found")
    for reason, count in sorted(reasons.items()):
        print(f"  left out: {count} file(s): {reason}")
    if made.zip_path is not None:
        import hashlib

        digest = hashlib.sha256(made.zip_path.read_bytes()).hexdigest()
        print(f"{made.zip_path}: {made.zip_path.stat().st_size / 2**20:.1f} MiB, sha256 {digest}")
    return 0
