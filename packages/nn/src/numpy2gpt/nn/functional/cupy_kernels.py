"""CUDA kernels for the hot fused ops on a GPU, used only when the arrays are CuPy's (imported only then).

On a GPU every NumPy-style pass is a kernel launch (~5-10 us of Python and driver work), so a chain of 10-40 passes
over one array costs more in launches than in arithmetic. Each function here is one or two kernels with the same
math as the NumPy code it replaces (its twin, named in the docstring; tests/gpu compares them):

* ``gelu``: y = x Phi(x) and dy/dx in one pass (twin: ``activation.GELU``).
* ``layer_norm_forward``/``layer_norm_backward``: one block of threads per row (twin: ``normalization.LayerNorm``).
* ``cross_entropy_forward``/``cross_entropy_backward``: per row logsumexp and loss in one kernel; the gradient
  softmax - onehot in another, from the saved logsumexp instead of a saved exp(z - max) (twin: ``loss.CrossEntropy``).
* ``adam_update``: AdamW's whole rule for one parameter in one pass (twin: ``optim.Adam._update``).

Sums are accumulated in float64 (the GPU's float64 units are idle here; the kernels are memory bound).
"""

from __future__ import annotations

import functools
from typing import Any

import cupy

_SQRT1_2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327
_K = 0.7978845608028654  # sqrt(2 / pi)
_C = 0.044715
_THREADS = 256  # threads per row in the row kernels


# -- GELU ------------------------------------------------------------------------------------------------------
_GELU_Y = {  # y, with the values the derivative reuses
    "none": f"double xd = (double)x; double phi = 0.5 * erfc(-xd * {_SQRT1_2}); y = (T)(xd * phi);",
    "tanh": f"double xd = (double)x; double t = tanh({_K} * (xd + {_C} * xd * xd * xd)); double h = 0.5 * (1.0 + t);"
    " y = (T)(xd * h);",
}
_GELU_D = {  # dy/dx
    "none": f"d = (T)(phi + xd * exp(-0.5 * xd * xd) * {_INV_SQRT_2PI});",
    "tanh": f"d = (T)(h + 0.5 * xd * (1.0 - t * t) * {_K} * (1.0 + 3.0 * {_C} * xd * xd));",
}


@functools.cache
def _gelu_kernel(approximate: str, grad: bool) -> Any:
    body = _GELU_Y[approximate] + (_GELU_D[approximate] if grad else "")
    return cupy.ElementwiseKernel("T x", "T y, T d" if grad else "T y", body, f"n2g_gelu_{approximate}_{int(grad)}")


def gelu(x: cupy.ndarray, approximate: str, need_grad: bool) -> tuple[cupy.ndarray, cupy.ndarray | None]:
    """(y, dy/dx or None) for GELU of a 1-D array, in one kernel (math: ``activation.GELU``)."""
    if need_grad:
        y, d = _gelu_kernel(approximate, True)(x)
        return y, d
    return _gelu_kernel(approximate, False)(x), None


# -- row kernels: layer norm and cross-entropy -----------------------------------------------------------------
_BLOCK_SUM = """
#define NEG_INF (-__longlong_as_double(0x7ff0000000000000LL))
__device__ double block_sum(double v, double* shared) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffff, v, o);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = threadIdx.x < (blockDim.x >> 5) ? shared[threadIdx.x] : 0.0;
    if (warp == 0) for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffff, v, o);
    if (threadIdx.x == 0) shared[0] = v;
    __syncthreads();
    return shared[0];
}
__device__ double block_max(double v, double* shared) {
    for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_down_sync(0xffffffff, v, o));
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = threadIdx.x < (blockDim.x >> 5) ? shared[threadIdx.x] : NEG_INF;
    if (warp == 0) for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_down_sync(0xffffffff, v, o));
    if (threadIdx.x == 0) shared[0] = v;
    __syncthreads();
    return shared[0];
}
"""

