"""course_lib.rnn: the document's example, BPTT by untied copies, gradient norms, the gated steps
against course_lib.nn, the text pipeline (NumPy vectorizer = TextVectorization), the sentiment
models and the training recipe."""

import numpy as np
import pytest

from course_lib import data, nn, rnn

HAS_TF = rnn._tensorflow_available()


def test_document_example_as_printed_has_two_outputs_and_a_rank_one_recurrence():
    params = rnn.document_003_parameters()
    assert all(p.shape == (2,) for p in params.values())
    hs, y = rnn.document_003_forward(params)
    assert len(hs) == 3 and y.shape == (2,)       # "输出维度为1", yet two values
    # W_h . h adds the same number to both units: the full model with W_h = [w, w] as columns.
    full = {"W_x": params["W_x"][None, :], "W_h": np.stack([params["W_h"]] * 2, axis=1),
            "b_h": params["b_h"], "W_y": np.eye(2), "b_y": params["b_y"]}
    steps, _ = rnn.unroll(rnn.EXAMPLE_INPUTS.reshape(1, 3, 1), full, activation="relu",
                          output_activation="relu")
    assert np.allclose(steps[-1]["h_t"][0], hs[-1])


def test_unroll_matches_the_numpy_simple_rnn():
    params = rnn.example_parameters(seed=3, units=4, features=2, outputs=1)
    x = np.random.default_rng(0).standard_normal((5, 6, 2))
    steps, y = rnn.unroll(x, params)
    layer = nn.SimpleRNN(4, return_sequences=True, dtype=np.float64)
    layer.forward(x)
    layer.set_weights([params["W_x"], params["W_h"], params["b_h"]])
    hs = layer.forward(x)
    assert np.allclose(np.stack([s["h_t"] for s in steps], axis=1), hs)
    assert y.shape == (5, 1)
    assert np.allclose(y, nn.activations.sigmoid(hs[:, -1] @ params["W_y"] + params["b_y"]))
    with pytest.raises(ValueError, match=r"`x` \(shape \(5, 6, 3\)\) has 3 features"):
        rnn.unroll(np.zeros((5, 6, 3)), params)
    with pytest.raises(ValueError, match="`activation` must be one of"):
        rnn.unroll(x, params, activation="softplus")


def test_untied_copies_add_up_to_the_tied_gradient():
    g = np.random.default_rng(1)
    x = g.standard_normal((2, 5, 3))
    layer = nn.SimpleRNN(4, seed=0, dtype=np.float64)
    out = layer.forward(x)
    r = g.standard_normal(out.shape)
    layer.backward(r)
    kernel, recurrent, bias = layer.get_weights()
    per_step = rnn.untied_step_gradients(x, kernel, recurrent, bias, r)
    assert per_step.shape == (5, 4, 4)
    assert np.abs(per_step.sum(axis=0) - layer.grads["recurrent_kernel"]).max() < 1e-7
    assert np.all(per_step[0] == 0)          # step 1 multiplies W_h by h_0 = 0
    assert np.all(np.abs(per_step[1:]).sum(axis=(1, 2)) > 0)


def test_scaled_orthogonal_and_gradient_norms():
    w = rnn.scaled_orthogonal(8, 1.5, seed=2)
    assert np.allclose(np.abs(np.linalg.eigvals(w)), 1.5)
    norms = {}
    for rho in (0.5, 1.5):
        layer = nn.SimpleRNN(8, seed=0, dtype=np.float64)
        x = 0.01 * np.random.default_rng(0).standard_normal((4, 20, 3))
        layer.forward(x)
        layer.params["recurrent_kernel"][...] = rnn.scaled_orthogonal(8, rho)
        norms[rho] = rnn.gradient_norms_through_time(layer, x)
        assert norms[rho].shape == (20,)
    assert norms[0.5][-1] < 1e-4 * norms[0.5][0]      # vanishes
    assert norms[1.5][-1] > 1e2 * norms[1.5][0]       # explodes (small inputs: tanh ~ linear)


@pytest.mark.parametrize(("kind", "layer_cls"), [("lstm", nn.LSTM), ("gru", nn.GRU)])
def test_written_out_steps_match_course_lib_layers(kind, layer_cls):
    g = np.random.default_rng(4)
    x = g.standard_normal((3, 5, 2))
    layer = layer_cls(4, seed=0, dtype=np.float64)
    layer.forward(x)
    weights = [w + 0.3 * g.standard_normal(w.shape) for w in layer.get_weights()]
    layer.set_weights(weights)
    assert np.abs(rnn.run_cell(kind, x, weights) - layer.forward(x)).max() < 1e-12


