"""nn.functional: finite-difference gradients, fused == composed, dtypes, and error messages."""

from __future__ import annotations

import math

import numpy as np
import pytest

import numpy2gpt.nn.functional as F  # noqa: N812 - the usual alias
from numpy2gpt.autograd import Tensor, gradcheck, manual_seed, no_grad
from numpy2gpt.nn.functional import composed as C  # noqa: N812


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------------------
# cases: name -> (fused fn, composed fn, float inputs (float64), description). Non-float arguments are bound
# in the lambdas, so both versions see the same ids and masks.
# ---------------------------------------------------------------------------------------------------------
def _cases() -> dict[str, tuple]:
    r = rng(1)
    x3 = r.standard_normal((2, 3, 4))
    ids = np.array([[0, 3, 3, 1], [2, 0, 3, 3]])
    targets = r.integers(0, 5, size=(2, 3))
    targets[0, 1] = -100
    targets[1, 2] = -100
    q = r.standard_normal((2, 2, 3, 4))
    k = r.standard_normal((2, 2, 5, 4))
    v = r.standard_normal((2, 2, 5, 3))
    qs = r.standard_normal((1, 2, 4, 4))
    ks = r.standard_normal((1, 2, 4, 4))
    vs = r.standard_normal((1, 2, 4, 4))
    bool_mask = r.random((3, 5)) > 0.4
    bool_mask[:, 0] = True  # no fully-masked row (the composed version would give nan there)
    add_mask = r.standard_normal((2, 1, 3, 5))
    return {
        "linear_1d": (F.linear, C.linear, [r.standard_normal(4), r.standard_normal((3, 4)), r.standard_normal(3)]),
        "linear_2d": (F.linear, C.linear, [r.standard_normal((5, 4)), r.standard_normal((3, 4)), r.standard_normal(3)]),
        "linear_3d": (F.linear, C.linear, [x3, r.standard_normal((2, 4)), r.standard_normal(2)]),
        "linear_no_bias": (F.linear, C.linear, [x3, r.standard_normal((3, 4))]),
        "relu": (F.relu, C.relu, [x3]),
        "gelu": (F.gelu, C.gelu, [x3 * 2]),
        "gelu_tanh": (lambda x: F.gelu(x, "tanh"), lambda x: C.gelu(x, "tanh"), [x3 * 2]),
        "leaky_relu": (F.leaky_relu, C.leaky_relu, [x3]),
        "leaky_relu_slope": (lambda x: F.leaky_relu(x, 0.3), lambda x: C.leaky_relu(x, 0.3), [x3]),
        "silu": (F.silu, C.silu, [x3 * 4]),
        **{
            f"mse_loss_{red}": (
                lambda x, t, red=red: F.mse_loss(x, t, reduction=red),
                lambda x, t, red=red: C.mse_loss(x, t, reduction=red),
                [x3, r.standard_normal((2, 3, 4))],
            )
            for red in ("mean", "sum", "none")
        },
        "softmax": (F.softmax, C.softmax, [x3]),
        "softmax_dim1": (lambda x: F.softmax(x, dim=1), lambda x: C.softmax(x, dim=1), [x3]),
        "log_softmax_axis0": (lambda x: F.log_softmax(x, axis=0), lambda x: C.log_softmax(x, axis=0), [x3]),
        "softmax_axis0": (lambda x: F.softmax(x, 0), lambda x: C.softmax(x, 0), [x3]),
        "log_softmax": (F.log_softmax, C.log_softmax, [x3]),
        "log_softmax_axis1": (lambda x: F.log_softmax(x, 1), lambda x: C.log_softmax(x, 1), [x3]),
        **{
            f"cross_entropy_{red}": (
                lambda z, red=red: F.cross_entropy(z, targets, reduction=red),
                lambda z, red=red: C.cross_entropy(z, targets, reduction=red),
                [r.standard_normal((2, 3, 5))],
            )
            for red in ("mean", "sum", "none")
        },
        "cross_entropy_2d": (
            lambda z: F.cross_entropy(z, np.array([1, 0, 4])),
            lambda z: C.cross_entropy(z, np.array([1, 0, 4])),
            [r.standard_normal((3, 5))],
        ),
        "layer_norm_last": (
            lambda x, w, b: F.layer_norm(x, 4, w, b),
            lambda x, w, b: C.layer_norm(x, 4, w, b),
            [x3, r.standard_normal(4), r.standard_normal(4)],
        ),
        "layer_norm_last_two": (
            lambda x, w, b: F.layer_norm(x, (3, 4), w, b),
            lambda x, w, b: C.layer_norm(x, (3, 4), w, b),
            [x3, r.standard_normal((3, 4)), r.standard_normal((3, 4))],
        ),
        "layer_norm_plain": (lambda x: F.layer_norm(x, 4), lambda x: C.layer_norm(x, 4), [x3]),
        "layer_norm_weight_only": (
            lambda x, w: F.layer_norm(x, (3, 4), w),
            lambda x, w: C.layer_norm(x, (3, 4), w),
            [x3, r.standard_normal((3, 4))],
        ),
        "layer_norm_bias_only": (
            lambda x, b: F.layer_norm(x, 4, bias=b),
            lambda x, b: C.layer_norm(x, 4, bias=b),
            [x3, r.standard_normal(4)],
        ),
        "embedding": (lambda w: F.embedding(ids, w), lambda w: C.embedding(ids, w), [r.standard_normal((5, 3))]),
        "attention": (
            F.scaled_dot_product_attention,
            C.scaled_dot_product_attention,
            [qs, ks, vs],
        ),
        "attention_causal": (
            lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
            lambda q, k, v: C.scaled_dot_product_attention(q, k, v, is_causal=True),
            [qs, ks, vs],
        ),
        "attention_causal_t_lt_s": (
            lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
            lambda q, k, v: C.scaled_dot_product_attention(q, k, v, is_causal=True),
            [q, k, v],
        ),
        "attention_bool_mask": (
            lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=bool_mask),
            lambda q, k, v: C.scaled_dot_product_attention(q, k, v, attn_mask=bool_mask),
            [q, k, v],
        ),
        "attention_additive_mask_scale": (
            lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=add_mask, scale=0.3),
            lambda q, k, v: C.scaled_dot_product_attention(q, k, v, attn_mask=add_mask, scale=0.3),
            [q, k, v],
        ),
        "attention_broadcast_kv": (
            F.scaled_dot_product_attention,
            C.scaled_dot_product_attention,
            [q, k[:, :1], v[:1]],
        ),
    }


