"""The fused ops with a size-0 axis behave as PyTorch's: valid inputs give PyTorch's values, shapes and gradients,
invalid ones raise one line naming the shapes (never NumPy's own messages) (issue 9, item 5)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import numpy2gpt.nn.functional as F  # noqa: N812 - the usual alias
from numpy2gpt.autograd import Tensor

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def z(*shape: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape)


def _long(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.int64))


NO_IDS = np.zeros(0, dtype=np.int64)
IGNORED = np.full(3, -100)
SDPA, TSDPA = F.scaled_dot_product_attention, TF.scaled_dot_product_attention


def _causal(fn):
    return lambda q, k, v: fn(q, k, v, is_causal=True)


CASES = {
    "softmax_empty_axis": (F.softmax, lambda x: TF.softmax(x, -1), [z(3, 0)]),
    "softmax_empty_batch": (F.softmax, lambda x: TF.softmax(x, -1), [z(0, 3)]),
    "softmax_dim0_of_3x0": (lambda x: F.softmax(x, 0), lambda x: TF.softmax(x, 0), [z(3, 0)]),
    "log_softmax_empty_axis": (F.log_softmax, lambda x: TF.log_softmax(x, -1), [z(3, 0)]),
    "log_softmax_empty_batch": (F.log_softmax, lambda x: TF.log_softmax(x, -1), [z(0, 3)]),
    "linear_no_rows": (F.linear, TF.linear, [z(0, 4), z(3, 4), z(3)]),
    "linear_in_features_0": (F.linear, TF.linear, [z(2, 0), z(3, 0), z(3)]),
    "linear_out_features_0": (F.linear, TF.linear, [z(2, 4), z(0, 4), z(0)]),
    "linear_empty_middle_axis": (F.linear, TF.linear, [z(2, 0, 4), z(3, 4)]),
    "layer_norm_no_rows": (
        lambda x, w, b: F.layer_norm(x, 4, w, b),
        lambda x, w, b: TF.layer_norm(x, (4,), w, b),
        [z(0, 4), z(4), z(4)],
    ),
    "layer_norm_rows_of_0": (
        lambda x, w, b: F.layer_norm(x, 0, w, b),
        lambda x, w, b: TF.layer_norm(x, (0,), w, b),
        [z(2, 0), z(0), z(0)],
    ),
    "layer_norm_two_dims_one_empty": (
        lambda x: F.layer_norm(x, (0, 3)),
        lambda x: TF.layer_norm(x, (0, 3)),
        [z(2, 0, 3)],
    ),
    **{
        f"cross_entropy_no_rows_{red}": (
            lambda x, red=red: F.cross_entropy(x, NO_IDS, reduction=red),
            lambda x, red=red: TF.cross_entropy(x, _long(NO_IDS), reduction=red),
            [z(0, 5)],
        )
        for red in ("mean", "sum", "none")
    },
    **{
        f"cross_entropy_no_classes_all_ignored_{red}": (
            lambda x, red=red: F.cross_entropy(x, IGNORED, reduction=red),
            lambda x, red=red: TF.cross_entropy(x, _long(IGNORED), reduction=red),
            [z(3, 0)],
        )
        for red in ("mean", "sum", "none")
    },
    "cross_entropy_no_rows_no_classes": (
        lambda x: F.cross_entropy(x, NO_IDS),
        lambda x: TF.cross_entropy(x, _long(NO_IDS)),
        [z(0, 0)],
    ),
    "embedding_no_ids": (
        lambda w: F.embedding(np.zeros((2, 0), np.int64), w),
        lambda w: TF.embedding(_long(np.zeros((2, 0))), w),
        [z(5, 3)],
    ),
    "embedding_dim_0": (
        lambda w: F.embedding(np.array([1, 2, 2]), w),
        lambda w: TF.embedding(_long([1, 2, 2]), w),
        [z(5, 0)],
    ),
    "embedding_empty_table_no_ids": (
        lambda w: F.embedding(NO_IDS, w),
        lambda w: TF.embedding(_long(NO_IDS), w),
        [z(0, 3)],
    ),
    "dropout_empty": (lambda x: F.dropout(x, 0.5) * 1.0, lambda x: TF.dropout(x, 0.5) * 1.0, [z(0, 3)]),
    "attention_no_queries": (SDPA, TSDPA, [z(2, 0, 4), z(2, 5, 4), z(2, 5, 3)]),
    "attention_no_keys": (SDPA, TSDPA, [z(2, 3, 4), z(2, 0, 4), z(2, 0, 3)]),
    "attention_head_dim_0": (SDPA, TSDPA, [z(2, 3, 0), z(2, 5, 0), z(2, 5, 3)]),
    "attention_value_dim_0": (SDPA, TSDPA, [z(2, 3, 4), z(2, 5, 4), z(2, 5, 0)]),
    "attention_no_batch": (SDPA, TSDPA, [z(0, 3, 4), z(0, 5, 4), z(0, 5, 3)]),
    "attention_causal_no_queries": (_causal(SDPA), _causal(TSDPA), [z(2, 0, 4), z(2, 0, 4), z(2, 0, 3)]),
    "attention_causal_no_batch": (_causal(SDPA), _causal(TSDPA), [z(0, 3, 4), z(0, 3, 4), z(0, 3, 3)]),
    "attention_causal_head_dim_0": (_causal(SDPA), _causal(TSDPA), [z(2, 3, 0), z(2, 3, 0), z(2, 3, 3)]),
    "attention_bool_mask_no_keys": (
        lambda q, k, v: SDPA(q, k, v, attn_mask=np.zeros((3, 0), bool)),
        lambda q, k, v: TSDPA(q, k, v, attn_mask=torch.zeros((3, 0), dtype=torch.bool)),
        [z(2, 3, 4), z(2, 0, 4), z(2, 0, 3)],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_size0_matches_torch(name: str, dtype) -> None:
    ours, theirs, arrays = CASES[name]
    ts = [torch.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    ty = theirs(*ts)
    weight = z(*ty.shape)
    (ty * torch.tensor(weight.astype(dtype))).sum().backward()

    xs = [Tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divide-by-zero or empty-mean warnings either
        y = ours(*xs)
        (y * Tensor(weight.astype(dtype))).sum().backward()
    assert y.shape == tuple(ty.shape) and y.dtype == dtype
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-6, atol=1e-7)
    for x, t in zip(xs, ts, strict=True):
        assert x.grad is not None and x.grad.shape == x.shape and x.grad.dtype == dtype
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_attention_causal_no_queries_with_keys_gives_zero_key_gradients() -> None:
    # torch's causal mask is top-left aligned, ours bottom-right; with T = 0 both see nothing: dk = dv = 0
    q, k, v = (Tensor(a, requires_grad=True) for a in (z(2, 0, 4), z(2, 5, 4), z(2, 5, 3)))
    y = SDPA(q, k, v, is_causal=True)
    assert y.shape == (2, 0, 3)
    y.sum().backward()
    np.testing.assert_array_equal(k.grad.data, 0.0)
    np.testing.assert_array_equal(v.grad.data, 0.0)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: F.cross_entropy(z(3, 0), np.zeros(3, np.int64)), r"out of range \[0, 0\) for 0 classes"),
        (lambda: F.linear(z(2, 0), z(3, 4)), r"x of shape \(2, 0\) does not match weight of shape \(3, 4\)"),
        (lambda: F.layer_norm(z(2, 0), 3), r"normalized_shape \(3,\).*\(2, 0\)"),
        (lambda: F.embedding(np.array([0]), z(0, 3)), r"out of range \[0, 0\)"),
        (lambda: SDPA(z(2, 3, 4), z(2, 0, 4), z(2, 5, 3)), r"same number of keys.*\(2, 0, 4\)"),
        (lambda: SDPA(z(2, 3, 0), z(2, 5, 4), z(2, 5, 3)), r"last dim 0 must equal k's last dim 4"),
        (lambda: F.softmax(z(3, 0), 2), r"out of range.*\(3, 0\)"),
    ],
)
def test_size0_invalid_inputs_raise_one_line_naming_the_shapes(call, match: str) -> None:
    with pytest.raises((ValueError, IndexError), match=match) as info:
        call()
    assert "\n" not in str(info.value)


# The composed twins accept the same size-0 inputs (found by the property tests: softmax took the max of an empty
# axis, attention divided by sqrt(0) and gave nan for a query row that may see no key).
COMPOSED_CASES = {
    "softmax_empty_axis": (lambda x: F.composed.softmax(x, -1), lambda x: TF.softmax(x, -1), [z(3, 0)]),
    "log_softmax_empty_axis": (lambda x: F.composed.log_softmax(x, -1), lambda x: TF.log_softmax(x, -1), [z(3, 0)]),
    "attention_no_keys": (F.composed.scaled_dot_product_attention, TSDPA, [z(2, 3), z(0, 3), z(0, 3)]),
    "attention_head_dim_0": (F.composed.scaled_dot_product_attention, TSDPA, [z(2, 0), z(4, 0), z(4, 3)]),
    # numpy2gpt's causal mask is bottom-right aligned (a KV cache's queries are the last T of S), so with T > S
    # query 0 sees no key; torch's is_causal is top-left aligned, so the reference gets the same mask explicitly.
    "attention_causal_row_sees_no_key": (
        lambda q, k, v: F.composed.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.5),
        lambda q, k, v: _dead_row_reference(q, k, v),
        [z(3, 2), z(2, 2), z(2, 3)],
    ),
}


def _dead_row_reference(q, k, v):
    """torch with numpy2gpt's bottom-right causal mask for T=3, S=2: row 0 sees nothing (output 0)."""
    keep = torch.tensor([[False, False], [True, False], [True, True]])
    w = torch.softmax((q @ k.mT * 0.5).masked_fill(~keep, -torch.inf).nan_to_num(neginf=-1e300), -1)
    return (w * keep) @ v


