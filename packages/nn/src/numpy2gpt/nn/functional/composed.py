"""The functional ops written only from autograd primitives: the readable reference versions.

Every function here has a fused twin in this package with the same signature (``linear`` in linear.py,
``gelu`` in activation.py, ...). These build the textbook formula from Tensor ops (``exp``, ``log``, ``sum``,
``max``, ``matmul``, ``where``, indexing), so autograd derives their gradients with no backward code at all;
they are slower (one graph node and one temporary per op), and their backward is itself differentiable
(``create_graph=True`` works through them, unlike the fused versions). The tests check fused == composed,
values and gradients.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from numpy2gpt.autograd import Function, Tensor, as_tensor, exp, get_array_module, log, sigmoid, tanh, where
from numpy2gpt.autograd.device import default_generator_like
from numpy2gpt.nn.functional._util import as_operand, check_floating, index_array, pick_dim
from numpy2gpt.nn.functional.attention import causal_mask
from numpy2gpt.nn.functional.dropout import keep_mask
from numpy2gpt.nn.functional.special import erf as _erf_array


class Erf(Function):
    """y = erf(x) (the one primitive autograd lacks).  dx = dy * 2/sqrt(pi) * exp(-x^2)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return _erf_array(x)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return gy * exp(-(x * x)) * (2.0 / math.sqrt(math.pi))


def erf(x: Any) -> Tensor:
    """The error function, differentiable (twice and more)."""
    return Erf()(as_tensor(x))


def linear(x: Any, weight: Any, bias: Any = None) -> Tensor:
    """y = x @ W^T + b. Arrays are tensors of their own dtype, which must agree (as the fused op and PyTorch)."""
    x, weight = as_tensor(x), as_tensor(weight)
    bias = None if bias is None else as_tensor(bias)
    check_floating("linear", x=x, weight=weight, bias=bias)
    y = x @ weight.T
    return y if bias is None else y + bias


def relu(x: Any) -> Tensor:
    """max(x, 0): x where x > 0, else 0 (so the gradient at 0 is 0)."""
    x = as_tensor(x)
    return where(x.data > 0, x, 0.0)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    x = as_tensor(x)
    return where(x.data > 0, x, x * negative_slope)


def silu(x: Any) -> Tensor:
    """x * sigmoid(x)."""
    x = as_tensor(x)
    return x * sigmoid(x)


def gelu(x: Any, approximate: str = "none") -> Tensor:
    """x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2))); or, approximate="tanh",
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). float16 runs in float32, rounded back once (as the fused
    op and PyTorch's CPU kernel)."""
    x = as_tensor(x)
    if x.dtype == np.float16:
        return gelu(x.astype(np.float32), approximate).astype(np.float16)
    if approximate == "tanh":
        return 0.5 * x * (1.0 + tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))
    return 0.5 * x * (1.0 + erf(x * math.sqrt(0.5)))


def softmax(x: Any, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """exp(x - m) / sum(exp(x - m)) along ``dim`` (or ``axis``; default -1); the shift m = max(x) is a constant
    (softmax(x - m) = softmax(x))."""
    x, axis = as_tensor(x), pick_dim("softmax", dim, axis)
    e = exp(x - _shift(x, axis))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x: Any, dim: int | None = None, *, axis: int | None = None) -> Tensor:
    """(x - m) - log(sum(exp(x - m))) along ``dim`` (or ``axis``; default -1)."""
    x, axis = as_tensor(x), pick_dim("log_softmax", dim, axis)
    z = x - _shift(x, axis)
    if x.size == 0:  # nothing to normalise (and log of an empty sum would be log(0))
        return z
    return z - log(exp(z).sum(axis=axis, keepdims=True))


def _shift(x: Tensor, axis: int) -> Tensor | float:
    """The softmax shift max(x) along ``axis``, as a constant; 0 for an empty tensor (nothing to shift)."""
    return x.max(axis=axis, keepdims=True).detach() if x.size else 0.0