CASES = _cases()


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck_fused(name: str) -> None:
    fused, _, inputs = CASES[name]
    assert gradcheck(fused, *inputs)


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck_composed(name: str) -> None:
    _, comp, inputs = CASES[name]
    assert gradcheck(comp, *inputs)


def _value_and_grads(fn, inputs: list[np.ndarray], dtype) -> tuple[np.ndarray, list[np.ndarray]]:
    ts = [Tensor(np.asarray(a, dtype=dtype), requires_grad=True) for a in inputs]
    y = fn(*ts)
    w = rng(7).standard_normal(y.shape).astype(dtype)
    (y * Tensor(w)).sum().backward()
    assert y.dtype == dtype
    for t in ts:
        assert t.grad is not None and t.grad.dtype == dtype and t.grad.shape == t.shape
    return y.data, [t.grad.data for t in ts]


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_equals_composed(name: str, dtype) -> None:
    fused, comp, inputs = CASES[name]
    y1, g1 = _value_and_grads(fused, inputs, dtype)
    y2, g2 = _value_and_grads(comp, inputs, dtype)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y1, y2, **tol)
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_allclose(a, b, **tol)


# ---------------------------------------------------------------------------------------------------------
# dropout: random, so tested by its statistics and by fused == composed under the same seed
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_matches_composed_under_same_seed(dtype) -> None:
    x = rng().standard_normal((4, 50)).astype(dtype)
    manual_seed(3)
    y1, g1 = _value_and_grads(lambda t: F.dropout(t, 0.3), [x], dtype)
    manual_seed(3)
    y2, g2 = _value_and_grads(lambda t: C.dropout(t, 0.3), [x], dtype)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(g1[0], g2[0])


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_statistics_and_same_mask_in_backward(p: float) -> None:
    x = Tensor(np.ones((200, 500), dtype=np.float32), requires_grad=True)
    y = F.dropout(x, p, generator=np.random.default_rng(0))
    assert y.dtype == np.float32
    kept = y.data != 0
    assert abs(kept.mean() - (1 - p)) < 0.01  # 100k draws: std of the mean < 0.0016
    np.testing.assert_allclose(y.data[kept], np.float32(1.0) / np.float32(1 - p), rtol=1e-6)
    y.backward(Tensor(np.full(y.shape, 2.0, dtype=np.float32)))
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data != 0, kept)  # backward uses forward's mask
    np.testing.assert_allclose(x.grad.data[kept], 2.0 / (1 - p), rtol=1e-6)


