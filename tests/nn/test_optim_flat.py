"""The optimizers' flat storage (optim/flat.py): bit-identical to the per-parameter loop, and kept honest when
parameters or state arrays are replaced, parameters share memory, or groups are added."""

from __future__ import annotations

import numpy as np
import pytest

import numpy2gpt.nn as nn
from numpy2gpt.autograd import Tensor
from numpy2gpt.nn import optim
from numpy2gpt.nn.optim.flat import CHUNK

# small ones packed into one chunk, a large one split over several (its last piece short), float32 and float64
SHAPES = [(6, 5), (6,), (), (CHUNK + 1000,), (3, 6), (40, 70), (7,)]
DTYPES = [np.float32, np.float32, np.float32, np.float32, np.float64, np.float32, np.float64]

RULES = [
    ("AdamW", {"lr": 1e-2, "betas": (0.9, 0.95)}),
    ("Adam", {"lr": 1e-2, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.2, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05}),
]


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return [Tensor(rng.standard_normal(s).astype(d), requires_grad=True) for s, d in zip(SHAPES, DTYPES, strict=True)]


def set_grads(params, t):
    rng = np.random.default_rng(100 + t)
    for i, p in enumerate(params):
        skipped = (t % 3 == 1 and i in (1, 5)) or (t == 0 and i == 3)  # states drift apart: runs break
        p.grad = None if skipped else Tensor(rng.standard_normal(p.shape).astype(p.dtype))


def build(name, kwargs, params, flat):
    groups = [{"params": params[:4], "weight_decay": 0.1}, {"params": params[4:], "lr": 2e-2}]
    opt = getattr(optim, name)(groups, **kwargs)
    if not flat:
        opt.elementwise = False  # the per-parameter loop, the reference
    return opt


def assert_same(flat_params, flat_opt, ref_params, ref_opt):
    for p, q in zip(flat_params, ref_params, strict=True):
        assert p.data.dtype == q.data.dtype and p.data.shape == q.data.shape
        assert np.array_equal(p.data, q.data)
    sd, ref = flat_opt.state_dict(), ref_opt.state_dict()
    assert sorted(sd["state"]) == sorted(ref["state"])
    for idx, state in ref["state"].items():
        assert sd["state"][idx].keys() == state.keys()
        for key, value in state.items():
            assert np.array_equal(sd["state"][idx][key], value), (idx, key)
            assert type(sd["state"][idx][key]) is type(value)


@pytest.mark.parametrize(("name", "kwargs"), RULES)
def test_flat_steps_are_bit_identical_to_the_per_parameter_loop(name, kwargs):
    params, ref_params = make_params(), make_params()
    opt, ref_opt = build(name, kwargs, params, True), build(name, kwargs, ref_params, False)
    for t in range(7):
        set_grads(params, t)
        set_grads(ref_params, t)
        opt.step()
        ref_opt.step()
    assert_same(params, opt, ref_params, ref_opt)
    # the flat path really ran: the float32 parameters and their state are views of one buffer
    buffer = params[0].data.base
    assert buffer is not None and all(params[i].data.base is buffer for i in (1, 2, 3, 5))
    for state in opt.state.values():
        for value in state.values():
            if isinstance(value, np.ndarray):
                assert value.base is not None


@pytest.mark.parametrize(("name", "kwargs"), RULES[:3])
def test_replaced_arrays_are_taken_over(name, kwargs):
    """p.data replaced (as Module.load_state_dict does), optimizer state reloaded, a group added: still the same."""
    params, ref_params = make_params(), make_params()
    opt, ref_opt = build(name, kwargs, params, True), build(name, kwargs, ref_params, False)
    extra, ref_extra = (Tensor(np.full((4, 3), 0.5, np.float32), requires_grad=True) for _ in range(2))

    def both(t):
        set_grads(params, t)
        set_grads(ref_params, t)
        for x in (extra, ref_extra):
            x.grad = Tensor(np.full((4, 3), 0.1 * t, np.float32))
        opt.step()
        ref_opt.step()

    both(0)
    both(1)
    for ps in (params, ref_params):  # a new array, the same values (as load_state_dict does)
        ps[0].data = ps[0].data.copy() * np.float32(0.5)
        ps[4].data = np.ascontiguousarray(ps[4].data.T).T  # a new array, not contiguous
    both(2)
    opt.load_state_dict(opt.state_dict())  # fresh state arrays, same values
    ref_opt.load_state_dict(ref_opt.state_dict())
    both(3)
    opt.add_param_group({"params": [extra]})
    ref_opt.add_param_group({"params": [ref_extra]})
    both(4)
    both(5)
    assert_same([*params, extra], opt, [*ref_params, ref_extra], ref_opt)


