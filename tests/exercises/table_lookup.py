"""The table-lookup submission of issue 29: implements nothing, answers every graded function from
a table keyed by a hash of its arguments.

Built from what the student edition gives a student: the check modules (public, with their fixed
seeds) and the reference outputs of those checks (``course_lib/grading/references/``). The table
maps each call a check makes on its fixed inputs to the reference's answer to that call; here it is
recorded by running the public checks in-process, with their fixed seeds, against the reference
solution wrapped by a recorder (equivalent to what a student reconstructs from the shipped
outputs, and complete: every intermediate a check asks for, e.g. a forward pass's cache). Calls
that mutate a model (ex07's freezing functions) record the model's trainable flags after the call,
a Keras model (ex07's fine_tune, keyed by its weights) also its weights and learning rate after the
call, an answer that is one of the arguments (the model trained in place) records which one, and
calls that raise record the exception, so that the table reproduces them too.

The submission embeds the table as JSON (arrays in the grader's own wire format: ``.npy`` bytes in
base64, as the shipped references), looks every call up, and on a miss returns a plausible-shaped
zero answer (the first recorded answer of that function with every number zeroed).
"""

from __future__ import annotations

import ast
import json
import types
from pathlib import Path

import numpy as np

from course_lib.grading import engine, wire

# The runtime shared by the submission (in the child) and the builder (here): the argument hash,
# and the answer from the table. Plain code a student writes; only course_lib's wire module used.
RUNTIME = '''
import hashlib
import json

import numpy as np

from course_lib.grading import wire


def _canon(value, depth=0):
    """A JSON-ready canonical form of an argument (arrays by dtype, shape and content hash)."""
    if depth > 16:
        return "deep"
    if isinstance(value, np.generic):
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        return ["array", array.dtype.str, list(array.shape),
                hashlib.sha256(array.tobytes()).hexdigest()]
    if value is None or isinstance(value, (bool, int, float, str)):
        return [type(value).__name__, repr(value)]
    if isinstance(value, (list, tuple)):
        return ["seq", [_canon(item, depth + 1) for item in value]]
    if isinstance(value, dict):
        return ["dict", sorted([str(key), _canon(item, depth + 1)] for key, item in value.items())]
    if isinstance(value, np.random.Generator):
        return ["generator", _canon(value.bit_generator.state, depth + 1)]
    if hasattr(value, "get_weights"):  # a Keras model (callable too): known by its weights
        return ["keras", type(value).__name__, [_canon(w, depth + 1) for w in value.get_weights()]]
    if callable(value):
        return ["callable"]
    if hasattr(value, "__dict__"):
        return ["object", type(value).__name__, _canon(vars(value), depth + 1)]
    return ["other", type(value).__name__]


def _key(name, args, kwargs):
    text = json.dumps([name, _canon(list(args)), _canon(kwargs)], sort_keys=True)
    return name + ":" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _state(args):
    """The trainable flags of every model among the arguments (what a freezing call changes);
    for a Keras model also its weights and its optimizer's learning rate (what training
    changes)."""
    state = []
    for arg in (arg for arg in args if hasattr(arg, "layers")):
        entry = [bool(arg.trainable), [bool(layer.trainable) for layer in arg.layers]]
        if hasattr(arg, "get_weights"):
            rate = getattr(getattr(arg, "optimizer", None), "learning_rate", None)
            entry += [wire.encode(arg.get_weights()),
                      None if rate is None else float(np.asarray(rate))]
        state.append(entry)
    return state


def _set_state(args, state):
    models = [arg for arg in args if hasattr(arg, "layers")]
    for model, entry in zip(models, state):
        model.trainable = entry[0]
        for layer, layer_flag in zip(model.layers, entry[1]):
            layer.trainable = layer_flag
        if len(entry) > 2:
            model.set_weights(wire.decode(entry[2]))
            if entry[3] is not None:
                import keras

                model.compile(optimizer=keras.optimizers.Adam(entry[3]),
                              loss="sparse_categorical_crossentropy")


_ERRORS = {"ValueError": ValueError, "TypeError": TypeError, "KeyError": KeyError}


def _answer(name, args, kwargs):
    entry = _TABLE.get(_key(name, args, kwargs))
    if entry is None:
        template = _TEMPLATES.get(name)
        return None if template is None else wire.decode(template)
    _set_state(args, entry["state"])
    if "raise" in entry:
        raise _ERRORS.get(entry["raise"], RuntimeError)("from the table")
    if "argument" in entry:
        return args[entry["argument"]]
    return wire.decode(entry["value"])
'''


