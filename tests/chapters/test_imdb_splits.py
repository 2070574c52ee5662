"""course_lib.imdb_splits: chapter 09's protocol (who may see which review)."""

import numpy as np
import pytest

from course_lib import data
from course_lib.imdb_splits import imdb_splits


def test_sample_splits_are_disjoint_and_balanced():
    splits = imdb_splits(sample=True)
    assert np.bincount(splits.validation_labels).tolist() == [50, 50]
    assert len(splits.pool_labels) == 900 and len(splits.unlabelled_texts) == 1000
    corpus = set(splits.pretraining_texts())
    assert not corpus & set(splits.validation_texts)
    assert not corpus & set(splits.test_texts)
    assert not set(splits.pool_texts) & set(splits.validation_texts)
    assert "validation: 100 training reviews" in splits.summary()
    again = imdb_splits(sample=True)
    assert list(again.validation_texts) == list(splits.validation_texts)   # drawn once: fixed
    other = imdb_splits(sample=True, seed=1)
    assert list(other.validation_texts) != list(splits.validation_texts)


def test_reviews_that_repeat_a_test_review_are_dropped(monkeypatch):
    real_load = data.load

    def load(name, split="train", **kwargs):
        x, y = real_load(name, split, **kwargs)
        if split != "test":                     # plant two test texts, one with extra spaces
            test_x, _ = real_load(name, "test", **kwargs)
            x = x.copy()
            x[3], x[7] = test_x[0], "  " + test_x[1] + "\n"
        return x, y

    monkeypatch.setattr(data, "load", load)
    splits = imdb_splits(sample=True)
    assert splits.dropped == {"training reviews": 2, "unlabelled reviews": 2}
    assert len(splits.pool_labels) == 898 and len(splits.unlabelled_texts) == 998
    stripped_test = {t.strip() for t in splits.test_texts}
    assert not {t.strip() for t in splits.pretraining_texts()} & stripped_test
    assert "dropped, text also a test review: 2 unlabelled reviews" in splits.summary()


def test_bad_validation_size_is_a_clear_error():
    with pytest.raises(ValueError, match="validation_per_class"):
        imdb_splits(sample=True, validation_per_class=0)
    with pytest.raises(ValueError, match="fewer than per_class=600"):
        imdb_splits(sample=True, validation_per_class=600)
