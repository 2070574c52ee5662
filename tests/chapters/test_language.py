"""course_lib.language (chapter 09): tokens, the masking rule, the Keras encoder, pre-training
and its cache entry, fine-tuning, the optional KerasHub checkpoint, the errata stand-ins."""

import sys
import types

import numpy as np
import pytest

from course_lib import language, pretrained
from course_lib.grading.checks import ex09_pretrained_language_models as ex09_checks

TEXTS = ["A great movie, great cast!<br />Loved it.", "Terrible plot; the cast was bad.",
         "An unwatchable, boring film.", "Great fun: I'd watch it again."]

TINY = {"vocab_size": 40, "max_len": 12, "dim": 8, "num_heads": 2, "ff_dim": 16,
        "num_layers": 1, "dropout": 0.0, "max_pred": 2}


# -- tokens ---------------------------------------------------------------------------------
def test_standardize_and_vocabulary():
    assert language.standardize("Don't <br />STOP!") == ["don't", "stop", "!"]
    vocab = language.Vocabulary.build(TEXTS, 12)
    assert vocab.tokens[:5] == list(language.SPECIAL_TOKENS) and len(vocab) == 12
    assert vocab.tokens[5:8] == [".", "great", ","]  # by count, ties alphabetical
    ids = vocab.encode(TEXTS[:2], 6)
    assert ids.dtype == np.int32 and ids.shape == (2, 6)
    assert ids[0, 0] == language.CLS and vocab.decode(ids[0]).startswith("[CLS] [UNK] great")
    short = vocab.encode(["great"], 4)[0]
    assert short.tolist() == [language.CLS, vocab.index["great"], language.PAD, language.PAD]
    assert vocab.sha256() == language.Vocabulary.build(TEXTS, 12).sha256()  # deterministic


def test_vocabulary_bad_input():
    with pytest.raises(ValueError, match="`texts` must be a sequence of str.*one str"):
        language.Vocabulary.build("one review", 10)
    with pytest.raises(ValueError, match=r"`texts` must hold only str, found int"):
        language.Vocabulary.build(["ok", 3], 10)
    with pytest.raises(ValueError, match="`size` must exceed the 5 special tokens, got 5"):
        language.Vocabulary.build(TEXTS, 5)
    with pytest.raises(ValueError, match="`max_len` must be a positive integer, got 0"):
        language.Vocabulary.build(TEXTS, 10).encode(TEXTS, 0)


def test_encode_windows_covers_each_review_once():
    vocab = language.Vocabulary.build(TEXTS, 40)
    rows = vocab.encode_windows(TEXTS[:1], 5)  # 10 tokens -> windows of 4, 4, 2
    assert rows.dtype == np.int32 and rows.shape == (3, 5) and (rows[:, 0] == language.CLS).all()
    words = [vocab.index.get(t, language.UNK) for t in language.standardize(TEXTS[0])]
    read = rows[:, 1:].ravel()
    assert read[read != language.PAD].tolist() == words  # every token once, in order
    assert vocab.encode_windows(TEXTS[:1], 5)[0].tolist() == vocab.encode(TEXTS[:1], 5)[0].tolist()
    tail = vocab.encode_windows(TEXTS[1:2], 5)  # 8 tokens -> 4 + 4: no short tail
    assert tail.shape == (2, 5)
    assert vocab.encode_windows(TEXTS[:1], 5, min_tokens=3).shape == (2, 5)  # tail of 2 dropped
    assert vocab.encode_windows(TEXTS[:1], 5, min_tokens=2).shape == (3, 5)
    assert vocab.encode_windows([""], 4).tolist() == [[language.CLS, 0, 0, 0]]
    with pytest.raises(ValueError, match="`max_len` must leave room"):
        vocab.encode_windows(TEXTS, 1)


def test_wordpiece_splits_greedily_longest_first():
    pieces = language.WordPiece(["un", "##watch", "##able", "watch", "w", "##a", "##t", "##c",
                                 "##h"])
    assert pieces.split_word("unwatchable") == ["un", "##watch", "##able"]
    assert pieces.split_word("watch") == ["watch"]
    assert pieces.split_word("xyz") == ["[UNK]"]
    built = language.WordPiece.build(TEXTS * 3, words=5, pieces=30)
    for word in ("unwatchable", "boring", "zzz"):
        split = built.split_word(word)
        assert "".join(p.removeprefix("##") for p in split) == word or split == ["[UNK]"]


