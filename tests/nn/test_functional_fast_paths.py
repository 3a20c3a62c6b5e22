"""The size-dependent fast paths of the fused ops equal their composed versions and PyTorch.

The fused ops take different code paths at GPT sizes than the small arrays the other tests use: GELU works through
large arrays in cache-sized blocks, causal attention works through long sequences in blocks of queries (skipping
the masked keys), LayerNorm takes its row means with a matrix-vector product. These tests run each at a size that
takes that path (and at an awkward size that leaves a partial last block), in float64 against the composed version
and in float32 against PyTorch, forward and gradients.
"""

from __future__ import annotations

import numpy as np
import pytest

import numpy2gpt.nn.functional as F  # noqa: N812 - the usual alias
from numpy2gpt.autograd import Tensor
from numpy2gpt.nn.functional import composed as C  # noqa: N812


def _run(fn, arrays, gy_seed=7):
    """Output and input gradients of ``fn`` at ``arrays`` under a fixed random upstream gradient."""
    xs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    y = fn(*xs)
    gy = np.random.default_rng(gy_seed).standard_normal(y.shape).astype(y.dtype)
    y.backward(gy)
    return y.data, [x.grad.data for x in xs]


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def _compare_composed(fused, composed, arrays, tol=1e-12):
    y1, g1 = _run(fused, arrays)
    y2, g2 = _run(composed, arrays)
    assert y1.dtype == y2.dtype == arrays[0].dtype
    assert _rel(y1, y2) < tol
    for a, b in zip(g1, g2, strict=True):
        assert a.dtype == arrays[0].dtype
        assert _rel(a, b) < tol


# sizes that cross the block boundaries: 3 full blocks of GELU plus a partial one; 5 query blocks plus a partial one
GELU_SHAPE = (3, 7, 10_001)  # 210,021 elements
ATTN_SHAPES = [
    ((2, 3, 333, 16), (2, 3, 333, 16)),  # T == S, several blocks and a partial last one
    ((1, 2, 200, 8), (1, 2, 260, 8)),  # T < S: the causal mask aligned bottom-right (a KV cache's shape)
    ((5, 3, 70, 8), (5, 3, 70, 8)),  # small matrices: the batch is shared out among threads
]


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_large_matches_composed_float64(approximate):
    x = np.random.default_rng(0).standard_normal(GELU_SHAPE) * 3
    _compare_composed(lambda t: F.gelu(t, approximate), lambda t: C.gelu(t, approximate), [x])


def test_gelu_tanh_float32_is_accurate_in_both_tails():
    """0.5 (1 + tanh u) lost the derivative's digits where tanh u is near -1: at x = -5.4177 the float32 gradient
    was -1.24e-6 against the exact -8.7e-8 (PyTorch's float32 kernel gives 0); sigmoid(2u) from exp(-2|u|) keeps
    them, in both tails and in y as well. The reference is the same math in float64 (PyTorch's float64 kernel,
    through 1 + tanh, gives 0 for y below x = -7.1). In the left tail y's relative error grows as 2 |u| times u's
    float32 rounding (exp(-2|u|) of a rounded u), as any float32 exp of a float32 argument does."""
    x = np.concatenate([np.linspace(-12, 12, 24_001), [-5.4177]]).astype(np.float32)
    y, (g,) = _run(lambda t: F.gelu(t, "tanh"), [x], gy_seed=3)
    gy = np.random.default_rng(3).standard_normal(x.shape).astype(np.float32).astype(np.float64)
    x64 = x.astype(np.float64)
    k = np.sqrt(2 / np.pi)
    u = k * (x64 + 0.044715 * x64**3)
    with np.errstate(over="ignore"):
        h = 1 / (1 + np.exp(-2 * u))  # sigmoid(2u) = 0.5 (1 + tanh(u))
    dydx = h + x64 * k * (1 + 3 * 0.044715 * x64**2) * 2 * h * (1 - h)
    bound = 4e-7 * (1 + 2 * np.abs(u)) * np.abs(x64 * h) + 1e-37
    assert np.all(np.abs(y - x64 * h) <= bound), np.max(np.abs(y - x64 * h) / bound)
    np.testing.assert_allclose(g, gy * dydx, rtol=2e-6, atol=3e-7)  # (|dy| up to 4: ~1e-7 in dy/dx)


