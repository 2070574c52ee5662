"""Bad input raises ValueError naming the argument and the shapes (never a deep NumPy error)."""

import numpy as np
import pytest

from course_lib import nn
from course_lib.nn import metrics

X = np.zeros((4, 3), np.float32)


def built_dense():
    layer = nn.Dense(2)
    layer.forward(X)
    return layer


@pytest.mark.parametrize(("x", "pattern"), [
    (np.zeros(3, np.float32), r"`x` must have rank 2 or 3, got shape \(3,\)"),
    (np.zeros((4, 5), np.float32), r"`x` must have shape \(batch, 3\).*got \(4, 5\)"),
    (np.zeros((4, 3), np.int64),
     r"`x` must be a floating-point array, got dtype int64 with shape \(4, 3\)"),
    (np.array([[0.0, np.nan, 1.0]]), r"`x` \(shape \(1, 3\)\) contains NaN or inf"),
    (np.array([[0.0, np.inf, 1.0]]), r"`x` \(shape \(1, 3\)\) contains NaN or inf"),
])
def test_dense_bad_input(x, pattern):
    with pytest.raises(ValueError, match=pattern):
        built_dense().forward(x)


def test_backward_checks():
    with pytest.raises(ValueError, match="call forward before backward"):
        nn.Dense(2).backward(np.zeros((4, 2)))
    with pytest.raises(ValueError,
                       match=r"`grad_out` must have the shape .*\(4, 2\), got \(4, 3\)"):
        built_dense().backward(np.zeros((4, 3)))


def test_conv_and_pool_rank_and_size():
    with pytest.raises(ValueError, match=r"`x` must have rank 4, got shape \(2, 5, 5\)"):
        nn.Conv2D(2, 3).forward(np.zeros((2, 5, 5), np.float32))
    with pytest.raises(ValueError, match="smaller than the window 3"):
        nn.Conv2D(2, 3).forward(np.zeros((1, 2, 5, 1), np.float32))
    with pytest.raises(ValueError, match="`padding` must be one of"):
        nn.MaxPool2D(2, padding="full")
    with pytest.raises(ValueError, match="`kernel_size` must be a positive integer"):
        nn.Conv2D(2, 0)


@pytest.mark.parametrize(("make", "x", "pattern"), [
    (lambda: nn.AveragePooling2D(3), np.zeros((1, 2, 5, 1), np.float32),
     "smaller than the window 3"),
    (lambda: nn.AveragePooling2D(2), np.zeros((1, 4, 4), np.float32),
     r"`x` must have rank 4, got shape \(1, 4, 4\)"),
    (lambda: nn.GlobalAveragePooling2D(), np.zeros((2, 3), np.float32),
     r"`x` must have rank 4, got shape \(2, 3\)"),
    (lambda: nn.ZeroPadding2D(1), np.zeros((2, 3, 3), np.float32),
     r"`x` must have rank 4, got shape \(2, 3, 3\)"),
    (lambda: nn.ZeroPadding2D(1), np.zeros((1, 3, 3, 1), np.int64),
     "`x` must be a floating-point array, got dtype int64"),
])
def test_pooling_and_padding_bad_input(make, x, pattern):
    with pytest.raises(ValueError, match=pattern):
        make().forward(x)


@pytest.mark.parametrize("padding", [-1, (1, 2, 3), ((1, 2), 3), 1.5, True, "same"])
def test_zero_padding_bad_amounts(padding):
    with pytest.raises(ValueError, match="`padding` must"):
        nn.ZeroPadding2D(padding)


def test_pooling_built_for_one_size_rejects_another():
    layer = nn.AveragePooling2D(2)
    layer.forward(np.zeros((1, 4, 4, 2), np.float32))
    with pytest.raises(ValueError, match=r"`x` must have shape \(batch, 4, 4, 2\)"):
        layer.forward(np.zeros((1, 6, 6, 2), np.float32))


@pytest.mark.parametrize(("loss", "y_true", "y_pred", "pattern"), [
    (nn.SparseCategoricalCrossentropy(from_logits=True), [0, 3], np.zeros((2, 3)),
     r"`y_true` \(shape \(2,\)\) has values out of range \[0, 3\)"),
    (nn.SparseCategoricalCrossentropy(from_logits=True), [0, -1], np.zeros((2, 3)),
     r"`y_true` \(shape \(2,\)\) has values out of range"),
    (nn.SparseCategoricalCrossentropy(from_logits=True), [0.5, 1], np.zeros((2, 3)),
     r"`y_true` must hold whole-number indices"),
    (nn.SparseCategoricalCrossentropy(from_logits=True), [0, 1, 2], np.zeros((2, 3)),
     r"`y_true` and `y_pred` must have the same number of samples, got shapes \(3,\) and \(2, 3\)"),
    (nn.CategoricalCrossentropy(), np.eye(3)[:2], np.full((2, 4), 0.25),
     r"`y_true` and `y_pred` must have the same shape, got \(2, 3\) and \(2, 4\)"),
    (nn.BinaryCrossentropy(), [[2.0]], [[0.5]], r"`y_true` must lie in \[0, 1\]"),
    (nn.BinaryCrossentropy(), [[1.0]], [[1.5]], r"`y_pred` must hold probabilities"),
    (nn.MeanSquaredError(), [[1.0]], [[np.nan]], r"`y_pred` \(shape \(1, 1\)\) contains NaN"),
    (nn.MeanSquaredError(), [[1.0]], np.array([[1]]), r"`y_pred` must be a floating-point array"),
])
def test_loss_bad_input(loss, y_true, y_pred, pattern):
    with pytest.raises(ValueError, match=pattern):
        loss(y_true, y_pred)


