"""Models the course pre-trains itself: shipped inside the package, cached, or trained (chapters 07-09).

No pretrained weights can be downloaded on the course's machines (nor behind many firewalls), so
the course trains its own source models, once, with a fixed recipe, and ships the full-mode
weights in this folder (``<name>.weights.h5`` and ``<name>.meta.json``: sha256, recipe, data and
its sha256, training seconds, hardware, Keras version and backend). They are *not* downloaded
models: every load prints how the model was made (:func:`describe`).

    course pretrain --list                       every model and where it would come from
    course pretrain cifar_source --force         reproduce a shipped model, compare its figures
    model, meta = pretrained.get_or_train("cifar_source")   # in a notebook

:func:`get_or_train` looks, in order, in

1. the user's cache, ``cache_dir()/models/<name>-<variant>/`` ("full" or "fast", so fast mode
   never touches a full-mode model): ``model.weights.h5`` and ``meta.json``;
2. the shipped copy (full variant only), verified by sha256, never trusted unverified;
3. otherwise it trains the model with its recipe and stores it in the cache.

Only weights are stored; the architecture is rebuilt from the recipe by the model's own
``build`` function, so a stored model does not depend on pickled code.

A file whose checksum does not match, a ``meta.json`` that cannot be read, or a model trained
with another recipe is **refused** with a clear message, never silently used. A refused cached
folder is moved aside (``<name>-<variant>.rejected-N``: nothing is deleted); a refused shipped
copy is left where it is (the package is not the user's to change) and the next source is tried.
A shipped copy whose recipe differs from the current recipe is stale; the test suite fails on
it, so a recipe change comes with retrained weights (``tools/ship_pretrained.py``).

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
    "imdb_sgns": "course_lib.word_vectors:sgns_spec",
    "cifar_rotation": "course_lib.selfsupervised:rotation_spec",
    "cifar_denoising": "course_lib.selfsupervised:denoising_spec",
    "cifar_simclr": "course_lib.contrastive:simclr_spec",
}

WEIGHTS_FILE = "model.weights.h5"
META_FILE = "meta.json"
FORMAT_VERSION = 1
# The shipped full-mode models: <name>.weights.h5 and <name>.meta.json beside this file.
SHIPPED_DIR = Path(__file__).resolve().parent
SHIPPED_WEIGHTS = "{name}.weights.h5"
SHIPPED_META = "{name}.meta.json"


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
    data: the ``course_lib.data`` datasets it trains on (their files and sha256 go into the
        metadata).
    """

    name: str
    description: str
    recipe: Callable[[bool], dict]
    build: Callable[[dict], Any]
    train: Callable[[Any, dict, bool], dict]
    data: tuple[str, ...] = ()


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


def _fast_flag(fast: bool | None) -> str:
    return " --fast" if _variant(fast) == "fast" else ""


def model_dir(name: str, fast: bool | None = None) -> Path:
    """The cache folder of model ``name`` in the fast or full variant (default: current mode)."""
    return cache_dir() / "models" / f"{name}-{_variant(fast)}"


def shipped_files(name: str) -> tuple[Path, Path]:
    """``(weights, meta)``: where the shipped full-mode copy of ``name`` is (or would be)."""
    return (SHIPPED_DIR / SHIPPED_WEIGHTS.format(name=name),
            SHIPPED_DIR / SHIPPED_META.format(name=name))


def _canonical(recipe: dict) -> dict:
    """The recipe as it reads back from JSON (tuples become lists), for comparison."""
    return json.loads(json.dumps(recipe, sort_keys=True))


