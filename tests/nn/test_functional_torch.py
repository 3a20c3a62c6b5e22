"""nn.functional against torch.nn.functional: forward values and gradients on random inputs.

float64 must agree to rounding; float32 within ~1e-5 relative. Skipped only where torch is not installed
(CI installs it).
"""

from __future__ import annotations

import numpy as np
import pytest

import numpy2gpt.nn.functional as F  # noqa: N812 - the usual alias
from numpy2gpt.autograd import Tensor

torch = pytest.importorskip("torch")
TF = torch.nn.functional

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-5, atol=2e-6)}


def _ours(fn, arrays, dtype, weight):
    ts = [Tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    y = fn(*ts)
    (y * Tensor(weight.astype(dtype))).sum().backward()
    return y.data, [t.grad.data for t in ts], y.dtype, [t.grad.dtype for t in ts]


def _theirs(fn, arrays, dtype, weight):
    ts = [torch.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    y = fn(*ts)
    (y * torch.tensor(weight.astype(dtype))).sum().backward()
    return y.detach().numpy(), [t.grad.numpy() for t in ts]


def compare(ours, theirs, arrays, dtype) -> None:
    out_shape = theirs(*[torch.tensor(a) for a in arrays]).shape
    weight = np.random.default_rng(11).standard_normal(tuple(out_shape))
    y, grads, ydt, gdts = _ours(ours, arrays, dtype, weight)
    ty, tgrads = _theirs(theirs, arrays, dtype, weight)
    assert ydt == dtype and all(g == dtype for g in gdts)
    np.testing.assert_allclose(y, ty, **TOL[dtype])
    for g, tg in zip(grads, tgrads, strict=True):
        np.testing.assert_allclose(g, tg, **TOL[dtype])


R = np.random.default_rng(0)
X = R.standard_normal((4, 8, 16))
TARGETS = R.integers(0, 16, size=(4, 8))
TARGETS[1, 3] = TARGETS[2, 0] = -100
IDS = R.integers(0, 10, size=(4, 8))
Q, K, V = R.standard_normal((2, 3, 5, 8)), R.standard_normal((2, 3, 7, 8)), R.standard_normal((2, 3, 7, 8))
BOOL = R.random((5, 7)) > 0.3
BOOL[:, -1] = True
ADD = R.standard_normal((3, 5, 7))
ADD_DEAD_ROW = R.standard_normal((5, 7))
ADD_DEAD_ROW[2] = -np.inf  # query 2 may attend to no key: PyTorch (2.5+) outputs 0 there
BOTTOM_RIGHT = torch.from_numpy(np.tri(5, 7, k=2, dtype=bool))  # torch's is_causal is top-left when T != S

CASES = {
    "linear_3d": (F.linear, TF.linear, [X, R.standard_normal((6, 16)), R.standard_normal(6)]),
    "linear_1d_no_bias": (F.linear, TF.linear, [R.standard_normal(16), R.standard_normal((6, 16))]),
    "relu": (F.relu, TF.relu, [X]),
    "gelu": (F.gelu, TF.gelu, [X * 3]),
    "gelu_tanh": (lambda x: F.gelu(x, "tanh"), lambda x: TF.gelu(x, approximate="tanh"), [X * 3]),
    "leaky_relu": (F.leaky_relu, TF.leaky_relu, [X]),
    "leaky_relu_slope": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2), [X]),
    "leaky_relu_at_zero": (F.leaky_relu, TF.leaky_relu, [np.array([-1.0, 0.0, 0.0, 2.0])]),  # slope at 0, as torch
    "silu": (F.silu, TF.silu, [X * 6]),
    **{
        f"mse_loss_{red}": (
            lambda x, t, red=red: F.mse_loss(x, t, reduction=red),
            lambda x, t, red=red: TF.mse_loss(x, t, reduction=red),
            [X, R.standard_normal((4, 8, 16))],
        )
        for red in ("mean", "sum", "none")
    },
    "softmax": (F.softmax, lambda x: TF.softmax(x, -1), [X * 5]),
    "softmax_dim_keyword": (lambda x: F.softmax(x, dim=-1), lambda x: TF.softmax(x, dim=-1), [X]),
    "softmax_axis1": (lambda x: F.softmax(x, 1), lambda x: TF.softmax(x, 1), [X]),
    "log_softmax": (F.log_softmax, lambda x: TF.log_softmax(x, -1), [X * 5]),
    **{
        f"cross_entropy_{red}": (
            lambda z, red=red: F.cross_entropy(z, TARGETS, reduction=red),
            lambda z, red=red: TF.cross_entropy(
                z.reshape(-1, 16), torch.from_numpy(TARGETS.reshape(-1)), reduction=red
            ).reshape(TARGETS.shape if red == "none" else ()),
            [X * 3],
        )
        for red in ("mean", "sum", "none")
    },
    "layer_norm": (
        lambda x, w, b: F.layer_norm(x, 16, w, b),
        lambda x, w, b: TF.layer_norm(x, (16,), w, b),
        [X * 2 + 1, R.standard_normal(16), R.standard_normal(16)],
    ),
    "layer_norm_two_dims_plain": (lambda x: F.layer_norm(x, (8, 16)), lambda x: TF.layer_norm(x, (8, 16)), [X]),
    "embedding": (
        lambda w: F.embedding(IDS, w),
        lambda w: TF.embedding(torch.from_numpy(IDS), w),
        [R.standard_normal((10, 6))],
    ),
    "dropout_p0": (lambda x: F.dropout(x, 0.0) * 1.0, lambda x: TF.dropout(x, 0.0) * 1.0, [X]),
    "attention": (F.scaled_dot_product_attention, TF.scaled_dot_product_attention, [Q, K, V]),
    "attention_causal_square": (
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True),
        [Q, Q * 0.5, K[:, :, :5]],
    ),
    "attention_causal_t_lt_s": (
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, attn_mask=BOTTOM_RIGHT),
        [Q, K, V],
    ),
    "attention_bool_mask": (
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=BOOL),
        lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, attn_mask=torch.from_numpy(BOOL)),
        [Q, K, V],
    ),
    "attention_additive_mask_dead_row": (
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=ADD_DEAD_ROW),
        lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, attn_mask=torch.from_numpy(ADD_DEAD_ROW).to(q.dtype)),
        [Q, K, V],
    ),
    "attention_additive_mask_scale": (
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=ADD, scale=0.2),
        lambda q, k, v: TF.scaled_dot_product_attention(
            q, k, v, attn_mask=torch.from_numpy(ADD).to(q.dtype), scale=0.2
        ),
        [Q, K, V],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_torch(name: str, dtype) -> None:
    ours, theirs, arrays = CASES[name]
    compare(ours, theirs, arrays, dtype)


