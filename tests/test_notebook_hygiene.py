"""What students see stored in the committed notebooks: clean, ordered, small."""

import json
import re
from pathlib import Path

import pytest

from course_lib.publish import MACHINE_PATH

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))


def _code_cells(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return notebook, [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def test_chapters_exist():
    names = [path.name for path in NOTEBOOKS]
    assert "00_getting_started.ipynb" in names
    for name in names:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", name), f"{name}: chapters are named NN_topic.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_are_clean(path):
    _, cells = _code_cells(path)
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            where = f"{path.name} code cell {index}"
            assert output["output_type"] != "error", f"{where}: stored error output"
            assert output.get("name") != "stderr", f"{where}: stored stderr output"
            text = json.dumps(output.get("text", "")) + json.dumps(output.get("data", {}).get("text/plain", ""))
            assert not MACHINE_PATH.search(text), f"{where}: machine path in output"
            assert str(ROOT) not in text, f"{where}: repository path in output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_executed_in_order(path):
    _, cells = _code_cells(path)
    counts = [cell["execution_count"] for cell in cells]
    assert None not in counts, f"{path.name}: some code cells were not executed"
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: execution counts {counts}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_small_and_set_up(path):
    assert path.stat().st_size < 1_500_000, f"{path.name} is too big; shrink its figures"
    notebook, cells = _code_cells(path)
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    first = "".join(cells[0]["source"])
    assert "course_lib.setup(" in first, f"{path.name}: first code cell must call course_lib.setup()"


def test_full_mode_kernel_turns_onednn_on_and_stores_no_stderr(monkeypatch):
    """Full mode runs TensorFlow with oneDNN's fast CPU kernels; its start-up notice (written
    by C++ to descriptor 2, whatever TF_CPP_MIN_LOG_LEVEL says) must not become a stored
    stderr output. A progress bar leaves one line and no carriage returns."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.delenv("COURSE_FAST", raising=False)
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("import course_lib\ncourse_lib.setup()\nimport os\n"
                                  "print('oneDNN', os.environ['TF_ENABLE_ONEDNN_OPTS'])"),
        nbformat.v4.new_code_cell("import keras, numpy as np\n"
                                  "model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])\n"
                                  "model.compile('sgd', 'mse')\n"
                                  "model.fit(np.zeros((8, 4)), np.zeros((8, 2)), verbose=0)\n"
                                  "from course_lib.progress import progress_bar\n"
                                  "bar = progress_bar(total=50, desc='steps')\n"
                                  "for _ in range(50):\n    bar.update()\nbar.close()"),
    ]
    NotebookClient(notebook, timeout=180, kernel_name="python3").execute()
    outputs = [output for cell in notebook.cells for output in cell.outputs]
    assert not [o for o in outputs if o.get("name") == "stderr" or o["output_type"] == "error"]
    assert "oneDNN 1" in notebook.cells[0].outputs[0]["text"]
    shown = [o["data"]["text/plain"] for o in notebook.cells[1].outputs
             if o["output_type"] == "display_data"]
    assert len(shown) == 1 and "50/50" in shown[0] and "\r" not in json.dumps(outputs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_figures_are_modest_pngs(path):
    _, cells = _code_cells(path)
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            for kind, value in output.get("data", {}).items():
                if kind.startswith("image/"):
                    assert kind == "image/png", f"{path.name} code cell {index}: a {kind} figure; store PNG"
                    assert len(value) * 3 // 4 < 250_000, f"{path.name} code cell {index}: a figure over 250 kB"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_library_log_lines_in_outputs(path):
    from course_lib.publish import LOG_LINE

    _, cells = _code_cells(path)
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", ""))
            assert not LOG_LINE.search(text), f"{path.name} code cell {index}: {LOG_LINE.search(text).group(0)[:100]}"
