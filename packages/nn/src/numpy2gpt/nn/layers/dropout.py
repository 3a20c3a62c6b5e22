"""Dropout: during training, zero each element with probability p and scale the rest by 1 / (1 - p)."""

from __future__ import annotations

import numpy2gpt.nn.functional as F  # noqa: N812 - the name everyone uses, as in torch
from numpy2gpt.autograd import Tensor
from numpy2gpt.nn.module import Module


class Dropout(Module):
    """y = x * mask / (1 - p) with mask ~ Bernoulli(1 - p) while ``self.training``; y = x in eval mode.

    The masks come from ``numpy2gpt.autograd.default_generator()``, so ``manual_seed`` makes them repeatable.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace=False"  # as torch prints it (this Dropout never works in place)