def test_dropout_identity_cases_and_p_one() -> None:
    x = Tensor(rng().standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    assert F.dropout(x, 0.0) is x
    assert F.dropout(x, 0.5, training=False) is x
    y = F.dropout(x, 1.0)
    np.testing.assert_array_equal(y.data, 0.0)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, 0.0)
    with pytest.raises(ValueError, match="probability"):
        F.dropout(x, 1.5)


def test_dropout_default_generator_is_seeded() -> None:
    x = np.ones((10, 10), dtype=np.float32)
    manual_seed(5)
    a = F.dropout(x, 0.5).data
    manual_seed(5)
    b = F.dropout(x, 0.5).data
    np.testing.assert_array_equal(a, b)


def test_attention_dropout_matches_composed_and_is_consistent() -> None:
    r = rng(2)
    q, k, v = (r.standard_normal((2, 4, 3)) for _ in range(3))

    def fused(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=0.4, generator=np.random.default_rng(9))

    def comp(q, k, v):
        return C.scaled_dot_product_attention(q, k, v, dropout_p=0.4, generator=np.random.default_rng(9))

    y1, g1 = _value_and_grads(fused, [q, k, v], np.float64)
    y2, g2 = _value_and_grads(comp, [q, k, v], np.float64)
    np.testing.assert_allclose(y1, y2, rtol=1e-12, atol=1e-12)
    for a, b in zip(g1, g2, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert gradcheck(fused, q, k, v)  # a fixed generator gives the same mask on every call


# ---------------------------------------------------------------------------------------------------------
# semantics that the tables above do not pin down
# ---------------------------------------------------------------------------------------------------------
def test_cross_entropy_values_by_hand() -> None:
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [5.0, -1.0, 0.5]])
    t = np.array([2, 1, -100])
    lse = np.log(np.exp(z).sum(axis=1))
    per_row = np.array([lse[0] - 3.0, lse[1] - 0.0, 0.0])
    np.testing.assert_allclose(F.cross_entropy(z, t, reduction="none").data, per_row, rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(z, t, reduction="sum").data, per_row.sum(), rtol=1e-12)
    np.testing.assert_allclose(F.cross_entropy(z, t).data, per_row.sum() / 2, rtol=1e-12)


def test_cross_entropy_all_ignored_is_nan_with_zero_grad() -> None:
    z = Tensor(rng().standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    loss = F.cross_entropy(z, np.full(3, -100))
    assert math.isnan(loss.item()) and loss.dtype == np.float32
    loss.backward()
    np.testing.assert_array_equal(z.grad.data, 0.0)


def test_cross_entropy_stable_for_huge_logits() -> None:
    z = np.array([[1e4, 0.0, -1e4]], dtype=np.float32)
    loss = F.cross_entropy(Tensor(z, requires_grad=True), np.array([1]))
    assert loss.item() == pytest.approx(1e4)
    assert loss.dtype == np.float32


def test_cross_entropy_second_backward_with_retain_graph() -> None:
    z = Tensor(rng().standard_normal((4, 6)), requires_grad=True)
    t = np.array([0, 5, 2, 2])
    loss = F.cross_entropy(z, t)
    loss.backward(retain_graph=True)
    first = z.grad.data.copy()
    loss.backward()
    np.testing.assert_allclose(z.grad.data, 2 * first, rtol=1e-12)


def test_log_softmax_second_backward_with_retain_graph() -> None:
    x = Tensor(rng().standard_normal((4, 6)), requires_grad=True)
    y = F.log_softmax(x)
    y.sum().backward(retain_graph=True)
    first = x.grad.data.copy()
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * first, rtol=1e-12)


