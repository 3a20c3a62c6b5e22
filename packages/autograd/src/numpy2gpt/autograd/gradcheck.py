"""gradcheck: compare backward's gradients with central finite differences, in float64.

For a function f of tensors x_1..x_n with output y, gradcheck draws a fixed random weighting r of y's
elements and checks the scalar L = sum(r * y): backward gives dL/dx_i, and for every element j of every
x_i the central difference (L(x + eps e_j) - L(x - eps e_j)) / (2 eps) estimates the same number. A random
r makes every wrong entry of the Jacobian show up in L (up to a probability-zero accident).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from numpy2gpt.autograd.backward import grad
from numpy2gpt.autograd.grad_mode import enable_grad, no_grad
from numpy2gpt.autograd.tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` when an analytic gradient disagrees with the numerical one."""


def _scalar(out: Any, weights: list[np.ndarray]) -> Tensor:
    outs = out if isinstance(out, (tuple, list)) else (out,)
    total = None
    for y, r in zip(outs, weights, strict=True):
        term = (y * Tensor._wrap(r)).sum()
        total = term if total is None else total + term
    return total


def _numeric_gradient(
    fn: Callable[..., Any], args: list[Any], i: int, weights: list[np.ndarray], eps: float
) -> np.ndarray:
    """d loss / d args[i] by central differences, one element at a time: (loss(x + eps) - loss(x - eps)) / (2 eps),
    where loss = sum over fn's outputs of weights * output (``_scalar``). Elements are changed in place by index,
    so ``fn`` sees the float64 copy in the layout the input had (Fortran order stays Fortran order)."""
    x = args[i].data
    numeric = np.zeros(x.shape, dtype=x.dtype)
    for j in np.ndindex(x.shape):
        orig = x[j]
        x[j] = orig + eps
        with no_grad():
            plus = _scalar(fn(*args), weights).item()
        x[j] = orig - eps
        with no_grad():
            minus = _scalar(fn(*args), weights).item()
        x[j] = orig
        numeric[j] = (plus - minus) / (2 * eps)
    return numeric


def gradcheck(
    fn: Callable[..., Any],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Check ``fn``'s gradient with respect to every floating input against finite differences.

    Inputs are copied to float64 (so the check measures the math, not float32 rounding); non-floating
    inputs (indices, masks) are passed through untouched. An element passes when
    ``|analytic - numeric| <= atol + rtol * |numeric|``. On failure a ``GradcheckError`` names the input,
    the worst element, both values and the error.
    """
    args: list[Any] = []
    wrt: list[int] = []
    for i, x in enumerate(inputs):
        data = x.data if isinstance(x, Tensor) else np.asarray(x)
        if data.dtype.kind == "f":
            args.append(Tensor(data.astype(np.float64), requires_grad=True))
            wrt.append(i)
        else:
            args.append(x)
    if not wrt:
        raise ValueError("gradcheck: no floating point input to check")

    rng = np.random.default_rng(seed)
    with no_grad():
        out = fn(*args)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    weights = [rng.standard_normal(y.shape) for y in outs]

    with enable_grad():
        loss = _scalar(fn(*args), weights)
        analytic = grad(loss, [args[i] for i in wrt], allow_unused=True)

    worst = (0.0, None)
    ok = True
    for i, g in zip(wrt, analytic, strict=True):
        x = args[i].data
        g = np.zeros_like(x) if g is None else g.data
        numeric = _numeric_gradient(fn, args, i, weights, eps)
        err = np.abs(g - numeric)
        excess = err - (atol + rtol * np.abs(numeric))
        if excess.size and excess.max() > 0:
            ok = False
            j = np.unravel_index(int(np.argmax(excess)), x.shape)
            if worst[1] is None or excess[j] > worst[0]:
                worst = (float(excess[j]), (i, j, g[j], numeric[j], err[j]))
    if not ok and raise_exception:
        i, j, a, n, e = worst[1]
        raise GradcheckError(
            f"gradcheck failed for input {i} (shape {args[i].shape}) at index {tuple(int(k) for k in j)}: "
            f"analytic {a:.8g}, numeric {n:.8g}, |error| {e:.3g} > atol {atol} + rtol {rtol} * |numeric|"
        )
    return ok