def test_gelu_large_noncontiguous_input():
    x = np.random.default_rng(1).standard_normal((600, 500)).astype(np.float32).T  # a transposed view
    y, (g,) = _run(F.gelu, [x])
    y_ref, (g_ref,) = _run(F.gelu, [np.ascontiguousarray(x)])
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(g, g_ref)
    assert y.dtype == g.dtype == np.float32


@pytest.mark.parametrize("shapes", ATTN_SHAPES, ids=["T==S", "T<S", "small"])
def test_causal_attention_long_matches_composed_float64(shapes):
    (qs, ks) = shapes
    r = np.random.default_rng(2)
    q, k, v = r.standard_normal(qs), r.standard_normal(ks), r.standard_normal(ks)
    _compare_composed(
        lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True),
        lambda a, b, c: C.scaled_dot_product_attention(a, b, c, is_causal=True),
        [q, k, v],
        tol=1e-11,
    )


def test_layer_norm_wide_matches_composed_float64():
    r = np.random.default_rng(3)
    x, w, b = r.standard_normal((4, 50, 384)) * 5 + 2, r.standard_normal(384), r.standard_normal(384)
    _compare_composed(lambda a, c, d: F.layer_norm(a, 384, c, d), lambda a, c, d: C.layer_norm(a, 384, c, d), [x, w, b])


def test_fast_paths_match_torch_float32():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as TF  # noqa: N812

    r = np.random.default_rng(4)
    cases = {
        "gelu": (F.gelu, TF.gelu, [r.standard_normal(GELU_SHAPE).astype(np.float32) * 3]),
        "attention": (
            lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True),
            lambda a, b, c: TF.scaled_dot_product_attention(a, b, c, is_causal=True),
            [r.standard_normal((2, 3, 333, 16)).astype(np.float32) for _ in range(3)],
        ),
        "layer_norm": (
            lambda a, c, d: F.layer_norm(a, 384, c, d),
            lambda a, c, d: TF.layer_norm(a, (384,), c, d),
            [r.standard_normal((4, 50, 384)).astype(np.float32) * 5 + 2]
            + [r.standard_normal(384).astype(np.float32) for _ in range(2)],
        ),
    }
    for name, (ours, theirs, arrays) in cases.items():
        y, grads = _run(ours, arrays)
        ts = [torch.from_numpy(a.copy()).requires_grad_(True) for a in arrays]
        ty = theirs(*ts)
        ty.backward(torch.from_numpy(np.random.default_rng(7).standard_normal(ty.shape).astype(np.float32)))
        assert y.dtype == np.float32
        assert _rel(y, ty.detach().numpy()) < 1e-5, name
        for g, t in zip(grads, ts, strict=True):
            assert g.dtype == np.float32
            assert _rel(g, t.grad.numpy()) < 1e-5, name


@pytest.mark.parametrize("shape", [(2, 2, 150, 8), (6, 2, 30, 4)], ids=["blocks", "small"])
def test_causal_attention_with_dropout_matches_composed_float64(shape):
    from numpy2gpt.autograd import manual_seed

    r = np.random.default_rng(5)
    q, k, v = (r.standard_normal(shape) for _ in range(3))
    results = []
    for fn in (F.scaled_dot_product_attention, C.scaled_dot_product_attention):
        manual_seed(11)  # the same dropout mask on both sides
        results.append(_run(lambda a, b, c, fn=fn: fn(a, b, c, dropout_p=0.3, is_causal=True), [q, k, v]))
    (y1, g1), (y2, g2) = results
    assert _rel(y1, y2) < 1e-12
    for a, b in zip(g1, g2, strict=True):
        assert _rel(a, b) < 1e-12


def test_causal_attention_output_layout_makes_merging_heads_free():
    q, k, v = (np.random.default_rng(6).standard_normal((2, 3, 100, 4)).astype(np.float32) for _ in range(3))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True).data  # (B, H, T, hd)
    merged = y.transpose(0, 2, 1, 3)  # (B, T, H, hd), as the model merges the heads
    assert merged.flags.c_contiguous  # so the reshape to (B, T, C) that follows is a view, not a copy