def test_softmax_stable_and_rows_sum_to_one() -> None:
    x = np.array([[1000.0, 1001.0, 999.0], [-1e4, 0.0, 1e4]], dtype=np.float32)
    y = F.softmax(x).data
    assert np.isfinite(y).all() and y.dtype == np.float32
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-6)
    assert np.isfinite(F.log_softmax(x).data).all()


def test_attention_causal_mask_bottom_right() -> None:
    np.testing.assert_array_equal(F.causal_mask(3, 3), np.tril(np.ones((3, 3), dtype=bool)))
    np.testing.assert_array_equal(
        F.causal_mask(2, 4), np.array([[1, 1, 1, 0], [1, 1, 1, 1]], dtype=bool)
    )  # the 2 new queries sit at positions 2 and 3 of 4 keys


def test_attention_kv_cache_block_equals_full_sequence() -> None:
    r = rng(4)
    q, k, v = (r.standard_normal((2, 6, 4)) for _ in range(3))
    full = F.scaled_dot_product_attention(q, k, v, is_causal=True).data
    tail = F.scaled_dot_product_attention(q[:, 4:], k, v, is_causal=True).data
    np.testing.assert_allclose(tail, full[:, 4:], rtol=1e-12)


def test_attention_fully_masked_rows_give_zero_not_nan() -> None:
    r = rng(5)
    q = Tensor(r.standard_normal((1, 3, 4)), requires_grad=True)
    k = Tensor(r.standard_normal((1, 5, 4)), requires_grad=True)
    v = Tensor(r.standard_normal((1, 5, 4)), requires_grad=True)
    mask = np.ones((3, 5), dtype=bool)
    mask[1] = False
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    np.testing.assert_array_equal(y.data[0, 1], 0.0)
    y.sum().backward()
    for t in (q, k, v):
        assert np.isfinite(t.grad.data).all()
    np.testing.assert_array_equal(q.grad.data[0, 1], 0.0)
    # T > S with bottom-right alignment: the first T - S queries see no key at all
    y2 = F.scaled_dot_product_attention(k, q, q, is_causal=True)
    assert np.isfinite(y2.data).all()
    np.testing.assert_array_equal(y2.data[0, :2], 0.0)


def test_needs_input_grad_is_respected() -> None:
    r = rng(6)
    x = Tensor(r.standard_normal((3, 4)))
    w = Tensor(r.standard_normal((2, 4)), requires_grad=True)
    F.linear(x, w).sum().backward()
    assert x.grad is None and w.grad is not None
    q = Tensor(r.standard_normal((2, 3, 4)))
    v = Tensor(r.standard_normal((2, 3, 4)), requires_grad=True)
    F.scaled_dot_product_attention(q, q, v).sum().backward()
    assert q.grad is None and v.grad is not None


def test_no_grad_records_nothing() -> None:
    x = Tensor(rng().standard_normal((3, 4)), requires_grad=True)
    with no_grad():
        for y in (F.gelu(x), F.log_softmax(x), F.layer_norm(x, 4), F.cross_entropy(x, np.array([0, 1, 2]))):
            assert y.creator is None and not y.requires_grad


@pytest.mark.parametrize("fn", [F.softmax, F.log_softmax, C.softmax, C.log_softmax])
def test_softmax_takes_dim_or_axis_not_both(fn) -> None:
    x = rng().standard_normal((2, 3, 4))
    by_dim, by_axis, by_position = fn(x, dim=1).data, fn(x, axis=1).data, fn(x, 1).data
    np.testing.assert_array_equal(by_dim, by_axis)
    np.testing.assert_array_equal(by_dim, by_position)
    np.testing.assert_array_equal(fn(x).data, fn(x, dim=-1).data)  # default: the last axis
    with pytest.raises(TypeError, match="dim= and axis="):
        fn(x, dim=1, axis=1)


