"""Optimizer and scheduler state dicts: contents, round trips, bit-for-bit resume (also through a file), errors."""

from __future__ import annotations

import numpy as np
import pytest

import numpy2gpt.nn as nn
from numpy2gpt.autograd import Tensor
from numpy2gpt.nn import optim
from numpy2gpt.nn.optim.lr_scheduler import CosineWarmupLR, LambdaLR, StepLR

SHAPES = [(6, 5), (6,), (3, 6), (3,)]


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return [Tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in SHAPES]


def set_grads(params, t):
    """Deterministic gradients that depend on the parameters and the step (float32 throughout)."""
    for i, p in enumerate(params):
        g = np.sin(p.data * np.float32(t + 1 + i)) + np.float32(0.1 * (i + 1))
        p.grad = Tensor(g * np.float32(3.0 if t % 4 == 1 else 0.5))  # some steps get clipped
    if t % 5 == 2:
        params[3].grad = None  # skipped this step


def groups(params):
    return [{"params": [params[0], params[2]], "weight_decay": 0.1}, {"params": [params[1], params[3]], "lr": 2e-2}]


SETUPS = {
    "SGD+StepLR": (
        lambda ps: optim.SGD(groups(ps), lr=0.05, momentum=0.9, nesterov=True),
        lambda opt: StepLR(opt, step_size=3, gamma=0.8),
    ),
    "Adam+LambdaLR": (
        lambda ps: optim.Adam(groups(ps), lr=1e-2, weight_decay=0.01),
        lambda opt: LambdaLR(opt, lambda e: 1.0 / (1.0 + 0.1 * e)),
    ),
    "AdamW+CosineWarmupLR": (
        lambda ps: optim.AdamW(groups(ps), lr=1e-2, betas=(0.9, 0.95)),
        lambda opt: CosineWarmupLR(opt, warmup_iters=4, max_iters=16, min_lr=1e-3),
    ),
}


def train(params, opt, sched, steps, start=0):
    for t in range(start, start + steps):
        set_grads(params, t)
        optim.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()


