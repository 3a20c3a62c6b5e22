"""linear: y = x @ W^T + b, the affine map of every nn.Linear, as one fused Function.

Any leading shape is flattened to one batch axis, so forward and backward are single 2-D BLAS calls.
Composed twin: ``composed.linear`` (``x @ weight.T + bias`` from autograd's matmul, transpose and add).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from numpy2gpt.autograd import Function, Tensor, as_tensor, get_array_module
from numpy2gpt.nn.functional._util import check_floating


class Linear(Function):
    """y = x @ W^T (+ b) for x (..., in), W (out, in), b (out,) -> y (..., out).

    x (..., in) -> x2 (N, in);   y2 = x2 @ W^T + b        (N, out)
    dx2 = dy2 @ W                 (N, in)
    dW  = dy2^T @ x2              (out, in)
    db  = sum over N of dy2       (out,)
    """

    differentiable_backward = False

    def forward(self, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
        x2 = x.reshape(math.prod(x.shape[:-1]), x.shape[-1])  # (not -1: any size may be 0)
        y2 = get_array_module(x2).matmul(x2, weight.T)  # (cuBLAS for CuPy arrays)
        if bias is not None:
            y2 += bias
        return y2.reshape((*x.shape[:-1], weight.shape[0]))

    def backward(self, gy: Tensor) -> tuple[np.ndarray | None, ...]:
        x, weight = self.inputs[0].data, self.inputs[1].data
        need = self.needs_input_grad
        n = math.prod(x.shape[:-1])
        gy2 = gy.data.reshape(n, weight.shape[0])
        xp = get_array_module(gy2)
        gx = xp.matmul(gy2, weight).reshape(x.shape) if need[0] else None  # dy @ W
        gw = xp.matmul(gy2.T, x.reshape(n, x.shape[-1])) if need[1] else None  # dy^T @ x
        if len(need) == 2:
            return gx, gw
        gb = gy2.sum(axis=0) if need[2] else None  # sum of dy over the batch
        return gx, gw, gb


def linear(x: Any, weight: Any, bias: Any = None) -> Tensor:
    """y = x @ weight^T + bias, as ``torch.nn.functional.linear``.

    Args:
        x: (..., in_features), any number of leading dimensions (also none: a single vector).
        weight: (out_features, in_features).
        bias: (out_features,) or None.
    Returns:
        (..., out_features), x's dtype. Composed twin: ``composed.linear``.
    """
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    check_floating("linear", x=x, weight=weight, bias=bias)
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: x of shape {x.shape} does not match weight of shape {weight.shape}: x's last dimension "
            f"must be in_features = {weight.shape[1]}"
        )
    if bias is None:
        return Linear()(x, weight)
    if bias.shape != (weight.shape[0],):
        raise ValueError(
            f"linear: bias must have shape ({weight.shape[0]},) to match weight {weight.shape}, got {bias.shape}"
        )
    return Linear()(x, weight, bias)
