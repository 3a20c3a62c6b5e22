"""Learning-rate schedules: nanoGPT's cosine_warmup_lr, CosineWarmupLR, StepLR, LambdaLR (against PyTorch)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from numpy2gpt.autograd import Tensor
from numpy2gpt.nn import optim
from numpy2gpt.nn.optim.lr_scheduler import CosineWarmupLR, LambdaLR, StepLR, cosine_warmup_lr


def make_optimizer(lrs=(0.1, 0.02)):
    groups = [{"params": [Tensor(np.zeros(3, np.float32), requires_grad=True)], "lr": lr} for lr in lrs]
    return optim.SGD(groups, lr=1.0, momentum=0.9)


def nanogpt_get_lr(it, learning_rate, min_lr, warmup_iters, lr_decay_iters):
    """nanoGPT's train.py get_lr, copied verbatim (globals made arguments)."""
    # 1) linear warmup for warmup_iters steps
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    # 2) if it > lr_decay_iters, return min learning rate
    if it > lr_decay_iters:
        return min_lr
    # 3) in between, use cosine decay down to min learning rate
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))  # coeff ranges 0..1
    return min_lr + coeff * (learning_rate - min_lr)


# -- the plain function ------------------------------------------------------------------------------------


def test_cosine_warmup_lr_at_known_points():
    max_lr, min_lr, warmup, max_iters = 6e-4, 6e-5, 100, 1100
    assert cosine_warmup_lr(0, max_lr, min_lr, warmup, max_iters) == pytest.approx(max_lr / 101)
    assert cosine_warmup_lr(49, max_lr, min_lr, warmup, max_iters) == pytest.approx(max_lr * 50 / 101)
    assert cosine_warmup_lr(99, max_lr, min_lr, warmup, max_iters) == pytest.approx(max_lr * 100 / 101)
    assert cosine_warmup_lr(100, max_lr, min_lr, warmup, max_iters) == max_lr  # peak right after warmup
    assert cosine_warmup_lr(600, max_lr, min_lr, warmup, max_iters) == pytest.approx((max_lr + min_lr) / 2)
    quarter = min_lr + 0.5 * (1 + math.cos(math.pi / 4)) * (max_lr - min_lr)
    assert cosine_warmup_lr(350, max_lr, min_lr, warmup, max_iters) == pytest.approx(quarter)
    assert cosine_warmup_lr(1100, max_lr, min_lr, warmup, max_iters) == pytest.approx(min_lr)
    assert cosine_warmup_lr(1101, max_lr, min_lr, warmup, max_iters) == min_lr
    assert cosine_warmup_lr(10**6, max_lr, min_lr, warmup, max_iters) == min_lr
    assert isinstance(cosine_warmup_lr(5, max_lr, min_lr, warmup, max_iters), float)


def test_cosine_warmup_lr_is_nanogpts_get_lr_exactly():
    for args in [(6e-4, 6e-5, 100, 1100), (1e-3, 1e-4, 0, 50), (1e-3, 0.0, 10, 10), (3e-4, 3e-5, 7, 23)]:
        _, min_lr, warmup, max_iters = args
        for it in range(max_iters + 20):
            ours = cosine_warmup_lr(it, *args)
            if warmup == max_iters and it == warmup:
                assert ours == min_lr  # nanoGPT divides 0 by 0 here; we return min_lr
                continue
            assert ours == nanogpt_get_lr(it, *args), (args, it)  # bit for bit


def test_cosine_warmup_lr_is_monotone_in_each_phase():
    lrs = [cosine_warmup_lr(it, 1.0, 0.1, 10, 100) for it in range(120)]
    assert all(a < b for a, b in itertools.pairwise(lrs[:11]))  # warmup: rising up to max_lr at it = 10
    assert all(a > b for a, b in itertools.pairwise(lrs[10:101]))  # decay: falling to min_lr at it = 100
    assert lrs[10] == 1.0 and lrs[100] == pytest.approx(0.1) and lrs[101:] == [0.1] * 19


def test_cosine_warmup_lr_errors():
    with pytest.raises(ValueError, match="warmup_iters <= max_iters"):
        cosine_warmup_lr(0, 1.0, 0.1, 10, 5)
    with pytest.raises(ValueError, match="warmup_iters"):
        CosineWarmupLR(make_optimizer(), warmup_iters=-1, max_iters=5)


# -- schedulers against PyTorch ----------------------------------------------------------------------------


