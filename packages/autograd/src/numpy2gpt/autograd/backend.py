"""The array-module seam.

Every op asks ``get_array_module(array)`` for the module that made its input (``numpy`` here) instead of
naming ``numpy`` directly when it creates arrays, the way DeZero supports CuPy: a GPU backend later plugs in
here without rewriting the ops. Only NumPy is supported today.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np


def get_array_module(*arrays: Any) -> ModuleType:
    """The array library (``numpy``, or one with NumPy's API such as CuPy) that made ``arrays``."""
    for a in arrays:
        module = type(a).__module__.split(".")[0]
        if module == "cupy":  # pragma: no cover - no CuPy on the test machines
            import cupy

            return cupy
    return np
