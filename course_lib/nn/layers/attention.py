"""Scaled dot-product attention and multi-head self-attention (chapter 09, the encoder of BERT).

    scores = Q K^T / sqrt(d_k)          Q: (..., T, d_k), K: (..., S, d_k) -> (..., T, S)
    weights = softmax(scores) over S    masked pairs (mask False) get weight 0
    out = weights V                     V: (..., S, d_v) -> (..., T, d_v)

``MultiHeadAttention`` is the self-attention of ``keras.layers.MultiHeadAttention`` called as
``mha(x, x, attention_mask=mask)``, in Keras's weight layout (so weights copy both ways):
per head h, Q_h = x Wq[:, h] + bq[h], the same for K and V, and the heads' outputs are mixed
by the output kernel.
"""

from __future__ import annotations

import numpy as np

from course_lib.nn import activations, checks
from course_lib.nn.layers.base import Layer, glorot_uniform

# Masked scores are replaced by this before the softmax (Keras adds -1e9): exp() of it is 0.
MASKED_SCORE = -1e9


def _check_mask(mask, batch_shape: tuple, t: int, s: int) -> np.ndarray:
    """``mask`` as a bool array broadcastable to ``(*batch_shape, t, s)``; ValueError otherwise."""
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        if not (np.issubdtype(mask.dtype, np.integer) and np.isin(mask, (0, 1)).all()):
            raise ValueError(
                f"`mask` must be boolean (True = may attend) or 0/1 integers, got dtype "
                f"{mask.dtype} with shape {mask.shape}"
            )
        mask = mask.astype(bool)
    wanted = (*batch_shape, t, s)
    ok = mask.ndim == len(wanted) and all(m in (1, w) for m, w in zip(mask.shape, wanted,
                                                                        strict=True))
    if not ok or mask.shape[-1] != s:
        raise ValueError(
            f"`mask` must have shape {wanted} (or 1 in the batch or query axes), got {mask.shape}"
        )
    return mask


def scaled_dot_product_attention(q, k, v, mask=None) -> tuple[np.ndarray, np.ndarray]:
    """``(out, weights)`` of softmax(q k^T / sqrt(d_k)) v.

    q: (..., T, d_k) queries; k: (..., S, d_k) keys; v: (..., S, d_v) values (the same leading
    axes). mask: None or bool (..., T, S) (1 allowed in leading and T axes): False means the
    query may not look at that key; its weight is 0. A query row with every key masked gets
    uniform weights (as in Keras). Returns out (..., T, d_v) and weights (..., T, S).
    """
    q = checks.as_float_array("q", q)
    k = checks.as_float_array("k", k)
    v = checks.as_float_array("v", v)
    if q.ndim < 2 or k.ndim != q.ndim or v.ndim != q.ndim:
        raise ValueError(
            f"`q`, `k`, `v` must have the same rank >= 2, got shapes {q.shape}, {k.shape}, {v.shape}"
        )
    if q.shape[-1] != k.shape[-1] or k.shape[:-1] != v.shape[:-1] or q.shape[:-2] != k.shape[:-2]:
        raise ValueError(
            "`q` (..., T, d_k), `k` (..., S, d_k) and `v` (..., S, d_v) do not fit: got shapes "
            f"{q.shape}, {k.shape}, {v.shape}"
        )
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        mask = _check_mask(mask, q.shape[:-2], q.shape[-2], k.shape[-2])
        scores = np.where(mask, scores, MASKED_SCORE)
    weights = activations.softmax(scores, axis=-1)
    return weights @ v, weights


