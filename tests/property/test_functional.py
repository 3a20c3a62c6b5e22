"""nn.functional against torch.nn.functional, fused and composed versions: linear, relu, leaky_relu, silu,
gelu (both approximations), softmax/log_softmax, layer_norm, cross_entropy (ignore_index, every reduction),
mse_loss, embedding, scaled_dot_product_attention (causal or not, boolean or additive masks, scale).

Inputs have size-0 and size-1 axes, any number of leading dimensions and every memory layout. The fused
ops' backward runs on raw arrays, so their first derivatives are compared; the composed twins (written
from autograd primitives, ``F.composed``) are compared to second order. Two documented differences are
translated on the PyTorch side: cross_entropy takes the classes on the LAST axis (a language model's
layout), and is_causal aligns the mask bottom-right when T != S (PyTorch: top-left).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hypothesis")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import numpy2gpt.nn.functional as F  # noqa: E402, N812 - the usual alias
from numpy2gpt.autograd import Tensor  # noqa: E402
from tests.property.differential import assert_like_torch, assert_like_torch_or_float64  # noqa: E402
from tests.property.strategies import FLOATS, arrays, broadcastable, budget, shapes  # noqa: E402

TF = torch.nn.functional
C = F.composed


def both(data: Any, fused: Any, composed: Any, theirs: Any, xs: list[np.ndarray], scale: float = 1.0,
         check: Any = assert_like_torch) -> None:  # fmt: skip
    """The fused op to first order, or its composed twin to second order (one of the two per example); some
    inputs may be constants (requires_grad=False). ``check`` compares (``assert_like_torch`` or its variant
    falling back on PyTorch's float64)."""
    frozen = data.draw(st.lists(st.booleans(), max_size=len(xs)), "inputs without requires_grad")
    if data.draw(st.booleans(), "composed"):
        check(composed, theirs, xs, second=True, scale=scale, frozen=frozen)
    else:
        check(fused, theirs, xs, scale=scale, frozen=frozen)


@given(st.data())
@budget(120)
def test_activations(data: Any) -> None:
    x = data.draw(arrays(data.draw(shapes(), "shape"), data.draw(st.sampled_from(FLOATS)), "wide"), "x")
    name = data.draw(st.sampled_from(["relu", "leaky_relu", "silu", "gelu-none", "gelu-tanh"]), "op")
    if name.startswith("gelu"):
        approx = name[5:]
        both(data, lambda t: F.gelu(t, approx), lambda t: C.gelu(t, approximate=approx),
             lambda t: TF.gelu(t, approximate=approx), [x])  # fmt: skip
    elif name == "leaky_relu":
        slope = data.draw(st.sampled_from([0.01, 0.2, 1.5]), "slope")
        both(data, lambda t: F.leaky_relu(t, slope), lambda t: C.leaky_relu(t, slope),
             lambda t: TF.leaky_relu(t, slope), [x])  # fmt: skip
    else:
        both(data, getattr(F, name), getattr(C, name), getattr(TF, name), [x])


@given(st.data())
@budget(120)
def test_linear(data: Any) -> None:
    lead = data.draw(shapes(max_dims=3, max_side=3), "leading shape")
    n_in, n_out = data.draw(st.integers(0, 4), "in"), data.draw(st.integers(0, 4), "out")
    dtype = data.draw(st.sampled_from(FLOATS), "dtype")
    xs = [data.draw(arrays((*lead, n_in), dtype), "x"), data.draw(arrays((n_out, n_in), dtype), "weight")]
    if data.draw(st.booleans(), "bias"):
        xs.append(data.draw(arrays((n_out,), dtype), "bias"))
    both(data, F.linear, C.linear, TF.linear, xs, scale=5)


@given(st.data())
@budget(120)
def test_softmax(data: Any) -> None:
    shape = data.draw(shapes(), "shape")
    dim = data.draw(st.integers(-len(shape), len(shape) - 1) if shape else st.sampled_from([0, -1]), "dim")
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS)), "wide"), "x")
    if data.draw(st.booleans(), "log"):
        both(data, lambda t: F.log_softmax(t, dim), lambda t: C.log_softmax(t, dim), lambda t: t.log_softmax(dim), [x])
    else:
        both(data, lambda t: F.softmax(t, dim), lambda t: C.softmax(t, dim), lambda t: t.softmax(dim), [x])


