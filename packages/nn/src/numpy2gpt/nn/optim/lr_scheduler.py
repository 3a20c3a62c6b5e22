"""Learning-rate schedules: nanoGPT's warmup + cosine (a plain function and a scheduler), StepLR, LambdaLR.

A scheduler only sets ``group["lr"]`` in the optimizer's parameter groups. Use it as in PyTorch::

    scheduler = CosineWarmupLR(optimizer, warmup_iters=100, max_iters=5000, min_lr=6e-5)  # sets the lr for step 0
    for it in range(max_iters):
        ...; optimizer.step()
        scheduler.step()                     # lr for the next iteration

``last_epoch`` counts the calls to ``step()`` (0 after construction), and ``base_lrs`` are the groups' initial
learning rates (kept in each group as ``"initial_lr"``, as PyTorch does). For nanoGPT's training loop the plain
function is simpler still: ``lr = cosine_warmup_lr(it, ...)`` then ``group["lr"] = lr`` for every group.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from numpy2gpt.nn.optim.optimizer import Optimizer

__all__ = ["CosineWarmupLR", "LRScheduler", "LambdaLR", "StepLR", "cosine_warmup_lr"]


def _check_iters(warmup_iters: int, max_iters: int) -> None:
    if warmup_iters < 0 or max_iters < warmup_iters:
        raise ValueError(f"need 0 <= warmup_iters <= max_iters, got warmup_iters={warmup_iters}, max_iters={max_iters}")


def cosine_warmup_lr(it: int, max_lr: float, min_lr: float, warmup_iters: int, max_iters: int) -> float:
    """nanoGPT's ``get_lr``: linear warmup, then cosine decay from ``max_lr`` to ``min_lr``, then ``min_lr``.

    Exactly the formula of nanoGPT's train.py (the version with ``(it + 1) / (warmup_iters + 1)``, so that the
    first iteration does not get a learning rate of 0)::

        it <  warmup_iters:  max_lr * (it + 1) / (warmup_iters + 1)
        it >  max_iters:     min_lr
        otherwise:           min_lr + 0.5 * (1 + cos(pi * r)) * (max_lr - min_lr),
                             r = (it - warmup_iters) / (max_iters - warmup_iters)   in [0, 1]

    ``max_iters`` is nanoGPT's ``lr_decay_iters``. At ``it == warmup_iters`` the rate is ``max_lr``; at
    ``it == max_iters`` it is ``min_lr``. (If ``max_iters == warmup_iters`` there is no decay phase: ``min_lr``.)
    """
    _check_iters(warmup_iters, max_iters)
    # 1) linear warmup for warmup_iters steps
    if it < warmup_iters:
        return max_lr * (it + 1) / (warmup_iters + 1)
    # 2) after max_iters (or with no decay phase at all), the minimum learning rate
    if it > max_iters or max_iters == warmup_iters:
        return min_lr
    # 3) in between, cosine decay down to min_lr
    decay_ratio = (it - warmup_iters) / (max_iters - warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))  # goes from 1 to 0
    return min_lr + coeff * (max_lr - min_lr)


class LRScheduler:
    """Base class: keeps ``last_epoch`` and ``base_lrs`` and writes ``get_lr()`` into the groups on ``step()``.

    Args:
        optimizer: the optimizer whose learning rates to set.
        last_epoch: -1 to start a new schedule (the groups' current ``lr`` become ``initial_lr``); to rebuild a
            schedule mid-run, pass the last step taken (the groups must already have ``initial_lr``), or better,
            use ``load_state_dict``.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when resuming a schedule")
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._last_lr: list[float] = []
        self.step()  # the learning rate for step 0 (last_epoch + 1)

    def get_lr(self) -> list[float]:
        """The learning rate of each group at step ``last_epoch`` (subclasses)."""
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The learning rates the last ``step()`` (or the constructor) set, one per group."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance the schedule by one step and set each group's ``lr``."""
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _hyperparameters(self) -> dict[str, Any]:
        """Plain hyperparameters to save beside the position (subclasses)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Plain data: ``last_epoch``, ``base_lrs``, ``_last_lr`` and the schedule's hyperparameters."""
        return {
            "last_epoch": self.last_epoch,
            "base_lrs": list(self.base_lrs),
            "_last_lr": list(self._last_lr),
            **self._hyperparameters(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a ``state_dict()`` and set the groups' ``lr`` to the saved last learning rates.

        (PyTorch leaves the groups to the optimizer's own ``load_state_dict``; setting them here too gives the
        same result when both are loaded, and the right one when only the scheduler is.)
        """
        expected = set(self.state_dict())
        if set(state_dict) != expected:
            raise ValueError(
                f"loaded {type(self).__name__} state has keys {sorted(state_dict)}, expected {sorted(expected)}"
            )
        n = len(self.optimizer.param_groups)
        for key in ("base_lrs", "_last_lr"):
            if len(state_dict[key]) != n:
                raise ValueError(
                    f"loaded scheduler state has {len(state_dict[key])} {key}, but the optimizer has {n} groups"
                )
        for key, value in state_dict.items():
            setattr(self, key, list(value) if isinstance(value, (list, tuple)) else value)
        self.last_epoch = int(self.last_epoch)
        for group, lr in zip(self.optimizer.param_groups, self._last_lr, strict=True):
            group["lr"] = lr


def _per_group(value: Any, n: int, name: str) -> list[Any]:
    """One value for every group: a single value is repeated, a sequence must have one entry per group."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"expected {n} values of {name} (one per parameter group), got {len(value)}")
        return list(value)
    return [value] * n


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(last_epoch) (``torch.optim.lr_scheduler.LambdaLR``).

    Args:
        optimizer: the optimizer.
        lr_lambda: a function of the step, or a list of functions, one per group.
        last_epoch: see ``LRScheduler``.

    The functions are not part of ``state_dict()``: pass the same ones when rebuilding the scheduler.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | Sequence[Callable[[int], float]],
        last_epoch: int = -1,
    ) -> None:
        self.lr_lambdas = _per_group(lr_lambda, len(optimizer.param_groups), "lr_lambda")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas, self.base_lrs, strict=True)]


