"""Exercise 04 (convolution and max pooling, forward and backward) through the real grader: see
exercise_helpers. Also: a plain loop solution (an explicit loop over every index, the way a
student writes it first) gets full marks well within the grader's time limit."""

import time

import pytest
from exercise_helpers import (
    ALWAYS_EQUAL,
    assert_full_marks,
    assert_full_marks_on_fresh_inputs,
    assert_not_fooled,
    assert_stub_scores_zero,
    grade_source,
    reference_source,
)

NAME = "ex04_convolutional_networks"

# (code appended to the reference solution, the check that must now fail)
FOOLS = [
    (ALWAYS_EQUAL + "def conv2d_forward(x, kernel, bias, stride=1, padding='valid'):\n"
                    "    return AlwaysEqual()\n",
     "conv_forward_valid"),
    ("_backward = conv2d_backward\n\n"
     "def conv2d_backward(x, kernel, grad_out, stride=1, padding='valid'):\n"
     "    dx, dk, db = _backward(x, kernel, grad_out, stride, padding)\n"
     "    return dx, dk, db[None, None, None, :]\n",
     "conv_backward_valid"),
    ("def conv2d_forward(x, kernel, bias, stride=1, padding='valid'):\n    return x\n",
     "conv_forward_strided_same"),
    ("def maxpool_backward(x, grad_out, pool=2, stride=None):\n    return x\n",
     "maxpool_backward_routes"),
    ("_forward = conv2d_forward\n\n"  # ignores the bias
     "def conv2d_forward(x, kernel, bias, stride=1, padding='valid'):\n"
     "    return _forward(x, kernel, 0 * bias, stride, padding)\n",
     "conv_forward_valid"),
    ("def output_size(size, kernel, stride=1, padding='valid'):\n"  # "same" forgotten
     "    return (size - kernel) // stride + 1\n",
     "output_size_values"),
    ("_pool_backward = maxpool_backward\n\n"  # ties split evenly instead of the first maximum
     "def maxpool_backward(x, grad_out, pool=2, stride=None):\n"
     "    out = maxpool_forward(x, pool, stride)\n"
     "    up = np.repeat(np.repeat(out, pool, 1), pool, 2)\n"
     "    g = np.repeat(np.repeat(grad_out, pool, 1), pool, 2)\n"
     "    mask = x == up\n"
     "    count = np.repeat(np.repeat(mask.reshape(x.shape[0], x.shape[1] // pool, pool,\n"
     "        x.shape[2] // pool, pool, x.shape[3]).sum(axis=(2, 4)), pool, 1), pool, 2)\n"
     "    return np.where(mask, g / count, 0.0)\n",
     "maxpool_backward_ties"),
]

# A first solution as students write it: every index in an explicit Python loop.
LOOP_SOLUTION = '''
import math

import numpy as np


def padding_amounts(size, kernel, stride, padding):
    if padding == "valid":
        return 0, 0
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def output_size(size, kernel, stride=1, padding="valid"):
    if padding == "same":
        return math.ceil(size / stride)
    return (size - kernel) // stride + 1


def pad(x, kh, kw, stride, padding):
    top, bottom = padding_amounts(x.shape[1], kh, stride, padding)
    left, right = padding_amounts(x.shape[2], kw, stride, padding)
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0))), top, left


def conv2d_forward(x, kernel, bias, stride=1, padding="valid"):
    kh, kw, cin, filters = kernel.shape
    xp, _, _ = pad(x, kh, kw, stride, padding)
    oh = output_size(x.shape[1], kh, stride, padding)
    ow = output_size(x.shape[2], kw, stride, padding)
    out = np.zeros((x.shape[0], oh, ow, filters))
    for n in range(x.shape[0]):
        for i in range(oh):
            for j in range(ow):
                for f in range(filters):
                    total = bias[f]
                    for u in range(kh):
                        for v in range(kw):
                            for c in range(cin):
                                total += kernel[u, v, c, f] * xp[n, i * stride + u, j * stride + v, c]
                    out[n, i, j, f] = total
    return out


def conv2d_backward(x, kernel, grad_out, stride=1, padding="valid"):
    kh, kw, cin, filters = kernel.shape
    xp, top, left = pad(x, kh, kw, stride, padding)
    dxp = np.zeros(xp.shape)
    dkernel = np.zeros(kernel.shape)
    dbias = np.zeros(filters)
    for n in range(grad_out.shape[0]):
        for i in range(grad_out.shape[1]):
            for j in range(grad_out.shape[2]):
                for f in range(filters):
                    g = grad_out[n, i, j, f]
                    dbias[f] += g
                    for u in range(kh):
                        for v in range(kw):
                            for c in range(cin):
                                dkernel[u, v, c, f] += g * xp[n, i * stride + u, j * stride + v, c]
                                dxp[n, i * stride + u, j * stride + v, c] += g * kernel[u, v, c, f]
    return dxp[:, top:top + x.shape[1], left:left + x.shape[2], :], dkernel, dbias


def maxpool_forward(x, pool=2, stride=None):
    stride = pool if stride is None else stride
    oh, ow = output_size(x.shape[1], pool, stride), output_size(x.shape[2], pool, stride)
    out = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    for n in range(x.shape[0]):
        for i in range(oh):
            for j in range(ow):
                for c in range(x.shape[3]):
                    out[n, i, j, c] = x[n, i * stride:i * stride + pool,
                                        j * stride:j * stride + pool, c].max()
    return out


def maxpool_backward(x, grad_out, pool=2, stride=None):
    stride = pool if stride is None else stride
    dx = np.zeros(x.shape)
    for n in range(grad_out.shape[0]):
        for i in range(grad_out.shape[1]):
            for j in range(grad_out.shape[2]):
                for c in range(x.shape[3]):
                    best, where = -np.inf, None
                    for u in range(pool):
                        for v in range(pool):
                            value = x[n, i * stride + u, j * stride + v, c]
                            if value > best:
                                best, where = value, (i * stride + u, j * stride + v)
                    dx[n, where[0], where[1], c] += grad_out[n, i, j, c]
    return dx
'''


def test_reference_solution_scores_full_marks(grader):
    assert_full_marks(grader, NAME)


def test_reference_scores_full_marks_on_fresh_inputs(fresh_graders):
    """Instructor grading: fresh inputs of several run seeds, the reference still 100 %."""
    assert_full_marks_on_fresh_inputs(fresh_graders, NAME)


def test_untouched_stub_scores_zero(grader):
    assert_stub_scores_zero(grader, NAME)


@pytest.mark.parametrize(("patch", "check_name"), FOOLS, ids=[name for _, name in FOOLS])
def test_check_is_not_fooled(grader, patch, check_name):
    assert_not_fooled(grader, NAME, patch, check_name)


def test_plain_loop_solution_gets_full_marks_quickly(grader):
    grade_source(grader, NAME, reference_source(NAME))  # reference outputs cached first
    start = time.perf_counter()
    result = grade_source(grader, NAME, LOOP_SOLUTION)
    seconds = time.perf_counter() - start
    assert {c.name: c.reason for c in result.checks if not c.passed} == {}
    assert result.score == result.total
    assert seconds < 20, f"grading the loop solution took {seconds:.1f}s"
