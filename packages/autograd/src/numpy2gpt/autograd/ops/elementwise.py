"""Elementwise math: exp, log, sqrt, sin, cos, tanh, sigmoid, relu, abs, clip, maximum, minimum.

Where the derivative is cheapest in terms of the output (exp, sqrt, tanh, sigmoid), backward uses the
output y, which the engine keeps alive until this Function's backward has run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from numpy2gpt.autograd.backend import get_array_module
from numpy2gpt.autograd.function import Function
from numpy2gpt.autograd.grad_mode import is_grad_enabled
from numpy2gpt.autograd.ops._util import as_float, as_tensor, check_broadcast, operands
from numpy2gpt.autograd.ops.shape import sum_to
from numpy2gpt.autograd.tensor import Tensor


class Exp(Function):
    """y = e**x.  dx = dy * y."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return get_array_module(x).exp(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy * self.outputs[0]()


class Log(Function):
    """y = ln(x).  dx = dy / x."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return get_array_module(x).log(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy / self.inputs[0]


class Sqrt(Function):
    """y = sqrt(x).  dx = dy / (2 y)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return get_array_module(x).sqrt(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy / (self.outputs[0]() * 2.0)


class Tanh(Function):
    """y = tanh(x).  dx = dy * (1 - y**2)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return get_array_module(x).tanh(x)

    def backward(self, gy: Tensor) -> Tensor:
        y = self.outputs[0]()
        return gy * (1.0 - y * y)


class Sin(Function):
    """y = sin(x).  dx = dy * cos(x)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return get_array_module(x).sin(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy * cos(self.inputs[0])


class Cos(Function):
    """y = cos(x).  dx = -dy * sin(x)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return get_array_module(x).cos(x)

    def backward(self, gy: Tensor) -> Tensor:
        return -(gy * sin(self.inputs[0]))


class Sigmoid(Function):
    """y = 1 / (1 + e**-x).  dx = dy * y * (1 - y).

    Computed from e = e**-|x|, which cannot overflow, as 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0:
    no cancellation in either tail (``0.5 * (1 + tanh(x / 2))`` rounds sigmoid(-20) to 0 in float32)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        xp = get_array_module(x)
        e = xp.exp(-xp.abs(x))
        y = xp.add(e, 1.0, out=xp.empty_like(e))  # out=: stays an array if 0-d
        xp.divide(1.0, y, out=y)
        return xp.where(x < 0, e * y, y)

    def backward(self, gy: Tensor) -> Tensor:
        y = self.outputs[0]()
        return gy * y * (1.0 - y)


class ReLU(Function):
    """y = max(x, 0).  dx = dy where not x <= 0, else 0 (0 at x = 0; a nan passes dy on: PyTorch's mask)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return get_array_module(x).clip(x, 0.0, math.inf)  # max(x, 0); 5x faster than np.maximum (two scalar bounds)

    def backward(self, gy: Tensor) -> Tensor | np.ndarray:
        passes = ~(self.inputs[0].data <= 0)
        if is_grad_enabled():  # create_graph=True: a recorded product, differentiable again
            return gy * Tensor._wrap(passes.astype(gy.dtype))
        return get_array_module(passes).multiply(gy.data, passes)


class Abs(Function):
    """y = |x|.  dx = dy * sign(x), with sign 0 at x = 0 and at nan (as PyTorch)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return get_array_module(x).abs(x)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0].data
        sign = (x > 0).astype(gy.dtype) - (x < 0)  # np.sign(nan) would be nan
        return gy * Tensor._wrap(sign)


class Clip(Function):
    """y = min(max(x, lo), hi).  dx = dy where lo <= x <= hi, else 0 (the bounds pass gradient, as PyTorch)."""

    def __init__(self, lo: float | None, hi: float | None):
        self.lo, self.hi = lo, hi

    def forward(self, x: np.ndarray) -> np.ndarray:
        return get_array_module(x).clip(x, self.lo, self.hi)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0].data
        inside = get_array_module(x).ones(x.shape, dtype=bool)
        if self.lo is not None:
            inside &= x >= self.lo
        if self.hi is not None:
            inside &= x <= self.hi
        return gy * Tensor._wrap(inside.astype(gy.dtype))


