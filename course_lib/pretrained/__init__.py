"""Models the course pre-trains itself and keeps in its cache (chapters 07-09).

No pretrained weights can be downloaded on the course's machines (nor behind many firewalls), so
a chapter that needs a pre-trained model trains its own once, stores it here with its sha256 and
the recipe it came from, and loads it afterwards:

    course pretrain --list                       what can be pre-trained, and what is cached
    course pretrain cifar_source [--fast]        train it now (once), with progress
    model, meta = pretrained.get_or_train("cifar_source")   # in a notebook

Each model lives in ``cache_dir()/models/<name>-<variant>/`` ("full" or "fast", so fast mode
never touches a full-mode model): ``model.weights.h5`` and ``meta.json`` (sha256 of the weights,
the recipe, the results, Keras version, backend, training seconds). Only weights are stored; the
architecture is rebuilt from the recipe by the model's own ``build`` function, so a stored model
does not depend on pickled code.

A file whose checksum does not match, a ``meta.json`` that cannot be read, or a model trained
with another recipe is **refused** with a clear message, never silently used. ``get_or_train``
then moves the refused folder aside (``<name>-<variant>.rejected-N``: nothing is deleted) and
trains a new model; ``load`` raises.

A chapter registers a model by adding ``name: "module:function"`` to :data:`REGISTRY`; the
function returns a :class:`PretrainSpec`.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course_lib.data.files import atomic_write, cache_dir, sha256_file
from course_lib.environment import fast_mode

# name -> "module:function" returning that model's PretrainSpec (imported only when needed).
REGISTRY: dict[str, str] = {
    "cifar_source": "course_lib.transfer:cifar_source_spec",
    "mnist_source": "course_lib.transfer:mnist_source_spec",
    "imdb_mlm": "course_lib.language:mlm_spec",
    "cifar_rotation": "course_lib.selfsupervised:rotation_spec",
    "cifar_denoising": "course_lib.selfsupervised:denoising_spec",
}

WEIGHTS_FILE = "model.weights.h5"
META_FILE = "meta.json"
FORMAT_VERSION = 1


class PretrainedModelError(ValueError):
    """A cached pre-trained model that cannot be used (base class)."""


class CorruptModelError(PretrainedModelError):
    """The weights file does not match its recorded sha256, or meta.json is unreadable."""


class StaleModelError(PretrainedModelError):
    """The cached model was trained with a different recipe than the one asked for."""


class MissingModelError(PretrainedModelError, FileNotFoundError):
    """No cached model of that name and variant."""


@dataclass(frozen=True)
class PretrainSpec:
    """How to make one pre-trained model.

    recipe(fast) -> dict: JSON-able description of data, architecture and hyperparameters
        (what the model "came from"); changing it makes cached copies stale.
    build(recipe) -> keras.Model: the architecture, untrained (weights are loaded into it).
    train(model, recipe, verbose) -> dict: trains ``model`` in place, showing progress when
        ``verbose``; returns JSON-able results (e.g. {"source_test_accuracy": 0.87}).
    """

    name: str
    description: str
    recipe: Callable[[bool], dict]
    build: Callable[[dict], Any]
    train: Callable[[Any, dict, bool], dict]


def spec(name: str) -> PretrainSpec:
    """The registered :class:`PretrainSpec` of ``name``; ``ValueError`` listing the names if unknown."""
    if name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY)) or "none registered"
        raise ValueError(f"unknown pre-trained model {name!r}; known: {known}")
    module_name, _, function = REGISTRY[name].partition(":")
    found = getattr(importlib.import_module(module_name), function)()
    if not isinstance(found, PretrainSpec) or found.name != name:
        raise TypeError(f"{REGISTRY[name]} must return a PretrainSpec named {name!r}")
    return found


def _variant(fast: bool | None) -> str:
    return "fast" if (fast_mode() if fast is None else fast) else "full"


def model_dir(name: str, fast: bool | None = None) -> Path:
    """The cache folder of model ``name`` in the fast or full variant (default: current mode)."""
    return cache_dir() / "models" / f"{name}-{_variant(fast)}"


def _canonical(recipe: dict) -> dict:
    """The recipe as it reads back from JSON (tuples become lists), for comparison."""
    return json.loads(json.dumps(recipe, sort_keys=True))


def save(name: str, model, recipe: dict, results: dict, fast: bool | None = None,
         seconds: float | None = None) -> Path:
    """Store ``model``'s weights and their metadata; returns the folder.

    An existing folder for the same name and variant is moved aside first (never deleted).
    The weights are written before ``meta.json``, each atomically, so an interrupted save leaves
    no meta.json that vouches for a half-written file.
    """
    import keras

    folder = model_dir(name, fast)
    if folder.exists():
        _move_aside(folder)
    folder.mkdir(parents=True)
    weights = folder / WEIGHTS_FILE
    tmp = folder / f".tmp-{WEIGHTS_FILE}"
    model.save_weights(tmp)
    os.replace(tmp, weights)
    meta = {
        "format": FORMAT_VERSION,
        "name": name,
        "variant": _variant(fast),
        "sha256": sha256_file(weights),
        "recipe": _canonical(recipe),
        "results": _canonical(results),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "training_seconds": None if seconds is None else round(float(seconds), 1),
    }
    text = json.dumps(meta, indent=2, sort_keys=True).encode()
    atomic_write(folder / META_FILE, lambda f: f.write(text))
    return folder


def read_meta(name: str, fast: bool | None = None) -> dict:
    """``meta.json`` of a cached model, checked against its weights file.

    Raises :class:`MissingModelError` when nothing is cached, :class:`CorruptModelError` when
    meta.json is unreadable or the weights' sha256 differs from the recorded one.
    """
    folder = model_dir(name, fast)
    fix = (f"Run `course pretrain {name}{' --fast' if _variant(fast) == 'fast' else ''} --force` "
           f"to train a new one (the old folder is kept beside it).")
    meta_path, weights = folder / META_FILE, folder / WEIGHTS_FILE
    if not meta_path.exists() and not weights.exists():
        raise MissingModelError(f"no cached model {name!r} ({_variant(fast)}) in {folder}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        recorded = meta["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CorruptModelError(
            f"cached model {name!r}: {meta_path} is missing or unreadable "
            f"({type(error).__name__}); the model cannot be trusted. {fix}"
        ) from None
    if not weights.is_file():
        raise CorruptModelError(f"cached model {name!r}: {weights} is missing. {fix}")
    actual = sha256_file(weights)
    if actual != recorded:
        raise CorruptModelError(
            f"cached model {name!r}: {weights} has sha256 {actual}, but meta.json records "
            f"{recorded}: the file is damaged or was changed after training. {fix}"
        )
    return meta


def _recipe_differences(cached: dict, wanted: dict, prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(cached) | set(wanted)):
        a, b = cached.get(key, "<absent>"), wanted.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _recipe_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key}: cached {a!r}, wanted {b!r}")
    return diffs


def load(name: str, fast: bool | None = None, recipe: dict | None = None):
    """``(model, meta)`` of a cached, verified model; never trains.

    ``recipe``: the recipe the caller wants (default: the registered one for this mode); a
    cached model trained with any other recipe raises :class:`StaleModelError`. Also raises
    :class:`MissingModelError` and :class:`CorruptModelError` (see :func:`read_meta`).
    """
    found = spec(name)
    wanted = _canonical(found.recipe(_variant(fast) == "fast") if recipe is None else recipe)
    meta = read_meta(name, fast)
    diffs = _recipe_differences(meta.get("recipe", {}), wanted)
    if diffs:
        raise StaleModelError(
            f"cached model {name!r} was trained with another recipe ({'; '.join(diffs[:5])}). "
            f"Run `course pretrain {name}{' --fast' if _variant(fast) == 'fast' else ''} --force` "
            "to train one with the current recipe (the old folder is kept beside it)."
        )
    model = found.build(wanted)
    try:
        model.load_weights(model_dir(name, fast) / WEIGHTS_FILE)
    except Exception as error:  # a checksum-valid file that does not fit this architecture
        raise StaleModelError(
            f"cached model {name!r}: its weights do not fit the architecture built from the "
            f"recipe ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        ) from None
    return model, meta


def _shown(value) -> str:
    """A result for the one-line summary: floats (also in lists) to four significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple) and value and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(f"{v:.4g}" for v in value) + "]"
    return str(value)


