"""Conversions as ops: a dtype cast (dx = dy converted back to x's dtype) and a copy (``clone``,
``contiguous``; dx = dy)."""

from __future__ import annotations

from typing import Any

import numpy as np

from numpy2gpt.autograd.function import Function
from numpy2gpt.autograd.ops._util import as_tensor
from numpy2gpt.autograd.tensor import Tensor


class Cast(Function):
    """y = x.astype(dtype).  dx = dy.astype(x.dtype)."""

    def __init__(self, dtype: np.dtype):
        self.dtype = dtype

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.astype(self.dtype)

    def backward(self, gy: Tensor) -> Tensor:
        return cast(gy, self.inputs[0].dtype)


def cast(x: Any, dtype: Any) -> Tensor:
    """``x`` converted to ``dtype`` (the same tensor if it already has it)."""
    x = as_tensor(x)
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    return Cast(dtype)(x)


class Clone(Function):
    """y = a copy of x in C order (its own memory).  dx = dy."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.copy()

    def backward(self, gy: Tensor) -> Tensor:
        return gy


def clone(x: Any) -> Tensor:
    """A recorded copy of ``x`` (``torch.clone``): writing into the copy's data leaves ``x`` alone."""
    return Clone()(as_tensor(x))


def contiguous(x: Any) -> Tensor:
    """``x`` itself when its data is C-contiguous, else a recorded C-ordered copy (``torch.contiguous``)."""
    x = as_tensor(x)
    return x if x.data.flags.c_contiguous else Clone()(x)
