"""LayerNorm: normalise each vector over its last axes, then scale and shift."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import numpy2gpt.nn.functional as F  # noqa: N812 - the name everyone uses, as in torch
from numpy2gpt.autograd import Tensor, get_default_dtype
from numpy2gpt.nn import init
from numpy2gpt.nn.module import Module
from numpy2gpt.nn.parameter import Parameter


class LayerNorm(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, mean and (biased) var over the last
    ``len(normalized_shape)`` axes.

    Shapes: x (..., *normalized_shape) -> y the same; weight and bias ``normalized_shape``, initialised to
    ones and zeros. ``bias=False`` drops the bias (nanoGPT's option); ``elementwise_affine=False`` drops both.
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        dtype = np.dtype(dtype) if dtype is not None else get_default_dtype()
        if self.elementwise_affine:
            self.weight = Parameter(np.empty(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.empty(self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
            f"bias={self.bias is not None}"
        )
