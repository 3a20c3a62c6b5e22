"""dropout: inverted dropout, as ``torch.nn.functional.dropout``, and the keep masks attention's dropout shares.

Each element is kept with probability 1 - p and scaled by 1 / (1 - p), so the output's expected value equals
the input and evaluation needs no rescaling. Composed twin: ``composed.dropout`` (the same mask from the same
generator state).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numpy2gpt.autograd import Function, Tensor, as_tensor, get_array_module
from numpy2gpt.autograd.device import default_generator_like
from numpy2gpt.nn.functional._util import check_floating


def keep_mask(shape: tuple[int, ...], p: float, dtype: np.dtype, generator: np.random.Generator) -> np.ndarray:
    """A boolean mask, True with probability 1 - p: uniform draws (in ``dtype``, float32 by default) >= p."""
    draw_dtype = dtype if dtype in (np.float32, np.float64) else np.float32
    return generator.random(shape, dtype=draw_dtype) >= p


class Dropout(Function):
    """y = x * keep * scale with scale = 1 / (1 - p).  dx = dy * keep * scale (the same mask).

    keep_i ~ Bernoulli(1 - p), drawn from ``default_generator()`` (or a given generator) by ``dropout``.
    """

    differentiable_backward = False

    def __init__(self, keep: np.ndarray, scale: float):
        self.keep, self.scale = keep, scale

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = x * self.keep
        y *= self.scale
        return y

    def backward(self, gy: Tensor) -> np.ndarray:
        gx = gy.data * self.keep
        gx *= self.scale
        return gx


def dropout(x: Any, p: float = 0.5, training: bool = True, generator: np.random.Generator | None = None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p).

    p = 0 or ``training=False`` returns x itself (nothing recorded); p = 1 gives zeros. Composed twin:
    ``composed.dropout``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p}")
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    check_floating("dropout", x=x)
    if p == 1.0:
        return Dropout(get_array_module(x.data).zeros(x.shape, dtype=bool), 0.0)(x)
    keep = keep_mask(x.shape, p, x.dtype, generator or default_generator_like(x.data))
    return Dropout(keep, 1.0 / (1.0 - p))(x)