@pytest.mark.skipif(not HAS_TF, reason="TextVectorization needs TensorFlow")
def test_tokenize_matches_text_vectorization():
    import keras

    texts = ["Don't STOP-me now!!", "Émile\tsaw  a\nfilm.", "it's 10/10 (really)", "naïve  ÜBER"]
    layer = keras.layers.TextVectorization(output_mode="int")
    layer.adapt(texts)
    vocab = layer.get_vocabulary()
    for text in texts:
        ids = np.asarray(layer([text]))[0]
        assert [vocab[i] for i in ids if i] == rnn.tokenize(text)


@pytest.mark.skipif(not HAS_TF, reason="TextVectorization needs TensorFlow")
def test_numpy_vectorizer_gives_the_same_ids_as_text_vectorization():
    x_train, _ = data.load("imdb", "train", sample=True)
    x_test, _ = data.load("imdb", "test", sample=True)
    x_train, x_test = rnn.clean_reviews(x_train[:300]), rnn.clean_reviews(x_test[:100])
    ours = rnn.make_vectorizer(x_train, 2000, 80, backend="numpy")
    theirs = rnn.make_vectorizer(x_train, 2000, 80, backend="keras")
    assert theirs.keras_layer is not None and ours.keras_layer is None
    assert ours.vocabulary == theirs.vocabulary and ours.vocab_size == 2000
    ids = ours(x_test)
    assert ids.dtype == np.int32 and ids.shape == (100, 80)
    assert np.array_equal(ids, theirs(x_test))


def test_vectorizer_pads_right_truncates_and_marks_unknown_words():
    vec = rnn.make_vectorizer(["good good film", "bad film"], vocab_size=10, sequence_length=4,
                              backend="numpy")
    assert vec.vocabulary == ["", "[UNK]", "good", "film", "bad"]
    ids = vec(["Good film, awful!", "good good good good good film"])
    assert ids.tolist() == [[2, 3, 1, 0], [2, 2, 2, 2]]
    assert rnn.is_right_padded(rnn.padding_mask(ids))
    with pytest.raises(ValueError, match="sequence of strings, got one string"):
        vec("good film")
    with pytest.raises(ValueError, match="`vocab_size` must be at least 3"):
        rnn.make_vectorizer(["a b"], 2, 4)
    with pytest.raises(ValueError, match="non-empty sequence"):
        rnn.make_vectorizer([], 10, 4)
    with pytest.raises(ValueError, match="`backend` must be one of"):
        rnn.make_vectorizer(["a"], 10, 4, backend="torch")


def test_padding_helpers():
    ids = np.array([[5, 6, 7, 0, 0], [8, 0, 0, 0, 0], [0, 0, 0, 0, 0]])
    left = rnn.left_pad(ids)
    assert left.tolist() == [[0, 0, 5, 6, 7], [0, 0, 0, 0, 8], [0, 0, 0, 0, 0]]
    assert rnn.is_right_padded(rnn.padding_mask(ids))
    assert not rnn.is_right_padded(rnn.padding_mask(left))
    assert not rnn.is_right_padded(np.array([[True, False, True]]))
    assert rnn.clean_reviews(["a<br />b"]).tolist() == ["a b"]


def test_train_val_split():
    train, val = rnn.train_val_split(100, 0.2, seed=3)
    assert len(train) == 80 and len(val) == 20 and not set(train) & set(val)
    assert np.array_equal(val, rnn.train_val_split(100, 0.2, seed=3)[1])
    assert not np.array_equal(val, rnn.train_val_split(100, 0.2, seed=4)[1])
    with pytest.raises(ValueError, match="`val_fraction` must lie strictly between 0 and 1"):
        rnn.train_val_split(100, 1.0)


