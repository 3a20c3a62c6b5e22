"""Gradient utilities: clipping (``clip_grad_norm_``, ``clip_grad_value_``, as ``torch.nn.utils``) and the zeroing
that ``Module.zero_grad`` and ``Optimizer.zero_grad`` share.

Clipping by the global norm keeps one bad batch from throwing the weights far away: if the gradients of all
parameters, seen as one long vector, are longer than ``max_norm``, they are all scaled down by the same factor,
which keeps their direction::

    total = || (||g_1||, ||g_2||, ..., ||g_n||) ||        # = || concat(g_1, ..., g_n) ||
    g_i   = g_i * max_norm / (total + 1e-6)   if total > max_norm

Everything is computed in the gradients' own dtype (float32 stays float32), in the same order as PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np

from numpy2gpt.autograd import Tensor, get_array_module

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm"]


def _distinct(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    """The parameters, each once (a tied weight passed twice is one parameter with one gradient)."""
    if isinstance(parameters, Tensor):
        return [parameters]
    seen: set[int] = set()
    distinct = []
    for p in parameters:
        if id(p) not in seen:
            seen.add(id(p))
            distinct.append(p)
    return distinct


def _memory_key(a: np.ndarray) -> tuple[int, tuple[int, ...], tuple[int, ...], str]:
    """Arrays with equal keys are the same numbers in the same memory (the same array, or identical views)."""
    ptr = a.__array_interface__["data"][0] if isinstance(a, np.ndarray) else a.data.ptr  # (CuPy: a device pointer)
    return ptr, a.shape, a.strides, a.dtype.str


def _update_grads(params: list[Tensor], op: Callable[[np.ndarray, np.ndarray | None], np.ndarray]) -> None:
    """Apply ``op(g, out)`` to each distinct gradient array once (two parameters may share one array).

    A writable gradient is changed in place (``out=g``); a read-only one (e.g. a broadcast view) is left alone and
    every parameter holding it gets ``op(g, None)``, a new array.
    """
    done: dict[tuple, np.ndarray] = {}
    for p in params:
        g = p.grad.data
        key = _memory_key(g)
        if key not in done:
            done[key] = op(g, g if getattr(g.flags, "writeable", True) else None)
        if done[key] is not g:
            p.grad = Tensor(done[key])


def _zero_grads(parameters: Iterable[Tensor], set_to_none: bool = True) -> None:
    """``grad = None`` for every parameter, or with ``set_to_none=False`` zero the gradients in place (a read-only
    gradient, e.g. a broadcast view, is replaced by a fresh zero array)."""
    for p in parameters:
        if set_to_none or p.grad is None:
            p.grad = None
        elif p.grad.data.flags.writeable:
            p.grad.data.fill(0)
        else:
            p.grad = Tensor(get_array_module(p.data).zeros_like(p.data))


def get_total_norm(tensors: Iterable[Tensor | np.ndarray], norm_type: float = 2.0) -> np.floating:
    """The p-norm of all the tensors seen as one vector, computed as the norm of their per-tensor norms (as PyTorch)::

        total = || (||t_1||_p, ..., ||t_n||_p) ||_p  = (sum_i sum_j |t_ij|^p)^(1/p);   p = inf: max_ij |t_ij|

    Args:
        tensors: Tensors or ndarrays (e.g. the gradients).
        norm_type: p; ``2.0`` for Euclidean, ``math.inf`` for the largest absolute value.

    Returns:
        A NumPy scalar in the tensors' dtype (0.0 for no tensors).
    """
    arrays = [
        t.data if isinstance(t, Tensor) else t if get_array_module(t) is not np else np.asarray(t) for t in tensors
    ]
    if not arrays:
        return np.float32(0.0)
    xp = get_array_module(*arrays)
    return _vector_norm(xp.stack([_vector_norm(a, norm_type) for a in arrays]), norm_type)


def _vector_norm(a: np.ndarray, p: float) -> np.floating:
    """||a||_p over all of ``a``'s elements: (sum_j |a_j|^p)^(1/p), max_j |a_j| for p = inf.

    One element's norm is |a| itself (p != 0; the 0-"norm" counts nonzeros), never (|a|^p)^(1/p), as in PyTorch:
    a float32 gradient of 1e30 has norm 1e30, where squaring it overflows to inf (and 1e-30 underflows to 0).
    """
    xp = get_array_module(a)
    if a.size == 1 and p != 0:
        return xp.abs(a.reshape(()))
    if xp is not np:  # on a GPU: CuPy's linalg.norm of the flattened array (a 0-d GPU array)
        return xp.linalg.norm(a.reshape(-1), ord=p)
    return np.linalg.vector_norm(a, ord=p)


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Scale all gradients in place so that their total norm is at most ``max_norm``::

        total = get_total_norm(grads, norm_type);   g_i = g_i * max_norm / (total + 1e-6)   if that factor < 1

    Args:
        parameters: the parameters whose ``.grad`` to clip (those without a gradient are skipped).
        max_norm: the largest total norm allowed.
        norm_type: p of the p-norm (``2.0``, or ``math.inf`` for the max-abs norm).
        error_if_nonfinite: raise if the total norm is nan or inf (else the gradients become nan).

    Returns:
        The total norm of the gradients *before* clipping, as a Python float (log it: spikes show trouble).
    """
    params = [p for p in _distinct(parameters) if p.grad is not None]
    if not params:
        return 0.0
    total = get_total_norm([p.grad.data for p in params], norm_type)
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise RuntimeError(
            f"the total norm of order {norm_type} of the gradients is {float(total)}, so they cannot be clipped; "
            "pass error_if_nonfinite=False to clip anyway"
        )
    # clip_coef = max_norm / (total + 1e-6), in the gradients' dtype and as torch evaluates it (reciprocal first)
    dtype = total.dtype.type
    xp = get_array_module(total)
    if xp is not np:  # on a GPU: scale by min(coef, 1) without asking the device whether coef < 1 (as torch)
        clip_coef = xp.minimum(xp.reciprocal(total + dtype(1e-6)) * dtype(max_norm), dtype(1.0))
        _update_grads(params, lambda g, out: xp.multiply(g, clip_coef, out=out))
        return float(total)
    clip_coef = np.reciprocal(total + dtype(1e-6)) * dtype(max_norm)
    if clip_coef < 1.0 or np.isnan(clip_coef):  # a nan norm makes every gradient nan, as in PyTorch
        with np.errstate(invalid="ignore"):  # an inf norm gives inf * 0 = nan, as in PyTorch
            _update_grads(params, lambda g, out: np.multiply(g, clip_coef, out=out))
    return float(total)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element to [-clip_value, clip_value], in place (``torch.nn.utils.clip_grad_value_``):
    g = min(max(g, -clip_value), clip_value). A read-only gradient is replaced by a clamped copy."""
    clip_value = float(clip_value)
    params = [p for p in _distinct(parameters) if p.grad is not None]
    _update_grads(params, lambda g, out: np.clip(g, -clip_value, clip_value, out=out))
