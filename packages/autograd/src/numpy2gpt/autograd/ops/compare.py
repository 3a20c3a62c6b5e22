"""Comparisons: elementwise ==, !=, <, <=, >, >= giving boolean tensors, which never require grad."""

from __future__ import annotations

from typing import Any

import numpy as np

from numpy2gpt.autograd.backend import get_array_module
from numpy2gpt.autograd.ops._util import operands
from numpy2gpt.autograd.tensor import Tensor


def _compare(ufunc: np.ufunc, a: Any, b: Any) -> Tensor:
    a, b = operands(a, b)
    r = ufunc(a.data, b.data)  # (a NumPy ufunc on CuPy arrays runs CuPy's)
    return Tensor._wrap(r if type(r) is np.ndarray or get_array_module(r) is not np else np.asarray(r))


def eq(a: Any, b: Any) -> Tensor:
    return _compare(np.equal, a, b)


def ne(a: Any, b: Any) -> Tensor:
    return _compare(np.not_equal, a, b)


def lt(a: Any, b: Any) -> Tensor:
    return _compare(np.less, a, b)


def le(a: Any, b: Any) -> Tensor:
    return _compare(np.less_equal, a, b)


def gt(a: Any, b: Any) -> Tensor:
    return _compare(np.greater, a, b)


def ge(a: Any, b: Any) -> Tensor:
    return _compare(np.greater_equal, a, b)