def torch_optimizer(torch, lrs=(0.1, 0.02)):
    groups = [{"params": [torch.zeros(3, requires_grad=True)], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups, lr=1.0, momentum=0.9)


def run(sched, opt, steps):
    """The lr of every group for steps 0..steps-1 (get_last_lr and the groups' lr must agree)."""
    seq = []
    for _ in range(steps):
        assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
        seq.append(sched.get_last_lr())
        opt.step()
        sched.step()
    return seq


def test_step_lr_matches_torch_exactly():
    torch = pytest.importorskip("torch")
    opt, topt = make_optimizer(), torch_optimizer(torch)
    ours = run(StepLR(opt, step_size=3, gamma=0.7), opt, 25)
    theirs = run(torch.optim.lr_scheduler.StepLR(topt, step_size=3, gamma=0.7), topt, 25)
    assert ours == theirs  # the same floats, bit for bit
    assert ours[0] == [0.1, 0.02] and ours[3] == [0.1 * 0.7, 0.02 * 0.7] and ours[5] == ours[3]


def test_lambda_lr_matches_torch_exactly():
    torch = pytest.importorskip("torch")
    lambdas = [lambda e: 0.95**e, lambda e: 1.0 / (1 + e)]
    opt, topt = make_optimizer(), torch_optimizer(torch)
    ours = run(LambdaLR(opt, lambdas), opt, 15)
    theirs = run(torch.optim.lr_scheduler.LambdaLR(topt, lambdas), topt, 15)
    assert ours == theirs
    opt, topt = make_optimizer(), torch_optimizer(torch)
    assert run(LambdaLR(opt, lambdas[0]), opt, 5) == run(torch.optim.lr_scheduler.LambdaLR(topt, lambdas[0]), topt, 5)


def test_cosine_warmup_scheduler_matches_torch_lambda_lr():
    torch = pytest.importorskip("torch")
    warmup, max_iters, min_lr = 5, 30, 1e-3
    opt, topt = make_optimizer(), torch_optimizer(torch)
    ours = run(CosineWarmupLR(opt, warmup, max_iters, min_lr=min_lr), opt, 40)
    lambdas = [
        lambda it, base=base: cosine_warmup_lr(it, base, min_lr, warmup, max_iters) / base for base in (0.1, 0.02)
    ]
    theirs = run(torch.optim.lr_scheduler.LambdaLR(topt, lambdas), topt, 40)
    np.testing.assert_allclose(ours, theirs, rtol=1e-15)
    # and the scheduler's values are the plain function's, per group with each group's peak
    assert ours[12] == [cosine_warmup_lr(12, 0.1, min_lr, warmup, max_iters), cosine_warmup_lr(12, 0.02, 1e-3, 5, 30)]
    assert ours[-1] == [min_lr, min_lr]


def test_cosine_warmup_with_a_min_lr_per_group():
    opt = make_optimizer()
    sched = CosineWarmupLR(opt, warmup_iters=2, max_iters=10, min_lr=[0.01, 0.002])
    assert sched.get_last_lr() == pytest.approx([0.1 / 3, 0.02 / 3])
    for _ in range(15):
        sched.step()
    assert sched.get_last_lr() == [0.01, 0.002]
    assert sched.last_epoch == 15
    with pytest.raises(ValueError, match="one per parameter group"):
        CosineWarmupLR(make_optimizer(), 2, 10, min_lr=[0.1])


def test_construction_sets_the_step_0_lr_and_initial_lr():
    opt = make_optimizer()
    sched = CosineWarmupLR(opt, warmup_iters=9, max_iters=100)
    assert sched.last_epoch == 0
    assert sched.base_lrs == [0.1, 0.02]
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.02]
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.01, 0.002])


def test_errors():
    opt = make_optimizer()
    with pytest.raises(TypeError, match="not an Optimizer"):
        StepLR(object(), 3)
    with pytest.raises(ValueError, match="step_size"):
        StepLR(opt, 0)
    with pytest.raises(ValueError, match="one per parameter group"):
        LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(KeyError, match="initial_lr"):
        StepLR(make_optimizer(), 3, last_epoch=5)


# -- state dicts -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda opt: StepLR(opt, step_size=4, gamma=0.5),
        lambda opt: LambdaLR(opt, lambda e: 0.9**e),
        lambda opt: CosineWarmupLR(opt, warmup_iters=3, max_iters=20, min_lr=[1e-3, 1e-4]),
    ],
    ids=["StepLR", "LambdaLR", "CosineWarmupLR"],
)
def test_state_dict_resume_gives_the_same_sequence(make):
    opt = make_optimizer()
    sched = make(opt)
    full = run(sched, opt, 25)

    opt = make_optimizer()
    sched = make(opt)
    first = run(sched, opt, 10)
    saved_sched, saved_opt = sched.state_dict(), opt.state_dict()
    assert saved_sched["last_epoch"] == 10
    for value in saved_sched.values():  # plain data only: no functions, no optimizer
        assert isinstance(value, (int, float, list))

    opt2 = make_optimizer()
    sched2 = make(opt2)  # a fresh scheduler resets the lr to step 0's ...
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)  # ... until the saved state is loaded
    assert sched2.last_epoch == 10 and sched2.get_last_lr() == full[10]
    assert first + run(sched2, opt2, 15) == full  # bit for bit


def test_load_state_dict_errors():
    sched = StepLR(make_optimizer(), step_size=4)
    state = sched.state_dict()
    with pytest.raises(ValueError, match="keys"):
        sched.load_state_dict({**state, "bogus": 1})
    with pytest.raises(ValueError, match="2 groups"):
        sched.load_state_dict({**state, "base_lrs": [0.1]})
    with pytest.raises(ValueError, match="keys"):
        LambdaLR(make_optimizer(), lambda e: 1.0).load_state_dict(state)


def test_the_optimizer_state_dict_carries_initial_lr():
    opt = make_optimizer()
    CosineWarmupLR(opt, warmup_iters=3, max_iters=20)
    groups = opt.state_dict()["param_groups"]
    assert [g["initial_lr"] for g in groups] == [0.1, 0.02]
    assert [g["lr"] for g in groups] == pytest.approx([0.1 / 4, 0.02 / 4])