def train(name: str, fast: bool | None = None, verbose: bool = True):
    """Train model ``name`` with its registered recipe, store it, and return ``(model, meta)``.

    A full-mode model asked for by a process whose TensorFlow runs with oneDNN off (a notebook:
    ``course_lib.setup()`` turns it off for bit-stable outputs) is trained in a child process
    with oneDNN on, about twice as fast on a CPU (``benchmarks/pretrain_onednn.py``), its
    progress shown here; then it is loaded from the cache like any other.
    """
    if _variant(fast) == "full" and _onednn_off_here():
        _train_in_child(name, verbose)
        return load(name, fast=False)
    found = spec(name)
    recipe = found.recipe(_variant(fast) == "fast")
    if verbose:
        print(f"pre-training {name!r} ({_variant(fast)} recipe): {found.description}")
    start = time.perf_counter()
    model = found.build(recipe)
    results = found.train(model, recipe, verbose)
    seconds = time.perf_counter() - start
    folder = save(name, model, recipe, results, fast, seconds)
    if verbose:
        shown = ", ".join(f"{k} {_shown(v)}" for k, v in results.items())
        print(f"{name}: trained in {seconds:.0f} s ({shown}); cached in the course cache "
              f"as {folder.name}")
    return model, read_meta(name, fast)


