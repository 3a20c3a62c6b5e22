"""Small helpers the functional ops share: Tensors from anything, dtype checks, reducing broadcast gradients."""

from __future__ import annotations

from typing import Any

import numpy as np

from numpy2gpt.autograd import Tensor, is_grad_enabled


def as_tensor(x: Any) -> Tensor:
    """``x`` as a Tensor (arrays keep their dtype; Python floats and lists become float32)."""
    return x if isinstance(x, Tensor) else Tensor(x)


def check_floating(op: str, **tensors: Tensor | None) -> np.dtype:
    """All given tensors must share one floating dtype (no silent float32 -> float64 upcast); return it."""
    given = {name: t for name, t in tensors.items() if t is not None}
    dtypes = {name: t.dtype for name, t in given.items()}
    for name, dtype in dtypes.items():
        if dtype.kind != "f":
            raise TypeError(f"{op}: {name} must be a floating point tensor, got dtype {dtype}")
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{name} {dtype}" for name, dtype in dtypes.items())
        raise TypeError(f"{op}: all inputs must have the same dtype, got {listed}; convert them with .astype()")
    return next(iter(dtypes.values()))


def will_record(*tensors: Tensor | None) -> bool:
    """True if calling a Function on these tensors will record it (so its forward should save for backward)."""
    return is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def sum_to(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a gradient computed at a broadcast shape back down to an input's ``shape``."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
    g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def index_array(idx: Any, op: str, what: str) -> np.ndarray:
    """An integer index array (from a Tensor, array or list); a clear TypeError for anything else."""
    data = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
    if data.dtype.kind not in "iu":
        raise TypeError(f"{op}: {what} must be integers, got dtype {data.dtype}")
    return data
