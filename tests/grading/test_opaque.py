"""Submissions that embed opaque data or load code or data at run time are flagged `opaque` in the
gradebook and the feedback, for the instructor's review; points are unchanged. The course's own
solutions, stubs and fixtures raise no flag."""

from __future__ import annotations

import base64
import csv
import marshal
import pickle
import random
import zlib
from pathlib import Path

import pytest
from grading_helpers import FIXTURES, grade

from course_lib.grading import opaque

ROOT = Path(__file__).resolve().parents[2]
SOLUTION = (FIXTURES / "solutions" / "ex90_demo.py").read_text()
_RANDOM = random.Random(0)
TABLE = {f"key{i}": [_RANDOM.random() for _ in range(40)] for i in range(60)}  # recorded answers
PICKLED = base64.b64encode(pickle.dumps(TABLE)).decode()
PACKED = zlib.compress(pickle.dumps(TABLE))

FLAGGED = {
    "pickle_blob": f"import base64, pickle\nTABLE = pickle.loads(base64.b64decode({PICKLED!r}))\n",
    "marshal_code": ("import marshal\nexec(marshal.loads("
                     f"{marshal.dumps(compile('x = 1', 'f', 'exec'))!r}))\n"),
    "zlib_bytes": f"import zlib, json\nTABLE = json.loads(zlib.decompress({PACKED!r}))\n",
    "hex_with_codecs": (f"import codecs\nDATA = codecs.decode({pickle.dumps(TABLE).hex()!r}, "
                       "'hex')\n"),
    "blob_in_pieces": "PARTS = [\n" + "".join(f"    {PICKLED[i:i + 76]!r},\n"
                                             for i in range(0, len(PICKLED), 76)) + "]\n",
    "numbers": "TABLE = [" + ", ".join(f"{i * 0.37:.3f}" for i in range(2500)) + "]\n",
    "eval": "def scale(x, a):\n    return eval('a * x')\n",
    "exec": "exec('def scale(x, a):\\n    return a * x')\n",
    "compile": "CODE = compile('a * x', 'f', 'eval')\n",
    "dunder_import": "loads = __import__('pickle').loads\n",
    "importlib": "import importlib\nloader = importlib.import_module('json')\n",
    "from_importlib": "from importlib import import_module\n",
    "builtins_by_name": "import sys\nrun = getattr(sys.modules['builtins'], 'ex' + 'ec')\n",
    "dunder_builtins": "run = __builtins__['eval']\n",
    "numpy_pickle": "import numpy as np\nTABLE = np.load('table.npy', allow_pickle=True)\n",
}
CLEAN = {
    "small_base64": f"KEY = {base64.b64encode(b'x' * 300).decode()!r}\n",
    "re_compile": "import re\nPATTERN = re.compile(r'\\d+')\n",
    "own_compile": "from re import compile\nPATTERN = compile(r'\\d+')\n",
    "own_function": "def eval(model):\n    return model\n\nscore = eval(3)\n",
    "long_prose": '"""' + "A docstring of plain words, explained at length. " * 300 + '"""\n',
    "numpy_load": ("import numpy as np\nDATA = np.load('x.npy')\n"
                   "MORE = np.load('y.npy', allow_pickle=False)\n"),
    "syntax_error": "def scale(x, a)\n    return a * x\n",
}


@pytest.mark.parametrize("name", sorted(FLAGGED))
def test_opaque_data_and_loaders_are_found(name):
    found = opaque.findings(FLAGGED[name])
    assert found, name
    assert all(reason.startswith(("embeds ", "loads code or data at run time: "))
               for reason in found)


def test_reasons_say_what_and_where():
    (blob, loader) = opaque.findings(FLAGGED["pickle_blob"])
    assert blob.startswith("embeds ") and "kB of opaque data" in blob and "line 2" in blob
    assert "decoded with " in blob and "base64.b64decode" in blob and "pickle.loads" in blob
    assert loader == "loads code or data at run time: import pickle (line 1)"
    assert opaque.findings(FLAGGED["numbers"]) == ["embeds a table of 2500 numeric literals"]
    assert "exec() (line 1)" in opaque.findings(FLAGGED["exec"])[0]


@pytest.mark.parametrize("name", sorted(CLEAN))
def test_ordinary_code_is_not_flagged(name):
    assert opaque.findings(CLEAN[name]) == []


def test_the_course_code_given_to_students_is_not_flagged():
    files = [*sorted((ROOT / "solutions").glob("ex*.py")), *sorted((ROOT / "exercises").glob(
        "ex*.py")), *sorted(FIXTURES.rglob("*.py"))]
    assert len(files) > 10
    assert {path.name: opaque.findings(path.read_text()) for path in files
            if opaque.findings(path.read_text())} == {}


def test_the_flag_reaches_gradebook_and_feedback_and_points_stay(tmp_path):
    subs = tmp_path / "subs"
    sources = {"ada": SOLUTION, "bo": FLAGGED["pickle_blob"] + SOLUTION,
               "cy": "import marshal\n" + SOLUTION}
    for student, source in sources.items():
        (subs / student).mkdir(parents=True)
        (subs / student / "ex90_demo.py").write_text(source)
    out, feedback = tmp_path / "gradebook.csv", tmp_path / "feedback"
    assert grade("--submissions", subs, "--out", out, "--feedback", feedback,
                 "--similarity", "1.01") == 0
    rows = {row["student"]: row for row in csv.DictReader(out.open())}
    assert {name: row["total"] for name, row in rows.items()} == {"ada": "5", "bo": "5", "cy": "5"}
    assert rows["ada"]["flags"] == ""
    assert "opaque: ex90: embeds " in rows["bo"]["flags"]
    assert "opaque: ex90: loads code or data at run time: import pickle" in rows["bo"]["flags"]
    assert rows["cy"]["flags"] == "opaque: ex90: loads code or data at run time: import marshal " \
                                  "(line 1)"
    assert "flag **opaque**: ex90: embeds " in (feedback / "bo.md").read_text()
