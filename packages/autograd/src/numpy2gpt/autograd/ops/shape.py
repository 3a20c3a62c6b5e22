"""Shape ops: reshape/view, flatten, transpose/permute/swapaxes/t, broadcast_to/expand and its adjoint sum_to
(with ``sum_to_array``, the same rule on plain arrays for backward code written in NumPy), squeeze.

None of these compute anything: their forward returns a view and their backward undoes the view. The one
rule worth remembering is the pair ``broadcast_to`` / ``sum_to``: if forward copied a value to many places,
backward adds up the gradients from all of those places.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from numpy2gpt.autograd.backend import get_array_module
from numpy2gpt.autograd.function import Function
from numpy2gpt.autograd.ops._util import as_tensor, check_axis, normalize_axes, pick, shape_args
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


def reshape(x: Any, *shape: int | Sequence[int]) -> Tensor:
    """``x`` with a new shape (``reshape(x, 2, 3)`` or ``reshape(x, (2, 3))``); one entry may be -1. A view
    when NumPy can make one, else a copy; ``view`` insists on a view."""
    x = as_tensor(x)
    shape = shape_args(shape)
    if shape == x.shape:
        return x
    return Reshape(shape)(x)


class View(Reshape):
    """y = x's data seen with a new shape, sharing memory (``torch.view``). dx = dy reshaped back."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        try:
            if get_array_module(x) is not np:  # a GPU array: set the shape of a view (fails where a copy is needed)
                y = x.view()
                y.shape = self.shape
                return y
            return np.reshape(x, self.shape, copy=False)
        except (ValueError, AttributeError):
            raise ValueError(
                f"view: shape {x.shape} with strides {x.strides} cannot be viewed as {self.shape} without a "
                "copy; use reshape() (or .contiguous().view())"
            ) from None


def view(x: Any, *shape: int | Sequence[int]) -> Tensor:
    """``x``'s data with a new shape, always sharing memory (``torch.Tensor.view``); raises where that needs a
    copy (a transposed tensor, say)."""
    x = as_tensor(x)
    return View(shape_args(shape))(x)


def flatten(
    x: Any,
    start_dim: int | None = None,
    end_dim: int | None = None,
    *,
    start_axis: int | None = None,
    end_axis: int | None = None,
) -> Tensor:
    """Merge axes ``start_dim..end_dim`` (inclusive; default all) into one. A 0-d tensor becomes shape (1,)."""
    x = as_tensor(x)
    start = pick("flatten", "start_dim", start_dim, "start_axis", start_axis, 0)
    end = pick("flatten", "end_dim", end_dim, "end_axis", end_axis, -1)
    nd = max(x.ndim, 1)  # a 0-d tensor flattens as if it had one axis (as PyTorch)
    first, last = check_axis("flatten", start, nd), check_axis("flatten", end, nd)
    if first > last:
        raise ValueError(f"flatten: start axis {start} comes after end axis {end} for a tensor of shape {x.shape}")
    if x.ndim == 0:
        return reshape(x, (1,))
    merged = int(np.prod(x.shape[first : last + 1]))  # explicit, where -1 cannot be inferred from size 0
    return reshape(x, (*x.shape[:first], merged, *x.shape[last + 1 :]))


class Transpose(Function):
    """y = x with its axes permuted: y.shape[i] = x.shape[axes[i]]. dx = dy permuted by the inverse."""

    def __init__(self, axes: tuple[int, ...] | None):
        self.axes = axes

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.transpose(self.axes)

    def backward(self, gy: Tensor) -> Tensor:
        if self.axes is None:
            return transpose(gy, None)
        return transpose(gy, tuple(int(i) for i in np.argsort(self.axes)))


def transpose(x: Any, *dims: int | Sequence[int] | None, axes: Sequence[int] | None = None) -> Tensor:
    """The method's rules: ``transpose(x)`` reverses the axes, ``transpose(x, a, b)`` swaps two
    (``torch.transpose``), ``transpose(x, (2, 0, 1))`` / ``axes=`` permutes them (``np.transpose``)."""
    x = as_tensor(x)
    if axes is not None:
        if dims:
            raise TypeError("transpose: got axes= and positional axes; pass one")
        dims = (axes,)
    if len(dims) == 2 and all(isinstance(d, (int, np.integer)) for d in dims):
        return swapaxes(x, dims[0], dims[1])
    if not dims or dims == (None,):
        return Transpose(None)(x)
    return permute(x, *dims)


