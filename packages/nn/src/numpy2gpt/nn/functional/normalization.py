"""layer_norm: normalize each sample over its trailing ``normalized_shape`` dims, then scale and shift.

One fused Function (the math in its docstring) that keeps only xhat and 1/std for backward. float16 is
computed in float32 and rounded back, as PyTorch's CPU half kernel. Composed twin: ``composed.layer_norm``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from numpy2gpt.autograd import Function, Tensor, as_tensor, get_array_module
from numpy2gpt.nn.functional._util import check_floating


def _row_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum_j a_ij * b_ij for each row i: NumPy 2's vecdot (2.4x faster than einsum here), einsum before NumPy 2."""
    xp = get_array_module(a)
    if hasattr(xp, "vecdot"):
        return xp.vecdot(a, b)
    return xp.einsum("ij,ij->i", a, b)


class LayerNorm(Function):
    """Layer normalization over the last ``ndim`` axes; inputs x and optionally weight w, bias b (in that order).

    With x flattened to rows x_i of D = prod(normalized_shape) elements:

        mu_i = mean(x_i),  var_i = mean((x_i - mu_i)^2)  (biased),  rstd_i = 1 / sqrt(var_i + eps)
        xhat_i = (x_i - mu_i) * rstd_i,    y_i = xhat_i * w + b

    A row whose squares overflow the dtype (|x - mu| > 1.8e19 in float32) is redone by ``_wide_rows``
    (PyTorch gives nan there; the true output is representable).

    Backward, with g = dy * w (per row, mean over the row's D elements):

        dx_i = rstd_i * (g_i - mean(g_i) - xhat_i * mean(g_i * xhat_i))
        dw = sum over rows of dy * xhat,    db = sum over rows of dy
    """

    differentiable_backward = False

    def __init__(self, ndim: int, eps: float, has_weight: bool, has_bias: bool):
        self.ndim, self.eps = ndim, eps
        self.has_weight, self.has_bias = has_weight, has_bias

    def forward(self, x: np.ndarray, *params: np.ndarray) -> np.ndarray:
        weight = params[0].reshape(-1) if self.has_weight else None
        bias = params[-1].reshape(-1) if self.has_bias else None
        d = math.prod(x.shape[x.ndim - self.ndim :])
        x2 = x.reshape(math.prod(x.shape[: x.ndim - self.ndim]), d)  # (not -1: any size may be 0)
        inv_d = 1.0 / max(d, 1)  # rows of 0 elements (d = 0) give an empty output, as in PyTorch
        xp = get_array_module(x)
        if xp.__name__ == "cupy":  # one kernel per pass instead of the chain (imported only on a GPU)
            from numpy2gpt.nn.functional import cupy_kernels

            y, xhat, rstd = cupy_kernels.layer_norm_forward(x2, weight, bias, self.eps)
            if True in self.needs_input_grad:
                self.xhat, self.rstd = xhat, rstd
            return y.reshape(x.shape)
        # Row reductions with einsum: no temporary array, and faster than .mean(axis=1) in NumPy 2.
        mean = xp.einsum("ij->i", x2)
        mean *= inv_d
        xhat = xp.subtract(x2, mean[:, None])
        with np.errstate(over="ignore"):  # an overflowing row is redone below
            var = _row_dots(xhat, xhat)
        var *= inv_d
        var += self.eps
        overflow = xp.isinf(var)  # (one look per row, not per element)
        rstd = xp.sqrt(var, out=var)
        xp.divide(1.0, rstd, out=rstd)
        rstd = rstd[:, None]
        xhat *= rstd
        if overflow.any():
            xhat[overflow], rstd[overflow] = _wide_rows(x2[overflow], self.eps)
        if weight is None and bias is None:
            y = xhat
        elif weight is None:
            y = xhat + bias
        else:
            y = xhat * weight
            if bias is not None:
                y += bias
        if True in self.needs_input_grad:
            self.xhat, self.rstd = xhat, rstd
        return y.reshape(x.shape)

    def backward(self, gy: Tensor) -> tuple[np.ndarray | None, ...]:
        need = self.needs_input_grad
        xhat, rstd = self.xhat, self.rstd
        xp = get_array_module(xhat)
        d = xhat.shape[1]
        gy2 = gy.data.reshape(xhat.shape)
        inv_d = 1.0 / max(d, 1)
        grads: list[np.ndarray | None] = [None]
        if self.has_weight:
            weight = self.inputs[1]
            gw = xp.einsum("ij,ij->j", gy2, xhat).reshape(weight.shape) if need[1] else None  # sum dy * xhat
            grads.append(gw)
        if self.has_bias:
            bias = self.inputs[-1]
            gb = xp.einsum("ij->j", gy2).reshape(bias.shape) if need[-1] else None  # sum dy
            grads.append(gb)
        if need[0] and xp.__name__ == "cupy":
            from numpy2gpt.nn.functional import cupy_kernels

            weight = self.inputs[1].data.reshape(-1) if self.has_weight else None
            grads[0] = cupy_kernels.layer_norm_backward(gy2, xhat, rstd, weight).reshape(self.inputs[0].shape)
        elif need[0]:
            g = gy2 * self.inputs[1].data.reshape(-1) if self.has_weight else gy2  # g = dy * w
            mean_g = xp.einsum("ij->i", g)[:, None]
            mean_g *= inv_d
            mean_gxh = _row_dots(g, xhat)[:, None]
            mean_gxh *= inv_d
            gx = xp.multiply(xhat, mean_gxh)
            gx += mean_g
            xp.subtract(g, gx, out=gx)
            gx *= rstd  # rstd * (g - mean(g) - xhat * mean(g * xhat))
            grads[0] = gx.reshape(self.inputs[0].shape)
        return tuple(grads)