_ROW_KERNELS = (
    _BLOCK_SUM
    + """
extern "C" __global__ void ln_forward(const T* x, const T* w, const T* b, T* y, T* xhat, T* rstd,
                                      long long d, double eps, int has_w, int has_b) {
    __shared__ double shared[32];
    const T* xr = x + blockIdx.x * d;
    double s = 0.0;
    for (long long i = threadIdx.x; i < d; i += blockDim.x) s += (double)xr[i];
    double mean = block_sum(s, shared) / (double)d;
    double q = 0.0;
    for (long long i = threadIdx.x; i < d; i += blockDim.x) { double c = (double)xr[i] - mean; q += c * c; }
    double r = rsqrt(block_sum(q, shared) / (double)d + eps);
    for (long long i = threadIdx.x; i < d; i += blockDim.x) {
        T h = (T)(((double)xr[i] - mean) * r);
        xhat[blockIdx.x * d + i] = h;
        double out = (double)h;
        if (has_w) out *= (double)w[i];
        if (has_b) out += (double)b[i];
        y[blockIdx.x * d + i] = (T)out;
    }
    if (threadIdx.x == 0) rstd[blockIdx.x] = (T)r;
}

extern "C" __global__ void ln_backward(const T* gy, const T* xhat, const T* rstd, const T* w, T* gx, long long d,
                                       int has_w) {
    __shared__ double shared[32];
    const T* g = gy + blockIdx.x * d;
    const T* h = xhat + blockIdx.x * d;
    double sg = 0.0, sgh = 0.0;
    for (long long i = threadIdx.x; i < d; i += blockDim.x) {
        double gi = (double)g[i] * (has_w ? (double)w[i] : 1.0);
        sg += gi;
        sgh += gi * (double)h[i];
    }
    double mean_g = block_sum(sg, shared) / (double)d;
    double mean_gh = block_sum(sgh, shared) / (double)d;
    double r = (double)rstd[blockIdx.x];
    for (long long i = threadIdx.x; i < d; i += blockDim.x) {
        double gi = (double)g[i] * (has_w ? (double)w[i] : 1.0);
        gx[blockIdx.x * d + i] = (T)(r * (gi - mean_g - (double)h[i] * mean_gh));
    }
}

extern "C" __global__ void ce_forward(const T* z, const long long* t, T* loss, T* lse, long long v,
                                      long long ignore) {
    __shared__ double shared[32];
    const T* zr = z + blockIdx.x * v;
    double m = NEG_INF;
    for (long long i = threadIdx.x; i < v; i += blockDim.x) m = fmax(m, (double)zr[i]);
    m = block_max(m, shared);
    double s = 0.0;
    for (long long i = threadIdx.x; i < v; i += blockDim.x) s += exp((double)zr[i] - m);
    double l = log(block_sum(s, shared)) + m;
    if (threadIdx.x == 0) {
        long long ti = t[blockIdx.x];
        lse[blockIdx.x] = (T)l;
        loss[blockIdx.x] = ti == ignore ? (T)0 : (T)(l - (double)zr[ti]);
    }
}
"""
)


@functools.cache
def _row_module(dtype: str) -> Any:
    ctype = {"float32": "float", "float64": "double"}[dtype]
    return cupy.RawModule(code=f"typedef {ctype} T;\n" + _ROW_KERNELS)


def _kernel(name: str, dtype: Any) -> Any:
    return _row_module(str(cupy.dtype(dtype))).get_function(name)


def _or_dummy(a: cupy.ndarray | None, like: cupy.ndarray) -> cupy.ndarray:
    """``a`` as a contiguous array, or a one-element stand-in the kernel never reads (its has_* flag is 0)."""
    return cupy.empty(1, dtype=like.dtype) if a is None else cupy.ascontiguousarray(a.astype(like.dtype, copy=False))


def layer_norm_forward(
    x2: cupy.ndarray, weight: cupy.ndarray | None, bias: cupy.ndarray | None, eps: float
) -> tuple[cupy.ndarray, cupy.ndarray, cupy.ndarray]:
    """(y, xhat, rstd (N, 1)) for rows x2 (N, D): one block per row (math: ``normalization.LayerNorm``)."""
    x2 = cupy.ascontiguousarray(x2)
    n, d = x2.shape
    y, xhat = cupy.empty_like(x2), cupy.empty_like(x2)
    rstd = cupy.empty((n, 1), dtype=x2.dtype)
    if n and d:
        w, b = _or_dummy(weight, x2), _or_dummy(bias, x2)
        flags = cupy.int32(weight is not None), cupy.int32(bias is not None)
        args = (x2, w, b, y, xhat, rstd, cupy.int64(d), cupy.float64(eps), *flags)
        _kernel("ln_forward", x2.dtype)((n,), (_THREADS,), args)
    return y, xhat, rstd