class StepLR(LRScheduler):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps (``torch.optim.lr_scheduler.StepLR``).

    lr = base_lr * gamma ** (last_epoch // step_size), computed as PyTorch does: each ``step_size``-th step
    multiplies the group's current lr by gamma, so the sequence of floats is exactly PyTorch's.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"step_size must be a positive integer, got {step_size}")
        self.step_size = int(step_size)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups = self.optimizer.param_groups
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [group["lr"] for group in groups]
        return [group["lr"] * self.gamma for group in groups]

    def _hyperparameters(self) -> dict[str, Any]:
        return {"step_size": self.step_size, "gamma": self.gamma}


class CosineWarmupLR(LRScheduler):
    """nanoGPT's schedule as a scheduler: lr = ``cosine_warmup_lr(last_epoch, base_lr, min_lr, ...)``.

    Args:
        optimizer: the optimizer; each group's initial ``lr`` is its peak learning rate (max_lr).
        warmup_iters: steps of linear warmup.
        max_iters: the step at which the rate reaches ``min_lr`` (nanoGPT's ``lr_decay_iters``).
        min_lr: the final learning rate: one value, or one per group.
        last_epoch: see ``LRScheduler``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_iters: int,
        max_iters: int,
        min_lr: float | Sequence[float] = 0.0,
        last_epoch: int = -1,
    ) -> None:
        _check_iters(warmup_iters, max_iters)  # before the optimizer's groups get an "initial_lr"
        self.warmup_iters = warmup_iters
        self.max_iters = max_iters
        self.min_lrs = _per_group(min_lr, len(optimizer.param_groups), "min_lr")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [
            cosine_warmup_lr(self.last_epoch, base_lr, min_lr, self.warmup_iters, self.max_iters)
            for base_lr, min_lr in zip(self.base_lrs, self.min_lrs, strict=True)
        ]

    def _hyperparameters(self) -> dict[str, Any]:
        return {"warmup_iters": self.warmup_iters, "max_iters": self.max_iters, "min_lrs": list(self.min_lrs)}