@given(st.data())
@budget(120)
def test_layer_norm(data: Any) -> None:
    shape = data.draw(shapes(min_dims=1, max_dims=4), "shape")
    k = data.draw(st.integers(1, min(2, len(shape))), "normalized dims")
    norm = shape[-k:]
    dtype = data.draw(st.sampled_from(FLOATS), "dtype")
    eps = data.draw(st.sampled_from([1e-5, 1e-3]), "eps")
    xs = [data.draw(arrays(shape, dtype), "x")]
    affine = data.draw(st.sampled_from(["none", "weight", "both"]), "affine")
    if affine != "none":
        xs.append(data.draw(arrays(norm, dtype), "weight"))
    if affine == "both":
        xs.append(data.draw(arrays(norm, dtype), "bias"))
    spec = norm[0] if k == 1 and data.draw(st.booleans(), "as an int") else norm
    # Over one element (or nearly equal ones) x - mean is 0 (or tiny) and rstd up to 1/sqrt(eps): PyTorch's
    # float32 gradient is then its own rounding times 316 (3e-5 where the exact, float64, gradient is 0).
    both(data, lambda t, *wb: F.layer_norm(t, spec, *wb, eps=eps), lambda t, *wb: C.layer_norm(t, spec, *wb, eps=eps),
         lambda t, *wb: TF.layer_norm(t, norm, *wb, eps=eps), xs, scale=10,
         check=assert_like_torch_or_float64)  # fmt: skip


@given(st.data())
@budget(150)
def test_cross_entropy(data: Any) -> None:
    lead = data.draw(shapes(max_dims=3, max_side=3), "leading shape")
    classes = data.draw(st.integers(1, 5), "classes")
    dtype = data.draw(st.sampled_from(FLOATS), "dtype")
    logits = data.draw(arrays((*lead, classes), dtype, "wide"), "logits")
    ignore = data.draw(st.sampled_from([-100, 0, -1]), "ignore_index")
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    targets = rng.integers(0, classes, lead)
    targets[rng.random(lead) < data.draw(st.sampled_from([0.0, 0.3, 1.0]), "ignored share")] = ignore
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]), "reduction")

    def theirs(t: torch.Tensor) -> torch.Tensor:
        loss = TF.cross_entropy(t.reshape(-1, classes), torch.from_numpy(targets.reshape(-1)), ignore_index=ignore,
                                reduction=reduction)  # fmt: skip
        return loss.reshape(lead) if reduction == "none" else loss

    both(data, lambda t: F.cross_entropy(t, targets, ignore, reduction),
         lambda t: C.cross_entropy(t, targets, ignore_index=ignore, reduction=reduction), theirs, [logits],
         scale=5)  # fmt: skip


@given(st.data())
@budget(80)
def test_mse_loss(data: Any) -> None:
    shape = data.draw(shapes(), "shape")
    dtype = data.draw(st.sampled_from(FLOATS), "dtype")
    xs = [data.draw(arrays(shape, dtype), "input"), data.draw(arrays(shape, dtype), "target")]
    reduction = data.draw(st.sampled_from(["mean", "sum", "none"]), "reduction")
    both(data, lambda a, b: F.mse_loss(a, b, reduction), lambda a, b: C.mse_loss(a, b, reduction),
         lambda a, b: TF.mse_loss(a, b, reduction=reduction), xs, scale=5)  # fmt: skip


@given(st.data())
@budget(100)
def test_embedding(data: Any) -> None:
    rows, dim = data.draw(st.integers(1, 6), "rows"), data.draw(st.integers(0, 4), "dim")
    ishape = data.draw(shapes(max_dims=3), "ids shape")
    ids = np.random.default_rng(data.draw(st.integers(0, 99))).integers(0, rows, ishape)  # repeats likely
    weight = data.draw(arrays((rows, dim), data.draw(st.sampled_from(FLOATS))), "weight")
    both(data, lambda w: F.embedding(ids, w), lambda w: C.embedding(ids, w),
         lambda w: TF.embedding(torch.from_numpy(ids), w), [weight])  # fmt: skip


