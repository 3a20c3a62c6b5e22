"""Arithmetic with broadcasting: add, sub, mul, div, neg, pow.

Every binary op broadcasts its operands as NumPy does, so each gradient is computed at the broadcast shape
and then summed back down to its input's shape with ``sum_to``: an input of shape (4,) added to a (3, 1, 4)
tensor was used 3 times, and its gradient is the sum of those 3 uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numpy2gpt.autograd.backend import get_array_module
from numpy2gpt.autograd.function import Function
from numpy2gpt.autograd.ops._util import as_float, as_tensor, check_broadcast, operands
from numpy2gpt.autograd.ops.shape import sum_to
from numpy2gpt.autograd.tensor import Tensor


class Add(Function):
    """y = a + b.  da = sum_to(dy, a.shape), db = sum_to(dy, b.shape)."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        return (sum_to(gy, a.shape) if need_a else None, sum_to(gy, b.shape) if need_b else None)


class Sub(Function):
    """y = a - b.  da = sum_to(dy), db = -sum_to(dy)."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a - b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        return (sum_to(gy, a.shape) if need_a else None, -sum_to(gy, b.shape) if need_b else None)


class Mul(Function):
    """y = a * b.  da = sum_to(dy * b), db = sum_to(dy * a)."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a * b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        return (sum_to(gy * b, a.shape) if need_a else None, sum_to(gy * a, b.shape) if need_b else None)


class Div(Function):
    """y = a / b.  da = sum_to(dy / b), db = sum_to(-dy * y / b) (= -dy a / b**2, without squaring b, which
    overflows early: a = 1e30, b = 1e20 in float32)."""

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a / b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        ga = sum_to(gy / b, a.shape) if need_a else None
        gb = sum_to(-(gy * self.outputs[0]()) / b, b.shape) if need_b else None
        return ga, gb


class Neg(Function):
    """y = -x.  dx = -dy."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return -x

    def backward(self, gy: Tensor) -> Tensor:
        return -gy


class PowScalar(Function):
    """y = x ** c for a constant exponent c.  dx = dy * c * x ** (c - 1).

    The special values follow PyTorch's CPU kernels. float32/float64: c = 0.5 is sqrt (NumPy's x ** 0.5
    already is) and c = -0.5 is 1 / sqrt(x), where C's pow gives (-inf) ** -0.5 = 0 and (-0.0) ** -0.5 = +inf
    (1 / sqrt: nan and -inf); so x ** 0.5's gradient c * x ** -0.5 is PyTorch's too: -inf at -0.0, nan at
    -inf. float16: C's pow, in wider floats, for every exponent, rounded back ((-inf) ** 0.5 = inf, not sqrt's nan).
    """

    def __init__(self, exponent: float):
        self.exponent = exponent

    @property
    def graph_label(self) -> str:
        return f"Pow · {self.exponent:g}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        if x.dtype == np.float16:
            return get_array_module(x).float_power(x, self.exponent).astype(np.float16)  # (np.power: sqrt)
        if self.exponent == -0.5:
            return 1.0 / get_array_module(x).sqrt(x)
        return x**self.exponent

    def backward(self, gy: Tensor) -> Tensor:
        (x,) = self.inputs
        c = self.exponent
        if c == 0:  # y = 1: flat everywhere, also at x = 0 where the formula would give 0 * inf = nan
            return gy * 0.0
        if c == 2:
            return gy * x * 2.0
        return gy * c * x ** (c - 1)


class Pow(Function):
    """y = a ** b for two tensors.  da = sum_to(dy * b * a**(b-1)), db = sum_to(dy * a**b * log(a)).

    Two places where the formulas would give nan, both handled as PyTorch does: where b == 0 the true da is
    0 (y = 1 whatever a), not 0 * 0**-1 = 0 * inf; where a == 0 and b >= 0 the true db is 0, not the
    0 * log(0) = 0 * -inf of the formula.

    Where b == 0, da is PyTorch's where(b == 0, 0, dy * b * a**(b-1)), computed as where(b == 0, 0, dy) * b *
    a**(b-1) (no inf * 0 to warn about): a constant 0 there, whatever dy (nan or inf included), so its own
    derivatives are 0 too: d(da)/db is 0 where b == 0 (the formula's would be dy / a), and d(db)/da is
    dy * a**b / a alone (the formula's nan * 0 term is dropped where log(a) is nan).
    """

    def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a**b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        from numpy2gpt.autograd.ops.elementwise import log
        from numpy2gpt.autograd.ops.indexing import where

        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        ga = None
        if need_a:
            zero_b = b.data == 0
            safe_b = where(zero_b, 1.0, b)  # a**0 there, never 0**-1 = inf
            ga = sum_to(where(zero_b, 0.0, gy) * b * a ** (safe_b - 1.0), a.shape)  # 0 * 0 * a**0, even for dy = inf
        gb = None
        if need_b:
            flat = (a.data == 0) & (b.data >= 0)
            safe_a = where(flat, 1.0, a.astype(gy.dtype))  # log(1) = 0 where the gradient must be 0
            gb = sum_to(gy * self.outputs[0]() * log(safe_a), b.shape)  # log in y's dtype, not a narrower a's
        return ga, gb


def _binary(fn: type[Function], name: str, a: Any, b: Any) -> Tensor:
    a, b = operands(a, b)
    try:
        return fn()(a, b)
    except ValueError:  # NumPy's own message names neither the op nor the rule: say it clearly
        check_broadcast(name, a, b)
        raise


def add(a: Any, b: Any) -> Tensor:
    """a + b, broadcasting."""
    return _binary(Add, "add", a, b)


def sub(a: Any, b: Any) -> Tensor:
    """a - b, broadcasting."""
    return _binary(Sub, "sub", a, b)


def mul(a: Any, b: Any) -> Tensor:
    """a * b (elementwise), broadcasting."""
    return _binary(Mul, "mul", a, b)


def div(a: Any, b: Any) -> Tensor:
    """a / b (true division), broadcasting; two integer operands give the default float dtype."""
    a, b = operands(a, b)
    if a.data.dtype.kind != "f":  # then b is not floating either
        a, b = as_float(a), as_float(b)
    return _binary(Div, "div", a, b)


def neg(x: Any) -> Tensor:
    """-x."""
    return Neg()(as_tensor(x))


def pow(base: Any, exponent: Any) -> Tensor:  # noqa: A001 - named like torch.pow
    """base ** exponent; the exponent may be a Python number (fast path) or a tensor."""
    if isinstance(base, Tensor) and isinstance(exponent, (int, float, np.number)) and not isinstance(exponent, bool):
        # .item() turns a NumPy scalar into a Python number, which NumPy 2 never lets upcast a float32 array
        exponent = exponent.item() if isinstance(exponent, np.generic) else exponent
        if isinstance(exponent, float):  # an integer tensor to a float power: the default float dtype
            base = as_float(base)
        return PowScalar(exponent)(base)
    return _binary(Pow, "pow", base, exponent)