def _toy_reviews(n, steps=12, seed=0):
    """Token 3 anywhere means positive, token 4 negative; the rest is noise and padding."""
    g = np.random.default_rng(seed)
    y = g.integers(0, 2, n)
    ids = g.integers(5, 30, (n, steps)).astype(np.int32)
    ids[np.arange(n), g.integers(0, steps // 2, n)] = np.where(y == 1, 3, 4)
    lengths = g.integers(steps // 2, steps + 1, n)
    ids[np.arange(steps)[None, :] >= lengths[:, None]] = 0
    return ids, y


@pytest.mark.parametrize("kind", rnn.SENTIMENT_KINDS)
def test_sentiment_models(kind):
    model = rnn.sentiment_model(kind, vocab_size=30, sequence_length=12, embed_dim=4, units=3,
                                seed=0)
    ids, _ = _toy_reviews(5)
    assert model(ids).shape == (5, 1)
    if kind == "bow":
        assert model.count_params() == 31                  # one weight per word + bias
    else:
        assert model.get_layer("embedding").mask_zero
        assert not rnn.sentiment_model(kind, 30, mask=False).get_layer("embedding").mask_zero


def test_mean_readout_averages_over_the_real_tokens_only():
    padded = np.array([[5, 6, 7, 0, 0, 0]], np.int32)
    six = rnn.sentiment_model("bigru", 30, 6, embed_dim=4, units=3, readout="mean", dropout=0.0,
                              seed=0)
    three = rnn.sentiment_model("bigru", 30, 3, embed_dim=4, units=3, readout="mean", dropout=0.0)
    three.set_weights(six.get_weights())
    assert np.allclose(np.asarray(six(padded)), np.asarray(three(padded[:, :3])), atol=1e-6)
    assert six.get_layer("mean_over_steps") is not None


def test_embedding_dropout_keeps_the_mask():
    padded = np.array([[5, 6, 7, 0, 0, 0]], np.int32)
    six = rnn.sentiment_model("gru", 30, 6, embed_dim=4, units=3, embedding_dropout=0.5,
                              dropout=0.0, seed=0)
    three = rnn.sentiment_model("gru", 30, 3, embed_dim=4, units=3, dropout=0.0)
    three.set_weights(six.get_weights())        # the dropout layer has no weights
    assert six.get_layer("embedding_dropout").rate == 0.5
    assert np.allclose(np.asarray(six(padded)), np.asarray(three(padded[:, :3])), atol=1e-6)
    # training: whole embedding channels are dropped, so outputs change from call to call
    assert not np.allclose(np.asarray(six(padded, training=True)), np.asarray(six(padded)))


def test_sentiment_model_bad_arguments():
    with pytest.raises(ValueError, match="`kind` must be one of"):
        rnn.sentiment_model("cnn", 30)
    with pytest.raises(ValueError, match="`readout` must be one of"):
        rnn.sentiment_model("gru", 30, readout="max")
    with pytest.raises(ValueError, match=r"`dropout` must lie in \[0, 1\)"):
        rnn.sentiment_model("gru", 30, dropout=1.0)
    with pytest.raises(ValueError, match=r"`embedding_dropout` must lie in \[0, 1\)"):
        rnn.sentiment_model("gru", 30, embedding_dropout=-0.1)


def test_train_sentiment_recipe():
    ids, y = _toy_reviews(256)
    model = rnn.sentiment_model("gru", vocab_size=30, sequence_length=12, embed_dim=8, units=8,
                                dropout=0.0, seed=0)
    run = rnn.train_sentiment(model, (ids[:160], y[:160]), (ids[160:208], y[160:208]),
                              test=(ids[208:], y[208:]), epochs=8, batch_size=32,
                              learning_rate=1e-2, patience=8)
    assert set(run.history) >= {"loss", "accuracy", "val_loss", "val_accuracy",
                                "examples_per_second"}
    assert run.val_accuracy == max(run.history["val_accuracy"]) > 0.9
    assert run.test_accuracy > 0.9 and run.params == model.count_params()
    assert run.seconds > 0 and run.examples_per_second > 0
    assert "gru" in rnn.results_table([run])
    assert run.test_accuracy == pytest.approx(rnn.accuracy(model, ids[208:], y[208:]))
    assert run.test_correct.shape == (48,) and run.test_correct.mean() == pytest.approx(run.test_accuracy)
    probs = rnn.predict_proba(model, ids[208:])
    assert probs.shape == (48,) and np.all((probs >= 0) & (probs <= 1))
    assert run.model is model and run.trained_on == 160
    with pytest.raises(ValueError, match=r"`train\[1\]` \(shape \(160,\)\) has values out of range"):
        rnn.train_sentiment(model, (ids[:160], y[:160] + 1), (ids[160:], y[160:]))
    with pytest.raises(ValueError, match="`val` must be a pair"):
        rnn.train_sentiment(model, (ids, y), ids)


def test_length_batches_cover_every_review_once_trimmed():
    ids, y = _toy_reviews(100, steps=40, seed=3)
    batches = rnn.length_batches(ids, y, batch_size=16, seed=0, round_to=8)
    assert len(batches) == 7
    first = [rows.copy() for rows in batches.batches]
    seen = np.concatenate(first)
    assert np.array_equal(np.sort(seen), np.arange(100))
    lengths = (ids != 0).sum(axis=1)
    for index, rows in enumerate(batches.batches):
        x, labels = batches[index]
        assert x.shape[1] % 8 == 0 and x.shape[1] >= lengths[rows].max() and x.shape[1] - 8 < lengths[rows].max()
        assert np.array_equal(x, ids[rows, :x.shape[1]]) and np.array_equal(labels, y[rows])
        assert not ids[rows, x.shape[1]:].any()                 # only padding was cut
    batches.on_epoch_end()
    assert not all(np.array_equal(a, b) for a, b in zip(first, batches.batches, strict=True))
    fixed = rnn.length_batches(ids, batch_size=16, shuffle=False)
    assert np.array_equal(np.concatenate(fixed.batches), fixed.order)
    assert np.all(np.diff(lengths[fixed.order]) >= 0) and len(fixed[0]) == 1
    with pytest.raises(ValueError, match="must be right-padded"):
        rnn.length_batches(rnn.left_pad(ids), y)
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        rnn.length_batches(ids, y, batch_size=0)


@pytest.mark.parametrize("kind", ["gru", "bigru"])
def test_bucketed_training_and_prediction(kind):
    """A masked model with given weights gives the same outputs on trimmed batches (training itself
    sees differently composed batches)."""
    ids, y = _toy_reviews(256, steps=24, seed=1)
    fixed = rnn.sentiment_model(kind, vocab_size=30, sequence_length=24, embed_dim=8, units=8,
                                dropout=0.0, seed=0)
    with pytest.raises(ValueError, match="sequence_length=None"):
        rnn.train_sentiment(fixed, (ids[:160], y[:160]), (ids[160:208], y[160:208]), bucket=True)
    model = rnn.sentiment_model(kind, vocab_size=30, sequence_length=None, embed_dim=8, units=8,
                                dropout=0.0, seed=0)
    run = rnn.train_sentiment(model, (ids[:160], y[:160]), (ids[160:208], y[160:208]),
                              test=(ids[208:], y[208:]), epochs=15, batch_size=32,
                              learning_rate=1e-2, patience=15, bucket=True)
    assert run.val_accuracy > 0.9 and run.test_accuracy > 0.9
    bucketed = rnn.predict_proba(model, ids)
    whole = np.asarray(model.predict(ids, verbose=0)).reshape(-1)
    np.testing.assert_allclose(bucketed, 1 / (1 + np.exp(-whole)), atol=1e-5)


def test_confident_mistakes():
    probs = np.array([0.9, 0.2, 0.6, 0.01, 0.55])
    labels = np.array([0, 0, 0, 1, 1])
    assert rnn.confident_mistakes(probs, labels, n=2).tolist() == [3, 0]


def test_bucketed_epochs_draw_new_arrangements(monkeypatch):
    """Every epoch of a bucketed fit reads the batches in a new order."""
    ids, y = _toy_reviews(128, steps=24, seed=2)
    orders = []
    real = rnn.length_batches

    def recording(*args, **kwargs):
        batches = real(*args, **kwargs)
        if kwargs.get("shuffle", True):
            arrange = batches._arrange

            def logged():
                arrange()
                orders.append(np.concatenate(batches.batches).tolist())
            batches._arrange = logged
            orders.append(np.concatenate(batches.batches).tolist())
        return batches

    monkeypatch.setattr(rnn, "length_batches", recording)
    model = rnn.sentiment_model("gru", vocab_size=30, sequence_length=None, embed_dim=4, units=4, seed=0)
    run = rnn.train_sentiment(model, (ids[:96], y[:96]), (ids[96:], y[96:]), epochs=4, batch_size=16,
                              patience=4, bucket=True)
    assert len(run.history["loss"]) == 4
    assert len(orders) == 4 and len({tuple(o) for o in orders}) == 4
