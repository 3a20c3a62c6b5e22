"""The GPU test modules' gate: CuPy and a CUDA GPU, or a module-level skip with one reason line."""

from __future__ import annotations

from types import ModuleType

import pytest


def require_gpu() -> ModuleType:
    """CuPy, once it has found a GPU; otherwise skip the calling test module, saying why in one line."""
    try:
        import cupy
    except ImportError:
        pytest.skip(
            "GPU tests need CuPy and an NVIDIA GPU: CuPy is not installed (pip install 'numpy2gpt-autograd[cuda12]')",
            allow_module_level=True,
        )
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no driver, or a broken one
        pytest.skip(f"GPU tests need an NVIDIA GPU: CuPy finds none ({type(e).__name__}: {e})", allow_module_level=True)
    if count == 0:
        pytest.skip("GPU tests need an NVIDIA GPU: CuPy finds none", allow_module_level=True)
    return cupy