class MultiHeadAttention(Layer):
    """Multi-head self-attention, as ``keras.layers.MultiHeadAttention(num_heads, key_dim)``
    called with ``(x, x, attention_mask=mask)`` (no attention dropout).

    x: (batch, steps, features) -> (batch, steps, output_dim or features).
    attention_mask: None or bool (batch, steps, steps) / (batch, 1, steps) (True = may attend).
    Weights (Keras order): query kernel (features, heads, key_dim), query bias (heads, key_dim),
    key kernel and bias (same shapes), value kernel (features, heads, value_dim), value bias
    (heads, value_dim), output kernel (heads, value_dim, output_dim), output bias (output_dim,).
    ``last_weights``: the attention weights (batch, heads, steps, steps) of the last forward.
    """

    input_ndim = 3
    variable_steps = True
    weight_names = ("query_kernel", "query_bias", "key_kernel", "key_bias",
                    "value_kernel", "value_bias", "output_kernel", "output_bias")

    def __init__(self, num_heads: int, key_dim: int, value_dim: int | None = None,
                 output_dim: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = checks.check_positive_int("num_heads", num_heads)
        self.key_dim = checks.check_positive_int("key_dim", key_dim)
        self.value_dim = checks.check_positive_int(
            "value_dim", key_dim if value_dim is None else value_dim)
        self.output_dim = None if output_dim is None else checks.check_positive_int(
            "output_dim", output_dim)
        self.last_weights: np.ndarray | None = None

    def build(self, input_shape):
        super().build(input_shape)
        d, h = input_shape[-1], self.num_heads
        out = self.output_dim or d
        shapes = {"query": self.key_dim, "key": self.key_dim, "value": self.value_dim}
        for name, width in shapes.items():
            self.params[f"{name}_kernel"] = glorot_uniform(self.rng, (d, h, width), d, h * width,
                                                           self.dtype)
            self.params[f"{name}_bias"] = np.zeros((h, width), self.dtype)
        self.params["output_kernel"] = glorot_uniform(
            self.rng, (h, self.value_dim, out), h * self.value_dim, out, self.dtype)
        self.params["output_bias"] = np.zeros(out, self.dtype)

    def output_shape(self, input_shape):
        return (*input_shape[:-1], self.output_dim or input_shape[-1])

    def forward(self, x, training: bool = False, attention_mask=None) -> np.ndarray:
        """Self-attention of ``x`` (batch, steps, features); see the class docstring."""
        x = self._check_input(x)
        self.ensure_built(x.shape[1:])
        self.check_input_shape(x.shape)
        self._mask = None if attention_mask is None else _check_mask(
            attention_mask, (x.shape[0],), x.shape[1], x.shape[1])[:, None]  # a heads axis
        out = self._forward(x, training)
        self._out_shape = out.shape
        return out

    __call__ = forward

    def _forward(self, x, training):
        p = self.params
        q = np.einsum("btd,dhk->bthk", x, p["query_kernel"]) + p["query_bias"]
        k = np.einsum("bsd,dhk->bshk", x, p["key_kernel"]) + p["key_bias"]
        v = np.einsum("bsd,dhv->bshv", x, p["value_kernel"]) + p["value_bias"]
        q_scaled = q / np.sqrt(self.key_dim)
        scores = np.einsum("bthk,bshk->bhts", q_scaled, k)
        mask = getattr(self, "_mask", None)
        if mask is not None:
            scores = np.where(mask, scores, MASKED_SCORE)
        weights = activations.softmax(scores, axis=-1)
        heads = np.einsum("bhts,bshv->bthv", weights, v)
        self._cache = (x, q_scaled, k, v, weights, heads)
        self.last_weights = weights
        return np.einsum("bthv,hvo->bto", heads, p["output_kernel"]) + p["output_bias"]

    def _backward(self, grad_out):
        p, g = self.params, self.grads
        x, q_scaled, k, v, weights, heads = self._cache
        g["output_kernel"][...] = np.einsum("bthv,bto->hvo", heads, grad_out)
        g["output_bias"][...] = grad_out.sum(axis=(0, 1))
        d_heads = np.einsum("bto,hvo->bthv", grad_out, p["output_kernel"])
        d_weights = np.einsum("bthv,bshv->bhts", d_heads, v)
        d_v = np.einsum("bhts,bthv->bshv", weights, d_heads)
        d_scores = activations.softmax_backward(weights, d_weights)  # 0 where masked
        d_q = np.einsum("bhts,bshk->bthk", d_scores, k) / np.sqrt(self.key_dim)
        d_k = np.einsum("bhts,bthk->bshk", d_scores, q_scaled)
        d_x = np.zeros_like(x)
        for name, d in (("query", d_q), ("key", d_k), ("value", d_v)):
            g[f"{name}_kernel"][...] = np.einsum("btd,bthk->dhk", x, d)
            g[f"{name}_bias"][...] = d.sum(axis=(0, 1))
            d_x += np.einsum("bthk,dhk->btd", d, p[f"{name}_kernel"])
        return d_x if self.compute_input_grad else None
