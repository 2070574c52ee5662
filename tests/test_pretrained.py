"""course_lib.pretrained: the cache of models the course pre-trains itself, and `course pretrain`.

A tiny registered model (a Dense layer fitted for one epoch on random data) stands in for the
chapters' source models; every test uses a temporary cache.
"""

import json

import numpy as np
import pytest

from course_lib import cli, pretrained


def _recipe(fast: bool) -> dict:
    return {"units": 3, "epochs": 1, "fast": fast, "data": "random (16, 4)"}


def _build(recipe: dict):
    import keras

    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(recipe["units"])(inputs))


def _train(model, recipe: dict, verbose: bool) -> dict:
    rng = np.random.default_rng(0)
    model.compile(optimizer="sgd", loss="mse")
    x, y = rng.standard_normal((16, 4)), rng.standard_normal((16, recipe["units"]))
    history = model.fit(x, y, epochs=recipe["epochs"], verbose=0)
    return {"loss": float(history.history["loss"][-1])}


def tiny_spec() -> pretrained.PretrainSpec:
    return pretrained.PretrainSpec("tiny", "a Dense layer on random data", _recipe, _build, _train)


def _train_broken(model, recipe: dict, verbose: bool) -> dict:
    raise ValueError("the training data is missing (a test)")


def broken_spec() -> pretrained.PretrainSpec:
    return pretrained.PretrainSpec("broken", "fails to train", _recipe, _build, _train_broken)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(pretrained.REGISTRY, "tiny", f"{__name__}:tiny_spec")
    return tmp_path / "cache"


def _weights_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights(), strict=True))


def test_get_or_train_trains_once_then_loads_verified(cache, capsys):
    first, meta = pretrained.get_or_train("tiny", fast=True)
    assert "pre-training 'tiny'" in capsys.readouterr().out
    folder = pretrained.model_dir("tiny", fast=True)
    assert folder == cache / "models" / "tiny-fast" and (folder / "meta.json").is_file()
    assert meta["recipe"] == _recipe(True) and meta["variant"] == "fast"
    assert set(meta["results"]) == {"loss"} and len(meta["sha256"]) == 64

    second, _ = pretrained.get_or_train("tiny", fast=True)
    assert "loaded tiny (fast, from your cache)" in capsys.readouterr().out
    assert _weights_equal(first, second)


def test_fast_and_full_variants_never_share_a_folder(cache):
    pretrained.get_or_train("tiny", fast=True, verbose=False)
    assert pretrained.status("tiny", fast=False) == "missing"
    assert pretrained.status("tiny", fast=True) == "cached"