def _onednn_off_here() -> bool:
    """True when this process's TensorFlow (the Keras backend) was imported with oneDNN off."""
    keras = sys.modules.get("keras")
    return ("tensorflow" in sys.modules and keras is not None
            and keras.backend.backend() == "tensorflow"
            and os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0")


def _train_in_child(name: str, verbose: bool) -> None:
    """Run :func:`train` for the full variant of ``name`` in a new Python process with oneDNN on
    (no lock taken there: the caller holds it), echoing its output line by line."""
    import subprocess
    import tempfile

    script = ("from course_lib import pretrained\n"
              f"pretrained.REGISTRY[{name!r}] = {REGISTRY[name]!r}\n"
              f"pretrained.train({name!r}, fast=False, verbose={bool(verbose)})\n")
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
           "KERAS_BACKEND": "tensorflow", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                 stderr=errors, text=True, env=env)
        try:
            for line in child.stdout:
                print(line, end="", flush=True)
            code = child.wait()
        finally:
            if child.poll() is None:  # interrupted: stop the child too
                child.kill()
                child.wait()
        if code:
            errors.seek(0)
            tail = "\n".join(errors.read().strip().splitlines()[-15:])
            raise RuntimeError(f"pre-training {name!r} in a child process failed (exit code "
                               f"{code}); its last error lines:\n{tail}")


def get_or_train(name: str, fast: bool | None = None, force: bool = False, verbose: bool = True):
    """``(model, meta)``: the cached model when it is valid, else a newly trained one.

    A corrupt or stale cached model is refused with a message saying why, moved aside (kept,
    not deleted) and replaced by a newly trained one. ``force=True`` retrains in any case.
    Two processes asking for the same model (two notebooks, parallel test workers) take turns:
    the second waits for the first to finish training and then loads its model.
    """
    with _model_lock(name, fast):
        return _get_or_train(name, fast, force, verbose)


@contextlib.contextmanager
def _model_lock(name: str, fast: bool | None):
    """An exclusive lock on ``models/.<name>-<variant>.lock`` (POSIX ``flock``; none elsewhere)."""
    folder = model_dir(name, fast)
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    with open(folder.parent / f".{folder.name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _get_or_train(name: str, fast: bool | None, force: bool, verbose: bool):
    if not force:
        try:
            model, meta = load(name, fast)
        except MissingModelError:
            pass
        except PretrainedModelError as error:
            kept = _move_aside(model_dir(name, fast))
            if verbose:
                print(f"refused the cached model: {error}\nkept it as {kept.name}; training a new one.")
        else:
            if verbose:
                print(f"loaded cached {name!r} ({meta['variant']}, trained "
                      f"{meta['created_utc']}, sha256 {meta['sha256'][:12]}… verified)")
            return model, meta
    return train(name, fast, verbose)


def status(name: str, fast: bool | None = None) -> str:
    """"cached", "missing", "corrupt: …" or "stale: …" for ``course pretrain --list``."""
    try:
        load(name, fast)
    except MissingModelError:
        return "missing"
    except CorruptModelError as error:
        return f"corrupt: {str(error)[:80]}"
    except StaleModelError as error:
        return f"stale: {str(error)[:80]}"
    return "cached"


def _move_aside(folder: Path) -> Path:
    number = 1
    while (target := folder.with_name(f"{folder.name}.rejected-{number}")).exists():
        number += 1
    shutil.move(str(folder), str(target))
    return target


def run_cli(names: list[str], fast: bool, force: bool, list_only: bool) -> int:
    """``course pretrain``: list models, or train the named ones. Returns an exit code."""
    from course_lib.environment import quiet_tensorflow

    if names and not list_only:
        # Training: oneDNN's CPU kernels train about twice as fast (measured by
        # benchmarks/pretrain_onednn.py); the notebooks keep them off for bit-stable outputs.
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    quiet_tensorflow()  # TensorFlow's start-up notices would bury the table
    if list_only or not names:
        if not REGISTRY:
            print("no pre-trainable models are registered")
            return 0
        print(f"{'model':16s} {'full':10s} {'fast':10s} description")
        for name in sorted(REGISTRY):
            try:
                description = spec(name).description
            except Exception as error:  # report every model, not only the first broken one
                print(f"{name:16s} cannot be loaded: {type(error).__name__}: {error}")
                continue
            states = [status(name, variant).split(":")[0] for variant in (False, True)]
            print(f"{name:16s} {states[0]:10s} {states[1]:10s} {description}")
        if not names:
            print("\ntrain one with: course pretrain NAME [--fast] [--force]")
        return 0
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        print(f"error: unknown model(s) {', '.join(unknown)}; known: "
              f"{', '.join(sorted(REGISTRY)) or 'none'}", file=sys.stderr)
        return 2
    for name in names:
        get_or_train(name, fast=fast, force=force, verbose=True)
    return 0
