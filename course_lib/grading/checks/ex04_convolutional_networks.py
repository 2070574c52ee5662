"""Checks for exercises/ex04_convolutional_networks.py: convolution and max pooling, forward and
backward, and the output-size formula.

The arrays are small (a naive loop over every index still takes well under a second per check),
of shapes the exercise never mentions: non-square images and kernels, strides 1 to 3, sizes that
leave pixels over, "same" padding with an odd total, one check with shapes drawn at random.
Every value, and the output-size cases, are drawn from the check's ``rng``.
"""

import numpy as np

from course_lib.grading.spec import check


def _size_cases(rng: np.random.Generator) -> list[tuple[int, int, int, str]]:
    """Ten (size, kernel, stride, padding) cases, five "valid" and five "same": kernel 1-7,
    size from the kernel to 40, stride 1-3; always among them the edge cases a formula gets
    wrong most often: a "valid" kernel as large as the image, a "same" image smaller than
    the stride."""
    cases = []
    for padding in ("valid", "same") * 5:
        kernel = int(rng.integers(1, 8))
        cases.append((int(rng.integers(kernel, 41)), kernel, int(rng.integers(1, 4)), padding))
    kernel = int(rng.integers(1, 8))
    cases[0] = (kernel, kernel, int(rng.integers(1, 4)), "valid")
    size = int(rng.integers(1, 3))
    cases[1] = (size, int(rng.integers(1, size + 1)), 3, "same")
    return cases


def _conv_case(rng, batch, h, w, cin, kh, kw, filters):
    return (rng.standard_normal((batch, h, w, cin)), rng.standard_normal((kh, kw, cin, filters)),
            rng.standard_normal(filters))


@check(points=1)
def output_size_values(module, rng):
    """output_size(size, kernel, stride, padding) for ten cases drawn at random (kernel 1-7, size
    from the kernel to 40, stride 1-3, five "valid" and five "same"), e.g. (7, 3, 2, "valid") -> 3
    and (8, 3, 2, "same") -> 4: "valid" floor((size - kernel) / stride) + 1, "same"
    ceil(size / stride)."""
    return {"sizes": np.asarray([module.output_size(*case) for case in _size_cases(rng)])}


@check(points=2)
def conv_forward_valid(module, rng):
    """conv2d_forward(x, kernel, bias) with stride 1, "valid": x (2, 6, 7, 3), kernel (3, 3, 3, 4)
    -> (2, 4, 5, 4); and a 1 x 1 kernel on (1, 4, 3, 2)."""
    x, kernel, bias = _conv_case(rng, 2, 6, 7, 3, 3, 3, 4)
    x1, kernel1, bias1 = _conv_case(rng, 1, 4, 3, 2, 1, 1, 3)
    return {"out": module.conv2d_forward(x, kernel, bias, 1, "valid"),
            "out_1x1": module.conv2d_forward(x1, kernel1, bias1, 1, "valid")}


@check(points=2)
def conv_forward_strided_same(module, rng):
    """conv2d_forward with strides and "same" padding: stride 2 "same" on (2, 7, 8, 2) with a 3 x 2
    kernel -> (2, 4, 4, 3); stride 1 "same" (output shaped like the input); stride 3 "valid"
    with pixels left over (8 x 9 -> 2 x 3)."""
    x, kernel, bias = _conv_case(rng, 2, 7, 8, 2, 3, 2, 3)
    xs, kernel_s, bias_s = _conv_case(rng, 1, 5, 5, 3, 3, 3, 3)
    x3, kernel3, bias3 = _conv_case(rng, 1, 8, 9, 2, 3, 3, 2)
    return {"stride2_same": module.conv2d_forward(x, kernel, bias, 2, "same"),
            "stride1_same": module.conv2d_forward(xs, kernel_s, bias_s, 1, "same"),
            "stride3_valid": module.conv2d_forward(x3, kernel3, bias3, 3, "valid")}


def _reference_size(size, kernel, stride, padding):
    """The output size by the reference formula, so that the other checks do not depend on the
    student's output_size."""
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1


def _backward(module, rng, shape, stride, padding):
    x, kernel, _ = _conv_case(rng, *shape)
    oh = _reference_size(x.shape[1], kernel.shape[0], stride, padding)
    ow = _reference_size(x.shape[2], kernel.shape[1], stride, padding)
    grad_out = rng.standard_normal((x.shape[0], oh, ow, kernel.shape[3]))
    dx, dkernel, dbias = module.conv2d_backward(x, kernel, grad_out, stride, padding)
    return {"dx": dx, "dkernel": dkernel, "dbias": dbias}


