"""Joining and splitting: concatenate/cat, stack, split, chunk.

concatenate and split are each other's backward: the gradient of a concatenation is the output gradient
split back into the pieces, and the gradient of a split is the pieces' gradients concatenated (with zeros
for a piece that got no gradient).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from numpy2gpt.autograd.backend import get_array_module
from numpy2gpt.autograd.dtypes import constant_like
from numpy2gpt.autograd.function import Function
from numpy2gpt.autograd.ops._util import as_tensor, check_axis, pick
from numpy2gpt.autograd.ops.shape import squeeze, unsqueeze
from numpy2gpt.autograd.tensor import Tensor


class Concatenate(Function):
    """y = the inputs joined along ``axis``.  dx_i = the slice of dy that x_i became."""

    def __init__(self, axis: int):
        self.axis = axis

    def forward(self, *xs: np.ndarray) -> np.ndarray:
        return get_array_module(*xs).concatenate(xs, axis=self.axis)

    def backward(self, gy: Tensor) -> tuple[Tensor, ...]:
        sizes = [x.shape[self.axis] for x in self.inputs]
        return split(gy, sizes, self.axis)


def concatenate(tensors: Sequence[Any], dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Join tensors along an existing axis ``dim`` (default 0); all other dimensions must match."""
    tensors = _joinable("concatenate", tensors)
    ndim = tensors[0].ndim
    if ndim == 0:
        raise ValueError("concatenate: 0-d tensors have no axis to join along; use stack")
    axis = check_axis("concatenate", pick("concatenate", "dim", dim, "axis", axis, 0), ndim)
    rest = tensors[0].shape[:axis] + tensors[0].shape[axis + 1 :]
    for t in tensors:
        if t.ndim != ndim or t.shape[:axis] + t.shape[axis + 1 :] != rest:
            shapes = [x.shape for x in tensors]
            raise ValueError(f"concatenate: shapes {shapes} differ outside axis {axis}")
    return Concatenate(axis)(*tensors)


cat = concatenate


def _joinable(op: str, items: Sequence[Any]) -> list[Tensor]:
    """The items as Tensors of one kind: constants (arrays, lists) take the first floating tensor's dtype, so
    that a float64 array joined to a float32 tensor does not upcast the result, and integer or boolean
    tensors joined to floating ones take the floating dtype (as PyTorch), not NumPy's float64."""
    if len(items) == 0:
        raise ValueError(f"{op}: needs at least one tensor")
    floats = [t.dtype for t in items if isinstance(t, Tensor) and t.dtype.kind == "f"]
    if not floats:
        return [as_tensor(t) for t in items]
    common = np.result_type(*floats)
    out = [t if isinstance(t, Tensor) else Tensor._wrap(constant_like(t, floats[0])) for t in items]
    return [t if t.dtype.kind == "f" else Tensor._wrap(t.data.astype(common)) for t in out]


def stack(tensors: Sequence[Any], dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """Join same-shaped tensors along a new axis ``dim`` (default 0)."""
    tensors = _joinable("stack", tensors)
    if len({t.shape for t in tensors}) > 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {[t.shape for t in tensors]}")
    axis = check_axis("stack", pick("stack", "dim", dim, "axis", axis, 0), tensors[0].ndim + 1)
    return concatenate([unsqueeze(t, axis) for t in tensors], axis)


class Split(Function):
    """(y_1, ..., y_n) = x cut along ``axis`` into pieces of ``sizes``.  dx = the dy_i concatenated, with
    zeros for pieces that received no gradient."""

    def __init__(self, sizes: list[int], axis: int):
        self.sizes, self.axis = sizes, axis

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        cuts = np.cumsum(self.sizes)[:-1].tolist()  # (a list: CuPy takes host indices as Python ints)
        return tuple(get_array_module(x).split(x, cuts, axis=self.axis))

    def backward(self, *gys: Tensor | None) -> Tensor:
        x = self.inputs[0]
        pieces = []
        for size, g in zip(self.sizes, gys, strict=True):
            if g is None:
                shape = list(x.shape)
                shape[self.axis] = size
                g = Tensor._wrap(get_array_module(x.data).zeros(shape, dtype=x.dtype))
            pieces.append(g)
        return concatenate(pieces, self.axis)


def split(
    x: Any, split_size_or_sections: int | Sequence[int], dim: int | None = None, *, axis: int | None = None
) -> tuple[Tensor, ...]:
    """Cut ``x`` along ``dim`` (default 0): into pieces of ``split_size_or_sections`` elements (an int; the last
    piece may be smaller) or of the listed sizes, which must add up to the axis length (as ``torch.split``)."""
    x = as_tensor(x)
    axis = check_axis("split", pick("split", "dim", dim, "axis", axis, 0), x.ndim)
    n = x.shape[axis]
    if isinstance(split_size_or_sections, (int, np.integer)):
        step = int(split_size_or_sections)
        if step <= 0:
            raise ValueError(f"split: the piece size must be positive, got {step}")
        sizes = [min(step, n - start) for start in range(0, n, step)] or [0]  # an empty axis: one empty piece
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} add up to {sum(sizes)}, but axis {axis} of {x.shape} has {n}")
    out = Split(sizes, axis)(x)
    return out if isinstance(out, tuple) else (out,)


def chunk(x: Any, chunks: int, dim: int | None = None, *, axis: int | None = None) -> tuple[Tensor, ...]:
    """Cut ``x`` into ``chunks`` nearly equal pieces along ``dim`` (default 0; each ceil(n / chunks) long, as
    ``torch.chunk``: fewer pieces come back if the axis is short, ``chunks`` empty ones if it is empty)."""
    x = as_tensor(x)
    if chunks <= 0:
        raise ValueError(f"chunk: the number of chunks must be positive, got {chunks}")
    axis = check_axis("chunk", pick("chunk", "dim", dim, "axis", axis, 0), x.ndim)
    n = x.shape[axis]
    if n == 0:
        return split(x, [0] * chunks, axis)
    return split(x, max(1, -(-n // chunks)), axis)


def unbind(x: Any, dim: int | None = None, *, axis: int | None = None) -> tuple[Tensor, ...]:
    """The slices of ``x`` along ``dim`` (default 0), each without that axis (none for an empty axis)."""
    x = as_tensor(x)
    axis = check_axis("unbind", pick("unbind", "dim", dim, "axis", axis, 0), x.ndim)
    if x.shape[axis] == 0:
        return ()
    return tuple(squeeze(p, axis) for p in split(x, 1, axis))