def test_corrupt_weights_are_refused_kept_and_replaced(cache, capsys):
    pretrained.get_or_train("tiny", fast=True, verbose=False)
    weights = pretrained.model_dir("tiny", fast=True) / pretrained.WEIGHTS_FILE
    damaged = bytearray(weights.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    weights.write_bytes(bytes(damaged))

    with pytest.raises(pretrained.CorruptModelError, match="sha256.*damaged or was changed"):
        pretrained.load("tiny", fast=True)
    assert pretrained.status("tiny", fast=True).startswith("corrupt")

    pretrained.get_or_train("tiny", fast=True)
    out = capsys.readouterr().out
    assert "refused the cached model" in out and "tiny-fast.rejected-1" in out
    kept = cache / "models" / "tiny-fast.rejected-1" / pretrained.WEIGHTS_FILE
    assert kept.read_bytes() == bytes(damaged)  # nothing the user had is lost
    assert pretrained.status("tiny", fast=True) == "cached"


def test_unreadable_meta_is_refused(cache):
    pretrained.get_or_train("tiny", fast=True, verbose=False)
    (pretrained.model_dir("tiny", fast=True) / "meta.json").write_text("{not json")
    with pytest.raises(pretrained.CorruptModelError, match="meta.json is missing or unreadable"):
        pretrained.load("tiny", fast=True)


def test_stale_recipe_is_refused_with_the_difference(cache):
    pretrained.get_or_train("tiny", fast=True, verbose=False)
    meta_path = pretrained.model_dir("tiny", fast=True) / "meta.json"
    meta = json.loads(meta_path.read_text())
    with pytest.raises(pretrained.StaleModelError, match="epochs: cached 1, wanted 2"):
        pretrained.load("tiny", fast=True, recipe={**meta["recipe"], "epochs": 2})


def test_missing_model_and_unknown_name(cache):
    with pytest.raises(pretrained.MissingModelError):
        pretrained.load("tiny", fast=False)
    with pytest.raises(ValueError, match="unknown pre-trained model 'nope'; known: .*tiny"):
        pretrained.spec("nope")


def test_course_pretrain_lists_trains_and_rejects_unknown(cache, capsys):
    assert cli.main(["pretrain", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "tiny" in listing and "missing" in listing

    assert cli.main(["pretrain", "tiny", "--fast"]) == 0
    assert "trained in" in capsys.readouterr().out
    assert cli.main(["pretrain", "--list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("tiny"))
    assert row.split()[1:3] == ["missing", "cached"]  # full, fast

    assert cli.main(["pretrain", "nope"]) == 2
    assert "unknown model(s) nope" in capsys.readouterr().err


def test_pretrain_help():
    with pytest.raises(SystemExit) as stop:
        cli.main(["pretrain", "--help"])
    assert stop.value.code == 0


def test_two_processes_take_turns_and_train_once(cache):
    """Two processes asking for the same model at once (e.g. two pytest-xdist workers running
    notebooks): one trains, the other waits for it and loads the result."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
              "from course_lib import pretrained\n"
              f"pretrained.REGISTRY['tiny'] = '{__name__}:tiny_spec'\n"
              "pretrained.get_or_train('tiny', fast=True)\n")
    env = {**os.environ, "COURSE_CACHE": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}
    runs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             env=env) for _ in range(2)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert sum("pre-training 'tiny'" in out for out in outputs) == 1
    assert sum("loaded tiny (fast, from your cache)" in out for out in outputs) == 1
    assert not list((cache / "models").glob("tiny-fast.rejected-*"))


def test_full_model_trains_in_a_child_process_when_onednn_is_off_here(cache, monkeypatch, capsys):
    """A notebook runs TensorFlow with oneDNN off; a full-mode model is then trained in a child
    process with oneDNN on (twice as fast on a CPU), its progress echoed, and loaded."""
    monkeypatch.setattr(pretrained, "_onednn_off_here", lambda: True)
    model, meta = pretrained.get_or_train("tiny", fast=False)
    out = capsys.readouterr().out
    assert "pre-training 'tiny' (full recipe)" in out and "cached in the course cache" in out
    assert meta["variant"] == "full" and (cache / "models" / "tiny-full" / "meta.json").is_file()
    again, _ = pretrained.load("tiny", fast=False)
    assert _weights_equal(model, again)


def test_a_failing_child_process_raises_a_clear_error(cache, monkeypatch):
    monkeypatch.setattr(pretrained, "_onednn_off_here", lambda: True)
    monkeypatch.setitem(pretrained.REGISTRY, "broken", f"{__name__}:broken_spec")
    with pytest.raises(RuntimeError, match="(?s)pre-training 'broken' in a child process.*"
                                           "the training data is missing"):
        pretrained.train("broken", fast=False)
    assert not (cache / "models" / "broken-full").exists()


def test_onednn_off_here_reads_the_environment(monkeypatch):
    import keras

    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    expected = keras.backend.backend() == "tensorflow" and "tensorflow" in __import__("sys").modules
    assert pretrained._onednn_off_here() == expected
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    assert not pretrained._onednn_off_here()


# --------------------------------------------------------------------------------------------
# Shipped models: the package's own copies, used when the cache has none.
# --------------------------------------------------------------------------------------------


@pytest.fixture
def shipped(cache, tmp_path, monkeypatch):
    """A full-mode tiny model trained, shipped into a temporary package folder, and removed
    from the cache: the state of a fresh installation."""
    import shutil

    monkeypatch.setattr(pretrained, "SHIPPED_DIR", tmp_path / "package")
    (tmp_path / "package").mkdir()
    monkeypatch.setattr(pretrained, "_onednn_off_here", lambda: False)
    model, _ = pretrained.get_or_train("tiny", fast=False, verbose=False)
    pretrained.ship("tiny")
    shutil.rmtree(pretrained.model_dir("tiny", fast=False))
    return model


def _no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a shipped model must not be trained again")
    monkeypatch.setattr(pretrained, "train", refuse)


def test_shipped_copy_is_used_verified_and_labelled_when_the_cache_is_empty(shipped, monkeypatch,
                                                                             capsys):
    weights, meta_path = pretrained.shipped_files("tiny")
    meta = json.loads(meta_path.read_text())
    assert weights.is_file() and meta["sha256"] == pretrained.sha256_file(weights)
    assert {"hardware", "keras", "backend", "training_seconds", "data", "recipe"} <= set(meta)
    assert pretrained.status("tiny", fast=False) == "shipped"
    _no_training(monkeypatch)
    model, meta = pretrained.get_or_train("tiny", fast=False)
    out = capsys.readouterr().out
    assert meta["source"] == "shipped" and _weights_equal(model, shipped)
    assert "shipped with the course): trained by this course" in out
    assert "not a downloaded model" in out and "verified" in out
    assert not pretrained.model_dir("tiny", fast=False).exists()   # nothing written


def test_fast_mode_never_uses_the_shipped_full_model(shipped):
    assert pretrained.status("tiny", fast=True) == "missing"


def test_a_valid_cached_copy_comes_before_the_shipped_one(shipped, capsys):
    pretrained.train("tiny", fast=False, verbose=False)
    _, meta = pretrained.get_or_train("tiny", fast=False)
    assert meta["source"] == "cache" and "from your cache" in capsys.readouterr().out


def test_a_corrupt_shipped_copy_is_refused_left_alone_and_trained_anew(shipped, capsys):
    weights, _ = pretrained.shipped_files("tiny")
    damaged = bytearray(weights.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    weights.write_bytes(bytes(damaged))
    assert pretrained.status("tiny", fast=False).startswith("shipped-corrupt: shipped model")
    with pytest.raises(pretrained.CorruptModelError, match="shipped model 'tiny'.*sha256.*"
                                                           "damaged or was changed"):
        pretrained.load_shipped("tiny")
    _, meta = pretrained.get_or_train("tiny", fast=False)
    out = capsys.readouterr().out
    assert "refused the shipped model" in out and "training it now" in out
    assert "trained in" in out and meta["source"] == "cache"
    assert weights.read_bytes() == bytes(damaged)            # the package is not touched


def test_a_stale_shipped_copy_is_refused(shipped, monkeypatch):
    _, meta_path = pretrained.shipped_files("tiny")
    meta = json.loads(meta_path.read_text())
    with pytest.raises(pretrained.StaleModelError, match="shipped model 'tiny' was trained with "
                                                         "another recipe.*epochs"):
        pretrained.load_shipped("tiny", recipe={**meta["recipe"], "epochs": 3})


def test_course_pretrain_lists_shipped_and_force_compares_with_it(shipped, capsys):
    assert cli.main(["pretrain", "--list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("tiny"))
    assert row.split()[1:3] == ["shipped", "missing"]
    assert cli.main(["pretrain", "tiny", "--force"]) == 0
    out = capsys.readouterr().out
    assert "tiny: your new model against the shipped one" in out
    assert "training seconds" in out and "loss" in out


def test_ship_refuses_a_model_trained_with_another_recipe(cache, tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", tmp_path)
    monkeypatch.setattr(pretrained, "_onednn_off_here", lambda: False)
    pretrained.get_or_train("tiny", fast=False, verbose=False)
    meta_path = pretrained.model_dir("tiny", fast=False) / pretrained.META_FILE
    meta = json.loads(meta_path.read_text())
    meta["recipe"]["epochs"] = 5
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(pretrained.StaleModelError, match="another recipe"):
        pretrained.ship("tiny")
    assert not list(tmp_path.glob("tiny.*"))


# --------------------------------------------------------------------------------------------
# The real shipped models of the course.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(pretrained.REGISTRY))
def test_every_registered_model_ships_with_its_current_recipe(name):
    """A recipe change must come with retrained weights (tools/ship_pretrained.py)."""
    meta = pretrained.read_shipped_meta(name)                   # sha256 verified
    wanted = json.loads(json.dumps(pretrained.spec(name).recipe(False), sort_keys=True))
    assert meta["recipe"] == wanted, (f"the shipped {name!r} is stale: retrain it with "
                                      f"`course pretrain {name} --force` and ship it")
    assert meta["variant"] == "full" and meta["training_seconds"] > 0
    assert meta["hardware"] and meta["keras"] and meta["backend"]
    assert meta["data"] and all(entry.get("sha256") for entries in meta["data"].values()
                                for entry in entries)


def test_shipped_weights_fit_the_budget():
    total = sum(p.stat().st_size for p in pretrained.SHIPPED_DIR.glob("*.weights.h5"))
    assert 0 < total <= 15 * 10**6


@pytest.mark.parametrize("name", sorted(pretrained.REGISTRY))
def test_shipped_model_loads_with_an_empty_cache_and_trains_nothing(name, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "empty-cache"))
    _no_training(monkeypatch)
    model, meta = pretrained.get_or_train(name, fast=False, verbose=False)
    assert meta["source"] == "shipped" and model.count_params() > 0


def test_ship_can_add_the_provenance_an_older_cache_lacks(cache, tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", tmp_path)
    monkeypatch.setattr(pretrained, "_onednn_off_here", lambda: False)
    pretrained.get_or_train("tiny", fast=False, verbose=False)
    meta_path = pretrained.model_dir("tiny", fast=False) / pretrained.META_FILE
    old = {k: v for k, v in json.loads(meta_path.read_text()).items()
           if k not in ("hardware", "python", "data", "tensorflow", "onednn")}
    meta_path.write_text(json.dumps(old))
    weights, shipped_meta = pretrained.ship("tiny", add_provenance=True)
    meta = json.loads(shipped_meta.read_text())
    assert meta["hardware"] and meta["provenance_added_when_shipped"] is True
    assert meta["sha256"] == pretrained.sha256_file(weights) and meta["recipe"] == old["recipe"]


def test_stored_weights_hold_no_optimizer_state(cache):
    """Keras writes a compiled model's optimizer state into .weights.h5 (three times the size
    for Adam); the course stores the weights only."""
    import h5py

    pretrained.get_or_train("tiny", fast=True, verbose=False)
    with h5py.File(pretrained.model_dir("tiny", fast=True) / pretrained.WEIGHTS_FILE) as stored:
        assert "optimizer" not in stored and "layers" in stored
