"""course_lib.word_vectors: skip-gram with negative sampling (NumPy reference, Keras, pairs)."""

import numpy as np
import pytest

from course_lib import nn
from course_lib import word_vectors as wv


def _batch(seed=0, vocab=12, dim=5, b=7, k=3):
    rng = np.random.default_rng(seed)
    v = rng.normal(0, 0.5, (vocab, dim))
    u = rng.normal(0, 0.5, (vocab, dim))
    centers = rng.integers(2, vocab, b)
    contexts = rng.integers(2, vocab, b)
    negatives = rng.integers(2, vocab, (b, k))
    negatives[0, 1] = contexts[0]            # a negative equal to a context: the sums still hold
    return v, u, centers, contexts, negatives


def test_sgns_gradients_match_central_differences():
    v, u, centers, contexts, negatives = _batch()
    loss, dv, du = wv.sgns_loss_and_grads(v, u, centers, contexts, negatives)
    assert loss > 0
    num_v = nn.numerical_gradient(lambda: wv.sgns_loss_and_grads(v, u, centers, contexts,
                                                                 negatives)[0], v)
    num_u = nn.numerical_gradient(lambda: wv.sgns_loss_and_grads(v, u, centers, contexts,
                                                                 negatives)[0], u)
    assert nn.relative_error(dv, num_v) < 1e-6 and nn.relative_error(du, num_u) < 1e-6


def test_sgns_loss_by_hand_and_stable_for_large_scores():
    v = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    u = np.array([[0.0, 0.0], [0.0, 0.0], [2.0, 0.0]])
    loss, _, _ = wv.sgns_loss_and_grads(v, u, np.array([2]), np.array([2]), np.array([[2]]))
    expected = -np.log(1 / (1 + np.exp(-2.0))) - np.log(1 / (1 + np.exp(2.0)))
    assert loss == pytest.approx(expected)
    loss, dv, du = wv.sgns_loss_and_grads(1e3 * v, 1e3 * u, np.array([2]), np.array([2]),
                                          np.array([[2]]))
    assert np.isfinite(loss) and np.isfinite(dv).all() and np.isfinite(du).all()


def test_keras_model_and_loss_equal_the_numpy_reference():
    import keras

    v, u, centers, contexts, negatives = _batch(seed=1)
    model = wv.sgns_model(len(v), v.shape[1], negatives.shape[1])
    model.get_layer("input_vectors").set_weights([v.astype("float32")])
    model.get_layer("output_vectors").set_weights([u.astype("float32")])
    x = {"centre": centers.astype("int32"), "context": contexts.astype("int32"),
         "negatives": negatives.astype("int32")}
    targets = np.zeros((len(centers), 1 + negatives.shape[1]), "float32")
    targets[:, 0] = 1
    ref_loss, ref_dv, ref_du = wv.sgns_loss_and_grads(v, u, centers, contexts, negatives)
    keras_loss = float(keras.ops.mean(wv.sgns_loss(targets, model(x))))
    assert keras_loss == pytest.approx(ref_loss, rel=1e-5)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = keras.ops.mean(wv.sgns_loss(targets, model(x)))
        grads = tape.gradient(loss, [model.get_layer(n).embeddings
                                     for n in ("input_vectors", "output_vectors")])
        dense = [tf.convert_to_tensor(g).numpy() for g in grads]
        np.testing.assert_allclose(dense[0], ref_dv, atol=1e-6)
        np.testing.assert_allclose(dense[1], ref_du, atol=1e-6)


def test_pairs_stay_in_windows_and_skip_padding_and_unknown_words():
    ids = np.array([[5, 6, 1, 7, 8, 0, 0], [9, 10, 0, 0, 0, 0, 0]])
    centres, contexts = wv.skipgram_pairs(ids, 2, np.random.default_rng(0))
    assert not {0, 1} & set(centres.tolist()) | set(contexts.tolist()) & {0, 1}
    positions = {5: 0, 6: 1, 7: 2, 8: 3, 9: 0, 10: 1}      # after dropping [UNK]: 5 6 7 8
    row = {5: 0, 6: 0, 7: 0, 8: 0, 9: 1, 10: 1}
    for c, o in zip(centres.tolist(), contexts.tolist(), strict=True):
        assert row[c] == row[o] and 1 <= abs(positions[c] - positions[o]) <= 2
    full = wv.skipgram_pairs(ids, 1, np.random.default_rng(0))
    assert sorted(zip(*[a.tolist() for a in full], strict=True)) == sorted(
        [(5, 6), (6, 5), (6, 7), (7, 6), (7, 8), (8, 7), (9, 10), (10, 9)])
    with pytest.raises(ValueError, match="reviews, steps"):
        wv.skipgram_pairs(ids[0], 2, np.random.default_rng(0))


def test_subsampling_and_noise_distribution():
    counts = np.array([100, 5, 1000, 10, 10])
    noise = wv.negative_distribution(counts)
    assert noise[:2].tolist() == [0.0, 0.0] and noise.sum() == pytest.approx(1.0)
    assert noise[2] / noise[3] == pytest.approx(100 ** 0.75)
    keep = wv.keep_probability(counts, t=1e-3)
    assert keep[2] < keep[3] <= 1.0
    with pytest.raises(ValueError, match="no word"):
        wv.negative_distribution(np.array([3, 3, 0]))


def test_train_sgns_learns_which_words_go_together():
    rng = np.random.default_rng(0)
    # Two topics: words 2-6 occur together, words 7-11 occur together.
    rows = [rng.choice(np.arange(2, 7) if i % 2 else np.arange(7, 12), 20) for i in range(400)]
    ids = np.array(rows, dtype=np.int32)
    model = wv.sgns_model(12, 8, negatives=3)
    result = wv.train_sgns(model, ids, epochs=3, window=3, negatives=3, subsample=1.0,
                           learning_rate=0.02, batch_size=256, verbose=False)
    assert result["loss_history"][-1] < result["loss_history"][0]
    vectors = wv.input_vectors(model)
    words = [str(i) for i in range(12)]
    near = [w for w, _ in wv.nearest_words(vectors, words, "3", top=4)]
    assert set(near) == {"2", "4", "5", "6"}


def test_mean_embedding_model_takes_vectors_and_checks_their_shape():
    vectors = np.random.default_rng(0).normal(size=(12, 4)).astype("float32")
    model = wv.mean_embedding_model(12, 4, vectors=vectors, trainable=False, seed=0)
    np.testing.assert_allclose(model.get_layer("embedding").get_weights()[0], vectors)
    assert not model.get_layer("embedding").trainable
    ids = np.array([[2, 3, 0, 0]], "int32")
    hidden = vectors[[2, 3]].mean(0)
    kernel, bias = model.get_layer("logit").get_weights()
    np.testing.assert_allclose(np.asarray(model(ids))[0], hidden @ kernel + bias, rtol=1e-5)
    with pytest.raises(ValueError, match="must be \\(vocab_size, dim\\)"):
        wv.mean_embedding_model(12, 5, vectors=vectors)
    with pytest.raises(ValueError, match="the vectors have shape"):
        wv.initial_embedding(model, vectors[:3])
