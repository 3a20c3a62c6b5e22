"""Linear: y = x W^T + b, the affine map every MLP and attention projection is made of."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import numpy2gpt.nn.functional as F  # noqa: N812 - the name everyone uses, as in torch
from numpy2gpt.autograd import Tensor, get_default_dtype
from numpy2gpt.nn import init
from numpy2gpt.nn.module import Module
from numpy2gpt.nn.parameter import Parameter


class Linear(Module):
    """y = x @ weight.T + bias.

    Shapes: x (..., in_features) -> y (..., out_features); weight (out_features, in_features) as in torch
    (so GPT-2's Conv1D weights are loaded transposed), bias (out_features,) or absent with ``bias=False``.

    Initialisation is torch's: ``kaiming_uniform_(weight, a=sqrt(5))``, which is U(-k, k) with
    k = 1/sqrt(in_features), and the bias from the same U(-k, k).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = None) -> None:
        super().__init__()
        if in_features < 0 or out_features < 0:
            raise ValueError(f"Linear needs non-negative sizes, got in={in_features}, out={out_features}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        dtype = np.dtype(dtype) if dtype is not None else get_default_dtype()
        self.weight = Parameter(np.empty((self.out_features, self.in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(self.out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's default: weight and bias both from U(-1/sqrt(in_features), 1/sqrt(in_features))."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
