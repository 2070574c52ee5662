"""`course publish`: store the outputs of a chapter's full-mode run in ``chapters/``.

What a student opens on GitHub or in JupyterLab are the stored outputs of each chapter. They
must be the real results of the committed code in full mode, with the models shipped in the
package. ``course publish`` is the only command that writes into ``chapters/``:

1. it executes each chosen chapter in full mode in a copy (``course run`` machinery, which
   records the run in the copy's metadata ``course.run``), or adopts executed copies made by
   ``course run`` (``--from-run DIR``) after the same checks;
2. it refuses a run that failed or stored an error, ran in fast mode, ran other code than the
   chapter now holds (:func:`course_lib.notebooks.code_sha256`), loaded a pre-trained model
   that is not the shipped one, or stored stderr or a machine path;
3. it copies the run's code-cell outputs, execution counts and ``course.run`` record into the
   chapter, keeping the chapter's text cells as they are (editing text never makes a run
   stale). Progress-bar carriage returns are reduced to the line a reader saw last.

The test suite fails when a chapter's code no longer matches its stored run
(``tests/test_published_edition.py``), so changed code cannot land with old results.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from course_lib.notebooks import chosen_chapters, code_sha256, execute_notebook

LOG_LINE = re.compile(r"^(WARNING|ERROR|INFO):[\w.]+:.*$", re.MULTILINE)  # a logging handler's line
MACHINE_PATH = re.compile(r"(/root/|/home/\w+|/tmp/|/Users/\w+|[A-Z]:\\\\Users)")


def last_rendered(text: str) -> str:
    """What a terminal shows for ``text`` with carriage returns: each line's last segment."""
    if "\r" not in text:
        return text
    lines = []
    for line in text.split("\n"):
        segments = [s for s in line.split("\r") if s.strip()]
        lines.append(segments[-1] if segments else "")
    return "\n".join(lines)


def _output_text(output) -> str:
    import json

    return json.dumps(output.get("text", "")) + json.dumps(output.get("data", {}))


def run_problems(executed, chapter, shipped_sha256=None) -> list[str]:
    """Why the executed notebook ``executed`` must not be published as ``chapter`` (empty: fine).

    Args:
        executed: the executed copy (nbformat notebook) with its ``course.run`` record.
        chapter: the chapter notebook as it is now in ``chapters/``.
        shipped_sha256: ``name -> sha256`` of the shipped models (default: read from the
            package, each verified against its weights file).
    """
    record = executed.metadata.get("course", {}).get("run")
    if not record:
        return ["the copy has no course.run record (execute it with `course run` or publish)"]
    problems = []
    if record.get("status") != "ok":
        problems.append(f"the run failed: {record.get('first_error', 'unknown error')}")
    if record.get("mode") != "full":
        problems.append(f"the run was in {record.get('mode')!r} mode, not full mode")
    if record.get("code_sha256") != code_sha256(executed):
        problems.append("the copy's code differs from the code its record says it ran")
    if record.get("code_sha256") != code_sha256(chapter):
        problems.append("the chapter's code changed since this run (code_sha256 differs): run it again")
    for model in record.get("pretrained", []):
        name = model.get("name", "?")
        wanted = _shipped_sha256(name, shipped_sha256)
        if model.get("variant") != "full" or not wanted or model.get("sha256") != wanted:
            problems.append(f"pre-trained model {name!r} ({model.get('variant')}, from "
                            f"{model.get('source')}) is not the shipped one")
    for index, cell in enumerate(c for c in executed.cells if c.cell_type == "code"):
        where = f"code cell {index}"
        if cell.get("execution_count") is None:
            problems.append(f"{where} was not executed")
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                problems.append(f"{where} stored an error: {output.get('ename')}: {output.get('evalue')}")
            elif output.get("name") == "stderr":
                problems.append(f"{where} wrote to stderr: {output.get('text', '')[:120]!r}")
            elif LOG_LINE.search(output.get("text", "")):
                problems.append(f"{where} shows a library's log line: "
                                f"{LOG_LINE.search(output['text']).group(0)[:120]!r}")
            if MACHINE_PATH.search(_output_text(output)):
                problems.append(f"{where} shows a machine path")
    return problems