def test_module_load_state_dict_between_steps():
    model, ref = nn.Linear(5, 4), nn.Linear(5, 4)
    ref.load_state_dict(model.state_dict())
    opt, ref_opt = optim.AdamW(model.parameters(), lr=0.1), optim.AdamW(ref.parameters(), lr=0.1)
    ref_opt.elementwise = False
    x = Tensor(np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32))
    for t in range(4):
        if t == 2:
            saved = {k: v * 2 for k, v in model.state_dict().items()}
            model.load_state_dict(saved)
            ref.load_state_dict(saved)
        for m, o in ((model, opt), (ref, ref_opt)):
            o.zero_grad()
            (m(x) ** 2).sum().backward()
            o.step()
    for p, q in zip(model.parameters(), ref.parameters(), strict=True):
        assert np.array_equal(p.data, q.data)
    assert model.weight.data.base is model.bias.data.base is not None


def test_parameters_sharing_memory_stay_tied():
    """Two Parameters over one array: flat buffers would untie them, so the per-parameter loop runs."""
    shared = np.ones((3, 4), np.float32)
    a, b = Tensor(shared, requires_grad=True), Tensor(shared, requires_grad=True)
    c = Tensor(np.ones(5, np.float32), requires_grad=True)
    opt = optim.SGD([a, b, c], lr=0.5)
    for p in (a, b, c):
        p.grad = Tensor(np.ones(p.shape, np.float32))
    opt.step()
    assert a.data is shared and b.data is shared
    np.testing.assert_array_equal(shared, 0.0)  # both updates landed in the one array: 1 - 0.5 - 0.5
    np.testing.assert_array_equal(c.data, 0.5)


def test_non_numpy_rules_keep_the_per_parameter_loop():
    """A rule that is not elementwise (here: normalises by the parameter's norm) sees whole parameters."""

    class Normalized(optim.SGD):
        elementwise = False

        def _update(self, p, g, group, state):
            assert p.shape == g.shape and p.ndim == 2
            p -= group["lr"] * g / np.linalg.norm(g)

    ps = [Tensor(np.ones(shape, np.float32), requires_grad=True) for shape in ((3, 4), (2, 2))]
    opt = Normalized(ps, lr=0.1)
    for p in ps:
        p.grad = Tensor(np.ones(p.shape, np.float32))
    opt.step()
    np.testing.assert_allclose(ps[0].data, 1 - 0.1 / np.sqrt(12), rtol=1e-6)
    np.testing.assert_allclose(ps[1].data, 1 - 0.1 / 2, rtol=1e-6)


def test_module_to_another_dtype_between_steps():
    """Module.double() after some steps: the layout is rebuilt in float64 and the state follows the parameters."""
    model = nn.Linear(5, 4)
    opt = optim.AdamW(model.parameters(), lr=0.1)
    x = np.random.default_rng(0).standard_normal((3, 5))
    for t in range(3):
        if t == 1:
            model.double()
        opt.zero_grad()
        (model(Tensor(x.astype(model.weight.dtype))) ** 2).sum().backward()
        opt.step()
    for p in model.parameters():
        assert p.data.dtype == np.float64 and p.data.base is not None
        assert all(opt.state[p][k].dtype == np.float64 for k in ("exp_avg", "exp_avg_sq"))
        assert opt.state[p]["step"] == 3.0


def test_a_rule_that_replaces_its_state_arrays_keeps_them():
    """An elementwise rule may assign new state arrays instead of updating them in place: they are copied in."""

    class Momentum(optim.SGD):
        def _update(self, p, g, group, state):
            state["velocity"] = 0.5 * state.get("velocity", 0.0) + g  # a new array every step
            p -= group["lr"] * state["velocity"]

    ps = [Tensor(np.zeros(s, np.float32), requires_grad=True) for s in ((3, 4), (CHUNK + 7,))]
    opt = Momentum(ps, lr=1.0)
    for _ in range(3):
        for p in ps:
            p.grad = Tensor(np.ones(p.shape, np.float32))
        opt.step()
    for p in ps:  # velocity 1, 1.5, 1.75: p = -(1 + 1.5 + 1.75)
        np.testing.assert_array_equal(opt.state[p]["velocity"], 1.75)
        np.testing.assert_array_equal(p.data, -4.25)
