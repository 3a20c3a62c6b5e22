"""The default floating dtype and the no-upcast rule for constants.

Python floats and lists of floats become the default dtype (float32, as in PyTorch). A constant that meets
a floating tensor in an op (a Python scalar, a NumPy float64 scalar, a plain array) takes that tensor's
dtype, so ``x * 0.5`` and ``x * np.float64(0.5)`` stay float32 under NumPy 2's promotion rules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numpy2gpt.autograd.backend import get_array_module

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
    """``data`` as a plain ndarray: arrays keep their dtype, Python floats become the default dtype, NumPy
    scalars become (writable) 0-d arrays, ndarray subclasses (``np.matrix``) plain arrays. Text, ``None``,
    dicts and other objects that are not numbers raise TypeError."""
    if type(data) is np.ndarray and dtype is None:
        return data
    if get_array_module(data) is not np:  # a GPU array (CuPy): kept on its device
        return data if dtype is None or data.dtype == dtype else data.astype(dtype)
    if isinstance(data, np.generic):
        array = np.array(data, dtype=dtype)  # a fresh, writable 0-d array
    else:
        array = np.asarray(data, dtype=dtype)  # np.asarray drops ndarray subclasses
        float64 = dtype is None and array.dtype == np.float64 and not isinstance(data, np.ndarray)
        if float64 and not _holds_float64(data):  # Python floats (a list of NumPy float64s stays float64)
            array = array.astype(_default_dtype)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"cannot make a tensor from {type(data).__name__} (dtype {array.dtype}): tensors hold numbers "
            "(bool, integer or floating point)"
        )
    return array


def _holds_float64(data: Any) -> bool:
    """True if a (nested) list holds a NumPy float64 scalar or array (PyTorch looks at the elements too:
    ``[a.mean(), a.std()]`` of float64 arrays stays float64, ``[0.5, 1.5]`` becomes the default dtype)."""
    if isinstance(data, (np.floating, np.ndarray)):
        return data.dtype == np.float64
    if isinstance(data, (list, tuple)):
        return any(_holds_float64(d) for d in data)
    return False


def default_float(dtype: np.dtype) -> np.dtype:
    """``dtype`` if it is floating, else the default float dtype (what ``exp`` of an integer tensor gives)."""
    return dtype if dtype.kind == "f" else _default_dtype


def constant_like(value: Any, dtype: np.dtype) -> np.ndarray:
    """A constant operand for an op whose tensor operand has ``dtype``, with PyTorch's rule that a scalar does
    not widen a tensor of its own kind: floating tensors never upcast, an integer scalar takes an integer
    tensor's dtype (int32 + 2 is int32), and a floating scalar meeting an integer tensor has the default float
    dtype (``ids * 0.5`` is float32). Constant arrays keep their dtype."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return as_array(value, dtype=dtype)
    array = as_array(value)
    if array.ndim == 0 and not isinstance(value, np.ndarray):  # a Python or NumPy scalar
        if array.dtype.kind == "f":
            return array.astype(_default_dtype)  # np.float64(0.5) counts as a Python float
        if array.dtype.kind in "iu" and dtype.kind in "iu":
            return array.astype(dtype)
    return array
