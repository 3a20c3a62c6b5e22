"""Optimizers: parameter groups and their errors, the update rules against PyTorch, dtypes, learning."""

from __future__ import annotations

import math

import numpy as np
import pytest

import numpy2gpt.nn as nn
from numpy2gpt.autograd import Tensor
from numpy2gpt.nn import optim

# A small "model": weight matrices, 1-D biases, an embedding table.
SHAPES = [(6, 5), (6,), (3, 6), (3,), (7, 5)]


def make_arrays(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def grad_sequence(steps, dtype=np.float32, seed=1):
    """A fixed sequence of gradients, one list of arrays per step (some steps leave a parameter without one)."""
    rng = np.random.default_rng(seed)
    seq = []
    for t in range(steps):
        grads = [rng.standard_normal(s).astype(dtype) * (1.0 + 0.3 * t) for s in SHAPES]
        if t % 7 == 3:
            grads[3] = None  # that step, the last bias gets no gradient: skipped by both optimizers
        seq.append(grads)
    return seq


def leaves(arrays):
    return [Tensor(a.copy(), requires_grad=True) for a in arrays]


def groups_of(params, split_kwargs):
    """Two groups: the matrices (with the group's own settings) and the biases/embedding."""
    first, second = split_kwargs
    return [{"params": [params[0], params[2]], **first}, {"params": [params[1], params[3], params[4]], **second}]


def assert_close_to_torch(ours, theirs, dtype):
    """~1e-6 relative in float32 (1e-12 in float64), relative to each tensor's scale."""
    tol = 1e-6 if dtype == np.float32 else 1e-12
    for p, t in zip(ours, theirs, strict=True):
        expected = t.detach().numpy()
        assert p.data.dtype == dtype
        np.testing.assert_allclose(p.data, expected, rtol=tol, atol=tol * np.abs(expected).max())


# -- the update rules against PyTorch -----------------------------------------------------------------------

CASES = [
    ("SGD", {"lr": 0.05}, ({}, {"lr": 0.1})),
    ("SGD", {"lr": 0.05, "momentum": 0.9}, ({}, {"momentum": 0.5})),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}, ({}, {"weight_decay": 0.1})),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}, ({"weight_decay": 0.01}, {"lr": 0.02})),
    ("SGD", {"lr": 0.05, "weight_decay": 0.05}, ({}, {"weight_decay": 0.0})),
    ("Adam", {"lr": 1e-2}, ({}, {"lr": 3e-2})),
    ("Adam", {"lr": 1e-2, "weight_decay": 0.1}, ({}, {"weight_decay": 0.0, "lr": 2e-2})),
    ("Adam", {"lr": 1e-2, "betas": (0.8, 0.95), "eps": 1e-6}, ({"betas": (0.9, 0.99)}, {})),
    ("AdamW", {"lr": 1e-2}, ({"weight_decay": 0.1}, {"weight_decay": 0.0})),
    ("AdamW", {"lr": 6e-3, "betas": (0.9, 0.95), "weight_decay": 0.2}, ({}, {"lr": 1e-2, "eps": 1e-5})),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "kwargs", "split"), CASES)