def layer_norm_backward(
    gy2: cupy.ndarray, xhat: cupy.ndarray, rstd: cupy.ndarray, weight: cupy.ndarray | None
) -> cupy.ndarray:
    """dx (N, D) = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w, one block per row."""
    gy2 = cupy.ascontiguousarray(gy2)
    n, d = xhat.shape
    gx = cupy.empty_like(xhat)
    if n and d:
        args = (gy2, xhat, rstd, _or_dummy(weight, xhat), gx, cupy.int64(d), cupy.int32(weight is not None))
        _kernel("ln_backward", xhat.dtype)((n,), (_THREADS,), args)
    return gx


def cross_entropy_forward(z: cupy.ndarray, targets: cupy.ndarray, ignore_index: int) -> tuple[cupy.ndarray, ...]:
    """(loss_i, lse_i) per row of z (N, V): lse_i = logsumexp(z_i), loss_i = lse_i - z_i[t_i] (0 if ignored)."""
    z = cupy.ascontiguousarray(z)
    n, v = z.shape
    t = cupy.ascontiguousarray(targets.astype(cupy.int64, copy=False))
    loss, lse = cupy.empty(n, dtype=z.dtype), cupy.empty(n, dtype=z.dtype)
    if n:
        ignore = cupy.int64(-(2**62) if ignore_index is None else ignore_index)
        _kernel("ce_forward", z.dtype)((n,), (_THREADS,), (z, t, loss, lse, cupy.int64(v), ignore))
    return loss, lse


@functools.cache
def _ce_backward_kernel() -> Any:
    return cupy.ElementwiseKernel(
        "raw T z, raw T lse, raw T w, raw int64 t, int64 v",
        "T dz",
        "long long row = i / v, col = i % v; "
        "dz = (T)((double)w[row] * (exp((double)z[i] - (double)lse[row]) - (col == t[row] ? 1.0 : 0.0)))",
        "n2g_ce_backward",
    )


def cross_entropy_backward(z: cupy.ndarray, targets: cupy.ndarray, lse: cupy.ndarray, w: cupy.ndarray) -> cupy.ndarray:
    """dz (N, V) = w_i * (softmax(z_i) - onehot(t_i)) in one pass, softmax from the saved logsumexp (w_i = 0 for
    ignored rows, so their target, whatever it is, does not matter)."""
    z = cupy.ascontiguousarray(z)
    v = z.shape[1]
    t = cupy.ascontiguousarray(targets.astype(cupy.int64, copy=False))
    dz = cupy.empty_like(z)
    if z.size:
        _ce_backward_kernel()(z, lse, cupy.ascontiguousarray(w.reshape(-1)), t, cupy.int64(v), dz)  # dz: the loop
    return dz


# -- AdamW -----------------------------------------------------------------------------------------------------
@functools.cache
def _adam_kernel(decoupled: bool) -> Any:
    decay = "p = p * decay;" if decoupled else "gd = gd + wd * (double)p;"
    return cupy.ElementwiseKernel(
        "T g, float64 decay, float64 wd, float64 beta1, float64 beta2, float64 step_size, float64 bc2_sqrt, "
        "float64 eps",
        "T p, T m, T v",
        f"""
        double gd = (double)g;
        {decay}
        m = (T)((double)m + (1.0 - beta1) * (gd - (double)m));
        v = (T)(beta2 * (double)v + (1.0 - beta2) * gd * gd);
        p = (T)((double)p - step_size * (double)m / (sqrt((double)v) / bc2_sqrt + eps));
        """,
        f"n2g_adam_{int(decoupled)}",
    )


def adam_update(
    p: cupy.ndarray,
    g: cupy.ndarray,
    m: cupy.ndarray,
    v: cupy.ndarray,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    step: float,
) -> None:
    """Adam's (``decoupled``: AdamW's) update of p, m, v in place, one kernel (math: ``optim.Adam._update``):

    AdamW: p *= 1 - lr wd;  Adam: g += wd p;  m += (1 - b1)(g - m);  v = b2 v + (1 - b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    """
    step_size = lr / (1.0 - beta1**step)
    bc2_sqrt = (1.0 - beta2**step) ** 0.5
    decay = 1.0 - lr * weight_decay
    _adam_kernel(decoupled)(g, decay, weight_decay, beta1, beta2, step_size, bc2_sqrt, eps, p, m, v)
