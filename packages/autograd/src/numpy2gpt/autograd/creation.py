"""Making tensors: ``tensor``, ``as_tensor``, ``zeros``, ``ones``, ``full``, ``arange``, ``randn``, ``rand``,
``*_like``.

Random numbers come from one module-level NumPy ``Generator``; ``manual_seed(s)`` replaces it, so a seed
fixes every draw that follows (initial weights, dropout masks, batches) and one seed gives one model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from numpy2gpt.autograd.dtypes import get_default_dtype
from numpy2gpt.autograd.tensor import Tensor

_generator = np.random.default_rng()
_reseeds = [0]  # counts manual_seed/set_rng_state calls: a GPU's generator (device.generator_for) reseeds after one


def _seed_epoch() -> int:
    return _reseeds[0]


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator (used by ``randn``, ``rand`` and the nn package) and return it.

    The generator is reseeded in place, so code that kept ``default_generator()`` from before sees the new
    seed too; the draws that follow are those of ``np.random.default_rng(seed)``."""
    _generator.bit_generator.state = np.random.PCG64(seed).state
    _reseeds[0] += 1
    return _generator


def default_generator() -> np.random.Generator:
    """The generator that ``randn``, ``rand``, weight init and dropout draw from."""
    return _generator


def get_rng_state() -> dict[str, Any]:
    """The default generator's state, to save in a checkpoint."""
    return _generator.bit_generator.state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a state from ``get_rng_state``."""
    _generator.bit_generator.state = state
    _reseeds[0] += 1


def _shape(shape: tuple[Any, ...]) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tuple(int(s) for s in shape)


def _float_dtype(dtype: Any) -> np.dtype:
    return get_default_dtype() if dtype is None else np.dtype(dtype)


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False, name: str | None = None) -> Tensor:
    """A new tensor from data (a copy; lists of floats become the default dtype)."""
    t = Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)
    if isinstance(data, (np.ndarray, Tensor)):
        t.data = t.data.copy()
    return t


def as_tensor(data: Any, dtype: Any = None) -> Tensor:
    """``data`` as a Tensor without copying when it can (``torch.as_tensor``): a Tensor is returned as is
    (converted by a recorded cast if ``dtype`` differs); anything else becomes a leaf, arrays sharing memory."""
    if isinstance(data, Tensor):
        return data if dtype is None or np.dtype(dtype) == data.dtype else data.astype(dtype)
    return Tensor(data, dtype=dtype)


def zeros(*shape: int | Sequence[int], dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape(shape), dtype=_float_dtype(dtype)), requires_grad=requires_grad)


def ones(*shape: int | Sequence[int], dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape(shape), dtype=_float_dtype(dtype)), requires_grad=requires_grad)


def full(shape: Sequence[int] | int, fill_value: float, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.full(_shape((shape,)), fill_value, dtype=_float_dtype(dtype)), requires_grad=requires_grad)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None) -> Tensor:
    """Evenly spaced values in [start, stop): int64 for integer arguments, the default float dtype else."""
    if stop is None:
        start, stop = 0, start
    if dtype is None and all(isinstance(v, (int, np.integer)) for v in (start, stop, step)):
        dtype = np.int64
    return Tensor(np.arange(start, stop, step, dtype=_float_dtype(dtype)))


def randn(
    *shape: int | Sequence[int],
    dtype: Any = None,
    requires_grad: bool = False,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Standard normal samples N(0, 1), drawn directly in the target dtype."""
    rng = generator or _generator
    dt = _float_dtype(dtype)
    data = rng.standard_normal(_shape(shape), dtype=dt if dt in (np.float32, np.float64) else np.float64)
    return Tensor(data.astype(dt, copy=False), requires_grad=requires_grad)


def rand(
    *shape: int | Sequence[int],
    dtype: Any = None,
    requires_grad: bool = False,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Uniform samples in [0, 1)."""
    rng = generator or _generator
    dt = _float_dtype(dtype)
    data = rng.random(_shape(shape), dtype=dt if dt in (np.float32, np.float64) else np.float64)
    return Tensor(data.astype(dt, copy=False), requires_grad=requires_grad)


def zeros_like(x: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return zeros(x.shape, dtype=dtype or x.dtype, requires_grad=requires_grad)


def ones_like(x: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return ones(x.shape, dtype=dtype or x.dtype, requires_grad=requires_grad)


def full_like(x: Tensor, fill_value: float, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return full(x.shape, fill_value, dtype=dtype or x.dtype, requires_grad=requires_grad)


def randn_like(x: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return randn(x.shape, dtype=dtype or x.dtype, requires_grad=requires_grad)


def rand_like(x: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return rand(x.shape, dtype=dtype or x.dtype, requires_grad=requires_grad)