def _wide_rows(x: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """(xhat, rstd) of rows whose squares overflow x's dtype: in float64 on z = x / m, m = max|x| per row, so
    that nothing overflows (var(x) = m^2 var(z)):  xhat = (z - mean z) / s,  rstd = 1 / (m s),
    s = sqrt(var(z) + eps / m^2)."""
    z = x.astype(np.float64)
    m = np.abs(z).max(axis=1, keepdims=True)
    z /= m
    z -= z.mean(axis=1, keepdims=True)
    s = np.sqrt(_row_dots(z, z)[:, None] / z.shape[1] + eps / m / m)
    return (z / s).astype(x.dtype), (1.0 / (m * s)).astype(x.dtype)


def layer_norm(
    x: Any, normalized_shape: int | Sequence[int], weight: Any = None, bias: Any = None, eps: float = 1e-5
) -> Tensor:
    """Layer normalization over the trailing dims ``normalized_shape``, as ``torch.nn.functional.layer_norm``.

    Args:
        x: (..., *normalized_shape).
        normalized_shape: an int (the last dim) or a tuple of trailing dims.
        weight, bias: ``normalized_shape``-shaped scale and shift, or None.
        eps: added to the variance before the square root.
    Composed twin: ``composed.layer_norm``.
    """
    shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    x = as_tensor(x)
    weight = None if weight is None else as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    check_floating("layer_norm", x=x, weight=weight, bias=bias)
    if len(shape) == 0 or x.shape[x.ndim - len(shape) :] != shape or x.ndim < len(shape):
        raise ValueError(
            f"layer_norm: normalized_shape {shape} must be the trailing dimensions of the input, but the input "
            f"has shape {x.shape}"
        )
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != shape:
            raise ValueError(f"layer_norm: {name} must have shape normalized_shape {shape}, got {p.shape}")
    params = [p for p in (weight, bias) if p is not None]
    fn = LayerNorm(len(shape), float(eps), weight is not None, bias is not None)
    if x.dtype == np.float16:  # in float32, rounded back once (float16's squares overflow above 256)
        return fn(*(t.astype(np.float32) for t in (x, *params))).astype(np.float16)
    return fn(x, *params)