def _provenance(found: PretrainSpec | None) -> dict:
    """Where and from what a model is being trained: hardware, versions, data files."""
    import keras

    from course_lib import data
    from course_lib.environment import hardware

    info = {"hardware": hardware(), "keras": keras.__version__,
            "backend": keras.backend.backend(), "python": sys.version.split()[0]}
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["onednn"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")
    info["data"] = {name: data.provenance(name) for name in (found.data if found else ())}
    return info


def save(name: str, model, recipe: dict, results: dict, fast: bool | None = None,
         seconds: float | None = None) -> Path:
    """Store ``model``'s weights and their metadata in the cache; returns the folder.

    An existing folder for the same name and variant is moved aside first (never deleted).
    The weights are written before ``meta.json``, each atomically, so an interrupted save leaves
    no meta.json that vouches for a half-written file. The metadata records the recipe, the
    results, the training seconds, the hardware, the versions and the data files (sha256).
    """
    folder = model_dir(name, fast)
    if folder.exists():
        _move_aside(folder)
    folder.mkdir(parents=True)
    weights = folder / WEIGHTS_FILE
    try:
        found = spec(name)
    except (ValueError, TypeError, ImportError):
        found = None
    _save_model_weights(model, weights, found, recipe)
    meta = {
        "format": FORMAT_VERSION,
        "name": name,
        "variant": _variant(fast),
        "sha256": sha256_file(weights),
        "recipe": _canonical(recipe),
        "results": _canonical(results),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "training_seconds": None if seconds is None else round(float(seconds), 1),
        **_provenance(found),
    }
    text = json.dumps(meta, indent=2, sort_keys=True).encode()
    atomic_write(folder / META_FILE, lambda f: f.write(text))
    return folder


def _save_model_weights(model, path: Path, found: PretrainSpec | None, recipe: dict) -> None:
    """Write the model's weights only, atomically. Keras also writes a compiled model's
    optimizer state into a ``.weights.h5`` file (Adam's two moments: three times the size);
    a copy of the architecture, never compiled, gets the weights instead."""
    target = model
    if found is not None and getattr(model, "optimizer", None) is not None:
        target = found.build(recipe)
        target.set_weights(model.get_weights())
    tmp = path.with_name(f".tmp-{path.name}")
    target.save_weights(tmp)
    os.replace(tmp, path)


def _verified_meta(name: str, meta_path: Path, weights: Path, where: str, fix: str) -> dict:
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        recorded = meta["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CorruptModelError(
            f"{where} model {name!r}: {meta_path} is missing or unreadable "
            f"({type(error).__name__}); the model cannot be trusted. {fix}"
        ) from None
    if not weights.is_file():
        raise CorruptModelError(f"{where} model {name!r}: {weights} is missing. {fix}")
    actual = sha256_file(weights)
    if actual != recorded:
        raise CorruptModelError(
            f"{where} model {name!r}: {weights} has sha256 {actual}, but its metadata records "
            f"{recorded}: the file is damaged or was changed after training. {fix}"
        )
    return meta


def read_meta(name: str, fast: bool | None = None) -> dict:
    """``meta.json`` of a cached model, checked against its weights file.

    Raises :class:`MissingModelError` when nothing is cached, :class:`CorruptModelError` when
    meta.json is unreadable or the weights' sha256 differs from the recorded one.
    """
    folder = model_dir(name, fast)
    meta_path, weights = folder / META_FILE, folder / WEIGHTS_FILE
    if not meta_path.exists() and not weights.exists():
        raise MissingModelError(f"no cached model {name!r} ({_variant(fast)}) in {folder}")
    fix = (f"Run `course pretrain {name}{_fast_flag(fast)} --force` to get a new one (the old "
           f"folder is kept beside it).")
    meta = _verified_meta(name, meta_path, weights, "cached", fix)
    return {**meta, "source": "cache"}


def read_shipped_meta(name: str) -> dict:
    """``<name>.meta.json`` of the shipped full-mode copy, checked against its weights file.

    Raises :class:`MissingModelError` when the course ships no copy of ``name``,
    :class:`CorruptModelError` when its metadata is unreadable or its sha256 is wrong.
    """
    weights, meta_path = shipped_files(name)
    if not meta_path.exists() and not weights.exists():
        raise MissingModelError(f"the course ships no copy of {name!r} (looked in {SHIPPED_DIR})")
    fix = (f"Reinstall the course (git checkout course_lib/pretrained/) or run `course pretrain "
           f"{name}` to train one into your cache.")
    meta = _verified_meta(name, meta_path, weights, "shipped", fix)
    return {**meta, "source": "shipped"}


def _recipe_differences(cached: dict, wanted: dict, prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(cached) | set(wanted)):
        a, b = cached.get(key, "<absent>"), wanted.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _recipe_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key}: cached {a!r}, wanted {b!r}")
    return diffs


