"""layer_norm of rows whose squares overflow the dtype (H2's P8): float32 rows with |x - mean| > 1.8e19 gave
exactly 0 (PyTorch: nan), though the true output is representable. Compared with PyTorch in float64, fused and
composed, values and gradients."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import numpy2gpt.nn.functional as F  # noqa: N812
from numpy2gpt.autograd import Tensor, gradcheck

torch = pytest.importorskip("torch")

ROWS = np.array(
    [[1e20, 0.5, -1e20 / 3, 7.0], [1.0, 2.0, 4.0, -3.0], [-2e19, 2e19, 1.0, 0.0], [1e30, 1e30, 1e30, -1e30],
     [np.inf, 1.0, 2.0, 3.0], [1e-30, 2e-30, 0.0, -1e-30], [1e25, -1e25, 1e24, 0.5]],
    np.float32,
)  # fmt: skip


def _torch64(x0, w0, b0, g0):
    """PyTorch's layer_norm in float64 (its float32 kernel gives nan here), values and gradients."""
    x, w, b = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x0, w0, b0))
    y = torch.nn.functional.layer_norm(x, x0.shape[-1:], w, b)
    y.backward(torch.tensor(g0, dtype=torch.float64))
    return [a.detach().numpy().astype(np.float32) for a in (y, x.grad, w.grad, b.grad)]


@pytest.mark.parametrize("fn", [F.layer_norm, F.composed.layer_norm], ids=["fused", "composed"])
def test_layer_norm_of_huge_float32_rows_is_right(fn):
    rng = np.random.default_rng(0)
    w0, b0 = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    g0 = rng.standard_normal(ROWS.shape).astype(np.float32)
    x, w, b = (Tensor(a, requires_grad=True) for a in (ROWS, w0, b0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # (the inf row: nan, as in PyTorch)
        y = fn(x, (4,), w, b)
        y.backward(Tensor(g0))
    expected = _torch64(ROWS, w0, b0, g0)
    assert np.abs(y.data[0]).max() > 0.5  # not the zeros of before
    for got, want in zip((y.data, x.grad.data, w.grad.data, b.grad.data), expected, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # nan where PyTorch has nan


def test_fused_layer_norm_handles_rows_near_float32s_largest():
    """|x - mean| itself overflows float32 here (the composed twin, x - mean in float32, gives nan)."""
    x0 = np.array([[3e38, -3e38, 3e38], [3.4e38, 3.4e38, 3.4e38], [-3.4e38, 3.4e38, 0.0]], np.float32)
    g0 = np.array([[1.0, -0.5, 0.25]] * 3, np.float32)
    x = Tensor(x0, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = F.layer_norm(x, (3,))
        y.backward(Tensor(g0))
    ones = np.ones(3, np.float32)
    want_y, want_gx, _, _ = _torch64(x0, ones, np.zeros(3, np.float32), g0)
    np.testing.assert_allclose(y.data, want_y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x.grad.data, want_gx, rtol=1e-5, atol=1e-30)


def test_layer_norm_gradient_of_huge_rows_passes_gradcheck():
    """In float64 the rescue path is taken for |x| > 1.3e154 only; gradcheck then runs on rows of 1e160
    scaled so that finite differences of eps = 1e-6 still see them: x = 1e160 * u."""
    u = np.random.default_rng(1).standard_normal((3, 5))
    w, b = np.linspace(0.5, 1.5, 5), np.linspace(-1.0, 1.0, 5)

    def scaled(v, w, b):
        return F.layer_norm(v * 1e160, (5,), w, b)

    assert gradcheck(scaled, u, w, b)
    plain = F.layer_norm(Tensor(u), (5,), Tensor(w), Tensor(b), eps=0.0)  # (eps is nothing beside 1e320)
    np.testing.assert_allclose(scaled(Tensor(u), Tensor(w), Tensor(b)).data, plain.data, rtol=1e-12)
