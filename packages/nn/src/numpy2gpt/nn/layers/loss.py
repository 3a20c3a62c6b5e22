"""Loss modules: MSELoss holds its reduction and calls ``F.mse_loss`` (as ``torch.nn.MSELoss``)."""

from __future__ import annotations

from typing import Any

import numpy2gpt.nn.functional as F  # noqa: N812 - the name everyone uses, as in torch
from numpy2gpt.autograd import Tensor
from numpy2gpt.nn.module import Module


class MSELoss(Module):
    """loss = mean (or sum, or each, by ``reduction``) of (input - target)^2; ``loss_fn(input, target)``."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"MSELoss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def forward(self, input: Any, target: Any) -> Tensor:  # noqa: A002 - torch's name
        return F.mse_loss(input, target, reduction=self.reduction)
