"""Comparisons: elementwise ==, !=, <, <=, >, >= giving boolean tensors, which never require grad."""

from __future__ import annotations

from typing import Any

import numpy as np

from numpy2gpt.autograd.ops._util import operands
from numpy2gpt.autograd.tensor import Tensor


def _compare(ufunc: np.ufunc, a: Any, b: Any) -> Tensor:
    a, b = operands(a, b)
    return Tensor._wrap(np.asarray(ufunc(a.data, b.data)))


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