class Maximum(Function):
    """y = max(a, b) elementwise.  The larger input gets dy; on a tie each gets dy / 2; where a nan makes the
    comparison false, both get dy (PyTorch's masks: a's dy is zeroed only where a < b)."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return get_array_module(a, b).maximum(a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs[0].data, self.inputs[1].data
        return _route(self, gy, a_loses=a < b, b_loses=a > b)


class Minimum(Function):
    """y = min(a, b) elementwise.  The smaller input gets dy; on a tie each gets dy / 2; where a nan makes the
    comparison false, both get dy (as PyTorch)."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return get_array_module(a, b).minimum(a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs[0].data, self.inputs[1].data
        return _route(self, gy, a_loses=a > b, b_loses=a < b)


def _route(f: Function, gy: Tensor, a_loses: np.ndarray, b_loses: np.ndarray) -> tuple[Tensor | None, Tensor | None]:
    """Split dy between a and b: weight 0 to the loser, 1/2 each on ties, 1 otherwise."""
    a, b = f.inputs
    xp = get_array_module(a_loses)
    tie = a.data == b.data
    need_a, need_b = f.needs_input_grad
    ga = gb = None
    if need_a:
        weight_a = xp.where(tie, 0.5, ~a_loses).astype(gy.dtype)
        ga = sum_to(gy * Tensor._wrap(weight_a), a.shape)
    if need_b:
        weight_b = xp.where(tie, 0.5, ~b_loses).astype(gy.dtype)
        gb = sum_to(gy * Tensor._wrap(weight_b), b.shape)
    return ga, gb


def exp(x: Any) -> Tensor:
    """e ** x."""
    return Exp()(as_float(x))


def log(x: Any) -> Tensor:
    """Natural logarithm."""
    return Log()(as_float(x))


def sqrt(x: Any) -> Tensor:
    """Square root."""
    return Sqrt()(as_float(x))


def tanh(x: Any) -> Tensor:
    """Hyperbolic tangent."""
    return Tanh()(as_float(x))


def sin(x: Any) -> Tensor:
    """Sine (radians)."""
    return Sin()(as_float(x))


def cos(x: Any) -> Tensor:
    """Cosine (radians)."""
    return Cos()(as_float(x))


def sigmoid(x: Any) -> Tensor:
    """Logistic sigmoid 1 / (1 + e**-x)."""
    return Sigmoid()(as_float(x))


def relu(x: Any) -> Tensor:
    """max(x, 0) elementwise."""
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"relu: needs a floating point tensor, got dtype {x.dtype}")
    return ReLU()(x)


def abs(x: Any) -> Tensor:  # noqa: A001 - named like torch.abs
    """Absolute value."""
    return Abs()(as_tensor(x))


def clip(x: Any, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
    """Clamp every element into [min, max]; either bound may be None."""
    if min is None and max is None:
        raise ValueError("clip: at least one of min and max must be given")
    # Python numbers: a NumPy float64 bound would upcast a float32 tensor under NumPy 2's promotion rules
    lo, hi = (b.item() if isinstance(b, np.generic) else b for b in (min, max))
    x = as_tensor(x)
    if x.dtype.kind != "f" and (isinstance(lo, float) or isinstance(hi, float)):
        x = as_float(x)  # an integer tensor with a float bound: the default float dtype, as PyTorch
    if x.dtype.kind == "f":
        lo, hi = (None if b is None else float(b) for b in (lo, hi))
    return Clip(lo, hi)(x)


clamp = clip


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum, broadcasting."""
    a, b = operands(a, b)
    try:
        return Maximum()(a, b)
    except ValueError:
        check_broadcast("maximum", a, b)
        raise


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum, broadcasting."""
    a, b = operands(a, b)
    try:
        return Minimum()(a, b)
    except ValueError:
        check_broadcast("minimum", a, b)
        raise
