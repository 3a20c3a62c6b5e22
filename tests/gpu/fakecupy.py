"""A strict CPU stand-in for CuPy, to check the array-module seam on machines without a GPU.

``fakecupy.ndarray`` is an ndarray subclass ("device arrays") that behaves like ``cupy.ndarray`` where CuPy is
stricter than NumPy:

* mixing a device array with a host ``numpy.ndarray`` (any shape, 0-d included) in a ufunc raises TypeError,
  as CuPy does (``cupy_array + numpy_array``);
* NumPy's non-ufunc functions called on a device array (``np.where``, ``np.einsum``, ``np.zeros_like``, ...) raise
  TypeError: code must call them through ``xp = get_array_module(x)``, so it never relies on NumPy dispatching
  them to CuPy (whose signatures differ);
* reductions give 0-d device arrays, never NumPy scalars;
* indexing with a host index array raises.

The module itself forwards every NumPy function (``fakecupy.zeros``, ``fakecupy.einsum``) with device arrays
unwrapped and results wrapped, and has CuPy's ``asarray`` (host -> device copy), ``asnumpy`` (device -> host
copy) and ``random.default_rng``. ``Tensor.numpy()``/``np.asarray(tensor)`` of a device tensor raise (as for
CuPy); ``np.asarray(device_array)`` itself cannot be caught (a subclass converts silently), so tests also
check that every Tensor made during a step holds a device array (``watch_tensors``).
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np

_host = np.ndarray


class ndarray(np.ndarray):  # noqa: N801 - named like cupy.ndarray
    """A 'device' array: NumPy memory, CuPy's strictness."""

    @property
    def device(self) -> Any:
        return types.SimpleNamespace(id=0)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, out: Any = None, **kwargs: Any) -> Any:
        args = [_unwrap(x, f"{ufunc.__name__}.{method}") for x in inputs]
        if out is not None:
            kwargs["out"] = tuple(_unwrap(o, f"{ufunc.__name__} out=") for o in out)
        result = getattr(ufunc, method)(*args, **kwargs)
        if method == "at":
            return None
        if out is not None:
            return out[0] if len(out) == 1 else out
        return tuple(_wrap(r) for r in result) if isinstance(result, tuple) else _wrap(result)

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        raise TypeError(
            f"numpy.{func.__name__} was called on a device array: call it through xp = get_array_module(array)"
        )

    def __getitem__(self, index: Any) -> Any:
        _check_index(index)
        r = super().__getitem__(index)
        return _wrap(r)

    def __setitem__(self, index: Any, value: Any) -> None:
        _check_index(index)
        super().__setitem__(index, value.view(_host) if isinstance(value, ndarray) else value)

    def __repr__(self) -> str:
        return f"device_array({np.asarray(self.view(_host))!r})"

    def __float__(self) -> float:
        return float(self.view(_host))

    def item(self, *args: Any) -> Any:
        return self.view(_host).item(*args)

    def tolist(self) -> Any:
        return self.view(_host).tolist()


def _check_index(index: Any) -> None:
    for i in index if isinstance(index, tuple) else (index,):
        if type(i) is _host:
            raise TypeError("a device array was indexed with a host (NumPy) index array: move the index first")


def _unwrap(x: Any, where: str) -> Any:
    if isinstance(x, ndarray):
        return x.view(_host)
    if type(x) is _host:
        raise TypeError(f"{where}: a host numpy.ndarray {x.shape} met a device array (CuPy refuses to mix them)")
    if isinstance(x, tuple):
        return tuple(_unwrap(v, where) for v in x)
    return x


def _wrap(r: Any) -> Any:
    if type(r) is _host:
        return r.view(ndarray)
    if isinstance(r, np.generic):
        return np.asarray(r).view(ndarray)  # CuPy's reductions give 0-d arrays
    return r


def _unwrap_all(x: Any) -> Any:
    if isinstance(x, ndarray):
        return x.view(_host)
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap_all(v) for v in x)
    return x


def _wrap_all(r: Any) -> Any:
    if isinstance(r, (list, tuple)):
        return type(r)(_wrap_all(v) for v in r)
    return _wrap(r)


def _arrays(x: Any) -> Iterator[Any]:
    if isinstance(x, np.ndarray):
        yield x
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _arrays(v)


