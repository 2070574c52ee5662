"""The published edition: every chapter stores the outputs of one full-mode run of its
committed code (``course publish``), and its text states figures that those outputs show.

nbval (``make test``) executes every chapter in fast mode and compares the cells marked
``NBVAL_CHECK_OUTPUT`` with their stored full-mode outputs: a marked cell whose output
depends on the mode fails there, by name.
"""

import json
from pathlib import Path

import nbformat
import pytest

from course_lib import publish
from course_lib.notebooks import code_sha256

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))

# Decimal figures a chapter's text may state although its outputs do not show them: published
# anchors (with their citation) and figures quoted from the documents. Keep this list short.
TEXT_EXCEPTIONS = {
    "04_convolutional_networks": {
        "99.25": "the Keras MNIST convnet example's stated test accuracy (keras.io, Chollet)",
        "3.29": "airbench's time to 94 % on CIFAR-10 (Jordan 2024, arXiv:2404.00498)",
    },
    "06_generalization": {
        "0.89": "PGD accuracy range reported by Madry et al. 2018 on MNIST",
        "0.92": "PGD accuracy range reported by Madry et al. 2018 on MNIST",
    },
    "07_transfer_learning": {
        "1.28": "ImageNet-1k's 1.28 million training images (Russakovsky et al. 2015)",
    },
    "09_pretrained_language_models": {
        "5.8": "issue 15's measurement with the earlier 10,000-review recipe, disclosed as such",
        "1.6": "issue 15's measurement with the earlier 10,000-review recipe, disclosed as such",
        "0.999": "the accuracies document 002 §5.4 claims, quoted in the errata table",
        "0.983": "the accuracies document 002 §5.4 claims, quoted in the errata table",
    },
}


