"""Indexing and selection: ``x[index]``, ``where``, ``masked_fill``, ``tril``/``triu``.

``x[index]`` copies the selected elements forward; backward puts each output gradient back where it was read
from. With integer arrays an element may be read several times (``x[[0, 0, 1]]``), so backward must *add*
into the same place (``np.add.at``), not assign.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numpy2gpt.autograd.backend import get_array_module, scatter_add
from numpy2gpt.autograd.function import Function
from numpy2gpt.autograd.ops._util import as_tensor, constant_on, operands
from numpy2gpt.autograd.ops.shape import sum_to
from numpy2gpt.autograd.tensor import Tensor


def _plain_index(index: Any) -> Any:
    """Replace Tensors inside an index by their arrays."""
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


def _may_repeat(index: Any) -> bool:
    """True if the index contains an integer array, which can read one element more than once."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (list, np.ndarray)) and np.asarray(p).dtype.kind in "iu" for p in parts)


class GetItem(Function):
    """y = x[index].  dx = zeros like x, with dy added at ``index``."""

    def __init__(self, index: Any):
        self.index = index

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x[self.index]

    def backward(self, gy: Tensor) -> Tensor:
        return GetItemGrad(self.index, self.inputs[0].shape)(gy)


class GetItemGrad(Function):
    """The backward of GetItem as an op of its own, so that it is differentiable too: y = scatter-add of g
    into zeros of ``shape`` at ``index``.  dg = dy[index]."""

    def __init__(self, index: Any, shape: tuple[int, ...]):
        self.index, self.shape = index, shape

    def forward(self, g: np.ndarray) -> np.ndarray:
        xp = get_array_module(g)
        gx = xp.zeros(self.shape, dtype=g.dtype)
        if _may_repeat(self.index):
            scatter_add(gx, self.index, g)  # np.add.at (CuPy: cupyx.scatter_add)
        else:
            gx[self.index] = g
        return gx

    def backward(self, gy: Tensor) -> Tensor:
        return GetItem(self.index)(gy)


def getitem(x: Any, index: Any) -> Tensor:
    """``x[index]`` with NumPy's indexing: ints, slices, None, Ellipsis, integer arrays, boolean masks."""
    x = as_tensor(x)
    index = _plain_index(index)
    try:
        return GetItem(index)(x)
    except IndexError as e:
        raise IndexError(f"index {index!r} is invalid for a tensor of shape {x.shape}: {e}") from None


class Where(Function):
    """y = a where cond else b (broadcasting).  da = sum_to(dy where cond else 0), db likewise with not cond."""

    def __init__(self, cond: np.ndarray):
        self.cond = cond

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return get_array_module(a, b).where(self.cond, a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        zero = get_array_module(gy.data).zeros((), dtype=gy.dtype)
        ga = sum_to(Where(self.cond)(gy, zero), a.shape) if need_a else None
        gb = sum_to(Where(self.cond)(zero, gy), b.shape) if need_b else None
        return ga, gb


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """Elementwise choice: ``a`` where ``cond`` is true, else ``b`` (all three broadcast together)."""
    cond = cond.data if isinstance(cond, Tensor) else cond
    a, b = operands(a, b)
    xp = get_array_module(cond, a.data, b.data)
    cond = xp.asarray(cond, dtype=bool)  # (on a GPU: a host condition, a causal mask say, is copied there)
    try:
        np.broadcast_shapes(cond.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"where: condition {cond.shape}, x {a.shape} and y {b.shape} cannot be broadcast together"
        ) from None
    return Where(cond)(a, b)


def masked_fill(x: Any, mask: Any, value: float) -> Tensor:
    """``x`` with ``value`` wherever ``mask`` is true (``mask`` broadcasts to x). No gradient reaches the
    filled places."""
    x = as_tensor(x)
    return where(mask, Tensor._wrap(constant_on(x.data, np.asarray(value, dtype=x.dtype))), x)


def tril(x: Any, k: int = 0) -> Tensor:
    """The lower triangle of the last two axes (elements above diagonal ``k`` set to 0)."""
    x = _matrices("tril", x)
    keep = np.tri(x.shape[-2], x.shape[-1], k=k, dtype=bool)
    return where(keep, x, 0.0)


def triu(x: Any, k: int = 0) -> Tensor:
    """The upper triangle of the last two axes (elements below diagonal ``k`` set to 0)."""
    x = _matrices("triu", x)
    keep = ~np.tri(x.shape[-2], x.shape[-1], k=k - 1, dtype=bool)
    return where(keep, x, 0.0)


def _matrices(op: str, x: Any) -> Tensor:
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"{op}: needs a matrix or a batch of matrices, got shape {x.shape}")
    return x