def test_matches_torch_20_steps_with_param_groups(name, kwargs, split, dtype):
    torch = pytest.importorskip("torch")
    arrays = make_arrays(dtype)
    ours = leaves(arrays)
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    opt = getattr(optim, name)(groups_of(ours, split), **kwargs)
    topt = getattr(torch.optim, name)(groups_of(theirs, split), foreach=False, **kwargs)
    for grads in grad_sequence(20, dtype):
        opt.zero_grad()
        topt.zero_grad()
        for p, t, g in zip(ours, theirs, grads, strict=True):
            if g is not None:
                p.grad = Tensor(g.copy())
                t.grad = torch.tensor(g.copy())
        opt.step()
        topt.step()
    assert_close_to_torch(ours, theirs, dtype)
    # the state matches too (Adam's moments and step counts, SGD's momentum buffers)
    for p, t in zip(ours, theirs, strict=True):
        for key, value in topt.state[t].items():
            if key == "step":
                assert opt.state[p]["step"] == float(value)
            else:
                ref = value.numpy()
                np.testing.assert_allclose(opt.state[p][key], ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


def test_training_loop_matches_torch_adamw_groups_clip_and_schedule():
    """nanoGPT's recipe on a tiny MLP: AdamW with decay/no-decay groups, grad clipping, warmup + cosine lr.

    The gradients come from each library's own autograd (the same loss), so the runs only stay together if
    every piece (backward, clipping, schedule, update) agrees.
    """
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 5)).astype(np.float32)
    y = rng.standard_normal((16, 3)).astype(np.float32)
    arrays = make_arrays(np.float32, seed=4)[:4]
    ours = leaves(arrays)
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]

    def groups(ps):
        return [{"params": [ps[0], ps[2]], "weight_decay": 0.1}, {"params": [ps[1], ps[3]], "weight_decay": 0.0}]

    warmup, max_iters, max_lr, min_lr = 4, 16, 3e-2, 3e-3
    opt = optim.AdamW(groups(ours), lr=max_lr, betas=(0.9, 0.95))
    sched = optim.lr_scheduler.CosineWarmupLR(opt, warmup_iters=warmup, max_iters=max_iters, min_lr=min_lr)
    topt = torch.optim.AdamW(groups(theirs), lr=max_lr, betas=(0.9, 0.95), foreach=False)
    lam = lambda it: optim.lr_scheduler.cosine_warmup_lr(it, max_lr, min_lr, warmup, max_iters) / max_lr  # noqa: E731
    tsched = torch.optim.lr_scheduler.LambdaLR(topt, lam)

    norms, tnorms = [], []
    for _ in range(20):
        w1, b1, w2, b2 = ours
        loss = ((((Tensor(x) @ w1.T + b1).tanh() @ w2.T + b2) - Tensor(y)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        norms.append(optim.clip_grad_norm_(ours, 1.0))
        opt.step()
        sched.step()

        tw1, tb1, tw2, tb2 = theirs
        tloss = ((torch.tanh(torch.tensor(x) @ tw1.T + tb1) @ tw2.T + tb2 - torch.tensor(y)) ** 2).mean()
        topt.zero_grad()
        tloss.backward()
        tnorms.append(torch.nn.utils.clip_grad_norm_(theirs, 1.0, foreach=False).item())
        topt.step()
        tsched.step()
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-15)

    assert max(norms) > 1.0  # clipping really happened on some steps
    np.testing.assert_allclose(norms, tnorms, rtol=1e-5)
    assert_close_to_torch(ours, theirs, np.float32)


# -- dtypes ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parameters_and_state_keep_their_dtype(name, dtype):
    params = leaves(make_arrays(dtype))
    opt = getattr(optim, name)(
        params,
        lr=np.float64(1e-2),
        weight_decay=np.float64(0.01),
        **({"momentum": np.float64(0.9)} if name == "SGD" else {}),
    )
    for grads in grad_sequence(3, dtype):
        for p, g in zip(params, grads, strict=True):
            p.grad = None if g is None else Tensor(g)
        opt.step()
    for p in params:
        assert p.data.dtype == dtype
        for key, value in opt.state[p].items():
            if key == "step":
                assert isinstance(value, float)
            else:
                assert value.dtype == dtype, key
        assert p.grad.data.dtype == dtype


def test_step_leaves_gradients_untouched():
    params = leaves(make_arrays())
    grads = grad_sequence(1)[0]
    grads[3] = np.ones(SHAPES[3], np.float32)
    for p, g in zip(params, grads, strict=True):
        p.grad = Tensor(g.copy())
    for opt in (optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=0.1), optim.Adam(params, weight_decay=0.1)):
        opt.step()
        for p, g in zip(params, grads, strict=True):
            np.testing.assert_array_equal(p.grad.data, g)


