"""The `course` command: help everywhere, doctor, and headless runs that never touch the original."""

import json
import subprocess
import sys

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_lib import cli, notebooks

COMMANDS = [[], ["doctor"], ["data"], ["data", "list"], ["data", "fetch"], ["data", "verify"],
            ["data", "path"], ["run"], ["lab"], ["grade"]]


@pytest.mark.parametrize("words", COMMANDS, ids=lambda w: " ".join(w) or "course")
def test_help_everywhere(words, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([*words, "--help"])
    assert stop.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_module_entry_point():
    done = subprocess.run([sys.executable, "-m", "course_lib", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "doctor" in done.stdout


def test_doctor_reports_and_passes():
    done = subprocess.run([sys.executable, "-m", "course_lib", "doctor"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    for word in ("numpy", "keras backend", "GPUs", "cache dir", "data mnist", "data cifar10"):
        assert word in done.stdout
    assert done.stderr.strip() == ""


def test_lab_arguments_pass_through():
    args, extra = cli.build_parser().parse_known_args(["lab", "--no-browser", "--port=1234"])
    assert args.command == "lab"
    command = notebooks.lab_command(extra)
    assert command[1] == "lab" and "--no-browser" in command and "--port=1234" in command
    assert any(part.startswith("--notebook-dir=") and part.endswith("chapters") for part in command)


def test_find_chapters_by_number_and_name(tmp_path):
    for name in ("00_getting_started", "01_foundations", "02_mlp_from_scratch"):
        nbformat.write(new_notebook(), tmp_path / f"{name}.ipynb")
    pick = notebooks.find_chapters(["1", "02_mlp"], chapters_dir=tmp_path)
    assert [p.stem for p in pick] == ["01_foundations", "02_mlp_from_scratch"]
    with pytest.raises(ValueError, match="no chapter matches '7'.*00_getting_started"):
        notebooks.find_chapters(["7"], chapters_dir=tmp_path)


def test_run_executes_copies_and_reports(tmp_path, monkeypatch, capsys):
    chapters = tmp_path / "chapters"
    chapters.mkdir()
    good = new_notebook(cells=[new_code_cell("import os\nprint(os.environ.get('COURSE_FAST'))")])
    bad = new_notebook(cells=[new_code_cell("print('before')"), new_code_cell("1 / 0")])
    nbformat.write(good, chapters / "00_good.ipynb")
    nbformat.write(bad, chapters / "01_bad.ipynb")
    originals = {p.name: p.read_bytes() for p in chapters.iterdir()}
    monkeypatch.setattr(notebooks, "CHAPTERS_DIR", chapters)
    monkeypatch.delenv("COURSE_FAST", raising=False)

    code = notebooks.run_chapters([], fast=True, timeout=60, output_dir=tmp_path / "out")

    table = capsys.readouterr().out
    assert code == 1
    assert "00_good" in table and "ok" in table
    assert "01_bad" in table and "failed" in table and "ZeroDivisionError" in table
    assert {p.name: p.read_bytes() for p in chapters.iterdir()} == originals  # never overwritten
    executed = json.loads((tmp_path / "out" / "00_good.ipynb").read_text())
    assert "".join(executed["cells"][0]["outputs"][0]["text"]) == "1\n"
