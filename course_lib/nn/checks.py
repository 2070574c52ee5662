"""Argument validation: bad input raises ``ValueError`` naming the argument and its shape.

These helpers run once per call of a public function, so they stay cheap (shape and dtype
tests; the finiteness test is one vectorised pass).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def as_float_array(name: str, x, *, ndim: int | Sequence[int] | None = None,
                   finite: bool = True) -> np.ndarray:
    """Return ``x`` as a floating-point array; raise ``ValueError`` if it is unusable.

    ``ndim``: the allowed rank(s). Integer, boolean or object arrays are rejected (no silent cast),
    and so are NaN/inf values when ``finite`` is true.
    """
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(
            f"`{name}` must be a floating-point array, got dtype {arr.dtype} with shape {arr.shape}"
        )
    check_ndim(name, arr, ndim)
    # A finite sum proves every entry finite (NaN/inf propagate); only when the sum is not
    # finite (NaN/inf, or a mere overflow) run the exact, slower test.
    if finite and not np.isfinite(arr.sum()) and not np.isfinite(arr).all():
        raise ValueError(f"`{name}` (shape {arr.shape}) contains NaN or inf values")
    return arr


def check_ndim(name: str, arr: np.ndarray, ndim: int | Sequence[int] | None) -> None:
    """Raise ``ValueError`` unless ``arr.ndim`` is ``ndim`` (or one of them)."""
    if ndim is None:
        return
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if arr.ndim not in allowed:
        wanted = " or ".join(str(n) for n in allowed)
        raise ValueError(f"`{name}` must have rank {wanted}, got shape {arr.shape}")


def check_same_shape(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same shape, got {a.shape} and {b.shape}"
        )


def check_same_length(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same first dimension."""
    if a.ndim == 0 or b.ndim == 0 or a.shape[0] != b.shape[0]:
        raise ValueError(
            f"`{name_a}` and `{name_b}` must have the same number of samples, "
            f"got shapes {a.shape} and {b.shape}"
        )


def as_index_array(name: str, x, *, upper: int | None = None,
                   ndim: int | Sequence[int] | None = None) -> np.ndarray:
    """Return ``x`` as an integer array with values in ``[0, upper)``.

    Float arrays holding whole numbers (e.g. labels stored as float32) are accepted.
    """
    arr = np.asarray(x)
    check_ndim(name, arr, ndim)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or not (arr == np.round(arr)).all():
            raise ValueError(
                f"`{name}` must hold whole-number indices, got non-integer values "
                f"(dtype {arr.dtype}, shape {arr.shape})"
            )
        arr = arr.astype(np.int64)
    elif not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"`{name}` must be an integer array, got dtype {arr.dtype} with shape {arr.shape}"
        )
    if arr.size and (arr.min() < 0 or (upper is not None and arr.max() >= upper)):
        bound = f"[0, {upper})" if upper is not None else ">= 0"
        raise ValueError(
            f"`{name}` (shape {arr.shape}) has values out of range {bound}: "
            f"min {arr.min()}, max {arr.max()}"
        )
    return arr


def check_positive_int(name: str, value) -> int:
    """Return ``value`` if it is a positive integer, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    return int(value)


def check_choice(name: str, value, choices: Sequence) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}, got {value!r}")