def test_mse_loss_broadcasts_with_torchs_warning_and_refuses_bad_shapes() -> None:
    x = Tensor(rng().standard_normal((3, 1)), requires_grad=True)
    with pytest.warns(UserWarning, match=r"target shape \(3,\) differs from input shape \(3, 1\)"):
        loss = F.mse_loss(x, rng(1).standard_normal(3))
    loss.backward()
    assert x.grad.shape == (3, 1)
    with pytest.raises(ValueError, match=r"input of shape \(3, 1\) and target of shape \(2, 2\)"):
        F.mse_loss(x, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(x, np.zeros((3, 1)), reduction="avg")
    assert F.mse_loss(x, np.zeros((3, 1), np.float32)).dtype == np.float64  # two float dtypes promote, as PyTorch
    with pytest.raises(TypeError, match="target must be a floating point tensor"):
        F.mse_loss(x, np.zeros((3, 1), np.int64))
    assert math.isnan(F.mse_loss(np.zeros(0), np.zeros(0)).item())  # the mean of nothing, as PyTorch


def test_silu_is_accurate_in_both_tails() -> None:
    x = np.array([-80.0, -30.0, -10.0, 0.0, 10.0, 30.0, 100.0], dtype=np.float32)
    y = F.silu(x).data
    ref = np.array([v / (1.0 + math.exp(-v)) for v in x.astype(np.float64)])
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, ref, rtol=3e-7, atol=0)  # relative accuracy, also at -80 (~ -1.4e-33)


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: F.linear(x, np.ones((2, 4), np.float32), np.ones(2, np.float32)),
        F.leaky_relu,
        F.silu,
        lambda x: F.mse_loss(x, np.ones((2, 3, 4), np.float32)),
        F.relu,
        F.gelu,
        lambda x: F.gelu(x, "tanh"),
        F.softmax,
        F.log_softmax,
        lambda x: F.layer_norm(x, 4, np.ones(4, np.float32), np.zeros(4, np.float32)),
        lambda x: F.cross_entropy(x, np.array([[0, 1, 2], [3, 0, 1]])),
        lambda x: F.dropout(x, 0.2),
        lambda x: F.scaled_dot_product_attention(x, x, x, is_causal=True),
        lambda x: F.embedding(np.array([0, 1, 1]), x.reshape(6, 4)),
    ],
)
def test_float32_in_float32_out(fn) -> None:
    x = Tensor(rng().standard_normal((2, 3, 4)).astype(np.float32), requires_grad=True)
    y = fn(x)
    assert y.dtype == np.float32
    (y * 1.5).sum().backward()
    assert x.grad.dtype == np.float32


