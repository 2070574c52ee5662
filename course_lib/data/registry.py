"""The datasets the course knows: file names, formats, origins and sha256 checksums.

Three kinds of files per dataset:

- ``local``: the file a folder named by ``$COURSE_DATA_DIR`` may hold (the formats of the
  course's shared offline copies, see ``course_lib/samples/README.md``);
- ``remote``: the files of the real download path (the ``keras.datasets`` / tensorflow-datasets
  origins), fetched into the cache;
- ``sample``: the small file shipped in ``course_lib/samples/``.

Each file is checked against the sha256 written here before it is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
CIFAR_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


@dataclass(frozen=True)
class DataFile:
    """One file: its name, its sha256, (for remote files) its default download URL, and (for
    a local copy's extra files) the splits it holds."""

    name: str
    sha256: str
    url: str = ""
    splits: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """How to get one dataset. ``*_format`` names a decoder in :mod:`course_lib.data.decode`."""

    name: str
    classes: tuple[str, ...]
    remote: tuple[DataFile, ...]
    remote_format: str
    local: DataFile | None = None
    local_format: str = ""
    # Optional further local files in the same format that add to (or provide) some splits,
    # e.g. IMDB's other 15,000 training reviews and its 50,000 unlabelled ones.
    local_extra: tuple[DataFile, ...] = ()
    sample: DataFile | None = None
    sample_format: str = ""
    tfds_name: str = ""
    splits: tuple[str, ...] = field(default=("train", "test"))


DATASETS: dict[str, Dataset] = {
    "mnist": Dataset(
        name="mnist",
        classes=tuple(str(d) for d in range(10)),
        local=DataFile(
            "mnist.npz", "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64"
        ),
        local_format="npz",
        remote=(
            DataFile(
                "mnist.npz",
                "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
                KERAS_ORIGIN + "mnist.npz",
            ),
        ),
        remote_format="npz",
        sample=DataFile(
            "mnist_sample.npz", "0982686f03018fbb26d3a7fd2d5c969c5f10e940b6b9ce812512751902f18957"
        ),
        sample_format="npz",
    ),
    "fashion_mnist": Dataset(
        name="fashion_mnist",
        classes=FASHION_CLASSES,
        remote=tuple(
            DataFile(name, sha, KERAS_ORIGIN + name)
            for name, sha in (
                ("train-images-idx3-ubyte.gz",
                 "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
                ("train-labels-idx1-ubyte.gz",
                 "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
                ("t10k-images-idx3-ubyte.gz",
                 "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
                ("t10k-labels-idx1-ubyte.gz",
                 "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
            )
        ),
        remote_format="idx",
        tfds_name="fashion_mnist",
    ),
    "cifar10": Dataset(
        name="cifar10",
        classes=CIFAR_CLASSES,
        local=DataFile(
            "cifar10_jpeg.tar.gz",
            "d88b378e335e5f2068f6482da155ea05daa1a29a2c6434b9b9c6d120e6430490",
        ),
        local_format="jpeg_tar",
        remote=(
            DataFile(
                "cifar-10-binary.tar.gz",
                "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
                "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
            ),
        ),
        remote_format="cifar_bin",
        sample=DataFile(
            "cifar10_sample.tar.gz",
            "aafba0f8c01049b80d984d3c1842bff5ca8ac2cf780b729529f4edeabbb1d39f",
        ),
        sample_format="jpeg_tar",
    ),
    "imdb": Dataset(
        name="imdb",
        classes=("neg", "pos"),
        local=DataFile(
            "imdb_reviews_subset.tar.gz",
            "780c7abece79d98da6295002e48fb91040efcded4a5867dd37fc65f2c804e35b",
        ),
        local_format="acl_tar",
        local_extra=(
            DataFile("imdb_train_rest.tar.gz",
                     "52e768e0ec14df30c3c278675bc3f892ee34766e53f262daf3cfd0564552acad",
                     splits=("train",)),
            DataFile("imdb_unsup.tar.gz",
                     "445925636fe5695e1e002899b474b874cb9d393eaf16fdd404bc447d0248414d",
                     splits=("unsupervised",)),
        ),
        remote=(
            DataFile(
                "aclImdb_v1.tar.gz",
                "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
                "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
            ),
        ),
        remote_format="acl_tar",
        sample=DataFile(
            "imdb_sample.tar.gz",
            "2612d05d72055c95d8bea789552623b8985eda5e610a94500032097be6617fbe",
        ),
        sample_format="acl_tar",
        tfds_name="imdb_reviews",
        # tensorflow-datasets' split names; "unsupervised": IMDB's 50,000 unlabelled reviews
        # (label -1), the split the dataset provides for unsupervised learning.
        splits=("train", "test", "unsupervised"),
    ),
}


def get(name: str) -> Dataset:
    """The :class:`Dataset` called ``name``; ``ValueError`` listing the valid names otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset name={name!r}; valid names: {', '.join(DATASETS)}")
    return DATASETS[name]


def check_split(dataset: Dataset, split: str) -> None:
    """Raise ``ValueError`` listing the valid splits when ``split`` is not one of them."""
    if split not in dataset.splits:
        raise ValueError(
            f"unknown split={split!r} for {dataset.name!r}; "
            f"valid splits: {', '.join(dataset.splits)}"
        )
