"""GELU's float32 path (one exp, ``special.half_erfcx32``) against float64 math.erfc on a dense grid, tails included.

The fused-vs-composed and PyTorch tests compare at rtol 1e-5; these pin the accuracy the float32 kernel was built
for, so that a cheaper polynomial cannot slip in unnoticed.
"""

from __future__ import annotations

import math

import numpy as np

import numpy2gpt.nn.functional as F  # noqa: N812 - the usual alias
from numpy2gpt.autograd import Tensor
from numpy2gpt.nn.functional.special import half_erfcx32


def _grid() -> np.ndarray:
    tails = np.geomspace(1e-6, 14, 3000)
    return np.concatenate([np.linspace(-14, 14, 280_001), tails, -tails, [0.0, -0.0]]).astype(np.float32)


def _reference(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GELU and its derivative in float64 from math.erfc (the float32 inputs taken exactly)."""
    x64 = x.astype(np.float64)
    phi = np.array([0.5 * math.erfc(-v / math.sqrt(2.0)) for v in x64])
    return x64 * phi, phi + x64 * np.exp(-(x64**2) / 2) / math.sqrt(2 * math.pi)


def test_half_erfcx32_is_within_8e_7_where_it_matters():
    a = np.linspace(0, 3.5, 20_001)
    t = (2.0 / (2.0 + a)).astype(np.float32)
    got = half_erfcx32(t, out=np.empty_like(t)).astype(np.float64)
    a_of_t = 2.0 / t.astype(np.float64) - 2.0  # the a this float32 t stands for
    ref = np.array([0.5 * math.exp(v * v) * math.erfc(v) for v in a_of_t])
    assert np.abs(got / ref - 1).max() < 8e-7


def test_float32_gelu_and_its_derivative_are_accurate_also_in_the_tails():
    x = _grid()
    t = Tensor(x, requires_grad=True)
    y = F.gelu(t)
    y.backward(np.ones_like(x))
    assert y.dtype == np.float32 and t.grad.dtype == np.float32
    y_ref, d_ref = _reference(x)
    nonzero = np.abs(y_ref) > 1e-30
    rel = np.abs(y.data[nonzero] / y_ref[nonzero] - 1)
    core = np.abs(x[nonzero]) <= 5
    assert rel[core].max() < 1e-6  # a few float32 ulps
    assert rel.max() < 6e-6  # in the tails exp(-x^2/2) rounds to ~x^2/2 ulps, as in any float32 erfc
    assert np.abs(t.grad.data - d_ref).max() < 3e-7  # dy/dx in [-0.17, 1.13]: absolute error, a few ulps
    assert (y.data[x == 0] == 0).all() and (y.data[x < -13] <= 0).all() and np.isfinite(y.data).all()


def test_float32_gelu_at_infinities_and_nan_is_pytorchs():
    x = np.array([np.inf, np.nan, 30.0, -30.0, -np.inf], np.float32)
    with np.errstate(invalid="ignore"):  # -inf * Phi(-inf) = -inf * 0: nan, as PyTorch's gelu(-inf)
        y = F.gelu(x).data
    assert y[0] == np.inf and np.isnan(y[1]) and y[2] == 30.0 and y[3] == 0.0 and np.isnan(y[4])