def _shipped_sha256(name: str, given: dict | None) -> str:
    if given is not None:
        return given.get(name, "")
    from course_lib import pretrained

    try:
        return pretrained.read_shipped_meta(name)["sha256"]
    except Exception:  # missing or corrupt shipped copy: nothing to match
        return ""


def transplant(executed, chapter):
    """``chapter`` with the code-cell outputs, execution counts, execution timestamps (cell
    metadata "execution") and ``course.run`` record of ``executed`` (same code cells, checked by
    :func:`run_problems`); text cells unchanged."""
    ran = [c for c in executed.cells if c.cell_type == "code"]
    mine = [c for c in chapter.cells if c.cell_type == "code"]
    if [c.source for c in ran] != [c.source for c in mine]:
        raise ValueError("the executed copy's code cells differ from the chapter's")
    for source, target in zip(ran, mine, strict=True):
        outputs = []
        for output in source.get("outputs", []):
            if output.get("output_type") == "stream":
                output["text"] = last_rendered(output["text"])
            outputs.append(output)
        target["outputs"] = outputs
        target["execution_count"] = source.get("execution_count")
        target.metadata.pop("execution", None)      # an earlier run's timestamps would mislead
        if "execution" in source.get("metadata", {}):
            target.metadata["execution"] = source.metadata["execution"]
    chapter.metadata.setdefault("course", {})["run"] = dict(executed.metadata["course"]["run"])
    return chapter


def publish(selection: list[str] | None, from_run: str | os.PathLike | None = None,
            timeout: int = 5000, chapters_dir: Path | None = None) -> int:
    """`course publish`: run (or adopt) and check each chapter, then store its outputs in
    ``chapters/``. Returns an exit code: 0 when every chosen chapter was published."""
    import nbformat

    notebooks = chosen_chapters(selection, chapters_dir)
    if not notebooks:
        return 2
    if from_run is None:
        os.environ.pop("COURSE_FAST", None)  # a published run is a full-mode run
    work = Path(tempfile.mkdtemp(prefix="course-publish-"))
    failed = 0
    for number, notebook in enumerate(notebooks, start=1):
        if from_run is not None:
            executed_path = Path(from_run) / notebook.name
            if not executed_path.exists():
                print(f"{notebook.stem}: not published: no executed copy {executed_path.name} in {from_run}")
                failed += 1
                continue
        else:
            executed_path = work / notebook.name
            try:
                execute_notebook(notebook, executed_path, timeout=timeout,
                                 label=f"[{number}/{len(notebooks)}] {notebook.stem}")
            except Exception:  # the record in the copy says what failed
                if not executed_path.exists():
                    print(f"{notebook.stem}: not published: the run did not start")
                    failed += 1
                    continue
        executed = nbformat.read(executed_path, as_version=4)
        chapter = nbformat.read(notebook, as_version=4)
        problems = run_problems(executed, chapter)
        if problems:
            print(f"{notebook.stem}: not published:\n  " + "\n  ".join(problems))
            failed += 1
            continue
        nbformat.write(transplant(executed, chapter), notebook)
        record = chapter.metadata["course"]["run"]
        print(f"{notebook.stem}: published the full-mode run of {record['date']} "
              f"({record['seconds']:.0f} s on {record['hardware']})")
    return 1 if failed else 0


# --- text and results --------------------------------------------------------------------

_HIDDEN = re.compile(
    r"```.*?```"          # fenced code
    r"|\$\$.*?\$\$"       # display mathematics
    r"|\$[^$\n]+\$"       # inline mathematics
    r"|`[^`\n]*`"         # inline code
    r"|\]\([^)]*\)"       # link targets
    r"|<[^>\n]+>",        # HTML tags
    re.DOTALL)
