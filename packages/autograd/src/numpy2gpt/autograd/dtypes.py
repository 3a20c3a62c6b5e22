"""The default floating dtype and the no-upcast rule for constants.

Python floats and lists of floats become the default dtype (float32, as in PyTorch). A constant that meets
a floating tensor in an op (a Python scalar, a NumPy float64 scalar, a plain array) takes that tensor's
dtype, so ``x * 0.5`` and ``x * np.float64(0.5)`` stay float32 under NumPy 2's promotion rules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_default_dtype = np.dtype(np.float32)


def get_default_dtype() -> np.dtype:
    """The dtype Python floats become (float32 unless changed)."""
    return _default_dtype


def set_default_dtype(dtype: Any) -> None:
    """Set the dtype Python floats become; must be a floating dtype (float16, float32 or float64)."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"the default dtype must be floating point, got {dtype}")
    _default_dtype = dtype


def is_floating(dtype: Any) -> bool:
    return np.dtype(dtype).kind == "f"


def as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """``data`` as an ndarray: arrays keep their dtype, Python floats become the default dtype."""
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray) or hasattr(data, "__array_namespace__"):
        return data
    if isinstance(data, np.generic):
        return np.asarray(data)
    array = np.asarray(data)
    if array.dtype == np.float64:  # a Python float or a (nested) list with floats in it
        array = array.astype(_default_dtype)
    return array


def constant_like(value: Any, dtype: np.dtype) -> np.ndarray:
    """A constant operand for an op whose tensor operand has ``dtype``: floating tensors never upcast."""
    if np.dtype(dtype).kind == "f":
        return np.asarray(value, dtype=dtype)
    return as_array(value)
