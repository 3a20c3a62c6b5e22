"""Activation modules: GELU, ReLU, LeakyReLU, SiLU, Tanh. They hold no parameters (at most a constant); each
calls its function in ``numpy2gpt.nn.functional`` or autograd."""

from __future__ import annotations

import numpy2gpt.nn.functional as F  # noqa: N812 - the name everyone uses, as in torch
from numpy2gpt.autograd import Tensor, tanh
from numpy2gpt.nn.module import Module


class GELU(Module):
    """y = x * Phi(x), Phi the standard normal CDF (``approximate="none"``), or GPT-2's
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) with ``approximate="tanh"``."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class ReLU(Module):
    """y = max(x, 0)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class Tanh(Module):
    """y = tanh(x)."""

    def forward(self, x: Tensor) -> Tensor:
        return tanh(x)


class LeakyReLU(Module):
    """y = x where x > 0, else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class SiLU(Module):
    """y = x * sigmoid(x) (the swish)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)