def _read(path):
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_stored_run_is_a_full_mode_run(path):
    record = _read(path).metadata.get("course", {}).get("run")
    assert record, f"{path.name}: no stored run (metadata course.run); publish it: course publish {path.stem[:2]}"
    assert record["mode"] == "full", f"{path.name}: the stored run is in {record['mode']!r} mode"
    assert record["status"] == "ok", f"{path.name}: the stored run failed"
    for key in ("date", "seconds", "hardware", "backend", "versions", "code_sha256", "pretrained"):
        assert key in record, f"{path.name}: course.run lacks {key!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_stored_run_ran_the_committed_code(path):
    notebook = _read(path)
    stored = notebook.metadata.get("course", {}).get("run", {}).get("code_sha256")
    assert stored == code_sha256(notebook), (
        f"{path.name}: its code changed after its outputs were stored; republish it "
        f"(course publish {path.stem[:2]}) so that the outputs are those of the code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_stored_run_used_the_shipped_models(path):
    notebook = _read(path)
    record = notebook.metadata.get("course", {}).get("run", {})
    # The sha256 recorded at publication must be the one of the model shipped now.
    problems = [p for p in publish.run_problems(notebook, notebook) if "pre-trained" in p]
    assert not problems, f"{path.name}: {problems}"
    assert all(m["source"] in {"shipped", "cache"} for m in record.get("pretrained", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_cell_timestamps_belong_to_the_stored_run(path):
    from datetime import datetime, timedelta

    def moment(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    notebook = _read(path)
    run = notebook.metadata["course"]["run"]
    start = moment(run["date"]) - timedelta(seconds=1)
    end = start + timedelta(seconds=run["seconds"] + 120)
    for index, cell in enumerate(notebook.cells):
        stamp = cell.get("metadata", {}).get("execution", {}).get("iopub.execute_input")
        if cell.cell_type == "code" and stamp:
            assert start <= moment(stamp) <= end, (index, stamp, run["date"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_text_states_figures_its_outputs_show(path):
    exceptions = TEXT_EXCEPTIONS.get(path.stem, {})
    missing = publish.unmatched_figures(_read(path), exceptions)
    assert not missing, (
        f"{path.name}: the text states figures that no stored output shows: {missing}. "
        "Rewrite the text for the stored results, or (for a published anchor or a quoted "
        "figure only) add it with its citation to TEXT_EXCEPTIONS.")


def test_the_exceptions_are_still_needed():
    for stem, exceptions in TEXT_EXCEPTIONS.items():
        notebook = _read(ROOT / "chapters" / f"{stem}.ipynb")
        stated = {f for c in notebook.cells if c.cell_type == "markdown" for f in publish.text_figures(c.source)}
        assert set(exceptions) <= stated, f"{stem}: exceptions no longer in the text: {set(exceptions) - stated}"


# --- the rules, on small cases ----------------------------------------------------------------

def test_text_figures_skips_references_mathematics_and_code():
    text = ("Document 003, sections 2.1 (neural networks), 3.1 and 4.1; §4.3 = §5.2.\n"
            "### 6.2 Transfer\nKeras 3.8 and Python 3.11.7. $\\beta = 0.9$ and `lr=0.001`.\n"
            "The CNN reaches 0.988 (+4.4 points, 98.8 %), see [here](https://x.org/1.5).")
    assert publish.text_figures(text) == ["0.988", "4.4", "98.8"]


def test_a_figure_is_shown_when_an_output_rounds_to_it():
    assert publish.figure_shown("0.988", [0.98765])
    assert publish.figure_shown("98.8", [0.98765])      # as a percentage
    assert publish.figure_shown("4.4", [-0.0441])       # percentage points, either sign
    assert not publish.figure_shown("0.987", [0.98765])
    assert not publish.figure_shown("0.99", [0.98])


def _tiny_chapter(folder: Path, code: str = "print('accuracy 0.9876')") -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Tiny\nThe model reaches 0.988."),
        nbformat.v4.new_code_cell("import course_lib\ncourse_lib.setup(keras=False)"),
        nbformat.v4.new_code_cell(code),
    ]
    path = folder / "00_tiny.ipynb"
    nbformat.write(notebook, path)
    return path


def test_publish_stores_a_full_mode_run_and_keeps_the_text(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "1")  # publish runs in full mode whatever the shell says
    path = _tiny_chapter(tmp_path)
    text_before = [c.source for c in _read(path).cells if c.cell_type == "markdown"]
    assert publish.publish(["00"], chapters_dir=tmp_path, timeout=120) == 0
    notebook = _read(path)
    record = notebook.metadata["course"]["run"]
    assert record["mode"] == "full" and record["status"] == "ok"
    assert record["code_sha256"] == code_sha256(notebook)
    assert "accuracy 0.9876" in notebook.cells[2].outputs[0]["text"]
    assert [c.source for c in notebook.cells if c.cell_type == "markdown"] == text_before
    assert publish.unmatched_figures(notebook) == []


def test_publish_refuses_a_fast_mode_run_and_changed_code(tmp_path, monkeypatch):
    from course_lib.notebooks import execute_notebook

    path = _tiny_chapter(tmp_path)
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("COURSE_FAST", "1")
    execute_notebook(path, runs / path.name, timeout=120, progress=False)
    before = path.read_bytes()
    assert publish.publish(["00"], from_run=runs, chapters_dir=tmp_path) == 1
    assert path.read_bytes() == before  # nothing written
    executed = _read(runs / path.name)
    assert any("'fast' mode" in p for p in publish.run_problems(executed, _read(path)))
    changed = _read(path)
    changed.cells[2].source = "print('other code')"
    assert any("code changed" in p for p in publish.run_problems(executed, changed))


def test_run_problems_names_each_reason():
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.execution_count = 1
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="warning"),
                    nbformat.v4.new_output("stream", name="stdout", text="saved to /tmp/x"),
                    nbformat.v4.new_output("stream", name="stdout", text="WARNING:tensorflow:5 out of 9 calls"),
                    nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[])]
    notebook.cells = [cell]
    notebook.metadata["course"] = {"run": {
        "mode": "full", "status": "ok", "code_sha256": code_sha256(notebook),
        "pretrained": [{"name": "cifar_source", "variant": "full", "source": "cache", "sha256": "0" * 64}]}}
    problems = " | ".join(publish.run_problems(notebook, notebook, shipped_sha256={"cifar_source": "1" * 64}))
    for reason in ("stderr", "machine path", "log line", "stored an error", "not the shipped one"):
        assert reason in problems, (reason, problems)


def test_progress_bar_text_is_reduced_to_the_last_rendered_line():
    assert publish.last_rendered("epoch 1\r epoch 2\r epoch 3\ndone\n") == " epoch 3\ndone\n"
    assert json.dumps(publish.last_rendered("a\rb")) == '"b"'