def permute(x: Any, *dims: int | Sequence[int]) -> Tensor:
    """Permute the axes: y.shape[i] = x.shape[dims[i]] (``permute(x, 2, 0, 1)`` or ``permute(x, (2, 0, 1))``)."""
    x = as_tensor(x)
    perm = tuple(check_axis("permute", d, x.ndim) for d in shape_args(dims))
    if sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"permute: {shape_args(dims)} is not a permutation of the {x.ndim} axes of shape {x.shape}")
    return Transpose(perm)(x)


def swapaxes(x: Any, axis1: int, axis2: int) -> Tensor:
    """Swap two axes (``torch.transpose(x, a, b)``, ``torch.swapaxes``)."""
    x = as_tensor(x)
    axis1, axis2 = check_axis("swapaxes", axis1, x.ndim), check_axis("swapaxes", axis2, x.ndim)
    axes = list(range(x.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return Transpose(tuple(axes))(x)


swapdims = swapaxes


def t(x: Any) -> Tensor:
    """The transpose of a matrix; a vector or scalar is returned as it is (``torch.t``)."""
    x = as_tensor(x)
    if x.ndim > 2:
        raise ValueError(f"t: expects a tensor with at most 2 dimensions, got shape {x.shape}; use transpose(a, b)")
    return swapaxes(x, 0, 1) if x.ndim == 2 else x


class BroadcastTo(Function):
    """y = x repeated (without copying) up to ``shape``. dx = sum_to(dy, x.shape)."""

    def __init__(self, shape: tuple[int, ...]):
        self.shape = shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        try:
            return get_array_module(x).broadcast_to(x, self.shape)
        except ValueError:
            raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {self.shape}") from None

    def backward(self, gy: Tensor) -> Tensor:
        return sum_to(gy, self.inputs[0].shape)


def broadcast_to(x: Any, *shape: int | Sequence[int]) -> Tensor:
    """``x`` broadcast to ``shape`` (NumPy broadcasting rules)."""
    x = as_tensor(x)
    shape = shape_args(shape)
    if x.shape == shape:
        return x
    return BroadcastTo(shape)(x)


def expand(x: Any, *shape: int | Sequence[int]) -> Tensor:
    """``torch.expand``: ``broadcast_to`` where -1 keeps that axis's size."""
    x = as_tensor(x)
    shape = shape_args(shape)
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


def sum_to(x: Any, *shape: int | Sequence[int]) -> Tensor:
    """Sum ``x`` down to ``shape``, the shape it was broadcast from (the gradient rule for broadcasting)."""
    x = as_tensor(x)
    if len(shape) == 1 and x.data.shape == shape[0]:  # the common case in backward: nothing was broadcast
        return x
    shape = shape_args(shape)
    if x.data.shape == shape:
        return x
    lead = x.ndim - len(shape)
    if lead < 0 or any(n != 1 and n != m for n, m in zip(shape, x.shape[lead:], strict=False)):
        raise ValueError(f"sum_to: shape {x.shape} cannot be summed down to {shape} (it is not broadcast from it)")
    return SumTo(shape)(x)


def squeeze(x: Any, dim: int | Sequence[int] | None = None, *, axis: int | Sequence[int] | None = None) -> Tensor:
    """Remove axes of size 1: all of them, or those of ``dim`` that have size 1 (others stay, as PyTorch)."""
    x = as_tensor(x)
    chosen = pick("squeeze", "dim", dim, "axis", axis)
    axes = range(x.ndim) if chosen is None else normalize_axes(chosen, x.ndim, "squeeze")
    drop = {a for a in axes if x.shape[a] == 1}
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in drop))


def unsqueeze(x: Any, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Insert an axis of size 1 at position ``dim`` (negative counts from the end of the result)."""
    x = as_tensor(x)
    where = pick("unsqueeze", "dim", dim, "axis", axis)
    if where is None:
        raise TypeError("unsqueeze: missing the position of the new axis (dim=)")
    where = check_axis("unsqueeze", where, x.ndim + 1)
    return reshape(x, (*x.shape[:where], 1, *x.shape[where:]))
