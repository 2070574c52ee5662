"""Cut the small shipped samples in course_lib/samples/ from the shared offline copies.

Usage: python tools/make_samples.py [SOURCE_DIR] [OUT_DIR]
(defaults: $COURSE_DATA_DIR or ../shared/data, and course_lib/samples).

Deterministic: the same source files give byte-identical samples (fixed zip/tar/gzip
timestamps, sorted members), so the sha256 values in course_lib/data/registry.py and
course_lib/samples/README.md stay valid when this is re-run. Prints each file's size and sha256.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course_lib.data.files import check_sha256, sha256_file  # noqa: E402
from course_lib.data.registry import DATASETS  # noqa: E402

MNIST_COUNTS = {"train": 3000, "test": 1000}  # first N images, original order
CIFAR_PER_CLASS = {"train": 200, "test": 50}  # first N files of each class folder (sorted names)
IMDB_PER_CLASS = {"train": 500, "test": 250}  # N lowest review ids of each of neg/pos
IMDB_UNSUP = {"train": 1000}  # the N lowest ids of train/unsup (IMDB's unlabelled reviews)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed, but with fixed zip timestamps (byte-identical re-runs)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(value), allow_pickle=False)
            zf.writestr(info, buffer.getvalue(), compresslevel=6)


def write_tar_gz(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> None:
    """A gzip'd tar of ``members`` (sorted by name), gzip header without name or time."""
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for info, data in sorted(members, key=lambda m: m[0].name):
            clean = tarfile.TarInfo(info.name)
            clean.size, clean.mtime, clean.mode = len(data), info.mtime, 0o644
            tar.addfile(clean, io.BytesIO(data))


def pick_members(source: Path, pattern: str, per_class: dict[str, int], key) -> list:
    """The first ``per_class[split]`` members of each (split, class) in ``key`` order."""
    groups: dict[tuple[str, str], list] = {}
    with tarfile.open(source, "r:gz") as tar:
        for member in tar:
            match = re.fullmatch(pattern, member.name)
            if member.isfile() and match:
                split, cls, stem = match.groups()
                data = tar.extractfile(member).read()
                groups.setdefault((split, cls), []).append((key(stem), member, data))
    chosen = []
    for (split, _cls), rows in sorted(groups.items()):
        rows.sort(key=lambda r: r[0])
        chosen += [(member, data) for _, member, data in rows[: per_class[split]]]
    return chosen


def main(source: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in ("mnist", "cifar10", "imdb"):
        check_sha256(source / DATASETS[name].local.name, DATASETS[name].local.sha256)
    unsup = next(f for f in DATASETS["imdb"].local_extra if "unsupervised" in f.splits)
    check_sha256(source / unsup.name, unsup.sha256)

    with np.load(source / "mnist.npz") as f:
        write_npz(
            out / "mnist_sample.npz",
            {
                f"{kind}_{split}": f[f"{kind}_{split}"][:n]
                for split, n in MNIST_COUNTS.items()
                for kind in ("x", "y")
            },
        )
    write_tar_gz(
        out / "cifar10_sample.tar.gz",
        pick_members(
            source / "cifar10_jpeg.tar.gz",
            r"(train|test)/([a-z]+)/([0-9]+)\.jpg",
            CIFAR_PER_CLASS,
            str,
        ),
    )
    write_tar_gz(
        out / "imdb_sample.tar.gz",
        pick_members(
            source / "imdb_reviews_subset.tar.gz",
            r"aclImdb/(train|test)/(neg|pos)/([0-9]+_[0-9]+)\.txt",
            IMDB_PER_CLASS,
            lambda stem: int(stem.split("_")[0]),
        )
        + pick_members(
            source / unsup.name,
            r"aclImdb/(train)/(unsup)/([0-9]+_[0-9]+)\.txt",
            IMDB_UNSUP,
            lambda stem: int(stem.split("_")[0]),
        ),
    )
    for path in sorted(out.glob("*_sample.*")):
        print(f"{path.name}  {path.stat().st_size} bytes  sha256 {sha256_file(path)}")


if __name__ == "__main__":
    default_source = os.environ.get("COURSE_DATA_DIR") or ROOT.parent / "shared" / "data"
    main(
        Path(sys.argv[1] if len(sys.argv) > 1 else default_source),
        Path(sys.argv[2] if len(sys.argv) > 2 else ROOT / "course_lib" / "samples"),
    )
