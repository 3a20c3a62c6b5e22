"""softmax and log_softmax along one axis, computed stably (shift by the maximum first).

    softmax(x)_i     = exp(x_i - m) / sum_j exp(x_j - m),          m = max_j x_j (any constant works;
    log_softmax(x)_i = x_i - m - log(sum_j exp(x_j - m))                        the max avoids overflow)

Backward (y = softmax(x), s = sum along the axis):
    softmax:      dx = y * (dy - s(dy * y))
    log_softmax:  dx = dy - softmax(x) * s(dy)

Composed twins: ``composed.softmax``, ``composed.log_softmax``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numpy2gpt.autograd import Function, Tensor
from numpy2gpt.nn.functional._util import as_tensor, check_floating, will_record


def _check_axis(op: str, x: Tensor, axis: int) -> int:
    if not -x.ndim <= axis < max(x.ndim, 1):
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor of shape {x.shape}")
    return axis % max(x.ndim, 1)


class Softmax(Function):
    """y = softmax(x) along ``axis``.  dx = y * (dy - sum(dy * y, axis))."""

    differentiable_backward = False

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.size == 0:
            self.y = np.exp(x)  # nothing to normalise (and no maximum to take)
            return self.y
        y = np.subtract(x, x.max(axis=self.axis, keepdims=True))
        np.exp(y, out=y)
        y /= y.sum(axis=self.axis, keepdims=True)
        self.y = y
        return y

    def backward(self, gy: Tensor) -> Tensor:
        y, gy = self.y, gy.data
        gx = gy * y
        s = gx.sum(axis=self.axis, keepdims=True)
        np.subtract(gy, s, out=gx)
        gx *= y
        return Tensor._wrap(gx)


class LogSoftmax(Function):
    """y = log_softmax(x) along ``axis``.  dx = dy - softmax(x) * sum(dy, axis); softmax is kept from forward."""

    differentiable_backward = False

    def __init__(self, axis: int, save: bool):
        self.axis, self.save = axis, save
        self.p: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.size == 0:
            return x - x  # nothing to normalise (and no maximum to take)
        y = np.subtract(x, x.max(axis=self.axis, keepdims=True))
        p = np.exp(y)
        s = p.sum(axis=self.axis, keepdims=True)
        y -= np.log(s)
        if self.save:
            p /= s
            self.p = p
        return y

    def backward(self, gy: Tensor) -> Tensor:
        p, self.p = self.p, None  # backward owns the buffer and reuses it for dx
        if p is None:  # a second backward (retain_graph=True): recompute softmax from the output
            p = np.exp(self.outputs[0]().data)
        gy = gy.data
        p *= gy.sum(axis=self.axis, keepdims=True)
        np.subtract(gy, p, out=p)
        return Tensor._wrap(p)


def softmax(x: Any, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis`` (stable). Composed twin: ``composed.softmax``."""
    x = as_tensor(x)
    check_floating("softmax", x=x)
    return Softmax(_check_axis("softmax", x, axis))(x)


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """x - logsumexp(x) along ``axis`` (stable). Composed twin: ``composed.log_softmax``."""
    x = as_tensor(x)
    check_floating("log_softmax", x=x)
    return LogSoftmax(_check_axis("log_softmax", x, axis), save=will_record(x))(x)