@pytest.mark.parametrize("name", sorted(COMPOSED_CASES))
def test_composed_twin_matches_torch_on_edges(name: str) -> None:
    ours, theirs, arrays = COMPOSED_CASES[name]
    xs = [Tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.from_numpy(a.copy()).requires_grad_(True) for a in arrays]
    y, ty = ours(*xs), theirs(*ts)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    y.sum().backward()
    ty.sum().backward()
    for x, t in zip(xs, ts, strict=True):
        want = np.zeros_like(x.data) if t.grad is None else t.grad.numpy()
        got = np.zeros_like(x.data) if x.grad is None else x.grad.data
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_silu_of_a_0d_tensor() -> None:
    for dtype in (np.float32, np.float64):
        x = Tensor(np.array(1.5, dtype), requires_grad=True)
        y = F.silu(x)
        y.backward()
        t = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
        TF.silu(t).backward()
        assert y.shape == () and y.dtype == dtype
        np.testing.assert_allclose(y.item(), TF.silu(t).item(), rtol=1e-6)
        np.testing.assert_allclose(x.grad.item(), t.grad.item(), rtol=1e-6)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_and_its_composed_twin_of_a_0d_tensor(approximate: str) -> None:
    """erf/erfc ran their passes in place with out= and failed on 0-d arrays (found by the property tests)."""
    for fn in (F.gelu, F.composed.gelu):
        for dtype in (np.float32, np.float64):
            x = Tensor(np.array(1.8859533, dtype), requires_grad=True)
            y = fn(x, approximate=approximate)
            y.backward()
            t = torch.tensor(1.8859533, dtype=torch.float64, requires_grad=True)
            ty = TF.gelu(t, approximate=approximate)
            ty.backward()
            assert y.shape == () and y.dtype == dtype
            np.testing.assert_allclose(y.item(), ty.item(), rtol=1e-6)
            np.testing.assert_allclose(x.grad.item(), t.grad.item(), rtol=1e-5)
    assert F.erf(np.float64(0.3)).shape == () and F.erfc(np.array(-2.0)).shape == ()