_FIGURE = re.compile(r"(?<![\w.§/:])(\d+\.\d+)(?![\d.]*\.\d)(?![\w/])")
_REFERENCE_WORD = re.compile(r"(§|\b(sections?|eq|eqs|equations?|fig|figures?|tables?|chapters?|"
                             r"versions?|python|keras|numpy|tensorflow|transformers|jax))\W*$",
                             re.IGNORECASE)
# What may stand between a reference word and a number it refers to: "sections 2.1 (neural
# networks), 3.1 and 4.1", "§4.3 = §5.2", "sections 5.2–5.3".
_BETWEEN = re.compile(r"(\s+|\d+(\.\d+)*|,|;|=|–|-|and\b|or\b|\([^()]*\))$")


def _is_reference(prose: str, start: int) -> bool:
    """True when the number at ``start`` is a section, equation, table or version number."""
    line_start = prose.rfind("\n", 0, start) + 1
    if re.fullmatch(r"\s*#+\s*", prose[line_start:start]):
        return True  # a numbered heading: "### 6.2 Transfer …"
    before = prose[max(0, start - 200):start]
    while True:
        if _REFERENCE_WORD.search(before):
            return True
        trimmed = _BETWEEN.sub("", before)
        if trimmed == before:
            return False
        before = trimmed


def text_figures(markdown: str) -> list[str]:
    """The decimal figures (``0.988``, ``4.4``) that a markdown cell states in its prose.

    Not counted: mathematics (``$…$``), code (fenced or inline), link targets, HTML tags,
    numbered headings, references ("§5.2", "sections 2.1 (…) and 3.1", "Keras 3.8",
    "Table 2") and version-like numbers with two or more dots (``3.11.7``)."""
    prose = _HIDDEN.sub(" ", markdown)
    return [m.group(1) for m in _FIGURE.finditer(prose) if not _is_reference(prose, m.start())]


_NUMBER = re.compile(r"\d*\.?\d+(?:[eE][-+]?\d+)?")


def output_numbers(notebook) -> list[float]:
    """Every number a notebook's stored outputs show (stream text, text/plain, text/markdown,
    text/html), and the seconds of its stored run."""
    found: list[float] = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            texts = [output.get("text", "")]
            data = output.get("data", {})
            texts += [data.get(kind, "") for kind in ("text/plain", "text/markdown", "text/html")]
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text
                found.extend(float(n) for n in _NUMBER.findall(text))
    seconds = notebook.metadata.get("course", {}).get("run", {}).get("seconds")
    if seconds is not None:
        found.append(float(seconds))
    return found


def figure_shown(figure: str, numbers: list[float]) -> bool:
    """True when some output number rounds to ``figure`` at its number of decimals, read as
    itself or as a percentage / percentage points of a fraction (0.9876 shows as 98.8)."""
    decimals = len(figure.split(".")[1])
    value = float(figure)
    tolerance = 0.5 * 10 ** -decimals + 1e-9
    return any(abs(abs(n) * scale - value) <= tolerance for n in numbers for scale in (1, 100))


def unmatched_figures(notebook, exceptions: dict[str, str] | None = None) -> list[str]:
    """Decimal figures in the notebook's text (:func:`text_figures`) that none of its stored
    outputs shows (:func:`figure_shown`), less ``exceptions`` (figure -> why it is not a
    result of the run: a published anchor with its citation, a constant of the mathematics).
    Each entry reads "figure (text cell N)"."""
    exceptions = exceptions or {}
    numbers = output_numbers(notebook)
    missing = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "markdown":
            continue
        for figure in text_figures(cell.source):
            if figure not in exceptions and not figure_shown(figure, numbers):
                missing.append(f"{figure} (cell {index})")
    return missing