def cross_entropy(logits: Any, targets: Any, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """-log_softmax(logits)[target] per row (classes on the last axis), 0 for ignored rows, then reduced."""
    logits = as_tensor(logits)
    t = index_array(targets, "cross_entropy", "targets").reshape(-1)
    logp = log_softmax(logits.reshape(-1, logits.shape[-1]))
    valid = t != ignore_index
    xp = get_array_module(t)  # (the targets' device: a GPU's for a model there)
    nll = -logp[xp.arange(len(t)), xp.where(valid, t, 0)]
    nll = where(valid, nll, 0.0)
    if reduction == "none":
        return nll.reshape(logits.shape[:-1])
    if reduction == "sum":
        return nll.sum()
    count = int(valid.sum())
    return nll.sum() * (1.0 / count if count else math.nan)


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002 - torch's name
    """(input - target)^2, then its mean, its sum, or each element (reduction "none"). An array target is a
    tensor of its own dtype: float32 input and float64 target give float64 (as the fused op and PyTorch)."""
    x = as_tensor(input)
    d = x - as_operand(target, x)
    sq = d * d
    if reduction == "none":
        return sq
    return sq.sum() if reduction == "sum" else sq.mean()


def layer_norm(
    x: Any, normalized_shape: int | Sequence[int], weight: Any = None, bias: Any = None, eps: float = 1e-5
) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing ``normalized_shape`` dims (biased var).

    Computed as xs / sqrt(var(xs) + eps / c^2) with xs = (x - mean) / c, equal for any constant c: c = the
    largest |x - mean| of each sample (at least 1), so the squares cannot overflow (float32's do above 1.8e19).
    float16 runs in float32, rounded back once, as the fused op and PyTorch's CPU kernel."""
    x = as_tensor(x)
    weight, bias = (None if p is None else as_tensor(p) for p in (weight, bias))
    check_floating("layer_norm", x=x, weight=weight, bias=bias)  # (one dtype, as the fused op and PyTorch)
    if x.dtype == np.float16:
        wide = [None if p is None else p.astype(np.float32) for p in (weight, bias)]
        return layer_norm(x.astype(np.float32), normalized_shape, *wide, eps).astype(np.float16)
    n = 1 if isinstance(normalized_shape, (int, np.integer)) else len(normalized_shape)
    axes = tuple(range(x.ndim - n, x.ndim))
    xc = x - x.mean(axis=axes, keepdims=True)
    c = _largest_or_one(xc.data, axes)
    xs = xc / c
    var = (xs * xs).mean(axis=axes, keepdims=True)
    y = xs / (var + eps / c / c).sqrt()
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def _largest_or_one(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """max(|a|, 1) over ``axes`` (kept), 1 for samples of no elements; nan stays nan."""
    xp = get_array_module(a)
    if any(a.shape[i] == 0 for i in axes):
        return xp.ones(tuple(1 if i in axes else n for i, n in enumerate(a.shape)), dtype=a.dtype)
    return xp.maximum(xp.abs(a).max(axis=axes, keepdims=True), 1.0)


def dropout(x: Any, p: float = 0.5, training: bool = True, generator: np.random.Generator | None = None) -> Tensor:
    """x * keep / (1 - p) with keep ~ Bernoulli(1 - p); the same draws as the fused version."""
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = keep_mask(x.shape, p, x.dtype, generator or default_generator_like(x.data))
    return x * Tensor(keep.astype(x.dtype)) * (1.0 / (1.0 - p))


def embedding(idx: Any, weight: Any) -> Tensor:
    """weight[idx]: indexing's backward adds the gradient of repeated ids."""
    return as_tensor(weight)[index_array(idx, "embedding", "ids")]


def scaled_dot_product_attention(
    q: Any,
    k: Any,
    v: Any,
    attn_mask: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """softmax(q @ k^T * scale + mask) @ v, each step an autograd op. A query row that may see no key at all
    (every key masked) attends to nothing: its output and gradients are 0, as in the fused op and PyTorch."""
    q, k, v = as_tensor(q), as_tensor(k), as_tensor(v)
    check_floating("scaled_dot_product_attention", q=q, k=k, v=v)  # (one dtype, as the fused op and PyTorch)
    if scale is None:  # with head size 0 every score is 0, whatever the scale
        scale = 1.0 / math.sqrt(q.shape[-1]) if q.shape[-1] else 1.0
    scores = (q @ k.mT) * float(scale)
    if is_causal:
        scores = scores.masked_fill(~causal_mask(q.shape[-2], k.shape[-2]), -math.inf)
    elif attn_mask is not None:
        mask = attn_mask.data if isinstance(attn_mask, Tensor) else np.asarray(attn_mask)
        scores = scores.masked_fill(~mask, -math.inf) if mask.dtype == bool else scores + mask.astype(scores.dtype)
    dead = get_array_module(scores.data).isneginf(scores.data).all(axis=-1, keepdims=True)  # rows seeing no key
    if dead.any():  # softmax of all -inf is nan: give those rows finite scores, then zero their weights
        weights = softmax(scores.masked_fill(dead, 0.0), axis=-1).masked_fill(dead, 0.0)
    else:
        weights = softmax(scores, axis=-1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, generator=generator)
    return weights @ v