def _cross_entropy_both(z: np.ndarray, t: np.ndarray):
    """Mean cross-entropy and its gradient w.r.t. the logits, from numpy2gpt and from torch."""
    ours = Tensor(z, requires_grad=True)
    loss = F.cross_entropy(ours, t)
    loss.backward()
    theirs = torch.tensor(z, requires_grad=True)
    tloss = TF.cross_entropy(theirs, torch.from_numpy(t))
    tloss.backward()
    return loss, tloss, ours, theirs


def test_gpt_sized_cross_entropy_matches_torch_float32() -> None:
    z = np.random.default_rng(1).standard_normal((256, 2000)).astype(np.float32) * 4
    t = np.random.default_rng(2).integers(0, 2000, size=256)
    loss, tloss, ours, theirs = _cross_entropy_both(z, t)
    assert loss.item() == pytest.approx(tloss.item(), rel=1e-6)
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_scale_and_keep_rate_match_torch(p: float) -> None:
    # The masks cannot match (different generators); what must match is the rule: kept elements are scaled by
    # exactly the same float32 factor and about the same fraction is kept.
    x = np.ones((300, 400), dtype=np.float32)
    ours = F.dropout(x, p, generator=np.random.default_rng(0)).data
    torch.manual_seed(0)
    theirs = TF.dropout(torch.from_numpy(x), p).numpy()
    assert ours.dtype == theirs.dtype == np.float32
    np.testing.assert_array_equal(np.unique(ours[ours != 0]), np.unique(theirs[theirs != 0]))
    assert abs((ours != 0).mean() - (theirs != 0).mean()) < 0.01


def test_cross_entropy_with_minus_inf_logits_and_ignored_rows_matches_torch() -> None:
    # -inf logits (a masked vocabulary), including at column 0 of an ignored row, must not produce nan
    z = np.array([[-np.inf, 1.0, 2.0], [0.5, -np.inf, 3.0], [1.0, 2.0, 3.0]], dtype=np.float32)
    t = np.array([-100, 2, 1])
    loss, tloss, ours, theirs = _cross_entropy_both(z, t)
    assert loss.item() == pytest.approx(tloss.item(), rel=1e-6)
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-5, atol=1e-7)
