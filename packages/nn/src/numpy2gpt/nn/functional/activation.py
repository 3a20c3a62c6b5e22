"""Activations: relu and gelu (exact, with erf, and the tanh approximation GPT-2 was trained with).

Both are fused Functions: forward computes y and, when a gradient will be needed, the local derivative
dy/dx in the same pass, so backward is one multiply. Composed twins: ``composed.relu``, ``composed.gelu``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from numpy2gpt.autograd import Function, Tensor
from numpy2gpt.nn.functional._util import as_tensor, check_floating, will_record
from numpy2gpt.nn.functional.special import erfc_parts

_SQRT1_2 = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_K = math.sqrt(2.0 / math.pi)  # the tanh approximation's sqrt(2/pi)
_C = 0.044715


class ReLU(Function):
    """y = max(x, 0).  dx = dy where x > 0, else 0 (also 0 at x = 0, as PyTorch)."""

    differentiable_backward = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0.0)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0].data
        return Tensor._wrap(np.multiply(gy.data, x > 0))


class GELU(Function):
    """Gaussian error linear unit, y = x * Phi(x) with Phi the standard normal CDF.

    approximate="none":  Phi(x) = 0.5 * (1 + erf(x / sqrt(2))),  dy/dx = Phi(x) + x * exp(-x^2/2) / sqrt(2 pi)
    approximate="tanh":  y = 0.5 x (1 + tanh(u)), u = k (x + c x^3), k = sqrt(2/pi), c = 0.044715,
                         dy/dx = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) k (1 + 3 c x^2)

    Phi is computed as 0.5 * erfc(|x|/sqrt(2)) (or 1 minus that), which stays accurate in the left tail.
    When ``save`` is set, forward also computes dy/dx and keeps it; backward is then dx = dy * dy/dx.
    """

    differentiable_backward = False

    def __init__(self, approximate: str, save: bool):
        self.approximate, self.save = approximate, save
        self.dydx: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.approximate == "tanh":
            return self._forward_tanh(x)
        a = np.abs(x)
        a *= _SQRT1_2  # a = |x| / sqrt(2)
        phi, t = erfc_parts(a)  # erfc(a) = t * exp(S - a^2)
        np.square(a, out=a)
        phi -= a
        np.exp(phi, out=phi)
        phi *= t
        phi *= 0.5  # e = 0.5 * erfc(|x| / sqrt(2)) = Phi(-|x|)
        # Phi(x) = e for x <= 0 and 1 - e for x > 0, i.e. e + [x > 0] (1 - 2e): exact in the left tail, and
        # branch-free (a masked ufunc or np.where on random signs is 10x slower than this arithmetic).
        y = phi * -2.0
        y += 1.0
        y *= x > 0
        phi += y
        np.multiply(x, phi, out=y)
        if self.save:
            np.negative(a, out=a)
            np.exp(a, out=a)  # exp(-x^2 / 2)
            a *= _INV_SQRT_2PI
            a *= x  # x * pdf(x)
            a += phi
            self.dydx = a
        return y

    def _forward_tanh(self, x: np.ndarray) -> np.ndarray:
        h = x * x
        h *= _K * _C
        h += _K
        h *= x  # u = k (x + c x^3)
        np.tanh(h, out=h)
        h += 1.0
        h *= 0.5  # h = 0.5 (1 + tanh(u))
        y = x * h
        if self.save:
            # 0.5 x (1 - tanh^2) k (1 + 3 c x^2) with 1 - tanh^2 = 4 h (1 - h)
            d = x * x
            d *= 3.0 * _C
            d += 1.0
            d *= x
            d *= 2.0 * _K
            w = np.subtract(1.0, h)
            w *= h
            d *= w
            d += h
            self.dydx = d
        return y

    def backward(self, gy: Tensor) -> Tensor:
        return Tensor._wrap(gy.data * self.dydx)


def relu(x: Any) -> Tensor:
    """max(x, 0) elementwise. Composed twin: ``composed.relu``."""
    x = as_tensor(x)
    check_floating("relu", x=x)
    return ReLU()(x)


def gelu(x: Any, approximate: str = "none") -> Tensor:
    """GELU(x) = x * Phi(x); ``approximate="tanh"`` uses 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    Matches ``torch.nn.functional.gelu``. Composed twin: ``composed.gelu``.
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    x = as_tensor(x)
    check_floating("gelu", x=x)
    return GELU(approximate, save=will_record(x))(x)
