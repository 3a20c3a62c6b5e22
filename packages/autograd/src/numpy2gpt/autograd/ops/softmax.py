"""softmax and log_softmax along one axis: the one stable kernel every layer uses (attention, loss, sampling).

    softmax(x)_i     = exp(x_i - m) / sum_j exp(x_j - m),     m = max_j x_j (any constant gives the same
    log_softmax(x)_i = x_i - m - log(sum_j exp(x_j - m))                  result; the max avoids overflow)

Backward (y = softmax(x), s = sum along the axis):
    softmax:      dx = y * (dy - s(dy * y))
    log_softmax:  dx = dy - softmax(x) * s(dy)

The array kernels ``softmax_array`` / ``log_softmax_array`` are public for code that works on plain arrays
(sampling, fused nn ops). The Functions' backward runs on arrays when nothing records it, and as Tensor ops
on the output under ``create_graph=True``, so softmax has higher derivatives too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numpy2gpt.autograd.backend import get_array_module
from numpy2gpt.autograd.function import Function
from numpy2gpt.autograd.grad_mode import is_grad_enabled
from numpy2gpt.autograd.ops._util import as_tensor, pick
from numpy2gpt.autograd.tensor import Tensor


def softmax_array(a: np.ndarray, axis: int | None = -1) -> np.ndarray:
    """exp(a - max) / sum(exp(a - max)) along ``axis`` (None: a 0-d array), in a's floating dtype."""
    xp = get_array_module(a)
    if a.size == 0:
        return xp.exp(a)  # nothing to normalise (and no maximum to take)
    y = xp.subtract(a, a.max(axis=axis, keepdims=True), out=xp.empty_like(a))  # out=: stays an array if 0-d
    xp.exp(y, out=y)
    y /= y.sum(axis=axis, keepdims=True)
    return y


def log_softmax_array(a: np.ndarray, axis: int | None = -1) -> np.ndarray:
    """a - max - log(sum(exp(a - max))) along ``axis``, in a's floating dtype."""
    return _log_softmax_and_softmax(a, axis, keep_softmax=False)[0]


def _log_softmax_and_softmax(a: np.ndarray, axis: int | None, keep_softmax: bool) -> tuple[np.ndarray, Any]:
    """(log_softmax(a), softmax(a) or None): the two share exp(a - max) and its sum."""
    xp = get_array_module(a)
    if a.size == 0:
        return a - a, (a - a if keep_softmax else None)
    y = xp.subtract(a, a.max(axis=axis, keepdims=True), out=xp.empty_like(a))  # out=: stays an array if 0-d
    p = xp.exp(y, out=xp.empty_like(a))
    s = p.sum(axis=axis, keepdims=True)
    y -= xp.log(s)
    if not keep_softmax:
        return y, None
    p /= s
    return y, p


class Softmax(Function):
    """y = softmax(x) along ``axis``.  dx = y * (dy - sum(dy * y, axis))."""

    def __init__(self, axis: int | None):
        self.axis = axis

    def forward(self, x: np.ndarray) -> np.ndarray:
        return softmax_array(x, self.axis)

    def backward(self, gy: Tensor) -> Tensor | np.ndarray:
        y = self.outputs[0]()  # alive: the engine holds an output while its creator's backward runs
        if is_grad_enabled():  # create_graph=True: Tensor ops, differentiable again
            return y * (gy - (gy * y).sum(self.axis, keepdims=True))
        y, gy = y.data, gy.data
        xp = get_array_module(y)
        gx = xp.multiply(gy, y, out=xp.empty_like(y))
        s = gx.sum(axis=self.axis, keepdims=True)
        xp.subtract(gy, s, out=gx)
        gx *= y
        return gx


class LogSoftmax(Function):
    """y = log_softmax(x) along ``axis``.  dx = dy - softmax(x) * sum(dy, axis); forward keeps softmax(x) when
    a backward will follow, and backward reuses that buffer for dx."""

    def __init__(self, axis: int | None):
        self.axis = axis
        self.p: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        y, self.p = _log_softmax_and_softmax(x, self.axis, keep_softmax=True in self.needs_input_grad)
        return y

    def backward(self, gy: Tensor) -> Tensor | np.ndarray:
        if is_grad_enabled():  # create_graph=True: Tensor ops, differentiable again
            p = self.outputs[0]().exp()
            return gy - p * gy.sum(self.axis, keepdims=True)
        p, self.p = self.p, None  # backward owns the buffer and reuses it for dx
        xp = get_array_module(gy.data)
        if p is None:  # a second backward (retain_graph=True): recompute softmax from the output
            p = xp.exp(self.outputs[0]().data, out=xp.empty_like(gy.data))
        gy = gy.data
        p *= gy.sum(axis=self.axis, keepdims=True)
        xp.subtract(gy, p, out=p)
        return p


def _softmax_axis(op: str, x: Tensor, dim: int | None, axis: int | None) -> int | None:
    """The one axis softmax normalises over (default -1), checked; None for a 0-d tensor."""
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: needs a floating point tensor, got dtype {x.dtype}")
    a = pick(op, "dim", dim, "axis", axis, -1)
    if not -max(x.ndim, 1) <= a < max(x.ndim, 1):
        raise ValueError(f"{op}: axis {a} is out of range for a tensor of shape {x.shape}")
    return None if x.ndim == 0 else int(a) % x.ndim


def softmax(x: Any, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim`` (or ``axis``; default -1), computed stably."""
    x = as_tensor(x)
    return Softmax(_softmax_axis("softmax", x, dim, axis))(x)


def log_softmax(x: Any, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """x - logsumexp(x) along ``dim`` (or ``axis``; default -1), computed stably."""
    x = as_tensor(x)
    return LogSoftmax(_softmax_axis("log_softmax", x, dim, axis))(x)