# ---------------------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------------------
def test_cross_entropy_errors() -> None:
    z = np.zeros((2, 3, 5), dtype=np.float32)
    with pytest.raises(ValueError, match=r"targets of shape \(3,\).*leading shape \(2, 3\)"):
        F.cross_entropy(z, np.zeros(3, dtype=np.int64))
    with pytest.raises(IndexError, match=r"out of range \[0, 5\).*: -1, 5, 7"):
        F.cross_entropy(z, np.array([[0, 5, -1], [7, 1, -100]]))
    with pytest.raises(TypeError, match="integers"):
        F.cross_entropy(z, np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(z, np.zeros((2, 3), dtype=np.int64), reduction="avg")


def test_embedding_errors() -> None:
    w = np.zeros((4, 2), dtype=np.float32)
    with pytest.raises(IndexError, match=r"out of range \[0, 4\).*4 rows: -2, 4, 9"):
        F.embedding(np.array([0, 4, 9, -2, 4]), w)
    with pytest.raises(TypeError, match="integers"):
        F.embedding(np.array([0.0, 1.0]), w)


def test_layer_norm_errors() -> None:
    x = np.zeros((2, 3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"normalized_shape \(3,\).*\(2, 3, 4\)"):
        F.layer_norm(x, 3)
    with pytest.raises(ValueError, match=r"weight must have shape.*\(4,\)"):
        F.layer_norm(x, 4, np.ones(3, dtype=np.float32))


def test_attention_errors() -> None:
    q = np.zeros((2, 3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="last dim"):
        F.scaled_dot_product_attention(q, np.zeros((2, 3, 5), np.float32), np.zeros((2, 3, 5), np.float32))
    with pytest.raises(ValueError, match="same number of keys"):
        F.scaled_dot_product_attention(q, q, np.zeros((2, 2, 4), np.float32))
    with pytest.raises(ValueError, match="cannot be broadcast"):
        F.scaled_dot_product_attention(q, np.zeros((3, 3, 4), np.float32), np.zeros((3, 3, 4), np.float32))
    with pytest.raises(ValueError, match="attn_mask of shape"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=np.ones((4, 3), dtype=bool))
    with pytest.raises(ValueError, match="either attn_mask or is_causal"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=np.ones((3, 3), dtype=bool), is_causal=True)


def test_linear_and_dtype_errors() -> None:
    with pytest.raises(ValueError, match="in_features = 4"):
        F.linear(np.zeros((2, 3), np.float32), np.zeros((5, 4), np.float32))
    with pytest.raises(TypeError, match="same dtype"):
        F.linear(np.zeros((2, 4), np.float64), np.zeros((5, 4), np.float32))
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(np.zeros(3, np.float32), approximate="fast")


# ---------------------------------------------------------------------------------------------------------
# erf, the one special function
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_erf_matches_math_erf_on_a_grid(dtype) -> None:
    x = np.concatenate([np.linspace(-7, 7, 20001), np.geomspace(1e-20, 0.6, 300), -np.geomspace(1e-20, 0.6, 300)])
    x = x.astype(dtype)
    eps = float(np.finfo(dtype).eps)
    ref = np.array([math.erf(float(v)) for v in x])
    got = F.erf(x)
    assert got.dtype == dtype
    assert (np.abs(got - ref) <= 4 * eps * np.abs(ref)).all()
    refc = np.array([math.erfc(float(v)) for v in x])
    gotc = F.erfc(x)
    # erfc(x) = erfcx(x) exp(-x^2): exp amplifies the rounding of x^2, so allow (4 + x^2) ulps
    assert (np.abs(gotc - refc) <= (4 + x.astype(np.float64) ** 2) * eps * refc).all()
    assert F.erf(np.array([np.inf, -np.inf, 0.0], dtype=dtype)).tolist() == [1.0, -1.0, 0.0]


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gelu_chunked_forward_covers_every_element(monkeypatch, approximate: str, dtype) -> None:
    from numpy2gpt.nn.functional import activation

    monkeypatch.setattr(activation, "_CHUNK", 5)  # 84 elements: 16 full chunks and a partial one
    x = rng(8).standard_normal((3, 7, 4)) * 3
    y1, g1 = _value_and_grads(lambda t: F.gelu(t, approximate), [x], dtype)
    y2, g2 = _value_and_grads(lambda t: C.gelu(t, approximate), [x], dtype)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y1, y2, **tol)
    np.testing.assert_allclose(g1[0], g2[0], **tol)


def test_composed_ops_are_twice_differentiable_and_fused_ops_say_they_are_not() -> None:
    from numpy2gpt.autograd import grad

    x = Tensor(rng(9).standard_normal(5), requires_grad=True)
    (g,) = grad(C.gelu(x).sum(), x, create_graph=True)
    (h,) = grad(g.sum(), x)
    # d2/dx2 of x Phi(x) = 2 pdf(x) - x^2 pdf(x)
    pdf = np.exp(-(x.data**2) / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(h.data, (2 - x.data**2) * pdf, rtol=1e-12, atol=1e-14)
    with pytest.raises(RuntimeError, match="composed version"):
        grad(F.gelu(x).sum(), x, create_graph=True)
