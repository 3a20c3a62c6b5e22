"""Optimizers and learning-rate schedules against torch.optim, a few steps at a time.

SGD (momentum, dampening, Nesterov, weight decay), Adam and AdamW (betas, eps, weight decay) over one or two
parameter groups of float32/float64 parameters of 0 to 3 dimensions (size-0 ones too), fed the same random
gradients (sometimes none for a parameter: both skip it); optionally driven by StepLR, LambdaLR or nanoGPT's
CosineWarmupLR (against PyTorch's LambdaLR with nanoGPT's formula written out here); and sometimes rebuilt
midway from ``state_dict()``, which must continue exactly where it left off. PyTorch runs its single-tensor
code path (``foreach=False``), the one numpy2gpt follows formula for formula.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hypothesis")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from numpy2gpt.autograd import Tensor  # noqa: E402
from numpy2gpt.nn import Parameter, optim  # noqa: E402
from tests.property.differential import assert_close, to_torch  # noqa: E402
from tests.property.strategies import FLOATS, arrays, budget, shapes  # noqa: E402

TOPT = torch.optim


@st.composite
def optimizer_specs(draw: Any) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(["SGD", "Adam", "AdamW"]))
    kw: dict[str, Any] = {"lr": draw(st.sampled_from([1e-3, 0.05, 0.3]))}
    kw["weight_decay"] = draw(st.sampled_from([0.0, 0.01, 0.1]))
    if name == "SGD":
        kw["momentum"] = draw(st.sampled_from([0.0, 0.9]))
        kw["dampening"] = draw(st.sampled_from([0.0, 0.1])) if kw["momentum"] else 0.0
        kw["nesterov"] = bool(kw["momentum"]) and not kw["dampening"] and draw(st.booleans())
    else:
        kw["betas"] = draw(st.sampled_from([(0.9, 0.999), (0.8, 0.95), (0.0, 0.5)]))
        kw["eps"] = draw(st.sampled_from([1e-8, 1e-3]))
    return name, kw


def nanogpt_lambda(warmup: int, max_iters: int, min_ratio: float) -> Any:
    """nanoGPT's get_lr as a factor of the peak rate (the reference CosineWarmupLR is compared with)."""

    def factor(it: int) -> float:
        if it < warmup:
            return (it + 1) / (warmup + 1)
        if it > max_iters or max_iters == warmup:
            return min_ratio
        coeff = 0.5 * (1.0 + math.cos(math.pi * (it - warmup) / (max_iters - warmup)))
        return min_ratio + coeff * (1.0 - min_ratio)

    return factor


@st.composite
def schedule_specs(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["none", "StepLR", "LambdaLR", "CosineWarmupLR"]))
    warmup = draw(st.integers(0, 3))
    return {"kind": kind, "step_size": draw(st.integers(1, 3)), "gamma": draw(st.sampled_from([0.1, 0.5])),
            "warmup": warmup, "max_iters": draw(st.integers(warmup, 6)),
            "ratio": draw(st.sampled_from([0.0, 0.1]))}  # fmt: skip


def lr_lambda(it: int) -> float:
    return 1.0 / (1.0 + it)


def our_scheduler(spec: dict[str, Any], opt: Any) -> Any:
    sched = optim.lr_scheduler
    if spec["kind"] == "StepLR":
        return sched.StepLR(opt, spec["step_size"], spec["gamma"])
    if spec["kind"] == "LambdaLR":
        return sched.LambdaLR(opt, lr_lambda)
    min_lrs = [g["initial_lr" if "initial_lr" in g else "lr"] * spec["ratio"] for g in opt.param_groups]
    return sched.CosineWarmupLR(opt, spec["warmup"], spec["max_iters"], min_lrs)


def their_scheduler(spec: dict[str, Any], opt: Any) -> Any:
    sched = TOPT.lr_scheduler
    if spec["kind"] == "StepLR":
        return sched.StepLR(opt, spec["step_size"], spec["gamma"])
    if spec["kind"] == "LambdaLR":
        return sched.LambdaLR(opt, lr_lambda)
    return sched.LambdaLR(opt, nanogpt_lambda(spec["warmup"], spec["max_iters"], spec["ratio"]))