def test_text_vectorization_matches_the_vocabulary():
    pytest.importorskip("tensorflow")
    vocab = language.Vocabulary.build(TEXTS, 15)
    layer = language.text_vectorization_layer(vocab, 8)
    joined = [" ".join(language.standardize(t)) for t in TEXTS]
    ours = vocab.encode(TEXTS, 9)[:, 1:]  # without [CLS]
    assert np.array_equal(np.asarray(layer(np.array(joined, dtype=object))), ours)


# -- masking rule ---------------------------------------------------------------------------
def _library_output(ids, seed, rate):
    inputs, labels, weights = language.mask_tokens(ids, np.random.default_rng(seed),
                                                   ex09_checks.VOCAB, rate)
    return {"inputs": inputs, "labels": labels, "weights": weights}


def test_library_masking_passes_the_exercise_judges():
    """The chapter's rule is the exercise's: the grader's judges accept the library's output
    (inputs drawn from the seed and rates the reference run records, as in grading)."""
    for ids_seed in (11, 12, 13):
        rates = [0.15, 0.4]
        small = ex09_checks._ids(ids_seed, *ex09_checks.SMALL)
        outputs = [_library_output(small, 1 + i, rate) for i, rate in enumerate(rates)]
        passed, reason = ex09_checks._structure_judge(
            {"outputs": outputs}, {"ids_seed": ids_seed, "rates": rates})
        assert passed, reason
        large = ex09_checks._ids(ids_seed, *ex09_checks.LARGE)
        passed, reason = ex09_checks._proportions_judge(
            {"large": _library_output(large, 3, 0.15)}, {"ids_seed": ids_seed})
        assert passed, reason


def test_masked_positions_and_pretraining_batch():
    ids = np.array([[2, 7, 8, 9, 10, 11, 0, 0], [2, 6, 0, 0, 0, 0, 0, 0]])
    x, labels, weights = language.pretraining_batch(ids, np.random.default_rng(0), 20, 0.3, 2)
    assert x["token_ids"].shape == ids.shape and x["positions"].shape == (2, 2)
    assert weights.tolist()[1] == [1.0, 0.0]  # one candidate in row 1, the rest is padding
    assert labels[1, 0] == 6 and x["positions"][1, 0] == 1
    for row in range(2):
        for p, w, lab in zip(x["positions"][row], weights[row], labels[row], strict=True):
            if w:
                assert ids[row, p] == lab
    with pytest.raises(ValueError, match="more than max_predictions=1"):
        language.masked_positions(np.ones((1, 3), np.float32), 1)
    assert language.max_predictions(128, 0.15) == 19


def test_mask_tokens_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"`ids` must have rank 2, got shape \(3,\)"):
        language.mask_tokens(np.arange(3), rng, 10)
    with pytest.raises(ValueError, match=r"`ids` .* out of range \[0, 10\)"):
        language.mask_tokens(np.array([[1, 12]]), rng, 10)
    with pytest.raises(ValueError, match=r"`rate` must be in \(0, 1\), got 1.5"):
        language.mask_tokens(np.array([[1, 6]]), rng, 10, rate=1.5)


# -- the Keras models -----------------------------------------------------------------------
def test_encoder_shapes_and_padding_invariance():
    import keras

    keras.utils.set_random_seed(0)
    encoder = language.build_encoder(TINY)
    ids = np.array([[2, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0]], np.int32)
    out = np.asarray(encoder(ids))
    assert out.shape == (1, 12, 8)
    other = ids.copy()
    other[0, 3:] = 9  # what stands at padded positions must not change the real tokens' vectors
    other_out = np.asarray(encoder(np.where(ids == 0, 0, other)))
    np.testing.assert_allclose(out[0, :3], other_out[0, :3], atol=1e-6)
    with pytest.raises(ValueError, match="divisible by num_heads=3"):
        language.build_encoder({**TINY, "num_heads": 3})
    with pytest.raises(ValueError, match=r"`config` lacks \['dropout'\]"):
        language.build_encoder({k: v for k, v in TINY.items() if k != "dropout"})


def test_padding_is_ignored_by_attention():
    """Changing the ids behind the padding mask changes nothing (the mask works)."""
    import keras

    keras.utils.set_random_seed(1)
    encoder = language.build_encoder(TINY)
    ids = np.array([[2, 7, 8, 9, 0, 0, 0, 0, 0, 0, 0, 0]], np.int32)
    base = np.asarray(encoder(ids))[0, :4]
    # Without a mask, an embedding behind the padding would leak in; with one it cannot.
    layer = encoder.get_layer("padding_mask")
    mask = np.asarray(layer(ids))
    assert mask.shape == (1, 1, 12) and mask[0, 0].tolist() == [True] * 4 + [False] * 8
    np.testing.assert_allclose(base, np.asarray(encoder(ids))[0, :4], atol=1e-6)


