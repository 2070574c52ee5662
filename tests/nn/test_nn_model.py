"""Sequential: fit/evaluate/predict, the History, the progress bar, and equality with Keras fit."""

import numpy as np
from nn_keras_helpers import keras

from course_lib import nn

G = np.random.default_rng(0)
X = G.standard_normal((64, 6)).astype(np.float32)
Y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)


def mlp():
    model = nn.Sequential([nn.Dense(8, activation="relu", seed=0), nn.Dense(3, seed=1)])
    model.compile(nn.SGD(0.1, momentum=0.9),
                  nn.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def test_fit_matches_keras_fit():
    ours = mlp()
    ours.build((6,))
    theirs = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                               keras.layers.Dense(3)])
    theirs.set_weights(ours.get_weights())
    theirs.compile(keras.optimizers.SGD(0.1, momentum=0.9),
                   keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                   metrics=["accuracy"])
    h = ours.fit(X, Y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    kh = theirs.fit(X, Y, epochs=3, batch_size=16, shuffle=False, verbose=0)
    for a, b in zip(ours.get_weights(), theirs.get_weights(), strict=True):
        assert np.abs(a - b).max() < 1e-5
    assert np.allclose(h.history["loss"], kh.history["loss"], atol=1e-5)
    assert np.allclose(h.history["accuracy"], kh.history["accuracy"], atol=1e-6)
    assert np.abs(ours.predict(X) - theirs.predict(X, verbose=0)).max() < 1e-5


def test_history_evaluate_predict():
    model = mlp()
    h = model.fit(X, Y, epochs=4, batch_size=8, validation_data=(X[:16], Y[:16]), verbose=0,
                  seed=0)
    assert h.epoch == [0, 1, 2, 3]
    assert set(h.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 4 for v in h.history.values())
    assert h.history["loss"][-1] < h.history["loss"][0]
    logs = model.evaluate(X, Y)
    assert set(logs) == {"loss", "accuracy"}
    assert model.predict(X, batch_size=10).shape == (64, 3)
    assert logs["accuracy"] == nn.metrics.accuracy(Y, model.predict(X))


def test_progress_bar_and_silence(capsys):
    mlp().fit(X, Y, epochs=1, batch_size=16, verbose=0)
    assert capsys.readouterr() == ("", "")
    mlp().fit(X, Y, epochs=2, batch_size=16, verbose=1)
    out, err = capsys.readouterr()
    assert "epoch 1/2" in out and "epoch 2/2" in out and "loss=" in out and err == ""


def test_small_cnn_trains():
    g = np.random.default_rng(1)
    x = g.standard_normal((32, 8, 8, 1)).astype(np.float32)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(np.float32)
    model = nn.Sequential([
        nn.Conv2D(4, 3, padding="same", activation="relu", seed=0),
        nn.BatchNormalization(),
        nn.MaxPool2D(2),
        nn.Flatten(),
        nn.Dropout(0.1, seed=0),
        nn.Dense(1, seed=1),
    ])
    model.compile(nn.Adam(0.01), nn.BinaryCrossentropy(from_logits=True), metrics=["accuracy"])
    h = model.fit(x, y[:, None], epochs=15, batch_size=8, verbose=0, seed=0)
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
    assert h.history["accuracy"][-1] > 0.8


def test_rnn_model_trains():
    g = np.random.default_rng(2)
    ids = g.integers(0, 10, (48, 6))
    y = (ids == 3).any(axis=1).astype(np.float32)[:, None]
    model = nn.Sequential([nn.Embedding(10, 4, seed=0), nn.LSTM(8, seed=1), nn.Dense(1, seed=2)])
    model.compile(nn.Adam(0.02), nn.BinaryCrossentropy(from_logits=True), metrics=["accuracy"])
    h = model.fit(ids.astype(np.int64), y, epochs=20, batch_size=16, verbose=0, seed=0)
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