@given(st.data())
@budget(150)
def test_optimizer_steps(data: Any) -> None:
    name, kw = data.draw(optimizer_specs(), "optimizer")
    dtype = data.draw(st.sampled_from(FLOATS), "dtype")
    values = [data.draw(arrays(s, dtype), "param") for s in data.draw(st.lists(shapes(max_dims=3), min_size=1,
                                                                                   max_size=3), "shapes")]  # fmt: skip
    ours = [Parameter(np.array(v)) for v in values]
    theirs = [torch.nn.Parameter(torch.tensor(np.array(v))) for v in values]
    split = data.draw(st.integers(0, len(values)), "first group size")
    second_lr = data.draw(st.sampled_from([0.01, 0.1]), "second group lr")

    def groups(ps: list[Any]) -> list[dict[str, Any]]:
        return [g for g in ({"params": ps[:split]}, {"params": ps[split:], "lr": second_lr, "weight_decay": 0.0})
                if g["params"]]  # fmt: skip

    ours_opt = getattr(optim, name)(groups(ours), **kw)
    theirs_opt = getattr(TOPT, name)(groups(theirs), foreach=False, **kw)
    spec = data.draw(schedule_specs(), "schedule")
    scheduled = spec["kind"] != "none"
    ours_sched = our_scheduler(spec, ours_opt) if scheduled else None
    theirs_sched = their_scheduler(spec, theirs_opt) if scheduled else None
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    restart = data.draw(st.integers(-1, 3), "rebuild from state_dict after step")
    for step in range(data.draw(st.integers(1, 4), "steps")):
        for p, tp in zip(ours, theirs, strict=True):
            if rng.random() < 0.15:
                p.grad, tp.grad = None, None
            else:
                g = rng.standard_normal(p.shape).astype(dtype)
                p.grad, tp.grad = Tensor(g.copy()), torch.tensor(g)
        ours_opt.step()
        theirs_opt.step()
        if scheduled:
            ours_sched.step()
            theirs_sched.step()
            np.testing.assert_allclose(ours_sched.get_last_lr(), theirs_sched.get_last_lr(), rtol=1e-12)
        for i, (p, tp) in enumerate(zip(ours, theirs, strict=True)):
            assert_close(p, tp, f"parameter {i} after step {step}", scale=5)
        if step == restart:  # PyTorch's order: build both, then load the optimizer, then the scheduler
            state = copy.deepcopy(ours_opt.state_dict())
            sched_state = copy.deepcopy(ours_sched.state_dict()) if scheduled else None
            ours_opt = getattr(optim, name)(groups(ours), **kw)
            ours_sched = our_scheduler(spec, ours_opt) if scheduled else None
            ours_opt.load_state_dict(state)
            if scheduled:
                ours_sched.load_state_dict(sched_state)


@given(st.data())
@budget(40)
def test_invalid_nesterov_is_refused(data: Any) -> None:
    """Nesterov needs momentum > 0 and no dampening: both libraries refuse anything else."""
    momentum, dampening = data.draw(st.sampled_from([(0.0, 0.0), (0.9, 0.1), (0.0, 0.5)]), "momentum, dampening")
    with pytest.raises(ValueError):
        TOPT.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=momentum, dampening=dampening, nesterov=True)
    with pytest.raises(ValueError):
        optim.SGD([Parameter(np.zeros(2))], lr=0.1, momentum=momentum, dampening=dampening, nesterov=True)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # 1e30**2 in float32: inf, as PyTorch
@given(st.data())
@budget(100)
def test_clip_grad_norm(data: Any) -> None:
    """clip_grad_norm_ against torch.nn.utils.clip_grad_norm_: the returned total norm and the clipped gradients,
    for the 1-, 2- and max-norm, with gradients that are sometimes missing, empty, huge or not finite."""
    dtype = data.draw(st.sampled_from(FLOATS), "dtype")
    grads = [data.draw(arrays(s, dtype), "grad") for s in data.draw(st.lists(shapes(max_dims=3), min_size=1,
                                                                             max_size=3), "shapes")]  # fmt: skip
    special = data.draw(st.sampled_from([None, np.nan, np.inf, 1e30]), "one special value")
    if special is not None and grads[0].size:
        grads[0] = grads[0].copy()
        grads[0].flat[0] = special
    max_norm = data.draw(st.sampled_from([0.1, 1.0, 100.0]), "max_norm")
    norm_type = data.draw(st.sampled_from([2.0, 1.0, math.inf]), "norm_type")
    ours, theirs = [], []
    for g in grads:
        p, tp = Parameter(np.zeros(g.shape, dtype)), torch.nn.Parameter(to_torch(np.zeros(g.shape, dtype)))
        if data.draw(st.integers(0, 5), "has a grad"):
            p.grad, tp.grad = Tensor(np.array(g)), to_torch(g)
        ours.append(p)
        theirs.append(tp)
    total = optim.clip_grad_norm_(ours, max_norm, norm_type)
    # PyTorch refuses the max-norm of an empty gradient ("no identity"); an empty gradient adds nothing to any
    # norm and clipping leaves it empty, so PyTorch is given the others only (none at all: total norm 0)
    nonempty = [tp for tp in theirs if tp.grad is not None and tp.grad.numel()]
    their_total = torch.nn.utils.clip_grad_norm_(nonempty, max_norm, norm_type, foreach=False).item()
    np.testing.assert_allclose(total, their_total, rtol=1e-5 if dtype == np.float32 else 1e-12)
    for i, (p, tp) in enumerate(zip(ours, theirs, strict=True)):
        assert (p.grad is None) == (tp.grad is None), f"gradient {i}: None in one library only"
        if p.grad is not None:
            assert_close(p.grad, tp.grad, f"clipped gradient {i}", scale=5)