def test_pretraining_and_classifier_models():
    import keras

    keras.utils.set_random_seed(0)
    mlm = language.build_pretraining_model(TINY)
    x, y, w = language.pretraining_batch(np.tile([[2, 7, 8, 9, 10, 0, 0, 0, 0, 0, 0, 0]], (4, 1)),
                                         np.random.default_rng(0), 40, 0.15, 2)
    logits = np.asarray(mlm(x))
    assert logits.shape == (4, 2, 40)
    # The output layer is tied to the token embedding: logits = h E^T + b, no (dim, vocab) kernel.
    table = mlm.get_layer("encoder").get_layer("embedding").tokens.embeddings
    assert [tuple(w.shape) for w in mlm.get_layer("mlm_logits").weights] == [(40,)]
    assert sum(tuple(w.shape) in {(8, 40), (40, 8)} for w in mlm.weights) == 1
    encoder = mlm.get_layer("encoder")
    hidden = keras.Model(mlm.input, mlm.get_layer("mlm_norm").output)(x)
    expected = np.asarray(hidden) @ np.asarray(table).T + np.asarray(
        mlm.get_layer("mlm_logits").bias)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    classifier = language.build_classifier(TINY, encoder)
    assert classifier.get_layer("encoder").trainable
    assert np.asarray(classifier(x["token_ids"])).shape == (4, 2)
    opt = language.adamw(1e-3, 10)
    assert opt.weight_decay == 0.01


def test_pretraining_dropout_is_separate_from_fine_tuning_dropout():
    """The recipe pre-trains without dropout and fine-tunes with it: the rates differ, the
    weights (dropout has none) carry over unchanged."""
    recipe = language.pretraining_recipe(False)
    assert recipe["pretrain_dropout"] == 0.0 and recipe["dropout"] == 0.1
    config = {**TINY, "dropout": 0.1, "pretrain_dropout": 0.0}
    mlm = language.build_pretraining_model(config)
    rates = {layer.rate for layer in mlm.get_layer("encoder").layers
             if layer.__class__.__name__ == "Dropout"}
    assert rates == {0.0}
    encoder = language.build_encoder(config)
    assert {layer.rate for layer in encoder.layers
            if layer.__class__.__name__ == "Dropout"} == {0.1}
    encoder.set_weights(mlm.get_layer("encoder").get_weights())
    default = language.build_pretraining_model({**TINY, "dropout": 0.2})  # no pretrain_dropout
    assert {layer.rate for layer in default.get_layer("encoder").layers
            if layer.__class__.__name__ == "Dropout"} == {0.2}


