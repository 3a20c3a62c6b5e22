"""Stochastic gradient descent, with momentum, Nesterov momentum and L2 weight decay (``torch.optim.SGD``).

For each parameter p with gradient g, at step t (learning rate lr, momentum mu, dampening tau, decay wd)::

    g   = g + wd * p                    # L2 weight decay: the gradient of (wd/2)·|p|²
    b   = g                 at t = 1    # momentum buffer (torch starts it at the first gradient)
    b   = mu * b + (1 - tau) * g  at t > 1
    g   = g + mu * b        if nesterov, else  g = b
    p   = p - lr * g
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numpy2gpt.nn.optim.optimizer import Optimizer, ParamsT


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum), exactly as ``torch.optim.SGD``.

    Args:
        params: tensors or parameter groups (see ``Optimizer``).
        lr: learning rate.
        momentum: momentum factor mu (0 turns momentum off).
        dampening: scales the new gradient's share of the momentum buffer by (1 - dampening).
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening 0).
        weight_decay: L2 penalty wd, added to the gradient as wd * p.
    """

    elementwise = True  # the rule treats every element alike: it runs over chunks of flat buffers

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "nesterov": nesterov,
            "weight_decay": weight_decay,
        }
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        if not group["lr"] >= 0.0:
            raise ValueError(f"invalid learning rate: {group['lr']} (must be >= 0)")
        if not group["momentum"] >= 0.0:
            raise ValueError(f"invalid momentum: {group['momentum']} (must be >= 0)")
        if not group["weight_decay"] >= 0.0:
            raise ValueError(f"invalid weight_decay: {group['weight_decay']} (must be >= 0)")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum > 0 and zero dampening")

    def _update(self, p: np.ndarray, g: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        # float(): a NumPy scalar hyperparameter (say np.float64 lr) would otherwise upcast the arithmetic
        lr, momentum, dampening = float(group["lr"]), float(group["momentum"]), float(group["dampening"])
        weight_decay, nesterov = float(group["weight_decay"]), group["nesterov"]
        grad_buf, tmp = self._scratch(p, 2)

        if weight_decay != 0:  # g = g + wd * p   (into a scratch buffer: p.grad is left untouched)
            np.multiply(p, weight_decay, out=grad_buf)
            np.add(g, grad_buf, out=grad_buf)
            g = grad_buf

        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:  # b = g at the first step
                buf = state["momentum_buffer"] = g.copy()
            else:  # b = mu * b + (1 - dampening) * g
                np.multiply(buf, momentum, out=buf)
                np.multiply(g, 1.0 - dampening, out=tmp)
                np.add(buf, tmp, out=buf)
            if nesterov:  # g = g + mu * b
                np.multiply(buf, momentum, out=tmp)
                np.add(g, tmp, out=tmp)
                g = tmp
            else:  # g = b
                g = buf

        # p = p - lr * g
        np.multiply(g, lr, out=tmp)
        np.subtract(p, tmp, out=p)