def _build_and_fill(found: PretrainSpec, wanted: dict, meta: dict, weights: Path):
    name = found.name
    diffs = _recipe_differences(meta.get("recipe", {}), wanted)
    if diffs:
        fix = (f"Run `course pretrain {name}{_fast_flag(wanted.get('sample'))} --force` to train "
               "one with the current recipe" + (" (the old folder is kept beside it)."
                                                 if meta["source"] == "cache" else "."))
        raise StaleModelError(f"{meta['source']} model {name!r} was trained with another recipe "
                              f"({'; '.join(diffs[:5])}). {fix}")
    model = found.build(wanted)
    try:
        model.load_weights(weights)
    except Exception as error:  # a checksum-valid file that does not fit this architecture
        raise StaleModelError(
            f"{meta['source']} model {name!r}: its weights do not fit the architecture built "
            f"from the recipe ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''})"
        ) from None
    return model


def load(name: str, fast: bool | None = None, recipe: dict | None = None):
    """``(model, meta)`` of a verified cached model; never trains, never reads the shipped copy.

    ``recipe``: the recipe the caller wants (default: the registered one for this mode); a
    cached model trained with any other recipe raises :class:`StaleModelError`. Also raises
    :class:`MissingModelError` and :class:`CorruptModelError` (see :func:`read_meta`).
    ``meta["source"]`` is "cache".
    """
    found = spec(name)
    wanted = _canonical(found.recipe(_variant(fast) == "fast") if recipe is None else recipe)
    meta = read_meta(name, fast)
    return _build_and_fill(found, wanted, meta, model_dir(name, fast) / WEIGHTS_FILE), meta


def load_shipped(name: str, recipe: dict | None = None):
    """``(model, meta)`` of the verified shipped full-mode copy of ``name``; never trains.

    Raises :class:`MissingModelError`, :class:`CorruptModelError` (see
    :func:`read_shipped_meta`) or :class:`StaleModelError` (trained with another recipe than
    ``recipe``, default the current full recipe). ``meta["source"]`` is "shipped".
    """
    found = spec(name)
    wanted = _canonical(found.recipe(False) if recipe is None else recipe)
    meta = read_shipped_meta(name)
    return _build_and_fill(found, wanted, meta, shipped_files(name)[0]), meta


def describe(meta: dict) -> str:
    """The honest one-line label of a stored model: who trained it, with what, where, how long.

    E.g. "cifar_source (full, shipped with the course): trained by this course with its
    recipe on cifar10 (cifar10_jpeg.tar.gz, sha256 d88b378e…) in 445 s on AMD EPYC (2 CPU
    cores), Keras 3.15.1 (tensorflow); not a downloaded model".
    """
    where = {"shipped": "shipped with the course", "cache": "from your cache"}.get(
        meta.get("source", ""), meta.get("source", "?"))
    files = []
    for dataset, entries in (meta.get("data") or {}).items():
        shown = ", ".join(f"{e['file']}, sha256 {e['sha256'][:8]}…" for e in entries
                          if isinstance(e, dict) and "file" in e and "sha256" in e)
        files.append(f"{dataset} ({shown})" if shown else dataset)
    seconds = meta.get("training_seconds")
    parts = [f"{meta.get('name', '?')} ({meta.get('variant', '?')}, {where}): trained by this "
             "course with its recipe"]
    if files:
        parts.append(f" on {'; '.join(files)}")
    if seconds is not None:
        parts.append(f" in {seconds:.0f} s")
    if meta.get("hardware"):
        parts.append(f" on {meta['hardware']}")
    parts.append(f", Keras {meta.get('keras', '?')} ({meta.get('backend', '?')}); "
                 "not a downloaded model")
    return "".join(parts)


