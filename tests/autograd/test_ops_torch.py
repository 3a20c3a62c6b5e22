"""Every op's forward and gradient against PyTorch on random float64 inputs (the table is in conftest.py),
plus the cases finite differences cannot judge: three-way ties in max (compared with torch.amax), clip at
its bounds, abs at 0, maximum of equal values."""

from __future__ import annotations

import numpy as np
import pytest

import numpy2gpt.autograd as ag

torch = pytest.importorskip("torch")

TOL = {"rtol": 1e-12, "atol": 1e-12}


def _outputs(out):
    return out if isinstance(out, (tuple, list)) else (out,)


def compare(ours, theirs, arrays, seed=1):
    """Forward outputs and the gradient of sum(r * y) for a random r, ours against torch's, in float64."""
    xs = [ag.Tensor(a.copy(), requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ys, zs = _outputs(ours(*xs)), _outputs(theirs(*ts))
    assert len(ys) == len(zs)
    rng = np.random.default_rng(seed)
    rs = [rng.standard_normal(y.shape) for y in ys]
    for y, z in zip(ys, zs, strict=True):
        assert y.shape == tuple(z.shape)
        np.testing.assert_allclose(y.data, z.detach().numpy(), **TOL)
    sum((y * r).sum() for y, r in zip(ys, rs, strict=True)).backward()
    sum((z * torch.from_numpy(r)).sum() for z, r in zip(zs, rs, strict=True)).backward()
    for x, t in zip(xs, ts, strict=True):
        expected = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
        got = np.zeros(x.shape) if x.grad is None else x.grad.data
        np.testing.assert_allclose(got, expected, **TOL)


def test_matches_torch(op_case, make_inputs):
    compare(op_case.ours, op_case.theirs, make_inputs(op_case))


def test_max_three_way_ties_match_amax():
    x = np.array([[2.0, 2.0, 2.0, -1.0], [0.0, 5.0, 5.0, 5.0], [1.0, 1.0, 1.0, 1.0]])
    for axis in (None, 0, 1, -1, (0, 1)):
        d = tuple(range(2)) if axis is None else axis
        compare(lambda t, a=axis: t.max(a), lambda t, d=d: t.amax(d), [x])
        compare(lambda t, a=axis: t.min(a, True), lambda t, d=d: t.amin(d, keepdim=True), [-x])
    compare(lambda t: t.max(), lambda t: t.max(), [x])  # full max: torch also shares evenly


def test_maximum_minimum_ties_share_the_gradient():
    a = np.array([1.0, 2.0, -3.0, 0.0])
    b = np.array([1.0, 0.0, -3.0, 0.0])
    compare(ag.maximum, torch.maximum, [a, b])
    compare(ag.minimum, torch.minimum, [a, b])
    x = ag.Tensor(a, requires_grad=True)
    ag.maximum(x, x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.ones(4))  # 1/2 through each operand


def test_clip_at_its_bounds_and_abs_at_zero():
    x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    compare(lambda t: t.clip(-0.5, 0.5), lambda t: t.clamp(-0.5, 0.5), [x])
    compare(lambda t: t.abs(), lambda t: t.abs(), [x])


def test_pow_at_zero_base_and_zero_exponent():
    a, b = np.array([0.0, 0.0, 1.5, 0.0]), np.array([2.0, 0.0, 3.0, 1.0])
    compare(lambda a, b: a**b, lambda a, b: a**b, [a, b])
    compare(lambda a: a**0, lambda a: a**0, [a])
    compare(lambda a: a**2, lambda a: a**2, [a])
    compare(lambda b: 0.0**b, lambda b: 0.0**b, [b])


def test_repeated_index_accumulates_like_torch():
    x = np.arange(12.0).reshape(3, 4)
    idx = [2, 0, 2, 2, 1]
    compare(lambda t: t[idx], lambda t: t[idx], [x])
    compare(lambda t: t[:, idx[:4]], lambda t: t[:, idx[:4]], [x])
    compare(lambda t: t[idx, idx[::-1]], lambda t: t[idx, idx[::-1]], [x])


def test_matmul_batch_broadcast_like_torch():
    rng = np.random.default_rng(0)
    compare(lambda a, b: a @ b, lambda a, b: a @ b, [rng.standard_normal((3, 1, 2, 5)), rng.standard_normal((4, 5, 6))])


def test_var_std_correction_like_torch():
    x = np.random.default_rng(0).standard_normal((4, 5))
    for c in (0, 1, 3):
        compare(lambda t, c=c: t.var(0, correction=c), lambda t, c=c: t.var(0, correction=c), [x])
        compare(lambda t, c=c: t.std(None, True, c), lambda t, c=c: t.std(None, keepdim=True, correction=c), [x])
    y = ag.Tensor(np.array([3.0]), requires_grad=True).var()  # one element, correction 1: undefined
    assert np.isnan(y.item())  # torch: nan too (with a warning)


def test_second_derivative_of_a_composite_like_torch():
    x0 = np.random.default_rng(3).standard_normal(5)

    def second(mod, x):
        y = (x.tanh() * x.exp() + x**3).sum()
        (g,) = ag.grad(y, x, create_graph=True) if mod is ag else torch.autograd.grad(y, x, create_graph=True)
        return g

    x = ag.Tensor(x0.copy(), requires_grad=True)
    t = torch.tensor(x0, requires_grad=True)
    np.testing.assert_allclose(second(ag, x).data, second(torch, t).detach().numpy(), **TOL)
    (hx,) = ag.grad(second(ag, x).sum(), x)
    (ht,) = torch.autograd.grad(second(torch, t).sum(), t)
    np.testing.assert_allclose(hx.data, ht.numpy(), rtol=1e-12, atol=1e-12)