def _forward(fn: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        given = list(_arrays((args, tuple(kwargs.values()))))
        if any(isinstance(a, ndarray) for a in given) and any(type(a) is _host for a in given):
            raise TypeError(f"fakecupy.{fn.__name__}: a host numpy.ndarray met a device array (CuPy refuses)")
        args = _unwrap_all(args)
        kwargs = {k: _unwrap_all(v) for k, v in kwargs.items()}
        return _wrap_all(fn(*args, **kwargs))

    call.__name__ = getattr(fn, "__name__", "fn")
    return call


def asarray(a: Any, dtype: Any = None) -> ndarray:
    """Host -> device (a copy, as cupy.asarray of a NumPy array), or a device array as it is."""
    if isinstance(a, ndarray):
        return a if dtype is None else a.astype(dtype)
    return np.array(a, dtype=dtype).view(ndarray)


def array(a: Any, dtype: Any = None, copy: bool = True) -> ndarray:
    return np.array(_unwrap_all(a), dtype=dtype).view(ndarray)


def asnumpy(a: Any) -> np.ndarray:
    """Device -> host (a copy)."""
    return np.array(a.view(_host)) if isinstance(a, ndarray) else np.asarray(a)


class _Generator:
    """cupy.random.Generator's subset: draws made by NumPy, returned as device arrays."""

    def __init__(self, seed: int):
        self._rng = np.random.default_rng(seed)

    def random(self, size: Any = None, dtype: Any = np.float64, out: ndarray | None = None) -> ndarray:
        return self._draw(self._rng.random, size, dtype, out)

    def standard_normal(self, size: Any = None, dtype: Any = np.float64, out: ndarray | None = None) -> ndarray:
        return self._draw(self._rng.standard_normal, size, dtype, out)

    @staticmethod
    def _draw(fn: Any, size: Any, dtype: Any, out: ndarray | None) -> ndarray:
        if out is None:
            return _wrap(np.asarray(fn(size, dtype=dtype)))
        if not isinstance(out, ndarray):
            raise TypeError("a device generator draws into device arrays only")
        fn(dtype=dtype, out=out.view(_host))
        return out

    def integers(self, low: int, high: int | None = None, size: Any = None, dtype: Any = np.int64) -> ndarray:
        return _wrap(np.asarray(self._rng.integers(low, high, size, dtype=dtype)))


random = types.SimpleNamespace(default_rng=_Generator)
linalg = types.SimpleNamespace(norm=_forward(np.linalg.norm))
float32, float64, int64, bool_, newaxis, inf, nan = np.float32, np.float64, np.int64, np.bool_, None, np.inf, np.nan


def __getattr__(name: str) -> Any:
    value = getattr(np, name)
    if isinstance(value, np.ufunc):
        return value  # a ufunc on device arrays goes through ndarray.__array_ufunc__
    if callable(value) and not isinstance(value, type):
        return _forward(value)
    return value


@contextlib.contextmanager
def as_cuda() -> Iterator[types.ModuleType]:
    """Register this module as the "cuda" device for the duration of a ``with`` block."""
    from numpy2gpt.autograd import backend

    module = sys.modules[__name__]
    backend.register_backend("cuda", module)
    try:
        yield module
    finally:
        backend.unregister_backend("cuda")


@contextlib.contextmanager
def watch_tensors(raise_at_once: bool = False) -> Iterator[list[str]]:
    """Record every Tensor made inside the block whose data is not a device array (a host round trip);
    ``raise_at_once``: raise where it happens instead (to find the line)."""
    from numpy2gpt.autograd import Tensor

    leaks: list[str] = []
    wrap, init = Tensor.__dict__["_wrap"], Tensor.__init__

    def checked_wrap(cls: type, data: Any) -> Any:
        if not isinstance(data, ndarray):
            leaks.append(f"Tensor._wrap({type(data).__name__} {getattr(data, 'shape', '')})")
            if raise_at_once:
                raise TypeError(leaks[-1])
        return wrap.__func__(cls, data)

    def checked_init(self: Any, data: Any, *args: Any, **kwargs: Any) -> None:
        init(self, data, *args, **kwargs)
        if not isinstance(self.data, ndarray):
            leaks.append(f"Tensor({type(self.data).__name__} {self.data.shape})")
            if raise_at_once:
                raise TypeError(leaks[-1])

    Tensor._wrap = classmethod(checked_wrap)
    Tensor.__init__ = checked_init
    try:
        yield leaks
    finally:
        Tensor._wrap = wrap
        Tensor.__init__ = init
