"""The CUDA kernels of ``nn.functional.cupy_kernels`` against their NumPy twins (the code the CPU runs), on a GPU."""

from __future__ import annotations

import numpy as np
import pytest
from gpu import require_gpu

import numpy2gpt.nn.functional as F  # noqa: N812
from numpy2gpt.autograd import Tensor
from numpy2gpt.nn import optim

cupy = require_gpu()
from numpy2gpt.nn.functional import cupy_kernels  # noqa: E402 - only importable with CuPy

TOL = {np.float32: {"rtol": 2e-5, "atol": 2e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-13}}


def rand(*shape, dtype=np.float32, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def close(gpu, cpu, dtype):
    np.testing.assert_allclose(cupy.asnumpy(gpu), cpu, **TOL[dtype])


def forward_backward(fn, *arrays, grad_seed=9):
    """fn's output and the gradients of sum(out * w) for every input, on whatever device the arrays are."""
    ts = [Tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    w = rand(*out.shape, dtype=out.dtype, seed=grad_seed)
    if not isinstance(out.data, np.ndarray):
        w = cupy.asarray(w)
    (out * Tensor(w)).sum().backward()
    return out.data, [t.grad.data for t in ts]


def check_twin(fn, *arrays, dtype=np.float32):
    y_cpu, g_cpu = forward_backward(fn, *arrays)
    y_gpu, g_gpu = forward_backward(fn, *[cupy.asarray(a) for a in arrays])
    assert isinstance(y_gpu, cupy.ndarray)
    close(y_gpu, y_cpu, dtype)
    for a, b in zip(g_gpu, g_cpu, strict=True):
        close(a, b, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_kernel_is_its_numpy_twin(dtype, approximate):
    x = rand(1000, dtype=dtype, scale=4.0)
    y, _ = cupy_kernels.gelu(cupy.asarray(x), approximate, True)
    y_only, none = cupy_kernels.gelu(cupy.asarray(x), approximate, False)
    assert none is None
    check_twin(lambda t: F.gelu(t, approximate=approximate), x.reshape(10, 100), dtype=dtype)
    close(y, cupy.asnumpy(y_only), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", [(True, True), (True, False), (False, False)])
def test_layer_norm_kernels_are_their_numpy_twin(dtype, affine):
    x = rand(3, 7, 384, dtype=dtype, scale=3.0) + 2.0
    params = [rand(384, dtype=dtype, seed=i + 1) for i, on in enumerate(affine) if on]

    def fn(t, *p):
        w = p[0] if affine[0] else None
        b = p[1] if affine[1] else None
        return F.layer_norm(t, 384, w, b)

    check_twin(fn, x, *params, dtype=dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_kernels_are_their_numpy_twin(dtype, reduction):
    logits = rand(4, 33, 65, dtype=dtype, scale=3.0)
    targets = np.random.default_rng(1).integers(0, 65, (4, 33))
    targets[0, :5] = -1  # ignored rows
    y_cpu, g_cpu = forward_backward(lambda z: F.cross_entropy(z, targets, ignore_index=-1, reduction=reduction), logits)
    t_gpu = cupy.asarray(targets)
    y_gpu, g_gpu = forward_backward(
        lambda z: F.cross_entropy(z, t_gpu, ignore_index=-1, reduction=reduction), cupy.asarray(logits)
    )
    close(y_gpu, y_cpu, dtype)
    close(g_gpu[0], g_cpu[0], dtype)


@pytest.mark.parametrize("cls", [optim.AdamW, optim.Adam])
def test_adam_kernel_is_its_numpy_twin(cls):
    p0 = [rand(300, 7, seed=1), rand(50, seed=2)]
    grads = [[rand(*p.shape, seed=10 * s + i) for i, p in enumerate(p0)] for s in range(4)]
    results = []
    for to in (np.asarray, cupy.asarray):
        params = [Tensor(to(p.copy()), requires_grad=True) for p in p0]
        opt = cls(params, lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
        for step in grads:
            for p, g in zip(params, step, strict=True):
                p.grad = Tensor(to(g))
            opt.step()
        results.append(params)
    for cpu, gpu in zip(*results, strict=True):
        assert isinstance(gpu.data, cupy.ndarray)
        np.testing.assert_allclose(cupy.asnumpy(gpu.data), cpu.data, rtol=1e-5, atol=1e-6)
