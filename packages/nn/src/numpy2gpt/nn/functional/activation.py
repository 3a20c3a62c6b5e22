"""Activations: gelu (exact, with erf, and GPT-2's tanh approximation), silu and leaky_relu (relu is autograd's).

Each is a fused Function whose forward computes y and, when a gradient will be needed, the local derivative
dy/dx alongside it, so backward is one multiply. Composed twins: ``composed.gelu``, ``composed.silu``, ...
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from numpy2gpt.autograd import Function, Tensor, as_tensor, get_array_module
from numpy2gpt.nn.functional._util import check_floating
from numpy2gpt.nn.functional.special import erfc_parts, half_erfcx32

_SQRT1_2 = math.sqrt(0.5)
_TWO_SQRT2 = 2.0 * math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_K = math.sqrt(2.0 / math.pi)  # the tanh approximation's sqrt(2/pi)
_C = 0.044715
_CHUNK = 1 << 16  # elements per chunk in GELU's forward: its work buffers stay in the CPU caches


class GELU(Function):
    """Gaussian error linear unit, y = x * Phi(x) with Phi the standard normal CDF.

    approximate="none":  Phi(x) = 0.5 * (1 + erf(x / sqrt(2))),  dy/dx = Phi(x) + x * exp(-x^2/2) / sqrt(2 pi)
    approximate="tanh":  y = 0.5 x (1 + tanh(u)), u = k (x + c x^3), k = sqrt(2/pi), c = 0.044715,
                         dy/dx = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) k (1 + 3 c x^2)

    Phi is computed as 0.5 * erfc(|x|/sqrt(2)) (or 1 minus that), which stays accurate in the left tail.
    When a gradient is needed, forward also computes dy/dx and keeps it; backward is then dx = dy * dy/dx.
    """

    differentiable_backward = False

    def __init__(self, approximate: str):
        self.approximate = approximate
        self.dydx: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        # Some 20 (tanh) or 36 (erf) array passes per element: done chunk by chunk with reused work buffers,
        # so these stay in the CPU cache instead of streaming through memory each pass (2-3x faster on
        # GPT-2-sized activations).
        if self.approximate == "tanh":
            kernel, dtypes = self._tanh_chunk, [x.dtype] * 3 + [np.bool_]
        elif x.dtype == np.float32:
            kernel, dtypes = self._erf_chunk32, [x.dtype] * 3 + [np.bool_]
        else:
            kernel, dtypes = self._erf_chunk, [x.dtype] * 6
        xf = x.reshape(-1)
        xp = get_array_module(x)
        if xp.__name__ == "cupy":  # one CUDA kernel instead of the chain (cupy_kernels is imported only here)
            from numpy2gpt.nn.functional import cupy_kernels

            y, dydx = cupy_kernels.gelu(xf, self.approximate, self.needs_input_grad[0])
            if dydx is not None:
                self.dydx = dydx.reshape(x.shape)
            return y.reshape(x.shape)
        y = xp.empty_like(xf)
        dydx = xp.empty_like(xf) if self.needs_input_grad[0] else None
        n = len(xf)
        chunk = _CHUNK if xp is np else max(n, 1)  # chunks for the CPU's caches only
        work = [xp.empty(min(n, chunk), dtype=dtype) for dtype in dtypes]
        for i in range(0, n, chunk):
            j = min(i + chunk, n)
            kernel(xf[i:j], y[i:j], None if dydx is None else dydx[i:j], [w[: j - i] for w in work])
        if dydx is not None:
            self.dydx = dydx.reshape(x.shape)
        return y.reshape(x.shape)

    @staticmethod
    def _erf_chunk32(x: np.ndarray, y: np.ndarray, dydx: np.ndarray | None, work: list[np.ndarray]) -> None:
        """float32: ~36 cheap passes and ONE exp, shared by Phi and the derivative's pdf (float64: ``_erf_chunk``).

        e = Phi(-|x|) = erfc(a) / 2 = P(t) exp(-x^2/2),  a = |x| / sqrt(2),  t = 2 / (2 + a)  (``half_erfcx32``)
        """
        t, e, g, positive = work
        np.abs(x, out=t)
        t += _TWO_SQRT2
        np.divide(_TWO_SQRT2, t, out=t)  # t = 2 sqrt2 / (|x| + 2 sqrt2) = 2 / (2 + a)
        half_erfcx32(t, out=e)
        np.square(x, out=g)
        g *= -0.5
        np.exp(g, out=g)  # exp(-x^2 / 2) = exp(-a^2)
        e *= g  # e = Phi(-|x|), accurate in the left tail
        # Phi(x) = e + [x > 0] (1 - 2e), branch-free as in _erf_chunk
        np.multiply(e, -2.0, out=t)
        t += 1.0
        np.greater(x, 0.0, out=positive)
        np.multiply(t, positive, out=t)
        t += e
        np.multiply(x, t, out=y)
        if dydx is not None:
            g *= x
            g *= _INV_SQRT_2PI  # x * pdf(x)
            np.add(g, t, out=dydx)

    @staticmethod
    def _erf_chunk(x: np.ndarray, y: np.ndarray, dydx: np.ndarray | None, work: list[np.ndarray]) -> None:
        a = work[0]
        np.abs(x, out=a)
        a *= _SQRT1_2  # a = |x| / sqrt(2)
        phi, t = erfc_parts(a, work[1:])  # erfc(a) = t * exp(S - a^2)
        np.square(a, out=a)
        phi -= a
        np.exp(phi, out=phi)
        phi *= t
        phi *= 0.5  # e = 0.5 * erfc(|x| / sqrt(2)) = Phi(-|x|)
        # Phi(x) = e for x <= 0 and 1 - e for x > 0, i.e. e + [x > 0] (1 - 2e): exact in the left tail, and
        # branch-free (a masked ufunc or np.where on random signs is 10x slower than this arithmetic).
        np.multiply(phi, -2.0, out=t)
        t += 1.0
        t *= x > 0
        phi += t
        np.multiply(x, phi, out=y)
        if dydx is not None:
            np.negative(a, out=a)
            np.exp(a, out=a)  # exp(-x^2 / 2)
            a *= _INV_SQRT_2PI
            a *= x  # x * pdf(x)
            np.add(a, phi, out=dydx)

    @staticmethod
    def _tanh_chunk(x: np.ndarray, y: np.ndarray, dydx: np.ndarray | None, work: list[np.ndarray]) -> None:
        """h = 0.5 (1 + tanh(u)) = sigmoid(2u) without cancellation in either tail (where tanh(u) is near -1,
        1 + tanh(u) loses h's digits): with e = exp(-2|u|) in (0, 1], s = 1 / (1 + e) and r = e s,

            h = s for u >= 0 and r for u < 0,   h (1 - h) = s r   (for either sign),
            dy/dx = h + 0.5 x (1 - tanh(u)^2) k (1 + 3 c x^2) = h + s r * 2 k x (1 + 3 c x^2)

        (u has the sign of x, and 1 - tanh^2 = 4 h (1 - h))."""
        a, s, r, nonnegative = work
        np.square(x, out=a)
        a *= _K * _C
        a += _K
        a *= x  # u = k (x + c x^3)
        np.abs(a, out=a)
        a *= -2.0
        np.exp(a, out=a)  # e = exp(-2 |u|)
        np.add(a, 1.0, out=s)
        np.divide(1.0, s, out=s)  # s = 1 / (1 + e)
        np.multiply(a, s, out=r)  # r = e / (1 + e)
        np.subtract(s, r, out=a)
        np.greater_equal(x, 0.0, out=nonnegative)
        np.multiply(a, nonnegative, out=a)
        a += r  # h = r + [x >= 0] (s - r), branch-free as in _erf_chunk
        np.multiply(x, a, out=y)
        if dydx is not None:
            s *= r  # h (1 - h)
            np.square(x, out=r)
            r *= 3.0 * _C
            r += 1.0
            r *= x
            r *= 2.0 * _K  # 2 k x (1 + 3 c x^2)
            np.multiply(s, r, out=dydx)
            dydx += a

    def backward(self, gy: Tensor) -> np.ndarray:
        return gy.data * self.dydx


class SiLU(Function):
    """y = x * sigmoid(x) (the swish).  dy/dx = s (1 + x (1 - s)) with s = sigmoid(x), kept from forward.

    sigmoid(x) = 1 / (1 + e^-x) is computed as 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0, e = exp(-|x|):
    no overflow, and full relative accuracy in both tails.
    """

    differentiable_backward = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        e = np.abs(x, out=np.empty_like(x))  # out=: an array also for 0-d x (ufuncs return scalars there)
        np.negative(e, out=e)
        np.exp(e, out=e)
        s = np.where(x >= 0, 1.0, e)
        e += 1.0
        s /= e  # sigmoid(x)
        y = np.multiply(x, s)
        if self.needs_input_grad[0]:
            np.subtract(1.0, s, out=e)
            e *= x
            e += 1.0
            e *= s  # s (1 + x (1 - s))
            self.dydx = e
        return y

    def backward(self, gy: Tensor) -> np.ndarray:
        return gy.data * self.dydx


class LeakyReLU(Function):
    """y = x where x > 0, else negative_slope * x.  dx = dy where x > 0, else negative_slope * dy (the slope also
    at x = 0, as PyTorch)."""

    differentiable_backward = False

    def __init__(self, negative_slope: float):
        self.negative_slope = negative_slope

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.where(x > 0, x, x * self.negative_slope)

    def backward(self, gy: Tensor) -> np.ndarray:
        g = gy.data
        return np.where(self.inputs[0].data > 0, g, g * self.negative_slope)


def gelu(x: Any, approximate: str = "none") -> Tensor:
    """GELU(x) = x * Phi(x); ``approximate="tanh"`` uses 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    Matches ``torch.nn.functional.gelu``. Composed twin: ``composed.gelu``.
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    x = as_tensor(x)
    check_floating("gelu", x=x)
    if x.dtype == np.float16:  # in float32, rounded back once, as PyTorch's CPU half kernel
        return GELU(approximate)(x.astype(np.float32)).astype(np.float16)
    return GELU(approximate)(x)


def silu(x: Any) -> Tensor:
    """SiLU(x) = x * sigmoid(x), as ``torch.nn.functional.silu``. Composed twin: ``composed.silu``."""
    x = as_tensor(x)
    check_floating("silu", x=x)
    return SiLU()(x)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x, as ``torch.nn.functional.leaky_relu``.

    Composed twin: ``composed.leaky_relu``.
    """
    x = as_tensor(x)
    check_floating("leaky_relu", x=x)
    return LeakyReLU(float(negative_slope))(x)
