"""Test-suite environment: fast mode, the shared data copy, quiet TensorFlow.

These variables are set before any test (and any nbval kernel, which inherits the
environment) starts.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ["COURSE_FAST"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
if SHARED_DATA.is_dir():
    os.environ.setdefault("COURSE_DATA_DIR", str(SHARED_DATA))
