"""Metrics against keras.metrics on random labels, and a hand-checked confusion matrix."""

import numpy as np
import pytest
from nn_keras_helpers import keras

from course_lib.nn import metrics

K = 4
G = np.random.default_rng(0)
Y_TRUE = G.integers(0, K, 200)
SCORES = G.standard_normal((200, K)).astype(np.float32)
Y_PRED = SCORES.argmax(axis=1)


def keras_value(metric, y_true, y_pred):
    metric.update_state(y_true, y_pred)
    return np.asarray(metric.result())


def test_accuracy_matches_keras():
    assert metrics.accuracy(Y_TRUE, SCORES) == pytest.approx(
        float(keras_value(keras.metrics.SparseCategoricalAccuracy(), Y_TRUE, SCORES)), abs=1e-6)
    assert metrics.accuracy(Y_TRUE, Y_PRED) == pytest.approx(
        float(keras_value(keras.metrics.Accuracy(), Y_TRUE, Y_PRED)), abs=1e-6)


def test_binary_accuracy_matches_keras():
    y, p = G.integers(0, 2, 50), G.uniform(0, 1, 50).astype(np.float32)
    assert metrics.binary_accuracy(y, p) == pytest.approx(
        float(keras_value(keras.metrics.BinaryAccuracy(), y, p)), abs=1e-6)


@pytest.mark.parametrize("name", ["precision", "recall"])
def test_precision_recall_per_class_match_keras(name):
    ours = getattr(metrics, name)(Y_TRUE, SCORES, average=None)
    keras_cls = keras.metrics.Precision if name == "precision" else keras.metrics.Recall
    one_hot_true, one_hot_pred = np.eye(K)[Y_TRUE], np.eye(K)[Y_PRED]
    theirs = [float(keras_value(keras_cls(class_id=k), one_hot_true, one_hot_pred))
              for k in range(K)]
    assert np.allclose(ours, theirs, atol=1e-5)
    assert getattr(metrics, name)(Y_TRUE, Y_PRED) == pytest.approx(np.mean(theirs), abs=1e-5)


@pytest.mark.parametrize("average", ["macro", None])
def test_f1_matches_keras(average):
    one_hot = np.eye(K, dtype=np.float32)[Y_TRUE]
    theirs = keras_value(keras.metrics.F1Score(average=average), one_hot, SCORES)
    assert np.allclose(metrics.f1_score(Y_TRUE, SCORES, average=average), theirs, atol=1e-5)


def test_confusion_matrix_by_hand():
    cm = metrics.confusion_matrix([0, 1, 2, 2, 1, 0], [0, 2, 2, 1, 1, 0], num_classes=3)
    assert cm.tolist() == [[2, 0, 0], [0, 1, 1], [0, 1, 1]]
    full = metrics.confusion_matrix(Y_TRUE, SCORES)
    assert full.shape == (K, K) and full.sum() == len(Y_TRUE)
    assert np.trace(full) == np.sum(Y_TRUE == Y_PRED)
    assert full.sum(axis=1).tolist() == np.bincount(Y_TRUE, minlength=K).tolist()


def test_undefined_precision_is_zero():
    # Class 2 is never predicted: its precision is 0 (not NaN).
    assert metrics.precision([0, 1, 2], [0, 1, 1], num_classes=3, average=None).tolist() == \
        [1.0, 0.5, 0.0]
