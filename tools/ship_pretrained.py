"""Maintainers: ship the course's own pre-trained models inside the package.

Usage:
    course pretrain NAME --force          # train the full-mode model into your cache (oneDNN on)
    python tools/ship_pretrained.py NAME [NAME ...]     # copy it to course_lib/pretrained/
    python tools/ship_pretrained.py --add-provenance NAME   # a model cached by an older course
                                                        # version, trained on this machine

Each model is copied from the cache as ``course_lib/pretrained/<name>.weights.h5`` with its
metadata ``<name>.meta.json`` (sha256, recipe, results, data files and their sha256, training
seconds, hardware, Keras version and backend). The cached copy must be valid (sha256) and
trained with the current recipe. Prints each file's size and sha256 and the total size of the
shipped weights (the package's budget is 15 MB). Commit both files with the recipe change that
needed them: tests/test_pretrained.py fails on a shipped model whose recipe is not the current
one.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib import pretrained  # noqa: E402
from course_lib.data.files import sha256_file  # noqa: E402

BUDGET_BYTES = 15 * 10**6


def main(names: list[str]) -> int:
    add = "--add-provenance" in names
    names = [n for n in names if n != "--add-provenance"]
    if not names:
        print(__doc__)
        return 2
    for name in names:
        try:
            weights, meta = pretrained.ship(name, add_provenance=add)
        except pretrained.PretrainedModelError as error:
            print(f"{name}: not shipped: {error}", file=sys.stderr)
            return 1
        print(f"{name}: {weights.relative_to(ROOT)} {weights.stat().st_size:,} bytes "
              f"sha256 {sha256_file(weights)}; {meta.relative_to(ROOT)}")
    total = sum(p.stat().st_size for p in pretrained.SHIPPED_DIR.glob("*.weights.h5"))
    print(f"all shipped weights: {total:,} bytes (budget {BUDGET_BYTES:,})")
    return 0 if total <= BUDGET_BYTES else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
