"""Small helpers the functional ops share: dtype checks, integer index arrays, the dim/axis spelling."""

from __future__ import annotations

from typing import Any

import numpy as np

from numpy2gpt.autograd import Tensor, as_tensor, get_array_module


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


def as_operand(value: Any, like: Tensor) -> Tensor:
    """A second tensor argument (mse_loss's target): a Tensor or an array (NumPy scalars and GPU arrays too) keeps
    its dtype, as the PyTorch tensor it stands for would; a Python number or list, with no dtype of its own,
    takes ``like``'s."""
    if isinstance(value, Tensor) or hasattr(value, "dtype"):
        return as_tensor(value)
    return as_tensor(np.asarray(value, dtype=like.dtype if like.dtype.kind == "f" else None))


def index_array(idx: Any, op: str, what: str) -> np.ndarray:
    """An integer index array (from a Tensor, array or list); a clear TypeError for anything else."""
    if isinstance(idx, Tensor):
        data = idx.data
    else:  # a GPU array stays where it is
        data = idx if isinstance(idx, np.ndarray) or get_array_module(idx) is not np else np.asarray(idx)
    if data.dtype.kind not in "iu":
        raise TypeError(f"{op}: {what} must be integers, got dtype {data.dtype}")
    return data


def pick_dim(op: str, dim: int | None, axis: int | None, default: int = -1) -> int:
    """The one axis an op works along, given as torch's ``dim=`` or NumPy's ``axis=`` (not both)."""
    if dim is not None and axis is not None:
        raise TypeError(f"{op}: got both dim= and axis=; they are two spellings of one argument")
    return default if dim is None and axis is None else (dim if dim is not None else axis)
