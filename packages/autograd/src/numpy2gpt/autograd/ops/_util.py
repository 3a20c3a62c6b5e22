"""Small helpers the ops share: turning operands into Tensors without upcasting, and axis bookkeeping."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from numpy2gpt.autograd.backend import get_array_module
from numpy2gpt.autograd.creation import as_tensor
from numpy2gpt.autograd.dtypes import constant_like, default_float
from numpy2gpt.autograd.tensor import Tensor

__all__ = ["as_tensor", "check_axis", "check_broadcast", "keepdims_shape", "normalize_axes"]
__all__ += ["as_float", "operands", "pick", "shape_args"]


def pick(op: str, name: str, value: Any, other_name: str, other: Any, default: Any = None) -> Any:
    """The value of an argument that has two spellings (``dim``/``axis``, ``keepdim``/``keepdims``): at most
    one may be given; ``default`` when neither is."""
    if value is not None and other is not None:
        raise TypeError(f"{op}: got both {name}= and {other_name}=; they are two spellings of one argument")
    if value is not None:
        return value
    return default if other is None else other


def shape_args(args: tuple[Any, ...]) -> tuple[int, ...]:
    """A shape given either way, ``f(x, 2, 3)`` or ``f(x, (2, 3))``, as a tuple of ints."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    return tuple(int(a) for a in args)


def operands(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors, without upcasting a floating tensor:

    * a constant (Python or NumPy scalar, list, array) takes the dtype of the tensor operand when that is
      floating, so ``float32_tensor * 0.5`` and ``float32_tensor * np.float64(0.5)`` stay float32;
    * an integer or boolean tensor meeting a floating one (tensor or constant) is converted to the floating
      one's dtype (as in PyTorch): ``int_tensor * 0.5`` is float32, where NumPy would make float64.

    Two floating tensors of different dtypes promote as NumPy does: mixing them is explicit."""
    if not isinstance(a, Tensor):
        if not isinstance(b, Tensor):
            return as_tensor(a), as_tensor(b)
        a = Tensor._wrap(constant_on(b.data, constant_like(a, b.data.dtype)))
    elif not isinstance(b, Tensor):
        b = Tensor._wrap(constant_on(a.data, constant_like(b, a.data.dtype)))
    ka, kb = a.data.dtype.kind, b.data.dtype.kind
    if ka == "f" and kb != "f":
        b = Tensor._wrap(b.data.astype(a.data.dtype))
    elif kb == "f" and ka != "f":
        a = Tensor._wrap(a.data.astype(b.data.dtype))
    return a, b


def constant_on(like: Any, constant: np.ndarray) -> Any:
    """``constant`` (a NumPy array) on the device of ``like``: itself on the CPU, a copy on a GPU."""
    if type(like) is np.ndarray:
        return constant
    xp = get_array_module(like)
    return constant if xp is np else xp.asarray(constant)


def as_float(x: Any) -> Tensor:
    """``x`` as a floating Tensor: integer and boolean tensors become the default float dtype (as PyTorch's
    ``exp``, ``sqrt``, ``/``, ... do), floating ones are returned as they are."""
    x = as_tensor(x)
    if x.data.dtype.kind == "f":
        return x
    return Tensor._wrap(x.data.astype(default_float(x.data.dtype)))


def check_broadcast(op: str, a: Tensor, b: Tensor) -> None:
    """Raise a clear error if ``a`` and ``b`` cannot broadcast together."""
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{op}: shapes {a.shape} and {b.shape} cannot be broadcast together (trailing dimensions must "
            "be equal or 1)"
        ) from None


def normalize_axes(axis: int | Sequence[int] | None, ndim: int, op: str = "") -> tuple[int, ...]:
    """``axis`` as a sorted tuple of non-negative axes; ``None`` means all of them.

    A 0-d tensor accepts axis 0 or -1 (as PyTorch) and has nothing to reduce: ``()``."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"{op + ': ' if op else ''}axis {a} is out of range for a tensor with {ndim} dimensions")
        if ndim > 0:
            out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{op + ': ' if op else ''}axis {axis} names the same axis twice")
    return tuple(sorted(out))


def check_axis(op: str, axis: int, ndim: int) -> int:
    """``axis`` as a non-negative axis of an ``ndim``-dimensional tensor, or a clear error."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor with {ndim} dimensions")
    return int(axis) % ndim


def keepdims_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with the reduced ``axes`` kept as size 1, the shape ``keepdims=True`` gives."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))
