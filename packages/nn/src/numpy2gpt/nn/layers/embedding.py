"""Embedding: a lookup table, row ``i`` of the weight is the vector for token ``i``."""

from __future__ import annotations

from typing import Any

import numpy as np

import numpy2gpt.nn.functional as F  # noqa: N812 - the name everyone uses, as in torch
from numpy2gpt.autograd import Tensor, get_default_dtype
from numpy2gpt.nn import init
from numpy2gpt.nn.module import Module
from numpy2gpt.nn.parameter import Parameter


class Embedding(Module):
    """y = weight[idx].

    Shapes: idx integer (...) -> y (..., embedding_dim); weight (num_embeddings, embedding_dim), initialised
    N(0, 1) as in torch. The gradient of a row is the sum of the gradients of every position that read it.
    An id outside [0, num_embeddings) raises IndexError naming it (see ``F.embedding``).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype: Any = None) -> None:
        super().__init__()
        if num_embeddings < 0 or embedding_dim < 0:
            raise ValueError(f"Embedding needs non-negative sizes, got {num_embeddings}, {embedding_dim}")
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        dtype = np.dtype(dtype) if dtype is not None else get_default_dtype()
        self.weight = Parameter(np.empty((self.num_embeddings, self.embedding_dim), dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight)

    def forward(self, idx: Any) -> Tensor:
        return F.embedding(idx, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"
