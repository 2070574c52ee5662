"""Run chapter notebooks headless (`course run`) and start JupyterLab (`course lab`)."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from course_lib.environment import RUN_LOG_VARIABLE

PACKAGE_DIR = Path(__file__).resolve().parent
COURSE_ROOT = PACKAGE_DIR.parent
CHAPTERS_DIR = COURSE_ROOT / "chapters"


@dataclass
class ChapterResult:
    """Outcome of one executed chapter."""

    chapter: str
    status: str  # "ok" or "failed"
    seconds: float
    first_error: str = ""
    output: Path | None = None


def find_chapters(selection: list[str] | None = None, chapters_dir: Path | None = None) -> list[Path]:
    """Chapter notebooks matching `selection` ("00", "3", "02_mlp", a file name); all when empty.

    Raises:
        ValueError: when a selection matches no chapter (the message lists the chapters).
    """
    notebooks = sorted((chapters_dir or CHAPTERS_DIR).glob("[0-9][0-9]_*.ipynb"))
    if not selection:
        return notebooks
    chosen: list[Path] = []
    for item in selection:
        key = Path(item).name
        if key.isdigit():
            key = f"{int(key):02d}_"
        matches = [nb for nb in notebooks if nb.name.startswith(key) or nb.name == key]
        if not matches:
            names = ", ".join(nb.stem for nb in notebooks) or "none found"
            raise ValueError(f"no chapter matches {item!r}; chapters: {names}")
        chosen.extend(nb for nb in matches if nb not in chosen)
    return chosen


def code_sha256(notebook) -> str:
    """The fingerprint of a notebook's code, stored as ``course.run.code_sha256``.

    The rule: take the code cells in order (markdown and raw cells, outputs, execution counts
    and metadata do not count); each cell's source as one string (a source stored as a list
    of lines is joined with ""); write that list of strings as compact JSON
    (``json.dumps(sources, ensure_ascii=False, separators=(",", ":"))``), encode it as UTF-8
    and take its sha256 in hex. Editing text never makes a stored run stale; changing,
    adding, removing or reordering code does.

    Args:
        notebook: a notebook as nbformat reads it, or its JSON as a dict.
    """
    sources = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            source = cell["source"]
            sources.append("".join(source) if isinstance(source, list) else source)
    text = json.dumps(sources, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_run_log(path: Path) -> list[dict]:
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def run_record(notebook, events: list[dict], started: datetime.datetime, seconds: float,
               status: str, first_error: str = "") -> dict:
    """What ``course.run`` in a notebook's metadata records about one execution: mode, date,
    seconds, hardware, backend, versions, oneDNN, the code's :func:`code_sha256`, the
    pre-trained models the kernel loaded (name, variant, source, sha256) and the outcome.
    Mode, hardware, backend and versions are reported by the kernel itself
    (``course_lib.setup()``); "unknown" when the notebook never called it."""
    setup_events = [e for e in events if e.get("event") == "setup"]
    first = setup_events[0] if setup_events else {}
    return {
        "mode": first.get("mode", "unknown"),
        "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": round(seconds, 1),
        "hardware": first.get("hardware", "unknown"),
        "backend": first.get("backend", "unknown"),
        "onednn": first.get("onednn", "unknown"),
        "versions": first.get("versions", {}),
        "code_sha256": code_sha256(notebook),
        "pretrained": [{k: e.get(k, "") for k in ("name", "variant", "source", "sha256")}
                       for e in events if e.get("event") == "pretrained"],
        "status": status,
        **({"first_error": first_error} if first_error else {}),
    }


def chosen_chapters(selection: list[str] | None, chapters_dir: Path | None = None) -> list[Path]:
    """:func:`find_chapters` for a command: on a bad selection or an empty folder, prints why to
    stderr and returns an empty list (the command then exits with status 2)."""
    try:
        notebooks = find_chapters(selection, chapters_dir)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return []
    if not notebooks:
        print(f"error: no chapter notebooks in {chapters_dir or CHAPTERS_DIR}", file=sys.stderr)
    return notebooks


def _first_error(error: Exception) -> str:
    text = str(getattr(error, "ename", "") or type(error).__name__)
    value = getattr(error, "evalue", "") or str(error).strip().splitlines()[-1:]
    if isinstance(value, list):
        value = value[0] if value else ""
    return f"{text}: {value}"[:200]


def execute_notebook(
    source: Path, destination: Path, timeout: int = 600, progress: bool = True, label: str = ""
) -> None:
    """Execute `source` top to bottom and write the executed copy to `destination`.

    The kernel's working directory is the chapter folder, so relative paths behave as in
    JupyterLab. `source` is never written to. The copy's metadata ``course.run`` records the
    run (:func:`run_record`), also when a cell failed.
    """
    import nbformat
    from nbclient import NotebookClient
    from tqdm.auto import tqdm

    notebook = nbformat.read(source, as_version=4)
    started = datetime.datetime.now(datetime.timezone.utc)
    start = time.perf_counter()
    log = Path(tempfile.mkstemp(prefix="course-run-log-", suffix=".jsonl")[1])
    previous_log = os.environ.get(RUN_LOG_VARIABLE)
    os.environ[RUN_LOG_VARIABLE] = str(log)  # the kernel inherits it: environment.record_run_event
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(source.parent)}}
    )
    code_cells = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    bar = tqdm(total=len(code_cells), desc=label or source.stem, unit="cell", disable=not progress, leave=False)
    status, error_text = "failed", "interrupted"
    try:
        # The kernel's own log lines (not cell output) would clutter the progress bar.
        with client.setup_kernel(stderr=subprocess.DEVNULL):
            for index in code_cells:
                client.execute_cell(notebook.cells[index], index)
                bar.update()
        status, error_text = "ok", ""
    except Exception as error:
        error_text = _first_error(error)
        raise
    finally:
        bar.close()
        if previous_log is None:
            os.environ.pop(RUN_LOG_VARIABLE, None)
        else:
            os.environ[RUN_LOG_VARIABLE] = previous_log
        record = run_record(notebook, _read_run_log(log), started, time.perf_counter() - start,
                            status, error_text)
        log.unlink(missing_ok=True)
        notebook.metadata.setdefault("course", {})["run"] = record
        nbformat.write(notebook, destination)


def run_chapters(
    selection: list[str] | None,
    fast: bool = False,
    timeout: int = 600,
    output_dir: str | os.PathLike | None = None,
) -> int:
    """`course run`: execute chapters in copies and print a summary table. Returns an exit code."""
    notebooks = chosen_chapters(selection)
    if not notebooks:
        return 2
    if fast:
        os.environ["COURSE_FAST"] = "1"
    out = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="course-run-"))
    out.mkdir(parents=True, exist_ok=True)
    results: list[ChapterResult] = []
    for number, notebook in enumerate(notebooks, start=1):
        destination = out / notebook.name
        if destination.resolve() == notebook.resolve():
            print("error: --output-dir must not be the chapters folder", file=sys.stderr)
            return 2
        start = time.perf_counter()
        try:
            label = f"[{number}/{len(notebooks)}] {notebook.stem}"
            execute_notebook(notebook, destination, timeout=timeout, label=label)
            result = ChapterResult(notebook.stem, "ok", time.perf_counter() - start, output=destination)
        except Exception as error:  # report every chapter, then the table
            result = ChapterResult(
                notebook.stem, "failed", time.perf_counter() - start, _first_error(error), destination
            )
        results.append(result)
    print(format_summary(results))
    print(f"executed copies: {out}")
    return 0 if all(r.status == "ok" for r in results) else 1


def format_summary(results: list[ChapterResult]) -> str:
    """A plain-text table: chapter, status, seconds, first error."""
    width = max([len("chapter")] + [len(r.chapter) for r in results])
    lines = [f"{'chapter':{width}s}  status  seconds  first error"]
    lines.append("-" * len(lines[0]) + "-" * 10)
    for r in results:
        lines.append(f"{r.chapter:{width}s}  {r.status:6s}  {r.seconds:7.1f}  {r.first_error}")
    return "\n".join(lines)


def lab_command(jupyter_args: list[str]) -> list[str]:
    """The jupyter-lab command line `course lab` runs."""
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent)) or "jupyter"
    command = [jupyter, "lab", f"--notebook-dir={CHAPTERS_DIR}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in jupyter_args:
        command.append("--allow-root")  # containers and CI run as root
    return command + list(jupyter_args)


def start_lab(jupyter_args: list[str]) -> int:
    """`course lab`: start JupyterLab on the chapters folder (blocks until it stops)."""
    if not CHAPTERS_DIR.is_dir():
        print(f"error: chapters folder not found at {CHAPTERS_DIR}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # The course's own settings (no news prompt), below the user's own: course_lib/lab/README.md
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        [str(PACKAGE_DIR / "lab")] + [p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p])
    try:
        return subprocess.call(lab_command(jupyter_args), env=env)
    except KeyboardInterrupt:
        return 0
