"""Reductions: sum, mean, max, min, var, std over an axis, a tuple of axes, or everything.

The gradient of a reduction is the output gradient copied back over the reduced axes: reshape dy to the
``keepdims`` shape, then broadcast it to the input's shape (scaled by 1/n for mean, masked to the winners
for max/min).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from numpy2gpt.autograd.function import Function
from numpy2gpt.autograd.ops._util import as_tensor, keepdims_shape, normalize_axes
from numpy2gpt.autograd.ops.shape import broadcast_to, reshape
from numpy2gpt.autograd.tensor import Tensor

Axis = int | Sequence[int] | None


def _spread(gy: Tensor, x: Tensor, axes: tuple[int, ...]) -> Tensor:
    """dy of a reduction over ``axes``, copied back to x's shape."""
    return broadcast_to(reshape(gy, keepdims_shape(x.shape, axes)), x.shape)


class Sum(Function):
    """y = sum of x over ``axes``.  dx = dy broadcast back over those axes."""

    def __init__(self, axes: tuple[int, ...], keepdims: bool):
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy: Tensor) -> Tensor:
        return _spread(gy, self.inputs[0], self.axes)


class Mean(Function):
    """y = mean of x over ``axes`` (n elements each).  dx = dy / n broadcast back over those axes."""

    def __init__(self, axes: tuple[int, ...], keepdims: bool):
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.mean(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        n = int(np.prod([x.shape[a] for a in self.axes]))
        return _spread(gy * (1.0 / n), x, self.axes)


class Max(Function):
    """y = max of x over ``axes``.  dx = dy at the maxima, 0 elsewhere; tied maxima share dy equally
    (as ``torch.amax``)."""

    def __init__(self, axes: tuple[int, ...], keepdims: bool, largest: bool = True):
        self.axes, self.keepdims, self.largest = axes, keepdims, largest

    @property
    def name(self) -> str:
        return "Max" if self.largest else "Min"

    def forward(self, x: np.ndarray) -> np.ndarray:
        reduce = np.max if self.largest else np.min
        return reduce(x, axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        y = self.outputs[0]().data.reshape(keepdims_shape(x.shape, self.axes))
        winners = x.data == y
        share = winners / winners.sum(axis=self.axes, keepdims=True)
        return _spread(gy, x, self.axes) * Tensor._wrap(share.astype(gy.dtype))


def sum(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001 - named like torch.sum
    """Sum over ``axis`` (an int, a tuple of ints, or None for all axes)."""
    x = as_tensor(x)
    return Sum(normalize_axes(axis, x.ndim), keepdims)(x)


def mean(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean over ``axis``."""
    x = as_tensor(x)
    return Mean(normalize_axes(axis, x.ndim), keepdims)(x)


def max(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001 - named like torch.max
    """Largest value over ``axis`` (values only; use ``argmax`` for indices)."""
    x = as_tensor(x)
    return Max(normalize_axes(axis, x.ndim), keepdims, largest=True)(x)


def min(x: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001 - named like torch.min
    """Smallest value over ``axis`` (values only; use ``argmin`` for indices)."""
    x = as_tensor(x)
    return Max(normalize_axes(axis, x.ndim), keepdims, largest=False)(x)


def var(x: Any, axis: Axis = None, keepdims: bool = False, correction: int = 1) -> Tensor:
    """Variance over ``axis``: sum((x - mean)**2) / (n - correction), n the number of elements reduced.
    ``correction=1`` (the default, as in PyTorch) is the unbiased estimate; ``correction=0`` is NumPy's
    default. Built from the ops above, so its gradient needs no code of its own:
    dx = dy * 2 (x - mean) / (n - correction) (the mean's own term sums to zero)."""
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim)
    n = int(np.prod([x.shape[a] for a in axes]))
    centered = x - mean(x, axes, keepdims=True)
    # n <= correction leaves no degrees of freedom: the variance is undefined (nan, as in PyTorch)
    scale = 1.0 / (n - correction) if n > correction else float("nan")
    return sum(centered * centered, axes, keepdims) * scale


def std(x: Any, axis: Axis = None, keepdims: bool = False, correction: int = 1) -> Tensor:
    """Standard deviation: sqrt(var(x, axis, keepdims, correction))."""
    from numpy2gpt.autograd.ops.elementwise import sqrt

    return sqrt(var(x, axis, keepdims, correction))
