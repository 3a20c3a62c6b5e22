"""Reductions: sum, mean, max, min, var, std over an axis, a tuple of axes, or everything.

The gradient of a reduction is the output gradient copied back over the reduced axes: reshape dy to the
``keepdims`` shape, then broadcast it to the input's shape (scaled by 1/n for mean, masked to the winners
for max/min).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from numpy2gpt.autograd.backend import get_array_module
from numpy2gpt.autograd.function import Function
from numpy2gpt.autograd.ops._util import as_float, as_tensor, keepdims_shape, normalize_axes, pick
from numpy2gpt.autograd.ops.shape import broadcast_to, reshape
from numpy2gpt.autograd.tensor import Tensor

Axis = int | Sequence[int] | None


def _spread(gy: Tensor, x: Tensor, axes: tuple[int, ...]) -> Tensor:
    """dy of a reduction over ``axes``, copied back to x's shape."""
    return broadcast_to(reshape(gy, keepdims_shape(x.shape, axes)), x.shape)


class Sum(Function):
    """y = sum of x over ``axes``.  dx = dy broadcast back over those axes."""

    def __init__(self, axes: tuple[int, ...], keepdims: bool):
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy: Tensor) -> Tensor:
        return _spread(gy, self.inputs[0], self.axes)


class Mean(Function):
    """y = mean of x over ``axes`` (n elements each).  dx = dy / n broadcast back over those axes.

    Over an empty axis (n = 0) the mean is nan, as in PyTorch, and x has no elements to differentiate."""

    def __init__(self, axes: tuple[int, ...], keepdims: bool):
        self.axes, self.keepdims = axes, keepdims

    def forward(self, x: np.ndarray) -> np.ndarray:
        if _count(x.shape, self.axes) == 0:
            shape = x.sum(axis=self.axes, keepdims=self.keepdims).shape
            return get_array_module(x).full(shape, np.nan, dtype=x.dtype)
        return x.mean(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        n = _count(x.shape, self.axes)
        return _spread(gy * (1.0 / n if n else 0.0), x, self.axes)


def _count(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    """How many elements a reduction over ``axes`` combines into each output element."""
    return int(np.prod([shape[a] for a in axes]))


class Max(Function):
    """y = max of x over ``axes``.  dx = dy at the maxima, 0 elsewhere; tied maxima share dy equally
    (as ``torch.amax``)."""

    def __init__(self, axes: tuple[int, ...], keepdims: bool, largest: bool = True):
        self.axes, self.keepdims, self.largest = axes, keepdims, largest

    @property
    def name(self) -> str:
        return "Max" if self.largest else "Min"

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.largest:  # (methods: NumPy's and CuPy's arrays both have them)
            return x.max(axis=self.axes, keepdims=self.keepdims)
        return x.min(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        y = self.outputs[0]().data.reshape(keepdims_shape(x.shape, self.axes))
        winners = x.data == y
        share = winners / winners.sum(axis=self.axes, keepdims=True)
        return _spread(gy, x, self.axes) * Tensor._wrap(share.astype(gy.dtype))


def _reduce_args(op: str, x: Tensor, dim: Axis, keepdim: bool | None, axis: Axis, keepdims: bool | None):
    """The axes (sorted, non-negative) and keepdims flag of a reduction, from either spelling of each."""
    axes = normalize_axes(pick(op, "dim", dim, "axis", axis), x.ndim, op)
    return axes, bool(pick(op, "keepdim", keepdim, "keepdims", keepdims, False))


def sum(  # noqa: A001 - named like torch.sum
    x: Any, dim: Axis = None, keepdim: bool | None = None, *, axis: Axis = None, keepdims: bool | None = None
) -> Tensor:
    """Sum over ``dim`` (an int, a tuple of ints, or None for all axes)."""
    x = as_tensor(x)
    return Sum(*_reduce_args("sum", x, dim, keepdim, axis, keepdims))(x)


def mean(
    x: Any, dim: Axis = None, keepdim: bool | None = None, *, axis: Axis = None, keepdims: bool | None = None
) -> Tensor:
    """Arithmetic mean over ``dim``; an integer tensor gives the default float dtype."""
    x = as_float(x)
    return Mean(*_reduce_args("mean", x, dim, keepdim, axis, keepdims))(x)


def max(  # noqa: A001 - named like torch.max
    x: Any, dim: Axis = None, keepdim: bool | None = None, *, axis: Axis = None, keepdims: bool | None = None
) -> Tensor:
    """Largest value over ``dim`` (values only, as ``torch.amax``; use ``argmax`` for indices)."""
    x = as_tensor(x)
    return Max(*_extreme_args("max", x, dim, keepdim, axis, keepdims), largest=True)(x)


def min(  # noqa: A001 - named like torch.min
    x: Any, dim: Axis = None, keepdim: bool | None = None, *, axis: Axis = None, keepdims: bool | None = None
) -> Tensor:
    """Smallest value over ``dim`` (values only, as ``torch.amin``; use ``argmin`` for indices)."""
    x = as_tensor(x)
    return Max(*_extreme_args("min", x, dim, keepdim, axis, keepdims), largest=False)(x)


def _extreme_args(op: str, x: Tensor, dim: Axis, keepdim: bool | None, axis: Axis, keepdims: bool | None):
    """``_reduce_args``, refusing an empty reduction: the largest of no values is undefined (as PyTorch)."""
    axes, keep = _reduce_args(op, x, dim, keepdim, axis, keepdims)
    if _count(x.shape, axes) == 0:
        raise ValueError(f"{op}: cannot reduce over axes {axes} of shape {x.shape}: they have size 0")
    return axes, keep


amax, amin = max, min


def var(
    x: Any,
    dim: Axis = None,
    keepdim: bool | None = None,
    correction: int | None = None,
    *,
    axis: Axis = None,
    keepdims: bool | None = None,
    unbiased: bool | None = None,
) -> Tensor:
    """Variance over ``dim``: sum((x - mean)**2) / max(n - correction, 0), n the number of elements reduced.
    ``correction=1`` (the default, as in PyTorch; ``unbiased=False`` means 0) is the unbiased estimate;
    ``correction=0`` is NumPy's default. dx = dy * 2 (x - mean) / (n - correction) (``Var``). With
    n <= correction the value divides by 0: inf, or nan where all values are equal, as PyTorch and NumPy; the
    gradient is then PyTorch's, which depends on whether ``dim`` was given (see ``Var``)."""
    x, axes, keep, dof, whole = _var_args("var", x, dim, keepdim, correction, axis, keepdims, unbiased)
    return Var(axes, keep, dof, whole)(x)


class Var(Function):
    """y = sum((x - mean)^2) / max(dof, 0) over ``axes``, dof = n - correction.  dx = dy * 2 (x - mean) / dof.

    The chain rule through x - mean would add the mean's own term, -mean(dy * 2 (x - mean) / dof), which is
    zero but for rounding; where x holds an inf it is nan and would spread over the whole row. Left out, as
    PyTorch does: the gradient is nan at the inf only (±inf elsewhere). Backward is built from ops, so it is
    differentiable again (the second derivative keeps the mean's term, as PyTorch's).

    Without degrees of freedom (dof <= 0) y is s / 0: inf, or nan where s = sum((x - mean)^2) is 0. The
    gradient then follows PyTorch's ``var_backward``, which has two rules:

    * over the whole tensor (``whole``: no ``dim`` given, or a 0-d x): dx = dy * (nan where x == mean, else
      inf), a constant (it has no derivative of its own);
    * over given axes: the formula above as it stands, so dof < 0 gives a finite gradient (-0.0 for a single
      element, whose x - mean is 0) and dof = 0 gives dy * 2 (x - mean) / 0: ±inf, nan where that is 0 / 0.
    """

    def __init__(self, axes: tuple[int, ...], keepdims: bool, dof: int, whole: bool = False):
        self.axes, self.keepdims, self.dof, self.whole = axes, keepdims, dof, whole

    def forward(self, x: np.ndarray) -> np.ndarray:
        d = x - x.mean(axis=self.axes, keepdims=True) if _count(x.shape, self.axes) else x  # (no mean of nothing)
        s = (d * d).sum(axis=self.axes, keepdims=self.keepdims)
        if self.dof > 0:
            return s * (1.0 / self.dof)
        with np.errstate(divide="ignore", invalid="ignore"):
            return s / get_array_module(s).zeros((), dtype=s.dtype)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        g = _spread(gy, x, self.axes)
        if self.dof <= 0 and self.whole:
            xp = get_array_module(x.data)
            with np.errstate(invalid="ignore"):  # (a mean of +inf and -inf is nan)
                at_mean = x.data == x.data.mean() if x.data.size else xp.zeros(x.shape, dtype=bool)
            return DivideByZero()(g * Tensor._wrap(xp.where(at_mean, np.nan, 1.0).astype(x.dtype)))
        d = x - mean(x, self.axes, keepdim=True)
        if self.dof == 0:
            return DivideByZero()(g * d * 2.0)
        return g * d * (2.0 / self.dof)


class DivideByZero(Function):
    """y = v / 0 = v * inf: ±inf where v is nonzero, nan where v is 0 (or nan); NumPy's warnings for these
    divisions are expected here and silenced. Linear in v, so dv = dy / 0, this same op."""

    def forward(self, v: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return v / get_array_module(v).zeros((), dtype=v.dtype)

    def backward(self, gy: Tensor) -> Tensor:
        return DivideByZero()(gy)


def _var_args(op: str, x: Any, dim: Axis, keepdim: Any, correction: Any, axis: Axis, keepdims: Any, unbiased: Any):
    """(x as a floating tensor, the axes, keepdims, the degrees of freedom n - correction, whether the whole
    tensor is reduced without a ``dim`` or x is 0-d: PyTorch's gradient rule for dof <= 0, see ``Var``) for var
    and std."""
    x = as_float(x)
    axes, keep = _reduce_args(op, x, dim, keepdim, axis, keepdims)
    if unbiased is not None and correction is not None:
        raise TypeError(f"{op}: got both correction= and unbiased=; pass one")
    correction = (1 if unbiased is None or unbiased else 0) if correction is None else correction
    whole = (dim is None and axis is None) or x.ndim == 0
    return x, axes, keep, _count(x.shape, axes) - correction, whole


def _mean_square(d: Tensor, axes: tuple[int, ...], keep: bool, dof: int) -> Tensor:
    """sum(d**2) / dof over ``axes`` (dof > 0)."""
    return sum(d * d, axes, keep) * (1.0 / dof)


def std(
    x: Any,
    dim: Axis = None,
    keepdim: bool | None = None,
    correction: int | None = None,
    *,
    axis: Axis = None,
    keepdims: bool | None = None,
    unbiased: bool | None = None,
) -> Tensor:
    """Standard deviation: sqrt(var(x, ...)), same arguments. Where it is 0, its gradient is 0 (as PyTorch),
    not the 0 * inf = nan of the chain rule through sqrt.

    Computed as c * sqrt(sum((d / c)**2) / dof), d = x - mean, with the constant c = max|d| (1 where that is
    0): equal for any constant c, so the gradient is unchanged, but d**2 cannot overflow where std itself is
    finite (float32 squares overflow above |d| ~ 1.8e19).

    With n <= correction it is sqrt(var) as it stands (inf or nan), whose gradient is PyTorch's: dy / (2 std)
    is 0 where std is inf (nan where it is nan), then ``Var``'s rule for no degrees of freedom."""
    x, axes, keep, dof, whole = _var_args("std", x, dim, keepdim, correction, axis, keepdims, unbiased)
    if dof <= 0:
        return StdFromVar()(Var(axes, keep, dof, whole)(x))
    d = x - mean(x, axes, keepdim=True)
    xp = get_array_module(d.data)
    if d.data.size == 0:  # nothing to scale (and no maximum to take)
        c = xp.ones(keepdims_shape(d.shape, axes), dtype=d.dtype)
    else:
        c = xp.abs(d.data).max(axis=axes, keepdims=True)
        c = xp.where(c == 0, 1, c)  # nan and inf stay: their std is nan either way
    y = StdFromVar()(_mean_square(d / c, axes, keep, dof))
    return y * (c if keep else c.reshape(y.shape))


class StdFromVar(Function):
    """y = sqrt(v).  dv = dy / (2 y) where y > 0, and 0 where y = 0 (a constant x has a flat std: PyTorch's
    choice, where sqrt alone would give dy / 0)."""

    def forward(self, v: np.ndarray) -> np.ndarray:
        return np.sqrt(v)

    def backward(self, gy: Tensor) -> Tensor:
        from numpy2gpt.autograd.ops.indexing import where

        y = self.outputs[0]()
        zero = y.data == 0
        return where(zero, 0.0, gy / (where(zero, 1.0, y) * 2.0))  # no 0/0 even in a second derivative


def argmax(x: Any, dim: int | None = None, keepdim: bool | None = None, *, axis: int | None = None,
           keepdims: bool | None = None) -> Tensor:  # fmt: skip
    """Index of the largest value along ``dim`` (of the flattened tensor if None): an int64 tensor, no grad."""
    return _arg_extreme("argmax", np.argmax, x, dim, keepdim, axis, keepdims)


def argmin(x: Any, dim: int | None = None, keepdim: bool | None = None, *, axis: int | None = None,
           keepdims: bool | None = None) -> Tensor:  # fmt: skip
    """Index of the smallest value along ``dim`` (of the flattened tensor if None): an int64 tensor, no grad."""
    return _arg_extreme("argmin", np.argmin, x, dim, keepdim, axis, keepdims)


def _arg_extreme(op: str, fn: Any, x: Any, dim: Any, keepdim: Any, axis: Any, keepdims: Any) -> Tensor:
    x = as_tensor(x)
    a = pick(op, "dim", dim, "axis", axis)
    if a is not None:
        a = normalize_axes(a, x.ndim, op)[0] if x.ndim else None
    keep = bool(pick(op, "keepdim", keepdim, "keepdims", keepdims, False))
    xp = get_array_module(x.data)
    fn = fn if xp is np else getattr(xp, op)  # (np.argmax, or CuPy's)
    try:
        r = fn(x.data, axis=a, keepdims=keep)
        return Tensor._wrap(np.asarray(r) if xp is np else r)
    except ValueError:  # NumPy: "attempt to get argmax of an empty sequence"
        raise ValueError(f"{op}: the axis reduced in shape {x.shape} is empty") from None