def _shown(value) -> str:
    """A result for the one-line summary: floats (also in lists) to four significant digits,
    long lists by their length."""
    if isinstance(value, list | tuple) and len(value) > 12:
        return f"<{len(value)} items>"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple) and value and all(isinstance(v, float) for v in value):
        return "[" + ", ".join(f"{v:.4g}" for v in value) + "]"
    return str(value)


def train(name: str, fast: bool | None = None, verbose: bool = True):
    """Train model ``name`` with its registered recipe, store it in the cache, and return
    ``(model, meta)``.

    A full-mode model asked for by a process whose TensorFlow runs with oneDNN off is trained
    in a child process with oneDNN on, about twice as fast on a CPU
    (``benchmarks/pretrain_onednn.py``), its progress shown here; then it is loaded from the
    cache like any other.
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
    """``(model, meta)``: the cached model when it is valid, else the shipped copy (full mode)
    when it is valid, else a newly trained one. ``meta["source"]`` says which ("cache",
    "shipped"; a trained model is then in the cache: "cache").

    A corrupt or stale cached model is refused with a message saying why, moved aside (kept,
    not deleted); a corrupt or stale shipped copy is refused and left alone. ``force=True``
    trains anew in any case. Two processes asking for the same model (two notebooks, parallel
    test workers) take turns: the second waits for the first to finish and then loads its model.
    """
    from course_lib.environment import record_run_event

    with _model_lock(name, fast):
        model, meta = _get_or_train(name, fast, force, verbose)
    record_run_event("pretrained", name=name, variant=_variant(fast),
                     source=meta.get("source", "trained"), sha256=meta.get("sha256", ""))
    return model, meta


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
                print(f"refused the cached model: {error}\nkept it as {kept.name}.")
        else:
            if verbose:
                print(f"loaded {describe(meta)} (sha256 {meta['sha256'][:12]}… verified)")
            return model, meta
        if _variant(fast) == "full":
            try:
                model, meta = load_shipped(name)
            except MissingModelError:
                pass
            except PretrainedModelError as error:
                if verbose:
                    print(f"refused the shipped model: {error}")
            else:
                if verbose:
                    print(f"loaded {describe(meta)} (sha256 {meta['sha256'][:12]}… verified)")
                return model, meta
        if verbose:
            print(f"no usable {name!r} ({_variant(fast)}) in the cache"
                  + (" or shipped with the course" if _variant(fast) == "full" else "")
                  + "; training it now.")
    return train(name, fast, verbose)


def status(name: str, fast: bool | None = None) -> str:
    """Where ``get_or_train`` would take the model from: "cached", "shipped" (full variant),
    "missing" (it would train), or why a copy is refused: "corrupt: …" / "stale: …" (the
    cached one), "shipped-corrupt: …" / "shipped-stale: …" (the shipped one)."""
    try:
        load(name, fast)
    except MissingModelError:
        pass
    except CorruptModelError as error:
        return f"corrupt: {str(error)[:80]}"
    except StaleModelError as error:
        return f"stale: {str(error)[:80]}"
    else:
        return "cached"
    if _variant(fast) == "full":
        try:
            load_shipped(name)
        except MissingModelError:
            return "missing"
        except CorruptModelError as error:
            return f"shipped-corrupt: {str(error)[:80]}"
        except StaleModelError as error:
            return f"shipped-stale: {str(error)[:80]}"
        return "shipped"
    return "missing"


def _move_aside(folder: Path) -> Path:
    number = 1
    while (target := folder.with_name(f"{folder.name}.rejected-{number}")).exists():
        number += 1
    shutil.move(str(folder), str(target))
    return target


def ship(name: str, add_provenance: bool = False) -> tuple[Path, Path]:
    """Maintainers: copy the cached full-mode model ``name`` into the package as its shipped
    copy (``tools/ship_pretrained.py``); returns ``(weights, meta)``. The cached copy must be
    valid and trained with the current recipe. ``add_provenance``: a model cached by an older
    version of the course lacks the hardware, versions and data files in its metadata; fill
    them in from this machine (only right when it was trained here, on the data files present
    now) and say so in the metadata (``"provenance_added_when_shipped": true``)."""
    found = spec(name)
    meta = read_meta(name, fast=False)
    if add_provenance:
        added = {k: v for k, v in _provenance(found).items() if k not in meta}
        if added:
            meta = {**meta, **added, "provenance_added_when_shipped": True}
    diffs = _recipe_differences(meta.get("recipe", {}), _canonical(found.recipe(False)))
    if diffs:
        raise StaleModelError(f"cached {name!r} was trained with another recipe: "
                              f"{'; '.join(diffs[:5])}")
    model, _ = load(name, fast=False)
    weights, meta_path = shipped_files(name)
    # Weights only (a copy cached by an older course version may hold optimizer state too).
    fresh = found.build(meta["recipe"])
    fresh.set_weights(model.get_weights())
    _save_model_weights(fresh, weights, None, meta["recipe"])
    meta = {**meta, "sha256": sha256_file(weights)}
    stored = {k: v for k, v in meta.items() if k != "source"}
    meta_path.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return weights, meta_path


def compare_with_shipped(name: str, meta: dict) -> str:
    """A table of a newly trained full model's results against the shipped copy's (for
    ``course pretrain NAME --force``); "" when nothing is shipped."""
    try:
        shipped = read_shipped_meta(name)
    except PretrainedModelError:
        return ""
    rows = [("training seconds", shipped.get("training_seconds"), meta.get("training_seconds")),
            ("hardware", shipped.get("hardware"), meta.get("hardware"))]
    keys = list(dict.fromkeys([*shipped.get("results", {}), *meta.get("results", {})]))
    rows += [(key, shipped.get("results", {}).get(key), meta.get("results", {}).get(key))
             for key in keys]
    width = max(len(r[0]) for r in rows)
    lines = [f"{name}: your new model against the shipped one", f"{'':{width}s}  shipped  |  new"]
    for key, old, new in rows:
        lines.append(f"{key:{width}s}  {_shown(old)}  |  {_shown(new)}")
    return "\n".join(lines)


def run_cli(names: list[str], fast: bool, force: bool, list_only: bool) -> int:
    """``course pretrain``: list models, or get (``--force``: train) the named ones."""
    from course_lib.environment import import_keras

    if names and not list_only:
        # Training: oneDNN's CPU kernels train about twice as fast (measured by
        # benchmarks/pretrain_onednn.py); fast mode and the tests keep them off.
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0" if fast else "1")
    import_keras()  # quietly: TensorFlow's start-up notices would bury the table
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
            print("\nshipped: comes with the course (full mode); cached: in your cache; "
                  "missing: trained when first needed.\n"
                  "get one with: course pretrain NAME [--fast]; reproduce a shipped one from "
                  "scratch: course pretrain NAME --force")
        return 0
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        print(f"error: unknown model(s) {', '.join(unknown)}; known: "
              f"{', '.join(sorted(REGISTRY)) or 'none'}", file=sys.stderr)
        return 2
    for name in names:
        _, meta = get_or_train(name, fast=fast, force=force, verbose=True)
        if force and not fast:
            table = compare_with_shipped(name, meta)
            if table:
                print(table)
    return 0
