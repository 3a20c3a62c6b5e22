"""The array-module seam: which array library (NumPy, or CuPy on a GPU) holds an array.

Every op asks ``xp = get_array_module(array)`` for the module that made its input and creates its arrays with
``xp.zeros``, ``xp.empty_like``, ... instead of naming ``numpy``, the way DeZero supports CuPy: the same code runs
on a GPU when its inputs are CuPy arrays. ``array_module_for("cuda")`` imports CuPy only when a GPU is asked for,
and says in one line what is missing when it cannot. A test can ``register_backend`` a stand-in module (an ndarray
subclass that refuses to mix with host arrays) to check on a CPU that nothing leaves the device.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

# array type -> its module, for CuPy once imported and for backends registered by tests
_modules: dict[type, ModuleType] = {}
# device type ("cuda") -> its module, when a test registered a stand-in for it
_device_modules: dict[str, ModuleType] = {}


class DeviceUnavailableError(OSError):
    """A GPU was asked for and cannot be had: CuPy is not installed, or finds no CUDA GPU (one line says which).
    An OSError, as a missing driver or device is a property of the machine."""


def get_array_module(*arrays: Any) -> ModuleType:
    """The array library (``numpy``, or one with NumPy's API such as CuPy) that made ``arrays``: the first
    non-NumPy one found, else ``numpy``. A type lookup per argument, so it costs nothing next to an op."""
    for a in arrays:
        t = type(a)
        if t is np.ndarray:
            continue
        xp = _modules.get(t)
        if xp is not None:
            return xp
        if t.__module__.startswith("cupy"):
            cupy = _import_cupy()
            _modules[t] = cupy
            return cupy
    return np


def is_host(xp: ModuleType) -> bool:
    """True for the CPU's module (NumPy)."""
    return xp is np


def register_backend(device_type: str, module: ModuleType) -> None:
    """Use ``module`` (NumPy's API, an ``ndarray`` type, ``asarray``, ``asnumpy``, ``random.default_rng``) for the
    device ``device_type`` instead of CuPy. Tests register a CPU stand-in for "cuda"; ``unregister_backend`` undoes."""
    _device_modules[device_type] = module
    _modules[module.ndarray] = module


def unregister_backend(device_type: str) -> None:
    module = _device_modules.pop(device_type, None)
    if module is not None:
        _modules.pop(module.ndarray, None)


def array_module_for(device_type: str) -> ModuleType:
    """The module of a device type: NumPy for "cpu", CuPy (or a registered stand-in) for "cuda"."""
    if device_type == "cpu":
        return np
    if device_type in _device_modules:
        return _device_modules[device_type]
    if device_type != "cuda":
        raise ValueError(f"unknown device type {device_type!r}: expected 'cpu' or 'cuda' (e.g. 'cuda:0')")
    cupy = _import_cupy()
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CUDA driver missing or broken: CuPy raises its own runtime errors
        raise DeviceUnavailableError(f"device 'cuda' asked for, but CuPy finds no usable CUDA GPU ({e})") from None
    if count == 0:
        raise DeviceUnavailableError("device 'cuda' asked for, but CuPy finds no CUDA GPU on this machine")
    return cupy


def _import_cupy() -> ModuleType:
    try:
        import cupy
    except ImportError:
        raise DeviceUnavailableError(
            "device 'cuda' needs CuPy, which is not installed: pip install 'numpy2gpt-autograd[cuda12]' "
            "(or [cuda13], matching the CUDA version nvidia-smi shows)"
        ) from None
    _modules[cupy.ndarray] = cupy
    return cupy


def scatter_add(out: Any, index: Any, values: Any) -> None:
    """``out[index] += values`` with repeated indices adding up (``np.add.at``; on CuPy ``cupyx.scatter_add``,
    one atomic-add kernel)."""
    xp = get_array_module(out)
    if xp.__name__ == "cupy":
        import cupyx

        cupyx.scatter_add(out, index, values)
    else:
        xp.add.at(out, index, values)