@check(points=3)
def conv_backward_valid(module, rng):
    """conv2d_backward(x, kernel, grad_out) with stride 1, "valid", x (2, 6, 5, 3), kernel
    (3, 2, 3, 4): dx (2, 6, 5, 3), dkernel (3, 2, 3, 4), dbias (4,)."""
    return _backward(module, rng, (2, 6, 5, 3, 3, 2, 4), 1, "valid")


@check(points=3)
def conv_backward_strided_same(module, rng):
    """conv2d_backward with stride 2 "same" (x (2, 7, 6, 2), kernel 3 x 3, odd total padding) and
    stride 1 "same" (x (1, 5, 6, 3), kernel 2 x 3): dx, dkernel, dbias of each."""
    return {"stride2": _backward(module, rng, (2, 7, 6, 2, 3, 3, 3), 2, "same"),
            "stride1": _backward(module, rng, (1, 5, 6, 3, 2, 3, 2), 1, "same")}


@check(points=1)
def maxpool_forward_values(module, rng):
    """maxpool_forward(x, pool, stride): pool 2 on (2, 7, 5, 3) -> (2, 3, 2, 3) (the last row and
    column are left over); overlapping pool 3, stride 2 on (1, 7, 8, 2) -> (1, 3, 3, 2)."""
    return {"pool2": module.maxpool_forward(rng.standard_normal((2, 7, 5, 3)), 2),
            "pool3_stride2": module.maxpool_forward(rng.standard_normal((1, 7, 8, 2)), 3, 2)}


@check(points=2)
def maxpool_backward_routes(module, rng):
    """maxpool_backward(x, grad_out, pool, stride) sends each window's gradient to its maximum:
    pool 2 on (2, 7, 5, 3) (left-over pixels get 0) and overlapping pool 3, stride 2 on
    (1, 7, 8, 2) (gradients of overlapping windows add up); shapes of x."""
    x2, x3 = rng.standard_normal((2, 7, 5, 3)), rng.standard_normal((1, 7, 8, 2))
    return {"pool2": module.maxpool_backward(x2, rng.standard_normal((2, 3, 2, 3)), 2),
            "pool3_stride2": module.maxpool_backward(x3, rng.standard_normal((1, 3, 3, 2)), 3, 2)}


@check(points=1)
def maxpool_backward_ties(module, rng):
    """maxpool_backward on 0/1 images (many tied maxima) sends the gradient to the first maximum
    of each window in row-major order, as Keras: pool 2 on (2, 6, 6, 2)."""
    x = rng.integers(0, 2, (2, 6, 6, 2)).astype(np.float64)
    return {"dx": module.maxpool_backward(x, rng.standard_normal((2, 3, 3, 2)), 2)}


@check(points=2)
def random_shapes(module, rng):
    """Forward and backward of both operations on three cases with shapes drawn at random
    (batch 1-3, height and width 5-9, channels 1-3, kernels 1-4 by 1-4, strides 1-3, "valid" or
    "same"; pools 2-3)."""
    cases = []
    for _ in range(3):
        batch, h, w, cin = (int(v) for v in rng.integers([1, 5, 5, 1], [4, 10, 10, 4]))
        kh, kw, filters, stride = (int(v) for v in rng.integers([1, 1, 1, 1], [5, 5, 5, 4]))
        padding = ("valid", "same")[int(rng.integers(2))]
        x, kernel, bias = _conv_case(rng, batch, h, w, cin, kh, kw, filters)
        out = module.conv2d_forward(x, kernel, bias, stride, padding)
        grad_out = rng.standard_normal((batch, _reference_size(h, kh, stride, padding),
                                        _reference_size(w, kw, stride, padding), filters))
        dx, dkernel, dbias = module.conv2d_backward(x, kernel, grad_out, stride, padding)
        pool = int(rng.integers(2, 4))
        pool_stride = int(rng.integers(1, pool + 1))
        pooled = module.maxpool_forward(x, pool, pool_stride)
        grad_pool = rng.standard_normal((batch, _reference_size(h, pool, pool_stride, "valid"),
                                         _reference_size(w, pool, pool_stride, "valid"), cin))
        cases.append({"out": out, "dx": dx, "dkernel": dkernel, "dbias": dbias,
                      "pooled": pooled, "pool_dx": module.maxpool_backward(
                          x, grad_pool, pool, pool_stride)})
    return {"cases": cases}