def test_embedding_ids():
    with pytest.raises(ValueError,
                       match=r"`x` \(shape \(1, 2\)\) has values out of range \[0, 5\)"):
        nn.Embedding(5, 2).forward(np.array([[1, 5]]))
    with pytest.raises(ValueError, match="`x` must be an integer array"):
        nn.Embedding(5, 2).forward(np.array([["a", "b"]]))


def test_metric_labels():
    with pytest.raises(ValueError, match=r"`y_pred` \(shape \(2,\)\) has values out of range"):
        metrics.confusion_matrix([0, 1], [0, 3], num_classes=3)
    with pytest.raises(ValueError,
                       match=r"`y_true` and `y_pred` must have the same shape, "
                             r"got \(2,\) and \(3,\)"):
        metrics.accuracy([0, 1], [0, 1, 1])


def test_model_and_weights():
    model = nn.Sequential([nn.Dense(2)])
    with pytest.raises(ValueError, match="call compile"):
        model.fit(X, np.zeros(4, np.int64))
    model.compile(nn.SGD(), nn.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match=r"same number of samples, got shapes \(4, 3\) and \(5,\)"):
        model.fit(X, np.zeros(5, np.int64), verbose=0)
    with pytest.raises(ValueError,
                       match=r"`y_true` \(shape \(4,\)\) has values out of range \[0, 2\)"):
        model.fit(X, np.full(4, 2), verbose=0)
    with pytest.raises(ValueError,
                       match=r"weight 'kernel' of layer 'dense' has shape \(3, 2\), got \(2, 2\)"):
        model.layers[0].set_weights([np.zeros((2, 2)), np.zeros(2)])
    with pytest.raises(ValueError,
                       match=r"`grad` must have the shape of its parameter \(3,\), got \(2,\)"):
        nn.SGD().apply_gradients([(np.zeros(2), np.zeros(3))])


def test_sequence_layers_take_any_length_but_fixed_features():
    layer = nn.LSTM(3)
    assert layer.forward(np.ones((2, 5, 4), np.float32)).shape == (2, 3)
    assert layer.forward(np.ones((2, 7, 4), np.float32)).shape == (2, 3)
    with pytest.raises(ValueError,
                       match=r"`x` must have shape \(batch, steps, 4\) .*got \(2, 7, 3\)"):
        layer.forward(np.ones((2, 7, 3), np.float32))


RNN_X = np.ones((2, 5, 4), np.float32)


@pytest.mark.parametrize(("make", "kwargs", "pattern"), [
    (lambda: nn.GRU(3), {"mask": np.ones((2, 4), bool)},
     r"`mask` must have shape \(batch, steps\) = \(2, 5\) for `x` of shape \(2, 5, 4\), "
     r"got \(2, 4\)"),
    (lambda: nn.GRU(3), {"mask": np.full((2, 5), 0.5)}, "`mask` must hold booleans"),
    (lambda: nn.SimpleRNN(3), {"initial_state": np.zeros((2, 4), np.float32)},
     r"`initial_state\[0\]` must have shape \(batch, units\) = \(2, 3\), got \(2, 4\)"),
    (lambda: nn.LSTM(3), {"initial_state": np.zeros((2, 3), np.float32)},
     r"`initial_state` must be a list of 2 arrays \(batch, units\) for layer 'lstm', got 1"),
    (lambda: nn.GRU(3), {"initial_state": np.full((2, 3), np.nan, np.float32)},
     r"`initial_state\[0\]` \(shape \(2, 3\)\) contains NaN or inf"),
])
def test_recurrent_mask_and_initial_state_bad_input(make, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make().forward(RNN_X, **kwargs)


def test_return_state_backward_wants_a_list():
    layer = nn.LSTM(3, return_state=True)
    out, h, c = layer.forward(RNN_X)
    assert out.shape == h.shape == c.shape == (2, 3)
    with pytest.raises(ValueError, match="`grad_out` must be a list of 3 arrays"):
        layer.backward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"`grad_out\[2\]` must have shape \(2, 3\), got \(2, 4\)"):
        layer.backward([np.zeros((2, 3)), None, np.zeros((2, 4))])
    assert layer.backward([np.ones((2, 3)), None, None]).shape == RNN_X.shape
