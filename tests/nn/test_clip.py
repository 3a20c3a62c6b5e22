"""clip_grad_norm_ / clip_grad_value_: against PyTorch, missing and shared gradients, dtypes, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from numpy2gpt.autograd import Tensor
from numpy2gpt.nn import optim, utils

SHAPES = [(8, 5), (8,), (3, 8), (3,), (11, 5)]


def params_with_grads(dtype=np.float32, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    params = []
    for s in SHAPES:
        p = Tensor(rng.standard_normal(s).astype(dtype), requires_grad=True)
        p.grad = Tensor((rng.standard_normal(s) * scale).astype(dtype))
        params.append(p)
    return params


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])  # clipping, and no clipping
def test_matches_torch(dtype, norm_type, max_norm):
    torch = pytest.importorskip("torch")
    params = params_with_grads(dtype)
    tparams = []
    for p in params:
        t = torch.tensor(p.data.copy(), requires_grad=True)
        t.grad = torch.tensor(p.grad.data.copy())
        tparams.append(t)
    total = utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type=norm_type, foreach=False)
    assert isinstance(total, float)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    assert total == pytest.approx(ttotal.item(), rel=tol)
    for p, t in zip(params, tparams, strict=True):
        assert p.grad.data.dtype == dtype
        np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=tol, atol=0)


def test_total_norm_is_the_norm_of_all_gradients_concatenated():
    params = params_with_grads(np.float64, scale=3.0)
    flat = np.concatenate([p.grad.data.ravel() for p in params])
    expected = float(np.linalg.norm(flat))
    assert expected > 1.0
    total = utils.clip_grad_norm_(params, 1.0)
    assert total == pytest.approx(expected, rel=1e-13)  # the norm *before* clipping
    clipped = np.concatenate([p.grad.data.ravel() for p in params])
    np.testing.assert_allclose(clipped, flat / (expected + 1e-6), rtol=1e-13)
    assert np.linalg.norm(clipped) == pytest.approx(1.0, rel=1e-5)


def test_float32_stays_float32_and_no_clip_leaves_grads_untouched():
    params = params_with_grads(np.float32, scale=0.01)
    before = [p.grad.data.copy() for p in params]
    total = utils.clip_grad_norm_(params, 1.0)
    assert total < 1.0
    for p, b in zip(params, before, strict=True):
        assert p.grad.data.dtype == np.float32
        np.testing.assert_array_equal(p.grad.data, b)
    params = params_with_grads(np.float32, scale=10.0)
    utils.clip_grad_norm_(params, 1.0)
    assert all(p.grad.data.dtype == np.float32 for p in params)


def test_parameters_without_grads_are_ignored():
    params = params_with_grads(np.float64)
    params[1].grad = None
    params[3].grad = None
    expected = math.sqrt(sum(float((p.grad.data**2).sum()) for p in params if p.grad is not None))
    assert utils.clip_grad_norm_(params, 0.1) == pytest.approx(expected, rel=1e-13)
    assert params[1].grad is None and params[3].grad is None
    none = [Tensor(np.zeros(3, np.float32), requires_grad=True)]
    assert utils.clip_grad_norm_(none, 1.0) == 0.0
    assert utils.clip_grad_norm_([], 1.0) == 0.0


def test_a_single_tensor_and_a_generator_are_accepted():
    p = params_with_grads(np.float64)[0]
    norm = float(np.linalg.norm(p.grad.data))
    assert utils.clip_grad_norm_(p, 1e9) == pytest.approx(norm, rel=1e-13)
    assert utils.clip_grad_norm_((q for q in [p]), 1e9) == pytest.approx(norm, rel=1e-13)


def test_shared_gradient_arrays_are_scaled_once():
    """Two parameters holding the same gradient array (or the same Tensor) must not be scaled twice."""
    a = Tensor(np.zeros(4), requires_grad=True)
    b = Tensor(np.zeros(4), requires_grad=True)
    c = Tensor(np.zeros(4), requires_grad=True)
    g = np.array([3.0, 0.0, 4.0, 0.0])
    a.grad = Tensor(g)
    b.grad = a.grad  # the same Tensor
    c.grad = Tensor(g)  # another Tensor around the same array
    total = utils.clip_grad_norm_([a, b, c], 1.0)
    assert total == pytest.approx(math.sqrt(3) * 5.0)  # each parameter's gradient counts in the norm
    expected = np.array([3.0, 0.0, 4.0, 0.0]) / (math.sqrt(3) * 5.0 + 1e-6)
    for p in (a, b, c):
        np.testing.assert_allclose(p.grad.data, expected, rtol=1e-14)


def test_a_parameter_listed_twice_counts_once():
    p = Tensor(np.zeros(2), requires_grad=True)
    p.grad = Tensor(np.array([3.0, 4.0]))
    assert utils.clip_grad_norm_([p, p], 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.data, [3.0 / (5.0 + 1e-6), 4.0 / (5.0 + 1e-6)], rtol=1e-14)


def test_read_only_gradients_are_replaced_by_scaled_copies():
    p = Tensor(np.zeros((2, 3)), requires_grad=True)
    q = Tensor(np.zeros((2, 3)), requires_grad=True)
    ro = np.broadcast_to(np.array([2.0]), (2, 3))  # what a broadcasting backward may leave behind
    p.grad = Tensor(ro)
    q.grad = Tensor(ro)
    total = utils.clip_grad_norm_([p, q], 1.0)
    assert total == pytest.approx(math.sqrt(2 * 6 * 4.0))
    for t in (p, q):
        np.testing.assert_allclose(t.grad.data, np.full((2, 3), 2.0 / (total + 1e-6)), rtol=1e-14)
    np.testing.assert_array_equal(ro, 2.0)  # the original array is left alone


def test_nonfinite_norm():
    p = Tensor(np.zeros(3), requires_grad=True)
    p.grad = Tensor(np.array([1.0, np.inf, 0.0]))
    with pytest.raises(RuntimeError, match="inf"):
        utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert math.isinf(utils.clip_grad_norm_([p], 1.0))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("norm_type", [2.0, math.inf])
def test_nonfinite_norm_makes_the_gradients_what_torch_makes_them(bad, norm_type):
    """error_if_nonfinite=False: a nan norm turns every gradient nan, an inf norm scales by 0 (inf * 0 = nan)."""
    torch = pytest.importorskip("torch")
    params = params_with_grads(np.float32)
    params[1].grad.data[2] = bad
    tparams = []
    for p in params:
        t = torch.tensor(p.data.copy(), requires_grad=True)
        t.grad = torch.tensor(p.grad.data.copy())
        tparams.append(t)
    total = utils.clip_grad_norm_(params, 1.0, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, 1.0, norm_type=norm_type, foreach=False)
    np.testing.assert_array_equal(total, ttotal.item())
    for p, t in zip(params, tparams, strict=True):
        np.testing.assert_array_equal(p.grad.data, t.grad.numpy())  # (nan == nan here)
    assert np.isnan(params[0].grad.data).all() == np.isnan(bad)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # (1e30 ** 2 of the two norms: inf)
@pytest.mark.parametrize("value", [1e30, -1e30, 1e-30])
@pytest.mark.parametrize("norm_type", [2.0, 3.0, 0.5])
@pytest.mark.parametrize("shape", [(), (1, 1)])
def test_norm_of_one_element_is_its_absolute_value_like_torch(value, norm_type, shape):
    """PyTorch's norm of one element is |g|, never (|g|^p)^(1/p): a float32 gradient 1e30 has norm 1e30 (was inf,
    its square overflowing, and every gradient nan after clipping), 1e-30 has 1e-30 (was 0). Found by the property
    test of clip_grad_norm_ (a 0-d gradient holding 1e30)."""
    torch = pytest.importorskip("torch")
    g = np.full(shape, value, np.float32)
    p = Tensor(np.zeros(shape, np.float32), requires_grad=True)
    p.grad = Tensor(g.copy())
    t = torch.zeros(shape, requires_grad=True)
    t.grad = torch.tensor(g)
    total = utils.clip_grad_norm_([p], 0.1, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_([t], 0.1, norm_type=norm_type, foreach=False)
    assert total == ttotal.item() == abs(float(np.float32(value)))
    np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-6)
    two = torch.stack([torch.linalg.vector_norm(torch.tensor(g), norm_type), torch.tensor(3.0)])
    expected = torch.linalg.vector_norm(two, norm_type).item()  # two norms are raised to p: 1e30 ** 2 is inf
    np.testing.assert_allclose(utils.get_total_norm([g, np.float32(3.0)], norm_type), expected, rtol=1e-6)


def test_exported_from_optim():
    assert optim.clip_grad_norm_ is utils.clip_grad_norm_


def test_get_total_norm():
    arrays = [np.array([3.0]), np.array([[4.0, 0.0]])]
    assert utils.get_total_norm(arrays) == pytest.approx(5.0)
    assert utils.get_total_norm([Tensor(a) for a in arrays], math.inf) == 4.0
    assert utils.get_total_norm([]) == 0.0


def test_clip_grad_value_matches_torch():
    torch = pytest.importorskip("torch")
    params = params_with_grads(np.float32, scale=2.0)
    tgrads = [torch.tensor(p.grad.data.copy()) for p in params]
    utils.clip_grad_value_(params, 0.7)
    for p, g in zip(params, tgrads, strict=True):
        t = torch.zeros_like(g, requires_grad=True)
        t.grad = g
        torch.nn.utils.clip_grad_value_([t], 0.7)
        np.testing.assert_array_equal(p.grad.data, t.grad.numpy())
        assert p.grad.data.dtype == np.float32 and np.abs(p.grad.data).max() <= np.float32(0.7)


def test_clip_grad_value_shared_read_only_and_missing_gradients():
    """In place for a writable gradient (also when two parameters share it), a clamped copy for a read-only one."""
    g = np.array([-3.0, 0.5, 2.0], np.float32)
    ro = np.broadcast_to(np.float32(5.0), (2, 3))
    a, b, c, d = (Tensor(np.zeros(s, np.float32), requires_grad=True) for s in [(3,), (3,), (2, 3), (4,)])
    a.grad = Tensor(g)
    b.grad = Tensor(g)
    c.grad = Tensor(ro)
    utils.clip_grad_value_([a, b, c, d], 1.0)
    assert a.grad.data is g and b.grad.data is g
    np.testing.assert_array_equal(g, [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(c.grad.data, np.ones((2, 3), np.float32))
    assert c.grad.data.dtype == np.float32 and (ro == 5.0).all()  # the read-only array is left alone
    assert d.grad is None
