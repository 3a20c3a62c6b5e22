"""Shape ops: reshape, transpose/permute/swapaxes, broadcast_to/expand and its adjoint sum_to
(with ``sum_to_array``, the same rule on plain arrays for backward code written in NumPy), squeeze.

None of these compute anything: their forward returns a view and their backward undoes the view. The one
rule worth remembering is the pair ``broadcast_to`` / ``sum_to``: if forward copied a value to many places,
backward adds up the gradients from all of those places.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from numpy2gpt.autograd.function import Function
from numpy2gpt.autograd.ops._util import as_tensor, check_axis, normalize_axes
from numpy2gpt.autograd.tensor import Tensor


class Reshape(Function):
    """y = x viewed with a new shape (same number of elements). dx = dy reshaped back to x's shape."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(f"reshape: cannot view shape {x.shape} ({x.size} elements) as {self.shape}") from None

    def backward(self, gy: Tensor) -> Tensor:
        return reshape(gy, self.inputs[0].shape)


def reshape(x: Tensor, shape: Sequence[int]) -> Tensor:
    """``x`` with a new shape; one entry may be -1."""
    x = as_tensor(x)
    shape = tuple(int(s) for s in shape)
    if shape == x.shape:
        return x
    return Reshape(shape)(x)


def flatten(x: Tensor, start_axis: int = 0, end_axis: int = -1) -> Tensor:
    """Merge axes ``start_axis..end_axis`` (inclusive) into one."""
    x = as_tensor(x)
    if x.ndim == 0:
        return reshape(x, (1,))
    start, end = start_axis % x.ndim, end_axis % x.ndim
    return reshape(x, (*x.shape[:start], -1, *x.shape[end + 1 :]))


class Transpose(Function):
    """y = x with its axes permuted: y.shape[i] = x.shape[axes[i]]. dx = dy permuted by the inverse."""

    def __init__(self, axes: tuple[int, ...] | None):
        self.axes = axes

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.transpose(x, self.axes)

    def backward(self, gy: Tensor) -> Tensor:
        if self.axes is None:
            return transpose(gy, None)
        return transpose(gy, tuple(int(i) for i in np.argsort(self.axes)))


def transpose(x: Tensor, axes: Sequence[int] | None = None) -> Tensor:
    """Permute the axes (``None`` reverses them, as ``ndarray.transpose``)."""
    x = as_tensor(x)
    if axes is not None:
        axes = tuple(int(a) % x.ndim for a in axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: {axes} is not a permutation of the {x.ndim} axes of shape {x.shape}")
    return Transpose(axes)(x)


def permute(x: Tensor, axes: Sequence[int]) -> Tensor:
    """Permute the axes (``torch.permute``)."""
    return transpose(x, axes)


def swapaxes(x: Tensor, axis1: int, axis2: int) -> Tensor:
    """Swap two axes (``torch.transpose(x, a, b)``)."""
    x = as_tensor(x)
    axis1, axis2 = check_axis("swapaxes", axis1, x.ndim), check_axis("swapaxes", axis2, x.ndim)
    axes = list(range(x.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return Transpose(tuple(axes))(x)


class BroadcastTo(Function):
    """y = x repeated (without copying) up to ``shape``. dx = sum_to(dy, x.shape)."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        try:
            return np.broadcast_to(x, self.shape)
        except ValueError:
            raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {self.shape}") from None

    def backward(self, gy: Tensor) -> Tensor:
        return sum_to(gy, self.inputs[0].shape)


def broadcast_to(x: Tensor, shape: Sequence[int]) -> Tensor:
    """``x`` broadcast to ``shape`` (NumPy broadcasting rules)."""
    x = as_tensor(x)
    shape = tuple(int(s) for s in shape)
    if x.shape == shape:
        return x
    return BroadcastTo(shape)(x)


def expand(x: Tensor, shape: Sequence[int]) -> Tensor:
    """``torch.expand``: ``broadcast_to`` where -1 keeps that axis's size."""
    x = as_tensor(x)
    lead = len(shape) - x.ndim
    if lead < 0 or any(s == -1 for s in shape[:lead]):
        raise ValueError(f"expand: cannot expand shape {x.shape} to {tuple(shape)} (-1 only for existing axes)")
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    return broadcast_to(x, shape)


class SumTo(Function):
    """y = dy summed down to ``shape``: over the leading axes broadcasting added, and over every axis where
    ``shape`` has a 1. The adjoint of broadcast_to, so dx = broadcast_to(dy, x.shape)."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        return sum_to_array(x, self.shape)

    def backward(self, gy: Tensor) -> Tensor:
        return broadcast_to(gy, self.inputs[0].shape)


def sum_to_array(g: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """An array gradient computed at a broadcast shape, summed back down to the input's ``shape``: over the
    leading axes broadcasting added, and over every axis where ``shape`` has a 1 and ``g`` does not."""
    shape = tuple(shape)
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


def sum_to(x: Tensor, shape: Sequence[int]) -> Tensor:
    """Sum ``x`` down to ``shape``, the shape it was broadcast from (the gradient rule for broadcasting)."""
    x = as_tensor(x)
    if x.data.shape == shape:  # the common case in backward: nothing was broadcast
        return x
    shape = tuple(int(s) for s in shape)
    if x.data.shape == shape:
        return x
    lead = x.ndim - len(shape)
    if lead < 0 or any(n != 1 and n != m for n, m in zip(shape, x.shape[lead:], strict=False)):
        raise ValueError(f"sum_to: shape {x.shape} cannot be summed down to {shape} (it is not broadcast from it)")
    return SumTo(shape)(x)


def squeeze(x: Tensor, axis: int | Sequence[int] | None = None) -> Tensor:
    """Remove axes of size 1 (all of them, or those named, which must have size 1)."""
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim) if axis is not None else tuple(i for i, n in enumerate(x.shape) if n == 1)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} of shape {x.shape} has size {x.shape[a]}, not 1")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


def unsqueeze(x: Tensor, axis: int) -> Tensor:
    """Insert an axis of size 1 at position ``axis`` (negative counts from the end of the result)."""
    x = as_tensor(x)
    axis = check_axis("unsqueeze", axis, x.ndim + 1)
    return reshape(x, (*x.shape[:axis], 1, *x.shape[axis:]))