def test_finetune_method_learns_a_trivial_rule():
    """Reviews whose second token is 7 are positive: the fine-tuned classifier learns it."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 96)
    x = rng.integers(10, 40, (96, 12)).astype(np.int32)
    x[:, 0], x[:, 1] = language.CLS, np.where(y == 1, 7, 8)
    log = []
    method = language.finetune_method(TINY, None, {"epochs": 20, "peak_lr": 5e-3, "patience": 20,
                                                   "batch_size": 16}, log=log)
    predict = method(x, y, 0)
    assert np.mean(predict(x).argmax(1) == y) > 0.9
    assert log and log[0]["n"] == 96 and log[0]["best_val_accuracy"] > 0.8
    train, val = language.validation_split(y, 0.2, 0)
    assert len(np.intersect1d(train, val)) == 0 and len(train) + len(val) == 96


# -- pre-training through the course cache --------------------------------------------------
@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_imdb_mlm_is_registered_and_never_trains_on_validation_or_test_text(cache, monkeypatch):
    assert pretrained.REGISTRY["imdb_mlm"] == "course_lib.language:mlm_spec"
    small = {**language.pretraining_recipe(True), "vocab_size": 60, "max_len": 16, "dim": 8,
             "num_heads": 2, "ff_dim": 16, "epochs": 2, "batch_size": 16,
             "validation": {"per_class": 5, "seed": 0}}
    small["max_pred"] = language.max_predictions(16, 0.15)

    from course_lib import data

    real_load = data.load

    def load(name, split="train", **kwargs):
        x, y = real_load(name, split, **kwargs)
        return x[:80], y[:80]

    windows_of = []
    real_windows = language.Vocabulary.encode_windows

    def encode_windows(self, texts, *args, **kwargs):
        windows_of.append(list(texts))
        return real_windows(self, texts, *args, **kwargs)

    monkeypatch.setattr(data, "load", load)
    monkeypatch.setattr(language.Vocabulary, "encode_windows", encode_windows)
    monkeypatch.setattr(language, "pretraining_recipe", lambda fast: small)
    model, vocab, meta = language.pretrained_encoder(fast=True, verbose=False)
    splits = language.recipe_splits(small)
    trained, held_out = windows_of[0], windows_of[1]
    assert len(trained) == len(splits.pool_texts) + len(splits.unlabelled_texts)
    assert not set(trained) & set(splits.test_texts)              # never a test review
    assert not set(trained) & set(splits.validation_texts)        # nor a validation review
    assert held_out == list(splits.validation_texts)              # the held-out loss reads them
    results = meta["results"]
    assert len(results["loss_history"]) == len(results["held_out_loss_history"]) == 2
    assert results["tokens_per_second"] > 0 and results["vocabulary"] == vocab.tokens
    assert results["vocabulary_sha256"] == vocab.sha256() and len(vocab) == 60
    guesses = language.fill_masks(model, vocab, "the movie and the cast", 16, positions=[1])
    assert guesses[0][0] == "the" and len(guesses[0][1]) == 3
    assert all(g not in language.SPECIAL_TOKENS for g, _ in guesses[0][1])
    with pytest.raises(ValueError, match=r"`positions` must be in \[1, 6\)"):
        language.fill_masks(model, vocab, "the movie and the cast", 16, positions=[9])
    # A second call loads the verified cached model instead of training again.
    again, _, meta2 = language.pretrained_encoder(fast=True, verbose=False)
    assert meta2["sha256"] == meta["sha256"]


# -- a real checkpoint (keras_hub is optional) ----------------------------------------------
def test_keras_hub_missing_gives_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_hub", None)  # import raises ImportError
    with pytest.raises(language.CheckpointUnavailable, match="pip install keras-hub"):
        language.keras_hub_classifier()


def test_keras_hub_preset_errors_and_success(monkeypatch, tmp_path):
    calls = []

    def from_preset(preset, num_classes):
        calls.append((preset, num_classes))
        if preset == "bert_tiny_en_uncased":
            raise OSError("could not reach the download server")
        return "a classifier"

    fake = types.SimpleNamespace(models=types.SimpleNamespace(
        BertTextClassifier=types.SimpleNamespace(from_preset=from_preset)))
    monkeypatch.setitem(sys.modules, "keras_hub", fake)
    with pytest.raises(language.CheckpointUnavailable,
                       match="OSError: could not reach.*pass a local preset folder"):
        language.keras_hub_classifier()
    with pytest.raises(language.CheckpointUnavailable, match="no preset folder at './nowhere'"):
        language.keras_hub_classifier("./nowhere")
    assert language.keras_hub_classifier(str(tmp_path), num_classes=3) == "a classifier"
    assert calls[-1] == (str(tmp_path), 3)


# -- document 002's code: the stand-ins behave like the originals ---------------------------
def test_document_002_dataset_shapes():
    vocab = language.Vocabulary.build(TEXTS, 20)
    items = [language.hf_style_encode(vocab, t, 10, return_tensors="pt") for t in TEXTS]
    batch = language.default_collate(items)
    assert batch["input_ids"].shape == (4, 1, 10)
    with pytest.raises(ValueError, match="too many values to unpack"):
        language.bert_input_shape(batch["input_ids"])
    fixed = language.default_collate([language.hf_style_encode(vocab, t, 10) for t in TEXTS])
    assert language.bert_input_shape(fixed["input_ids"]) == (4, 10)


def test_document_002_loop_needs_undefined_names_and_never_prints_its_results():
    printed, error = language.run_document_loop({})
    assert error == "NameError: name 'train_epoch' is not defined" and printed == ""
    stand_ins = {"model": None, "optimizer": None, "train_epoch": lambda *a: 0.5,
                 "evaluate": lambda *a: 0.9}
    printed, error = language.run_document_loop(stand_ins)
    assert error == "NameError: name 'train_dataset' is not defined"
    printed, error = language.run_document_loop(
        {**stand_ins, "train_dataset": 0, "dev_dataset": 0, "test_dataset": 0})
    assert error is None
    assert printed.splitlines()[:2] == ["Epoch 1, train loss: 0.500", "Epoch 1, dev accuracy: 0.9"]
    assert not any(line.startswith("Accuracy on") for line in printed.splitlines())