# -- learning -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs", "steps"),
    [("Adam", {"lr": 2e-2}, 3000), ("AdamW", {"lr": 2e-2, "weight_decay": 0.0}, 3000),
     ("SGD", {"lr": 1e-3, "momentum": 0.9}, 3000)],
)  # fmt: skip
def test_minimizes_the_rosenbrock_function(name, kwargs, steps):
    """f(x, y) = (1 - x)² + 100 (y - x²)², minimum 0 at (1, 1), through the autograd."""
    xy = Tensor(np.array([-1.5, 2.0]), requires_grad=True)  # float64
    opt = getattr(optim, name)([xy], **kwargs)
    start = None
    for _ in range(steps):
        x, y = xy[0], xy[1]
        loss = (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2
        start = start if start is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3 * start
    np.testing.assert_allclose(xy.data, [1.0, 1.0], atol=0.1)


def test_adam_fits_least_squares_in_float32():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20, 4)).astype(np.float32)
    w_true = np.array([1.0, -2.0, 0.5, 3.0], np.float32)
    b = a @ w_true
    w = Tensor(np.zeros(4, np.float32), requires_grad=True)
    opt = optim.Adam([w], lr=0.1)
    for _ in range(300):
        loss = ((Tensor(a) @ w - Tensor(b)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert w.data.dtype == np.float32
    np.testing.assert_allclose(w.data, w_true, atol=1e-3)


# -- construction, groups, errors -----------------------------------------------------------------------------


def test_groups_get_defaults_and_keep_their_own_values():
    params = leaves(make_arrays())
    opt = optim.AdamW(
        [{"params": params[:2], "lr": 0.5}, {"params": params[2:], "weight_decay": 0.0, "betas": [0.8, 0.9]}],
        lr=1e-3,
        betas=(0.9, 0.95),
    )
    g0, g1 = opt.param_groups
    assert g0["lr"] == 0.5 and g0["weight_decay"] == 0.01 and g0["betas"] == (0.9, 0.95) and g0["eps"] == 1e-8
    assert g1["lr"] == 1e-3 and g1["weight_decay"] == 0.0 and g1["betas"] == (0.8, 0.9)
    assert all(a is b for a, b in zip(g0["params"], params[:2], strict=True))
    assert opt.defaults["lr"] == 1e-3
    assert "Parameter Group 1" in repr(opt)


def test_a_single_list_is_one_group_and_generators_are_accepted():
    params = leaves(make_arrays())
    opt = optim.SGD((p for p in params), lr=0.1)
    assert len(opt.param_groups) == 1
    assert [id(p) for p in opt.param_groups[0]["params"]] == [id(p) for p in params]


def test_add_param_group():
    params = leaves(make_arrays())
    opt = optim.Adam(params[:3], lr=1e-3)
    opt.add_param_group({"params": params[3:], "lr": 1e-2})
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["lr"] == 1e-2
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [params[0]]})


def test_lr_can_be_changed_between_steps():
    p = Tensor(np.array([1.0], np.float32), requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    p.grad = Tensor(np.array([1.0], np.float32))
    opt.step()
    opt.param_groups[0]["lr"] = 0.5
    opt.step()
    np.testing.assert_allclose(p.data, [1.0 - 0.1 - 0.5], rtol=1e-6)


def test_parameters_without_grad_are_skipped():
    a, b = leaves(make_arrays()[:2])
    before = b.data.copy()
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = Tensor(np.ones_like(a.data))
    opt.step()
    np.testing.assert_array_equal(b.data, before)
    assert b not in opt.state or not opt.state[b]
    assert opt.state[a]["step"] == 1.0


def test_zero_grad_sets_none_or_zeros():
    params = leaves(make_arrays()[:2])
    opt = optim.SGD(params, lr=0.1)
    for p in params:
        p.grad = Tensor(np.ones_like(p.data))
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.data.any() for p in params)
    ro = np.broadcast_to(np.float32(1.0), params[0].shape)  # a read-only gradient
    params[0].grad = Tensor._wrap(ro)
    opt.zero_grad(set_to_none=False)
    assert not params[0].grad.data.any()
    opt.zero_grad()
    assert all(p.grad is None for p in params)


def test_step_with_closure_returns_the_loss():
    w = Tensor(np.array([3.0]), requires_grad=True)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 9.0
    np.testing.assert_allclose(w.data, [3.0 - 0.25 * 6.0])


