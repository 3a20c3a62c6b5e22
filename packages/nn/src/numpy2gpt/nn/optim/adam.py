"""Adam and AdamW (``torch.optim.Adam`` / ``torch.optim.AdamW``, the non-fused single-tensor code path).

For each parameter p with gradient g, at step t = 1, 2, ... (learning rate lr, betas b1 b2, eps, decay wd)::

    g  = g + wd * p                           # Adam only: L2 weight decay, added to the gradient
    p  = p - lr * wd * p                      # AdamW only: decoupled weight decay, applied to p directly
    m  = b1 * m + (1 - b1) * g                # first moment (running mean of g)
    v  = b2 * v + (1 - b2) * g²               # second moment (running mean of g²)
    bc1 = 1 - b1**t,   bc2 = 1 - b2**t        # bias corrections: m and v start at 0
    p  = p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps)

which is p -= lr * m_hat / (sqrt(v_hat) + eps) with m_hat = m / bc1, v_hat = v / bc2, written the way
PyTorch evaluates it: note that eps is added *after* dividing sqrt(v) by sqrt(bc2). The step count t is kept
per parameter as a float (``state["step"]``), and the bias corrections are Python floats (float64 scalars),
as in PyTorch; they multiply the float32 arrays without upcasting them.

Each line below is one in-place NumPy ufunc on the parameter's arrays, in the order PyTorch evaluates the same
expression, so results agree with ``torch.optim.Adam(foreach=False)`` to float32 rounding (a few ulps after
many steps; not bit for bit, since PyTorch's CPU kernels fuse some multiply-adds and its vectorized float32
sqrt is not correctly rounded).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numpy2gpt.autograd import get_array_module
from numpy2gpt.nn.optim.optimizer import Optimizer, ParamsT


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with L2 weight decay added to the gradient, exactly as ``torch.optim.Adam``.

    Args:
        params: tensors or parameter groups (see ``Optimizer``).
        lr: learning rate.
        betas: (b1, b2), the decay rates of the first and second moment estimates.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty wd; ``Adam`` adds wd * p to the gradient (use ``AdamW`` for decoupled decay).
    """

    decoupled_weight_decay = False
    elementwise = True  # the rule treats every element alike: it runs over chunks of flat buffers

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    def _validate_group(self, group: dict[str, Any]) -> None:
        group["betas"] = tuple(group["betas"])
        if not group["lr"] >= 0.0:
            raise ValueError(f"invalid learning rate: {group['lr']} (must be >= 0)")
        if not group["eps"] >= 0.0:
            raise ValueError(f"invalid eps: {group['eps']} (must be >= 0)")
        if len(group["betas"]) != 2:
            raise ValueError(f"betas must be a pair (b1, b2), got {group['betas']}")
        for i, beta in enumerate(group["betas"]):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"invalid beta parameter at index {i}: {beta} (must be in [0, 1))")
        if not group["weight_decay"] >= 0.0:
            raise ValueError(f"invalid weight_decay: {group['weight_decay']} (must be >= 0)")

    def _update(self, p: np.ndarray, g: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        # float(): a NumPy scalar hyperparameter (say np.float64 lr) would otherwise upcast the arithmetic
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = float(group["betas"][0]), float(group["betas"][1])
        if not state:
            xp = get_array_module(p)
            state["step"] = 0.0
            state["exp_avg"] = xp.zeros(p.shape, dtype=p.dtype)
            state["exp_avg_sq"] = xp.zeros(p.shape, dtype=p.dtype)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        if get_array_module(p).__name__ == "cupy":  # the whole rule in one kernel (imported only on a GPU)
            from numpy2gpt.nn.functional import cupy_kernels

            state["step"] += 1.0
            hyper = {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay}
            cupy_kernels.adam_update(p, g, m, v, **hyper, decoupled=self.decoupled_weight_decay, step=state["step"])
            return
        a, b = self._scratch(p, 2)  # a: the decayed gradient, then the denominator; b: temporaries
        state["step"] += 1.0
        step = state["step"]

        if weight_decay != 0:
            if self.decoupled_weight_decay:  # AdamW: p = p * (1 - lr * wd)
                np.multiply(p, 1.0 - lr * weight_decay, out=p)
            else:  # Adam: g = g + wd * p   (into a scratch buffer: p.grad is left untouched)
                np.multiply(p, weight_decay, out=a)
                np.add(g, a, out=a)
                g = a

        # m = m + (1 - b1) * (g - m)   (= b1 * m + (1 - b1) * g, written as torch's lerp)
        np.subtract(g, m, out=b)
        np.multiply(b, 1.0 - beta1, out=b)
        np.add(m, b, out=m)

        # v = b2 * v + (1 - b2) * g * g
        np.multiply(v, beta2, out=v)
        np.multiply(g, 1.0 - beta2, out=b)
        np.multiply(b, g, out=b)
        np.add(v, b, out=v)

        # Python floats, so that the float32 arrays stay float32
        bias_correction1 = 1.0 - beta1**step
        bias_correction2 = 1.0 - beta2**step
        step_size = lr / bias_correction1
        bias_correction2_sqrt = bias_correction2**0.5  # as torch (pow, not math.sqrt)

        # denom = sqrt(v) / sqrt(bc2) + eps
        denom = a  # the decayed gradient in `a` is no longer needed
        np.sqrt(v, out=denom)
        np.divide(denom, bias_correction2_sqrt, out=denom)
        np.add(denom, eps, out=denom)

        # p = p - step_size * m / denom
        np.multiply(m, -step_size, out=b)
        np.divide(b, denom, out=b)
        np.add(p, b, out=p)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), exactly as ``torch.optim.AdamW``.

    Before the Adam update each parameter shrinks by p = p * (1 - lr * wd); the decay never enters the moment
    estimates. Same arguments as ``Adam``; ``weight_decay`` defaults to 0.01 as in PyTorch.
    """

    decoupled_weight_decay = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
