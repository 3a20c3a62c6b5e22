"""Weight initialisation, in place, named and computed as in ``torch.nn.init`` (formulas: each docstring).

One idea: every function fills ``tensor.data`` in place (the array object stays, so an optimizer holding it sees
the new values) with draws from ``default_generator()`` or a given ``generator``, made directly in the
parameter's dtype: ``manual_seed(s)`` then building a model gives the same weights every time.
"""

from __future__ import annotations

import math

import numpy as np

from numpy2gpt.autograd import Tensor, get_array_module
from numpy2gpt.autograd.device import default_generator_like

__all__ = [
    "calculate_gain",
    "constant_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


def _array(tensor: Tensor | np.ndarray) -> np.ndarray:
    data = tensor.data if isinstance(tensor, Tensor) else tensor
    if not isinstance(data, np.ndarray) and get_array_module(data) is np:  # (a GPU array is filled there)
        raise TypeError(f"init functions fill a Tensor or an ndarray in place, got {type(tensor).__name__}")
    if data.dtype.kind != "f":
        raise TypeError(f"init functions fill floating point tensors, got dtype {data.dtype}")
    return data


def _draw_dtype(dtype: np.dtype) -> np.dtype:
    """NumPy draws float32 and float64 directly; other float dtypes (float16) are drawn in float32."""
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)


def _fill_random(
    data: np.ndarray, draw: str, scale: float, shift: float, generator: np.random.Generator | None
) -> None:
    """``data = sample * scale + shift`` in place, ``sample`` from the generator's ``random`` (U[0, 1)) or
    ``standard_normal`` (N(0, 1)), drawn in the dtype of ``data``.

    A C-contiguous float32/float64 array is drawn into directly (``out=``): no temporary the size of the weight.
    """
    dtype = _draw_dtype(data.dtype)
    fill = getattr(generator or default_generator_like(data), draw)  # (a GPU array: that GPU's generator)
    direct = dtype == data.dtype and data.flags.c_contiguous
    sample = fill(dtype=dtype, out=data) if direct else fill(data.shape, dtype=dtype)
    sample *= scale
    sample += shift
    if not direct:
        data[...] = sample


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended scale for weights feeding ``nonlinearity`` (torch's table):
    linear/identity/sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu sqrt(2 / (1 + slope^2)) (slope 0.01 unless
    ``param``), selu 3/4."""
    if nonlinearity in ("linear", "identity", "sigmoid", "conv1d", "conv2d", "conv3d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor: Tensor | np.ndarray) -> tuple[int, int]:
    shape = _array(tensor).shape
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(tensor: Tensor | np.ndarray, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} is not supported, use 'fan_in' or 'fan_out'")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Fill with samples from U(a, b)."""
    _fill_random(_array(tensor), "random", float(b) - float(a), float(a), generator)
    return tensor


def normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: np.random.Generator | None = None
) -> Tensor:
    """Fill with samples from N(mean, std^2)."""
    _fill_random(_array(tensor), "standard_normal", float(std), float(mean), generator)
    return tensor


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Fill with N(mean, std^2) samples restricted to [a, b] (absolute bounds, as in torch), by redrawing
    the samples that fall outside."""
    if not a < b:
        raise ValueError(f"trunc_normal_ needs a < b, got a={a}, b={b}")
    data = _array(tensor)
    rng = generator or default_generator_like(data)
    dt = _draw_dtype(data.dtype)
    sample = rng.standard_normal(data.shape, dtype=dt) * dt.type(std) + dt.type(mean)
    bad = (sample < a) | (sample > b)
    while bad.any():
        sample[bad] = rng.standard_normal(int(bad.sum()), dtype=dt) * dt.type(std) + dt.type(mean)
        bad = (sample < a) | (sample > b)
    data[...] = sample
    return tensor


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with the value ``val``."""
    _array(tensor)[...] = val
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with zeros."""
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with ones."""
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator=generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator=generator)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Tensor:
    """He uniform: U(-b, b) with b = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a)."""
    fan = _fan(tensor, mode)
    if fan == 0:  # a zero-element weight (e.g. Linear(0, n)): nothing to fill, as in torch
        return tensor
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, generator=generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Tensor:
    """He normal: N(0, std^2) with std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a)."""
    fan = _fan(tensor, mode)
    if fan == 0:  # a zero-element weight (e.g. Linear(0, n)): nothing to fill, as in torch
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator=generator)
