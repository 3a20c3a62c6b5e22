"""Devices, as PyTorch names them: ``"cpu"`` (NumPy arrays) and ``"cuda:0"`` (CuPy arrays on GPU 0).

``Device`` is the small value ``Tensor.device`` returns; ``to_device(array, device)`` copies an array to a device
(no copy when it is already there) and ``to_host(array)`` gives a NumPy array back (what checkpoints store).
``ToDevice`` is ``Tensor.to(device)`` as a recorded op: its gradient goes back to the device the input came from.
``generator_for(xp)`` is the random generator of a device, seeded from the CPU's default generator, so that
``manual_seed`` fixes GPU draws (dropout masks) too.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from numpy2gpt.autograd.backend import array_module_for, get_array_module
from numpy2gpt.autograd.function import Function


@dataclass(frozen=True)
class Device:
    """A device: ``type`` "cpu" or "cuda", and for "cuda" the GPU's ``index``. Equal to its string form."""

    type: str
    index: int | None = None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        return f"device(type={self.type!r}{'' if self.index is None else f', index={self.index}'})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            other = as_device(other)
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = Device("cpu")


def as_device(spec: str | Device) -> Device:
    """``"cpu"``, ``"cuda"`` (GPU 0), ``"cuda:1"`` or a Device, as a Device; one clear line for anything else."""
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"a device is a string such as 'cpu' or 'cuda:0', got {type(spec).__name__} {spec!r}")
    kind, _, index = spec.strip().lower().partition(":")
    if kind == "cpu" and not index:
        return CPU
    if kind == "cuda" and (not index or index.isdigit()):
        return Device("cuda", int(index) if index else 0)
    raise ValueError(f"unknown device {spec!r}: expected 'cpu', 'cuda' or 'cuda:N'")


def device_of(array: Any) -> Device:
    """The device holding ``array`` (NumPy arrays and scalars: the CPU)."""
    if get_array_module(array) is np:
        return CPU
    dev = getattr(array, "device", None)
    return Device("cuda", int(getattr(dev, "id", 0)))


def _use_gpu(xp: ModuleType, index: int | None) -> Any:
    """A context manager that makes GPU ``index`` current (CuPy's ``cuda.Device``), or a no-op."""
    cuda = getattr(xp, "cuda", None)
    if cuda is None or index is None:
        from contextlib import nullcontext

        return nullcontext()
    return cuda.Device(index)


def to_device(array: Any, device: str | Device) -> Any:
    """``array`` on ``device``: itself when it is already there, else a copy (host <-> GPU, or GPU -> GPU)."""
    device = as_device(device)
    if device_of(array) == device:
        return array
    if device.type == "cpu":
        return to_host(array)
    xp = array_module_for(device.type)
    with _use_gpu(xp, device.index):
        return xp.asarray(to_host(array) if get_array_module(array) is not np else array)


def to_host(array: Any) -> np.ndarray:
    """``array`` as a NumPy array (a copy from a GPU; a NumPy array is returned as it is)."""
    xp = get_array_module(array)
    return array if xp is np else xp.asnumpy(array)


_generators: dict[tuple[ModuleType, int], Any] = {}


def generator_for(xp: ModuleType, index: int = 0) -> Any:
    """The random generator that draws arrays of ``xp`` (on GPU ``index``): NumPy's default generator for the
    CPU; for a GPU, a generator of that module seeded from the default one on first use and after each
    ``manual_seed`` (so one seed fixes the draws on every device)."""
    from numpy2gpt.autograd.creation import _seed_epoch, default_generator

    if xp is np:
        return default_generator()
    key = (xp, index)
    epoch, rng = _generators.get(key, (None, None))
    if rng is None or epoch != _seed_epoch():
        seed = int(default_generator().integers(0, 2**63 - 1))
        with _use_gpu(xp, index):
            rng = xp.random.default_rng(seed)
        _generators[key] = (_seed_epoch(), rng)
    return rng


def parse_to_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Device | None, Any]:
    """``Tensor.to``'s arguments, as PyTorch takes them: (device), (dtype), (device, dtype), (tensor), or
    ``device=``/``dtype=``; returns (device or None, dtype or None)."""
    from numpy2gpt.autograd.tensor import Tensor

    kwargs = dict(kwargs)
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("copy", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            device, dtype = device_of(a.data), a.dtype
        elif isinstance(a, Device) or (isinstance(a, str) and a.split(":")[0].strip().lower() in ("cpu", "cuda")):
            device = a
        else:
            dtype = a
    return (None if device is None else as_device(device)), (None if dtype is None else np.dtype(dtype))


def tensor_to(t: Any, *args: Any, **kwargs: Any) -> Any:
    """``t`` on another device and/or in another dtype (``Tensor.to``): ``t`` itself when nothing changes, else a
    recorded copy (gradients flow back to ``t``'s device and dtype)."""
    device, dtype = parse_to_args(args, kwargs)
    if dtype is not None and np.dtype(dtype) != t.dtype:
        t = t.astype(dtype)
    if device is not None and device_of(t.data) != device:
        t = ToDevice(device)(t)
    return t


class ToDevice(Function):
    """y = x copied to another device; dL/dx = dL/dy copied back to x's device."""

    def __init__(self, device: Device):
        self.device = device

    def forward(self, x: Any) -> Any:
        self.source = device_of(x)
        return to_device(x, self.device)

    def backward(self, gy: Any) -> Any:
        return ToDevice(self.source)(gy)


def default_generator_like(array: Any) -> Any:
    """The default random generator of ``array``'s device (``generator_for``): where dropout masks and other
    draws that meet ``array`` come from."""
    xp = get_array_module(array)
    return generator_for(xp) if xp is np else generator_for(xp, device_of(array).index or 0)


def require(device: str | Device) -> Device:
    """``device`` as a Device, once its array library and hardware are known to be there: a ValueError for a name
    that is no device, a ``DeviceUnavailableError`` (one line: CuPy missing, or no GPU) for "cuda" where it cannot
    run. Entry points call it first, so a run fails before it prepares anything."""
    device = as_device(device)
    array_module_for(device.type)
    return device
