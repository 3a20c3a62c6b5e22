"""split_heads (the fused q, k, v head split) equals its composed twin, forward and backward."""

from __future__ import annotations

import numpy as np
import pytest

from numpy2gpt.autograd import Tensor, gradcheck
from numpy2gpt.gpt.heads import split_heads, split_heads_composed


def _grads(fn, qkv, weights, use=(0, 1, 2)):
    x = Tensor(qkv.copy(), requires_grad=True)
    pieces = fn(x, 4)
    loss = sum((pieces[i] * Tensor(weights[i])).sum() for i in use)
    loss.backward()
    return [p.data for p in pieces], x.grad.data


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("use", [(0, 1, 2), (0, 2), (1,)], ids=["qkv", "q_v", "k_only"])
def test_matches_composed(dtype, use):
    r = np.random.default_rng(0)
    qkv = r.standard_normal((2, 5, 3 * 4 * 3)).astype(dtype)  # B 2, T 5, C 12 = 4 heads of 3
    weights = [r.standard_normal((2, 4, 5, 3)).astype(dtype) for _ in range(3)]
    fused, g1 = _grads(split_heads, qkv, weights, use)
    composed, g2 = _grads(split_heads_composed, qkv, weights, use)
    for a, b in zip(fused, composed, strict=True):
        assert a.shape == (2, 4, 5, 3)
        np.testing.assert_array_equal(a, b)
    assert g1.dtype == dtype
    np.testing.assert_array_equal(g1, g2)


def test_forward_is_a_view_and_layout_is_nanogpts():
    qkv = np.arange(2 * 3 * 24, dtype=np.float32).reshape(2, 3, 24)  # C 8 = 2 heads of 4
    q, k, v = split_heads(Tensor(qkv), 2)
    assert np.shares_memory(q.data, qkv)
    c, hd = 8, 4
    for which, piece in enumerate((q, k, v)):
        for h in range(2):
            np.testing.assert_array_equal(piece.data[:, h], qkv[:, :, which * c + h * hd : which * c + (h + 1) * hd])


def test_gradcheck():
    qkv = Tensor(np.random.default_rng(1).standard_normal((1, 3, 12)), requires_grad=True)
    w = [Tensor(np.random.default_rng(i).standard_normal((1, 2, 3, 2))) for i in range(3)]
    assert gradcheck(lambda x: sum((p * wi).sum() for p, wi in zip(split_heads(x, 2), w, strict=True)), qkv)


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match="split_heads"):
        split_heads(Tensor(np.zeros((2, 3, 10), np.float32)), 2)