def test_construction_errors():
    params = leaves(make_arrays())
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="single Tensor"):
        optim.Adam(params[0])
    with pytest.raises(TypeError, match="single dict"):
        optim.Adam({"params": params})
    with pytest.raises(TypeError, match="only optimize Tensors"):
        optim.Adam([np.zeros(3)])
    with pytest.raises(ValueError, match="does not require grad"):
        optim.Adam([Tensor(np.zeros(3, np.float32))])
    with pytest.raises(ValueError, match="non-leaf"):
        optim.Adam([params[0] * 2.0])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.Adam([{"params": params[:2]}, {"params": params[1:]}])
    with pytest.raises(ValueError, match="twice"):
        optim.Adam([params[0], params[0]])
    with pytest.raises(TypeError, match="not a set"):
        optim.Adam([{"params": set(params)}])
    with pytest.raises(ValueError, match="'params'"):
        optim.Adam([{"lr": 1.0}])
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam(params, lr=-1.0)
    with pytest.raises(ValueError, match="beta parameter at index 1"):
        optim.AdamW(params, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="beta parameter at index 0"):
        optim.Adam([{"params": params, "betas": (-0.1, 0.9)}])
    with pytest.raises(ValueError, match="eps"):
        optim.Adam(params, eps=-1e-8)
    with pytest.raises(ValueError, match="weight_decay"):
        optim.AdamW(params, weight_decay=-0.1)
    with pytest.raises(ValueError, match="momentum"):
        optim.SGD(params, lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD(params, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)


def test_step_rejects_a_gradient_of_the_wrong_shape_or_dtype():
    p = Tensor(np.zeros((2, 3), np.float32), requires_grad=True)
    opt = optim.Adam([p])
    p.grad = Tensor(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*gradient of shape \(3, 2\)"):
        opt.step()
    p.grad = Tensor(np.zeros((2, 3), np.float64))
    with pytest.raises(ValueError, match="float64"):
        opt.step()
    p.grad = Tensor(np.zeros((2, 3), np.float32))
    p.data = np.broadcast_to(np.float32(1.0), (2, 3))
    with pytest.raises(ValueError, match="read-only"):
        opt.step()


def test_adam_first_step_is_lr_times_sign():
    """With bias correction, Adam's first step is lr * g / (|g| + eps) ≈ lr * sign(g)."""
    p = Tensor(np.zeros(4, np.float32), requires_grad=True)
    opt = optim.Adam([p], lr=0.01)
    p.grad = Tensor(np.array([3.0, -0.5, 1e-3, -100.0], np.float32))
    opt.step()
    np.testing.assert_allclose(p.data, -0.01 * np.sign(p.grad.data), rtol=1e-4)


def test_adamw_decay_is_decoupled():
    """With a zero gradient AdamW still shrinks p by (1 - lr·wd); Adam's L2 decay goes through the moments."""
    p = Tensor(np.full(3, 2.0, np.float32), requires_grad=True)
    opt = optim.AdamW([p], lr=0.1, weight_decay=0.5)
    p.grad = Tensor(np.zeros(3, np.float32))
    opt.step()
    np.testing.assert_allclose(p.data, 2.0 * (1 - 0.1 * 0.5), rtol=1e-6)
    q = Tensor(np.full(3, 2.0, np.float32), requires_grad=True)
    opt = optim.Adam([q], lr=0.1, weight_decay=0.5)
    q.grad = Tensor(np.zeros(3, np.float32))
    opt.step()  # g = 0 + 0.5 * 2 = 1, first step ≈ lr * sign(g)
    np.testing.assert_allclose(q.data, 2.0 - 0.1, rtol=1e-6)
    assert math.isclose(opt.state[q]["exp_avg"][0], 0.1, rel_tol=1e-6)


def test_with_a_module_and_a_tied_weight_as_nanogpt_configures_it():
    """nanoGPT's configure_optimizers: 2-D parameters decay, the rest do not; a tied weight is listed once."""

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            rng = np.random.default_rng(0)
            self.wte = nn.Parameter(rng.standard_normal((5, 4)).astype(np.float32))
            self.gain = nn.Parameter(np.ones(4, np.float32))
            self.head = self.wte  # tied: the same Parameter object

        def forward(self, x):
            return ((x @ self.wte.T) * (x * self.gain).sum(axis=-1, keepdims=True)).sum()

    model = Tiny()
    params = dict(model.named_parameters())
    assert len(params) == 2  # the tied weight once
    decay = [p for p in params.values() if p.ndim >= 2]
    no_decay = [p for p in params.values() if p.ndim < 2]
    opt = optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}], lr=0.01)
    x = Tensor(np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32))
    before = {k: p.data.copy() for k, p in params.items()}
    for _ in range(3):
        opt.zero_grad()
        model(x).backward()
        optim.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    assert model.head is model.wte
    for k, p in params.items():
        assert isinstance(p, nn.Parameter) and p.data.dtype == np.float32
        assert not np.array_equal(p.data, before[k])
