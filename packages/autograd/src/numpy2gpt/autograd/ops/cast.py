"""Dtype conversion as an op: y = x as ``dtype``; dx = dy converted back to x's dtype."""

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