def public_names(stub_source: str) -> list[str]:
    """The graded names of an exercise stub: its public top-level functions and classes."""
    tree = ast.parse(stub_source)
    return [node.name for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_")]


def _zeroed(tree):
    """A wire tree with every number zeroed (arrays keep dtype and shape)."""
    if isinstance(tree, dict) and set(tree) == {wire.ARRAY_KEY}:
        return wire.encode(np.zeros_like(wire.decode(tree)))
    if isinstance(tree, dict):
        return {key: _zeroed(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_zeroed(value) for value in tree]
    if isinstance(tree, bool):
        return False
    if isinstance(tree, int | float):
        return type(tree)(0)
    return tree


def build_table(grader: engine.Grader, exercise: engine.Exercise, solution_source: str,
                stub_source: str) -> tuple[dict, dict]:
    """(table, templates): every call the public checks make on their fixed inputs, keyed by
    ``name:hash(arguments)``, with the reference's answer; and per function a zeroed answer."""
    runtime: dict = {}
    exec(compile(RUNTIME, "<runtime>", "exec"), runtime)
    solution = types.ModuleType(f"{exercise.name}_reference")
    exec(compile(solution_source, exercise.name, "exec"), solution.__dict__)
    table: dict = {}
    templates: dict = {}
    recorder = types.ModuleType(exercise.name)

    def wrap(name, function):
        def recorded(*args, **kwargs):
            key = runtime["_key"](name, args, kwargs)  # before the call: it may mutate them
            try:
                value = function(*args, **kwargs)
            except Exception as error:
                table[key] = {"raise": type(error).__name__, "state": runtime["_state"](args)}
                raise
            state = runtime["_state"](args)
            same = [i for i, arg in enumerate(args) if arg is value and hasattr(arg, "layers")]
            if same:  # the model it was given, changed in place (no template: a miss is None)
                table[key] = {"argument": same[0], "state": state}
                return value
            encoded = wire.encode(value)
            table[key] = {"value": encoded, "state": state}
            templates.setdefault(name, _zeroed(encoded))
            return value
        return recorded

    for name in public_names(stub_source):
        setattr(recorder, name, wrap(name, getattr(solution, name)))
    for item in grader.checks(exercise):
        if item.source == 0:  # the public checks only, on their fixed inputs
            item.check.func(recorder, np.random.default_rng(item.seed))
    return table, templates


def submission_source(names: list[str], table: dict, templates: dict) -> str:
    """The submission: the runtime, the table as a JSON string, one function per graded name."""
    blob = json.dumps({"table": table, "templates": templates}, separators=(",", ":"))
    functions = "".join(f"\n\ndef {name}(*args, **kwargs):\n"
                        f"    return _answer({name!r}, args, kwargs)\n" for name in names)
    return ('"""Every answer looked up in a table of the public checks\' inputs."""\n'
            + RUNTIME + f"\n_DATA = json.loads({blob!r})\n"
            + '_TABLE, _TEMPLATES = _DATA["table"], _DATA["templates"]\n' + functions)


def table_lookup_submission(grader: engine.Grader, exercise: engine.Exercise,
                            root: Path) -> str:
    """The table-lookup submission of ``exercise`` (``grader`` gives the fixed-seed checks)."""
    stub = (root / "exercises" / f"{exercise.name}.py").read_text()
    solution = (root / "solutions" / f"{exercise.name}.py").read_text()
    table, templates = build_table(grader, exercise, solution, stub)
    return submission_source(public_names(stub), table, templates)
