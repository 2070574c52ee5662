"""Test-suite environment: fast mode, the shared data copy, quiet TensorFlow, and a cache of
the suite's own.

These variables are set before any test (and any nbval kernel, which inherits the
environment) starts. The cache (models the chapters pre-train in fast mode, decoded data) is
``.test-cache/`` in the course folder, never the user's cache; it persists between runs.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ["COURSE_FAST"] = "1"
os.environ["COURSE_CACHE"] = str(ROOT / ".test-cache")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
if SHARED_DATA.is_dir():
    os.environ.setdefault("COURSE_DATA_DIR", str(SHARED_DATA))