@given(st.data())
@budget(150)
def test_attention(data: Any) -> None:
    batch = data.draw(shapes(max_dims=2, max_side=2), "batch")
    t, s = data.draw(st.integers(0, 4), "T"), data.draw(st.integers(0, 4), "S")
    e, ev = data.draw(st.integers(0, 3), "E"), data.draw(st.integers(0, 3), "Ev")
    dtype = data.draw(st.sampled_from(FLOATS), "dtype")
    kv_batch = data.draw(broadcastable(batch), "k/v batch")
    q = data.draw(arrays((*batch, t, e), dtype), "q")
    k = data.draw(arrays((*kv_batch, s, e), dtype), "k")
    v = data.draw(arrays((*kv_batch, s, ev), dtype), "v")
    scale = data.draw(st.sampled_from([None, 0.5]), "scale")
    kind = data.draw(st.sampled_from(["none", "causal", "bool", "float"]), "mask")
    mask = None
    scores = (*np.broadcast_shapes(batch, kv_batch), t, s)
    fits = lambda m: len(m) >= 2 and np.broadcast_shapes(m, scores) == scores  # noqa: E731 - PyTorch refuses 1-D masks
    mshape = data.draw(broadcastable(scores).filter(fits), "mask shape")
    if kind == "bool":
        mask = np.random.default_rng(data.draw(st.integers(0, 99))).random(mshape) > 0.3
    elif kind == "float":
        mask = np.random.default_rng(data.draw(st.integers(0, 99))).standard_normal(mshape).astype(dtype)
    causal = kind == "causal"
    theirs_mask = torch.from_numpy(np.tri(t, s, s - t, dtype=bool)) if causal else None
    if mask is not None:
        theirs_mask = torch.from_numpy(mask)

    def theirs(*qkv: torch.Tensor) -> torch.Tensor:  # batch dims broadcast first (PyTorch's own broadcasting
        # gives a wrong shape for a size-0 batch: q (3, 0), k and v (0, 2, 0) -> (3, 0))
        full = torch.broadcast_shapes(*(x.shape[:-2] for x in qkv))
        qkv = tuple(x.expand(*full, *x.shape[-2:]) for x in qkv)
        return TF.scaled_dot_product_attention(*qkv, attn_mask=theirs_mask, scale=scale)

    def theirs_math(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The same in PyTorch ops (its fused attention has no second derivative on the CPU)."""
        scores = q @ k.transpose(-1, -2) * (scale if scale is not None else 1 / math.sqrt(e) if e else 1.0)
        if theirs_mask is not None and theirs_mask.dtype == torch.bool:
            scores = scores.masked_fill(~theirs_mask, -math.inf)
        elif theirs_mask is not None:
            scores = scores + theirs_mask
        dead = (scores == -math.inf).all(-1, keepdim=True)  # a row that may see no key gives 0 (as PyTorch's)
        weights = torch.where(dead, 0.0, torch.where(dead, 0.0, scores).softmax(-1))
        return weights @ v

    frozen = data.draw(st.lists(st.booleans(), max_size=3), "inputs without requires_grad")
    if data.draw(st.booleans(), "composed"):
        assert_like_torch(partial(C.scaled_dot_product_attention, attn_mask=mask, is_causal=causal, scale=scale),
                          theirs_math, [q, k, v], second=True, scale=10, frozen=frozen)  # fmt: skip
    else:
        assert_like_torch(partial(F.scaled_dot_product_attention, attn_mask=mask, is_causal=causal, scale=scale),
                          theirs, [q, k, v], scale=10, frozen=frozen)  # fmt: skip


@given(st.data())
@budget(60)
def test_dropout(data: Any) -> None:
    """p = 0, p = 1 and eval mode are deterministic: as PyTorch. Otherwise every element is 0 or x / (1 - p), the
    gradient follows the same mask, the fused op and its composed twin draw the same mask from the same seed,
    and about 1 - p of the elements are kept."""
    x = data.draw(arrays(data.draw(shapes(max_dims=3), "shape"), data.draw(st.sampled_from(FLOATS)), "away"), "x")
    p = data.draw(st.sampled_from([0.0, 1.0, 0.1, 0.5, 0.9]), "p")
    training = data.draw(st.booleans(), "training")
    if p in (0.0, 1.0) or not training:
        for lib in (F, C):
            assert_like_torch(lambda t, lib=lib: lib.dropout(t, p, training), lambda t: TF.dropout(t, p, training), [x])
        return
    seed = data.draw(st.integers(0, 99), "seed")
    t, tc = Tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    y = F.dropout(t, p, generator=np.random.default_rng(seed))
    yc = C.dropout(tc, p, generator=np.random.default_rng(seed))
    kept = y.data != 0
    np.testing.assert_allclose(y.data[kept], (x / (1 - p)).astype(x.dtype)[kept], rtol=1e-6)
    np.testing.assert_array_equal(yc.data != 0, kept)
    y.sum().backward()
    yc.sum().backward()
    np.testing.assert_allclose(t.grad.data, np.where(kept, 1 / (1 - p), 0).astype(x.dtype), rtol=1e-6)
    np.testing.assert_allclose(tc.grad.data, t.grad.data, rtol=1e-6)
    if x.size >= 30:
        assert abs(kept.mean() - (1 - p)) < 4 * np.sqrt(p * (1 - p) / x.size) + 1e-9, f"kept {kept.mean():.2f}"