def assert_plain(obj, where="state_dict"):
    """Only what nn.save can store: dicts with int/str keys, lists, tuples, ndarrays, numbers, str, None."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            assert isinstance(key, (int, str)), where
            assert_plain(value, f"{where}[{key!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            assert_plain(value, f"{where}[{i}]")
    else:
        assert obj is None or isinstance(obj, (np.ndarray, bool, int, float, str)), (where, type(obj))


@pytest.mark.parametrize("setup", list(SETUPS))
@pytest.mark.parametrize("through_file", [False, True])
def test_resume_mid_run_is_bit_for_bit(setup, through_file, tmp_path):
    make_opt, make_sched = SETUPS[setup]

    params = make_params()
    opt = make_opt(params)
    sched = make_sched(opt)
    train(params, opt, sched, 20)
    uninterrupted = [p.data.copy() for p in params]

    params = make_params()
    opt = make_opt(params)
    sched = make_sched(opt)
    train(params, opt, sched, 10)
    checkpoint = {
        "model": [p.data.copy() for p in params],
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
    }
    assert_plain(checkpoint)
    if through_file:
        nn.save(checkpoint, tmp_path / "ckpt.n2g")
        checkpoint = nn.load(tmp_path / "ckpt.n2g")
    del params, opt, sched

    params = make_params(seed=123)  # a fresh model, then its weights from the checkpoint
    for p, saved in zip(params, checkpoint["model"], strict=True):
        p.data[...] = saved
    opt = make_opt(params)
    sched = make_sched(opt)
    opt.load_state_dict(checkpoint["optimizer"])
    sched.load_state_dict(checkpoint["scheduler"])
    train(params, opt, sched, 10, start=10)

    for p, expected in zip(params, uninterrupted, strict=True):
        assert p.data.dtype == np.float32
        assert np.array_equal(p.data, expected)


def test_state_dict_layout_is_torchs():
    params = make_params()
    opt = optim.AdamW(groups(params), lr=1e-2)
    set_grads(params, 0)
    params[1].grad = None
    opt.step()
    sd = opt.state_dict()
    assert set(sd) == {"state", "param_groups"}
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2, 3]]  # positions, counting through the groups
    g0, g1 = sd["param_groups"]
    assert g0 == {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1, "params": [0, 1]}
    assert g1["lr"] == 2e-2 and g1["weight_decay"] == 0.01
    assert sorted(sd["state"]) == [0, 1, 3]  # parameter 2 (params[1]) had no gradient: no state
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    assert sd["state"][0]["step"] == 1.0
    assert sd["state"][0]["exp_avg"].shape == SHAPES[0] and sd["state"][0]["exp_avg"].dtype == np.float32
    assert_plain(sd)


def test_state_dict_matches_torchs_for_the_same_run():
    torch = pytest.importorskip("torch")
    params = make_params()
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt = optim.Adam(groups(params), lr=1e-2)
    topt = torch.optim.Adam(groups(tparams), lr=1e-2, foreach=False)
    for t in range(3):
        set_grads(params, t)
        for p, tp in zip(params, tparams, strict=True):
            tp.grad = None if p.grad is None else torch.tensor(p.grad.data.copy())
        opt.step()
        topt.step()
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sorted(sd["state"]) == sorted(tsd["state"])
    for idx, state in tsd["state"].items():
        assert set(sd["state"][idx]) == set(state)
        assert sd["state"][idx]["step"] == state["step"].item()
    for g, tg in zip(sd["param_groups"], tsd["param_groups"], strict=True):
        assert g["params"] == tg["params"]
        for key, value in g.items():
            assert tg[key] == value, key


def test_state_dict_is_a_snapshot_and_load_copies():
    params = make_params()
    opt = optim.Adam(params, lr=1e-2)
    set_grads(params, 0)
    opt.step()
    sd = opt.state_dict()
    saved = sd["state"][0]["exp_avg"].copy()
    set_grads(params, 1)
    opt.step()
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], saved)  # later steps do not change it

    other = optim.Adam(make_params(), lr=1e-2)
    other.load_state_dict(sd)
    sd["state"][0]["exp_avg"][...] = 123.0  # nor does changing the dict after loading
    p0 = other.param_groups[0]["params"][0]
    np.testing.assert_array_equal(other.state[p0]["exp_avg"], saved)


def test_round_trip_restores_hyperparameters_and_state():
    params = make_params()
    opt = optim.SGD(groups(params), lr=0.1, momentum=0.9)
    set_grads(params, 0)
    opt.step()
    opt.param_groups[1]["lr"] = 0.5  # e.g. set by a schedule
    sd = opt.state_dict()

    fresh = optim.SGD(groups(make_params()), lr=0.1, momentum=0.9)
    assert fresh.param_groups[1]["lr"] == 2e-2
    fresh.load_state_dict(sd)
    assert fresh.param_groups[1]["lr"] == 0.5
    assert fresh.param_groups[0]["weight_decay"] == 0.1
    again = fresh.state_dict()
    assert again["param_groups"] == sd["param_groups"]
    assert sorted(again["state"]) == sorted(sd["state"])
    for idx, state in sd["state"].items():
        np.testing.assert_array_equal(again["state"][idx]["momentum_buffer"], state["momentum_buffer"])


def test_load_accepts_string_keys_lists_and_casts_to_the_parameter_dtype():
    params = make_params()
    opt = optim.Adam(params, lr=1e-2)
    set_grads(params, 0)
    opt.step()
    sd = opt.state_dict()
    jsonish = {
        "state": {
            str(i): {k: v.astype(np.float64) if isinstance(v, np.ndarray) else v for k, v in s.items()}
            for i, s in sd["state"].items()
        },
        "param_groups": [{**g, "betas": list(g["betas"])} for g in sd["param_groups"]],
    }
    fresh_params = make_params()
    fresh = optim.Adam(fresh_params, lr=1e-2)
    fresh.load_state_dict(jsonish)
    assert fresh.param_groups[0]["betas"] == (0.9, 0.999)
    for i, p in enumerate(fresh_params):
        assert fresh.state[p]["exp_avg"].dtype == np.float32
        np.testing.assert_array_equal(fresh.state[p]["exp_avg"], sd["state"][i]["exp_avg"])
        assert fresh.state[p]["step"] == 1.0


def test_load_errors_on_mismatched_groups():
    params = make_params()
    opt = optim.Adam(groups(params), lr=1e-2)
    set_grads(params, 0)
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="2 parameter groups, but this optimizer has 1"):
        optim.Adam(make_params(), lr=1e-2).load_state_dict(sd)
    other = make_params()
    with pytest.raises(ValueError, match="group 0 has 2 parameters, but this optimizer's group 0 has 3"):
        optim.Adam([{"params": other[:3]}, {"params": other[3:]}], lr=1e-2).load_state_dict(sd)
    swapped = make_params()
    with pytest.raises(ValueError, match="has shape"):  # same sizes, but the shapes differ
        optim.Adam([{"params": [swapped[1], swapped[3]]}, {"params": [swapped[0], swapped[2]]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="no parameter group lists"):
        optim.Adam(groups(make_params())).load_state_dict({**sd, "state": {7: sd["state"][0]}})
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        optim.Adam(groups(make_params())).load_state_dict({"state": {}})
    with pytest.raises(ValueError, match="learning rate"):
        bad = {**sd, "param_groups": [{**sd["param_groups"][0], "lr": -1.0}, sd["param_groups"][1]]}
        optim.Adam(groups(make_params())).load_state_dict(bad)


def test_scheduler_state_dict_round_trip():
    opt = optim.SGD(groups(make_params()), lr=0.1)
    sched = CosineWarmupLR(opt, warmup_iters=3, max_iters=10, min_lr=[0.01, 0.001])
    for _ in range(5):
        sched.step()
    sd = sched.state_dict()
    assert sd == {
        "last_epoch": 5,
        "base_lrs": [0.1, 2e-2],
        "_last_lr": sched.get_last_lr(),
        "warmup_iters": 3,
        "max_iters": 10,
        "min_lrs": [0.01, 0.001],
    }
    assert_plain(sd)
    opt2 = optim.SGD(groups(make_params()), lr=0.1)
    sched2 = CosineWarmupLR(opt2, warmup_iters=3, max_iters=10, min_lr=[0.01, 0.001])
    sched2.load_state_dict(sd)
    assert sched2.state_dict() == sd
    assert [g["lr"] for g in opt2.param_groups] == sched.get_last_lr()
    sched.step()
    sched2.step()
    assert sched2.get_last_lr() == sched.get_last_lr()

    lam = LambdaLR(opt, lambda e: 0.5**e)
    assert set(lam.state_dict()) == {"last_epoch", "base_lrs", "_last_lr"}  # the function is not saved
