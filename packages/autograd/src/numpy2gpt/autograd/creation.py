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


def _on(device: Any) -> tuple[Any, Any]:
    """(array module, context that makes the device current) for ``device`` (None: the CPU, NumPy)."""
    from contextlib import nullcontext

    if device is None:
        return np, nullcontext()
    from numpy2gpt.autograd.device import as_device, require

    dev = require(as_device(device))  # one line if CuPy or the GPU is missing
    if dev.type == "cpu":
        return np, nullcontext()
    from numpy2gpt.autograd.backend import array_module_for

    xp = array_module_for(dev.type)
    cuda = getattr(xp, "cuda", None)
    return xp, (cuda.Device(dev.index) if cuda is not None else nullcontext())


def zeros(*shape: int | Sequence[int], dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    """Zeros of ``shape`` on ``device`` ("cpu" by default, "cuda" with CuPy), as ``torch.zeros``."""
    xp, on = _on(device)
    with on:
        return Tensor(xp.zeros(_shape(shape), dtype=_float_dtype(dtype)), requires_grad=requires_grad)


def ones(*shape: int | Sequence[int], dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    xp, on = _on(device)
    with on:
        return Tensor(xp.ones(_shape(shape), dtype=_float_dtype(dtype)), requires_grad=requires_grad)


def full(
    shape: Sequence[int] | int, fill_value: float, dtype: Any = None, requires_grad: bool = False, device: Any = None
) -> Tensor:
    xp, on = _on(device)
    with on:
        return Tensor(xp.full(_shape((shape,)), fill_value, dtype=_float_dtype(dtype)), requires_grad=requires_grad)


def arange(start: float, stop: float | None = None, step: float = 1, dtype: Any = None, device: Any = None) -> Tensor:
    """Evenly spaced values in [start, stop): int64 for integer arguments, the default float dtype else."""
    if stop is None:
        start, stop = 0, start
    if dtype is None and all(isinstance(v, (int, np.integer)) for v in (start, stop, step)):
        dtype = np.int64
    xp, on = _on(device)
    with on:
        return Tensor(xp.arange(start, stop, step, dtype=_float_dtype(dtype)))


def _draw(method: str, shape: tuple[Any, ...], dtype: Any, requires_grad: bool, generator: Any, device: Any) -> Tensor:
    """``generator``'s (default: the device's, see ``device.generator_for``) draws in the target dtype."""
    xp, on = _on(device)
    dt = _float_dtype(dtype)
    with on:
        if generator is None and xp is not np:
            from numpy2gpt.autograd.device import as_device, generator_for

            generator = generator_for(xp, as_device(device).index or 0)
        rng = generator or _generator
        data = getattr(rng, method)(_shape(shape), dtype=dt if dt in (np.float32, np.float64) else np.float64)
        return Tensor(data.astype(dt, copy=False), requires_grad=requires_grad)


def randn(
    *shape: int | Sequence[int],
    dtype: Any = None,
    requires_grad: bool = False,
    generator: np.random.Generator | None = None,
    device: Any = None,
) -> Tensor:
    """Standard normal samples N(0, 1), drawn directly in the target dtype (on ``device``, by its generator)."""
    return _draw("standard_normal", shape, dtype, requires_grad, generator, device)


def rand(
    *shape: int | Sequence[int],
    dtype: Any = None,
    requires_grad: bool = False,
    generator: np.random.Generator | None = None,
    device: Any = None,
) -> Tensor:
    """Uniform samples in [0, 1) (on ``device``, by its generator)."""
    return _draw("random", shape, dtype, requires_grad, generator, device)


# The *_like functions make their tensor where x is (as PyTorch), unless ``device`` says otherwise.
def zeros_like(x: Tensor, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    return zeros(x.shape, dtype=dtype or x.dtype, requires_grad=requires_grad, device=device or _device(x))


def ones_like(x: Tensor, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    return ones(x.shape, dtype=dtype or x.dtype, requires_grad=requires_grad, device=device or _device(x))


def full_like(
    x: Tensor, fill_value: float, dtype: Any = None, requires_grad: bool = False, device: Any = None
) -> Tensor:
    return full(x.shape, fill_value, dtype=dtype or x.dtype, requires_grad=requires_grad, device=device or _device(x))


def randn_like(x: Tensor, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    return randn(x.shape, dtype=dtype or x.dtype, requires_grad=requires_grad, device=device or _device(x))


def rand_like(x: Tensor, dtype: Any = None, requires_grad: bool = False, device: Any = None) -> Tensor:
    return rand(x.shape, dtype=dtype or x.dtype, requires_grad=requires_grad, device=device or _device(x))


def _device(x: Any) -> Any:
    """x's device, or None (the CPU) for a NumPy-backed tensor (no lookup on the common path)."""
    data = x.data if isinstance(x, Tensor) else x
    if type(data) is np.ndarray:
        return None
    from numpy2gpt.autograd.device import device_of

    return device_of(data)
