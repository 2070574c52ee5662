"""The safe wire format between the sandboxed child and the grader.

Values are JSON; NumPy arrays travel as ``{"__ndarray__": base64 of .npy}`` and are loaded with
``allow_pickle=False``. Only plain data passes: bool, int, float, str, None, lists, dicts with
string keys and numeric or boolean arrays. Anything else (objects with a clever ``__eq__``,
array subclasses, object arrays) is refused when encoding, and again when decoding.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np

ARRAY_KEY = "__ndarray__"
NUMERIC_KINDS = "biufc"
MAX_DEPTH = 32


class WireError(ValueError):
    """A value that is not plain data, or a message that does not follow the schema."""


def encode(value: Any, depth: int = 0) -> Any:
    """Plain data -> a JSON-ready tree (the child calls this on a check's returned dict)."""
    if depth > MAX_DEPTH:
        raise WireError("value is nested too deeply")
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind in (list, tuple):
        return [encode(item, depth + 1) for item in value]
    if kind is dict:
        if not all(type(key) is str for key in value):
            raise WireError("dict keys must be str")
        return {key: encode(item, depth + 1) for key, item in value.items()}
    if kind is np.ndarray or isinstance(value, np.generic) and kind.__module__ == "numpy":
        array = np.asarray(value)
        if array.dtype.kind not in NUMERIC_KINDS:
            raise WireError(f"array dtype {array.dtype} is not numeric")
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return {ARRAY_KEY: base64.b64encode(buffer.getvalue()).decode("ascii")}
    raise WireError(f"returned a {kind.__module__}.{kind.__qualname__}, not plain data")


def decode(tree: Any, depth: int = 0) -> Any:
    """A JSON-parsed tree -> plain Python/NumPy values, validating every node."""
    if depth > MAX_DEPTH:
        raise WireError("value is nested too deeply")
    kind = type(tree)
    if tree is None or kind in (bool, int, float, str):
        return tree
    if kind is list:
        return [decode(item, depth + 1) for item in tree]
    if kind is dict:
        if set(tree) == {ARRAY_KEY} and type(tree[ARRAY_KEY]) is str:
            return _load_array(tree[ARRAY_KEY])
        return {key: decode(item, depth + 1) for key, item in tree.items()}
    raise WireError(f"unexpected {kind.__name__} in message")


def _load_array(text: str) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(base64.b64decode(text, validate=True)), allow_pickle=False)
    except Exception as error:  # any corrupt payload is a schema error
        raise WireError(f"corrupt array: {error}") from None
    if type(array) is not np.ndarray or array.dtype.kind not in NUMERIC_KINDS:
        raise WireError("array is not numeric")
    return array


def dumps(record: dict) -> bytes:
    """One record as a JSON line (NaN and infinities allowed; they are judged later)."""
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def loads(line: bytes) -> dict:
    """One JSON line -> a dict record; raises WireError when it is not one."""
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise WireError(f"not a JSON line: {error}") from None
    if type(record) is not dict or type(record.get("type")) is not str:
        raise WireError("record is not an object with a 'type'")
    return record
