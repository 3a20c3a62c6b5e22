"""Matrix product with NumPy's rules: 1-D vectors, 2-D matrices, and stacks of matrices whose batch
dimensions broadcast.

For y = a @ b with a (..., n, k) and b (..., k, m):
    da = dy @ b^T    (..., n, k)
    db = a^T @ dy    (..., k, m)
each then summed over any batch dimensions that broadcasting added. A 1-D ``a`` is treated as a (1, k)
matrix and a 1-D ``b`` as (k, 1), as NumPy does, and the gradients are reshaped back to 1-D.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numpy2gpt.autograd.backend import get_array_module
from numpy2gpt.autograd.function import Function
from numpy2gpt.autograd.ops._util import operands
from numpy2gpt.autograd.ops.shape import reshape, sum_to, swapaxes
from numpy2gpt.autograd.tensor import Tensor


class MatMul(Function):
    """y = a @ b (see the module docstring for shapes and the gradient)."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return get_array_module(a, b).matmul(a, b)  # (cuBLAS for CuPy arrays)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        a2 = reshape(a, (1, a.shape[0])) if a.ndim == 1 else a
        b2 = reshape(b, (b.shape[0], 1)) if b.ndim == 1 else b
        g2 = gy
        if a.ndim == 1:
            g2 = reshape(g2, (*g2.shape[:-1], 1, *g2.shape[-1:]))
        if b.ndim == 1:
            g2 = reshape(g2, (*g2.shape, 1))
        ga = gb = None
        if need_a:
            ga = reshape(sum_to(matmul(g2, swapaxes(b2, -1, -2)), a2.shape), a.shape)
        if need_b:
            gb = reshape(sum_to(matmul(swapaxes(a2, -1, -2), g2), b2.shape), b.shape)
        return ga, gb


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product ``a @ b`` (vectors, matrices, or batches of matrices with broadcast batch dims)."""
    a, b = operands(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes {a.shape} and {b.shape}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not match: the last dimension of the first ({k_a}) must "
            f"equal the {'only' if b.ndim == 1 else 'second-to-last'} dimension of the second ({k_b})"
        )
    if a.ndim > 2 or b.ndim > 2:
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(
                f"matmul: batch dimensions {a.shape[:-2]} and {b.shape[:-2]} of shapes {a.shape} and {b.shape} "
                "cannot be broadcast together"
            ) from None
    return MatMul()(a, b)
