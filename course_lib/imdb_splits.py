"""Who may see which IMDB review in chapter 09: the protocol every number of the chapter follows.

- **validation**: 1,000 training reviews (500 per class), drawn once. They are held out of the
  pre-training corpus *and* of the label pool, so they are the only honest place to choose
  anything (the pre-training recipe, epochs, early stopping, learning rates): a model has never
  read them, neither with nor without labels.
- **pool**: the other training reviews; labelled subsets (100, 1000, all) are drawn from here.
- **unlabelled**: IMDB's 50,000 unlabelled reviews (tfds's "unsupervised" split).
- **pre-training corpus**: pool + unlabelled, never validation, never test.
- **test**: the course's 10,000 test reviews (other movies than every training review), scored
  once per reported number.

IMDB repeats some reviews word for word across its splits (the data README counts them: 54
training and 99 unlabelled reviews are also test reviews). Those are dropped from the pool and
from the unlabelled reviews (:func:`course_lib.data.duplicate_mask`), so no test text is ever
trained or pre-trained on; :attr:`ImdbSplits.dropped` says how many.

    splits = imdb_splits()
    splits.summary()        # sizes and what was dropped
    corpus = splits.pretraining_texts()
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from course_lib.environment import fast_mode
from course_lib.experiments import sample_per_class
from course_lib.nn import checks

VALIDATION_PER_CLASS = {"full": 500, "fast": 50}
VALIDATION_SEED = 2026


@dataclass(frozen=True)
class ImdbSplits:
    """The reviews of chapter 09's protocol (texts: 1-D object arrays of str; labels: int64)."""

    validation_texts: np.ndarray
    validation_labels: np.ndarray
    pool_texts: np.ndarray
    pool_labels: np.ndarray
    unlabelled_texts: np.ndarray
    test_texts: np.ndarray
    test_labels: np.ndarray
    dropped: dict[str, int] = field(default_factory=dict)
    sample: bool = False

    def pretraining_texts(self) -> np.ndarray:
        """The pre-training corpus: the label pool's texts, then the unlabelled reviews (never
        the validation or test reviews)."""
        return np.concatenate([self.pool_texts, self.unlabelled_texts])

    def summary(self) -> str:
        """One line per split, with the duplicates dropped."""
        lines = [
            f"validation: {len(self.validation_labels):,} training reviews "
            f"({np.bincount(self.validation_labels).tolist()} per class), never pre-trained on, "
            "never in the label pool",
            f"label pool: {len(self.pool_labels):,} training reviews",
            f"unlabelled: {len(self.unlabelled_texts):,} reviews",
            f"pre-training corpus: {len(self.pool_labels) + len(self.unlabelled_texts):,} reviews "
            "(label pool + unlabelled)",
            f"test: {len(self.test_labels):,} reviews, scored once per reported number",
        ]
        lines += [f"dropped, text also a test review: {n} {what}"
                  for what, n in self.dropped.items()]
        return "\n".join(lines)


def imdb_splits(sample: bool | None = None, validation_per_class: int | None = None,
                seed: int = VALIDATION_SEED) -> ImdbSplits:
    """Chapter 09's splits of IMDB (see the module docstring).

    sample: as in ``course_lib.data.load`` (None: the shipped sample in fast mode; its 1,000
    training, 500 test and 1,000 unlabelled reviews). validation_per_class: reviews per class
    held out (default 500; 50 on the sample). The validation reviews are drawn with ``seed``
    from the training reviews that do not duplicate a test review.
    """
    from course_lib import data

    sample = fast_mode() if sample is None else bool(sample)
    if validation_per_class is None:
        validation_per_class = VALIDATION_PER_CLASS["fast" if sample else "full"]
    validation_per_class = checks.check_positive_int("validation_per_class", validation_per_class)
    train_x, train_y = data.load("imdb", "train", sample=sample)
    test_x, test_y = data.load("imdb", "test", sample=sample)
    unlabelled, _ = data.load("imdb", "unsupervised", sample=sample)
    train_dup = data.duplicate_mask(train_x, test_x)
    unlabelled_dup = data.duplicate_mask(unlabelled, test_x)
    keep = np.flatnonzero(~train_dup)
    validation = keep[sample_per_class(train_y[keep], validation_per_class, seed)]
    pool = np.setdiff1d(keep, validation)            # sorted: the loader's fixed order
    return ImdbSplits(
        validation_texts=train_x[validation], validation_labels=train_y[validation],
        pool_texts=train_x[pool], pool_labels=train_y[pool],
        unlabelled_texts=unlabelled[~unlabelled_dup],
        test_texts=test_x, test_labels=test_y,
        dropped={"training reviews": int(train_dup.sum()),
                 "unlabelled reviews": int(unlabelled_dup.sum())},
        sample=sample,
    )
