"""scaled_dot_product_attention: softmax(q k^T * scale + mask) v, one fused Function with a hand-written backward.

Two Functions compute it: ``ScaledDotProductAttention`` (any mask; its docstring has the math, forward and
backward) and ``CausalAttention`` (``is_causal`` with T <= S: the same math one block of 64 queries at a time,
each block against only the keys it can see, so about half of the T x S scores are never computed). The causal
mask is aligned bottom-right, so a KV cache's block of new queries sees every earlier key. Why the blocks, with
numbers: the nn README. Composed twin: ``composed.scaled_dot_product_attention``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from numpy2gpt.autograd import Function, Tensor, as_tensor, get_array_module, softmax_array, sum_to_array
from numpy2gpt.autograd.device import default_generator_like, device_of, to_device, to_host
from numpy2gpt.nn.functional._util import check_floating
from numpy2gpt.nn.functional.dropout import keep_mask


@functools.lru_cache(maxsize=32)
def causal_mask(t: int, s: int) -> np.ndarray:
    """Boolean (T, S), True where query i may attend to key j: j <= i + (S - T). Cached and read-only."""
    keep = np.tri(t, s, k=s - t, dtype=bool)
    keep.setflags(write=False)
    return keep


class ScaledDotProductAttention(Function):
    """out = dropout(softmax(q k^T * scale + mask)) @ v.

    Shapes: q (..., T, E), k (..., S, E), v (..., S, Ev) -> out (..., T, Ev); the batch dims "..." broadcast.

    Forward (per batch element):
        S = q @ k^T * scale            (T, S)   scale defaults to 1 / sqrt(E)
        S = S masked (-inf where a boolean mask is False or the causal mask hides a key, or + an additive mask)
        P = softmax(S) along the keys   (autograd's softmax_array; rows with every key masked give 0)
        Pd = P * keep / (1 - dropout_p) (dropout on the attention weights, when dropout_p > 0)
        out = Pd @ v

    Backward, from dO = dL/d(out):
        dV = Pd^T @ dO
        dPd = dO @ v^T;  dP = dPd * keep / (1 - dropout_p)
        dS = P * (dP - sum(dP * P, keys))                 (softmax's backward; masked entries have P = 0)
        dq = dS @ k * scale,   dk = dS^T @ q * scale      (each summed back over broadcast batch dims)
    """

    differentiable_backward = False

    def __init__(
        self,
        scale: float,
        masks: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None],
        keep: np.ndarray | None,
        dropout_scale: float,
    ):
        self.scale, (self.hidden, self.additive, self.dead) = scale, masks
        self.keep, self.dropout_scale = keep, dropout_scale

    def forward(self, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
        xp = get_array_module(q)
        s = xp.matmul(q, xp.swapaxes(k, -1, -2))
        s *= self.scale
        if self.additive is not None:
            s += self.additive
        if self.hidden is not None:
            xp.copyto(s, -xp.inf, where=self.hidden)
        if self.dead is not None:  # rows with every key masked: softmax of 0s, zeroed below (they attend to nothing)
            xp.copyto(s, 0.0, where=self.dead)
        p = softmax_array(s, axis=-1)
        del s
        if self.dead is not None:
            xp.copyto(p, 0.0, where=self.dead)
        if self.keep is not None:
            pd = xp.multiply(p, self.keep)
            pd *= self.dropout_scale
        else:
            pd = p
        if True in self.needs_input_grad:
            self.p = p
        return xp.matmul(pd, v)

    def backward(self, gy: Tensor) -> tuple[np.ndarray | None, ...]:
        q, k, v = (t.data for t in self.inputs)
        xp = get_array_module(q)
        need_q, need_k, need_v = self.needs_input_grad
        do, p = gy.data, self.p
        gq = gk = gv = None
        if need_v:
            if self.keep is not None:
                pd = xp.multiply(p, self.keep)
                pd *= self.dropout_scale
            else:
                pd = p
            gv = sum_to_array(xp.matmul(xp.swapaxes(pd, -1, -2), do), v.shape)  # Pd^T @ dO
            del pd
        if need_q or need_k:
            ds = xp.matmul(do, xp.swapaxes(v, -1, -2))  # dPd = dO @ v^T
            if self.keep is not None:
                ds *= self.keep
                ds *= self.dropout_scale
            rowdot = xp.einsum("...ij,...ij->...i", ds, p)[..., None]  # sum(dP * P) over the keys
            ds -= rowdot
            ds *= p
            ds *= self.scale  # dS * scale, shared by dq and dk
            if need_q:
                gq = sum_to_array(xp.matmul(ds, k), q.shape)
            if need_k:
                gk = sum_to_array(xp.matmul(xp.swapaxes(ds, -1, -2), q), k.shape)
        return gq, gk, gv


# Queries per block in CausalAttention: a block of queries ending at row r1 needs only the first r1 + (S - T) keys.
_QUERY_BLOCK = 64


@functools.lru_cache(maxsize=32)
def _causal_bias(t: int, s: int, dtype: np.dtype, xp: Any = np) -> np.ndarray:
    """(T, S) additive mask: 0 where query i may attend to key j, -inf where the causal mask hides it. Read-only;
    on a GPU (``xp`` CuPy) a device copy, made once per shape."""
    bias = np.where(causal_mask(t, s), 0.0, -np.inf).astype(dtype)
    if xp is not np:
        return xp.asarray(bias)
    bias.setflags(write=False)
    return bias


def _query_blocks(t: int, s: int) -> list[tuple[int, int, int]]:
    """(r0, r1, keys) per block of queries r0..r1-1: the block sees keys 0..keys-1, keys = r1 + (S - T)."""
    return [(r0, min(t, r0 + _QUERY_BLOCK), min(t, r0 + _QUERY_BLOCK) + s - t) for r0 in range(0, t, _QUERY_BLOCK)]


class CausalAttention(Function):
    """Causal attention (T <= S) computed one block of queries at a time, skipping the keys the mask hides.

    The math is ScaledDotProductAttention's with the causal mask: for queries r0..r1-1 every key past
    r1 - 1 + (S - T) is masked for the whole block, so the block's scores are q[r0:r1] k[:keys]^T with
    keys = r1 + (S - T), and P, dP and dS are (..., r1 - r0, keys) blocks. With 64-query blocks a 256-token
    sequence computes 62.5% of the full T x S scores (and keeps 62.5% of P for backward); per block:

        forward:  S_b = q_b k_b^T * scale + bias_b;  P_b = softmax(S_b);  out_b = dropout(P_b) v_b
        backward: dv[:keys] += Pd_b^T dO_b;  dS_b = P_b * (dPd_b - rowsum(dPd_b * P_b)) * scale
                  dq_b = dS_b k_b;  dk[:keys] += dS_b^T q_b
    Composed twin: ``composed.scaled_dot_product_attention(..., is_causal=True)``.
    """

    differentiable_backward = False

    def __init__(self, scale: float, keep: np.ndarray | None, dropout_scale: float):
        self.scale, self.keep, self.dropout_scale = scale, keep, dropout_scale

    def _dropped(self, p: np.ndarray, r0: int, r1: int, keys: int) -> np.ndarray:
        if self.keep is None:
            return p
        xp = get_array_module(p)
        pd = xp.multiply(p, self.keep[..., r0:r1, :keys])
        pd *= self.dropout_scale
        return pd

    def forward(self, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
        xp = get_array_module(q)
        t, s = q.shape[-2], k.shape[-2]
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        bias = _causal_bias(t, s, q.dtype, xp)
        if len(batch) == 2:  # (B, H, T, hd) laid out as (B, T, H, hd): the usual y.transpose(1, 2).reshape(B, T, C)
            out = xp.empty((batch[0], t, batch[1], v.shape[-1]), dtype=q.dtype).transpose(0, 2, 1, 3)  # is free
        else:
            out = xp.empty((*batch, t, v.shape[-1]), dtype=q.dtype)
        ps = []
        for r0, r1, keys in _query_blocks(t, s):
            p = xp.matmul(q[..., r0:r1, :], xp.swapaxes(k[..., :keys, :], -1, -2))  # (..., r1 - r0, keys)
            p *= self.scale
            p += bias[r0:r1, :keys]
            p = softmax_array(p, axis=-1)  # every row sees key 0: no row is fully masked
            out[..., r0:r1, :] = xp.matmul(self._dropped(p, r0, r1, keys), v[..., :keys, :])
            ps.append(p)
        if True in self.needs_input_grad:
            self.ps = ps
        return out

    def backward(self, gy: Tensor) -> tuple[np.ndarray | None, ...]:
        q, k, v = (x.data for x in self.inputs)
        xp = get_array_module(q)
        need_q, need_k, need_v = self.needs_input_grad
        do, ps = gy.data, self.ps
        t, s = q.shape[-2], k.shape[-2]
        batch = do.shape[:-2]
        gq = xp.empty((*batch, *q.shape[-2:]), dtype=q.dtype) if need_q else None
        gk = xp.empty((*batch, *k.shape[-2:]), dtype=k.dtype) if need_k else None
        gv = xp.empty((*batch, *v.shape[-2:]), dtype=v.dtype) if need_v else None
        # Last block first: it sees every key, so it writes dk and dv whole and the others add into a prefix.
        first = True
        for (r0, r1, keys), p in reversed(list(zip(_query_blocks(t, s), ps, strict=True))):
            do_b = do[..., r0:r1, :]
            if need_v:
                pd_t = xp.swapaxes(self._dropped(p, r0, r1, keys), -1, -2)
                if first:
                    xp.matmul(pd_t, do_b, out=gv)
                else:
                    gv[..., :keys, :] += xp.matmul(pd_t, do_b)
            if need_q or need_k:
                ds = xp.matmul(do_b, xp.swapaxes(v[..., :keys, :], -1, -2))  # dPd
                if self.keep is not None:
                    ds *= self.keep[..., r0:r1, :keys]
                    ds *= self.dropout_scale
                ds -= xp.einsum("...ij,...ij->...i", ds, p)[..., None]
                ds *= p
                ds *= self.scale
                if need_q:
                    xp.matmul(ds, k[..., :keys, :], out=gq[..., r0:r1, :])
                if need_k:
                    if first:
                        xp.matmul(xp.swapaxes(ds, -1, -2), q[..., r0:r1, :], out=gk)
                    else:
                        gk[..., :keys, :] += xp.matmul(xp.swapaxes(ds, -1, -2), q[..., r0:r1, :])
            first = False
        return tuple(
            None if g is None else sum_to_array(g, x.shape) for g, x in zip((gq, gk, gv), (q, k, v), strict=True)
        )


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
    """Attention as ``torch.nn.functional.scaled_dot_product_attention``.

    Args:
        q: (..., T, E) queries;  k: (..., S, E) keys;  v: (..., S, Ev) values (batch dims broadcast).
        attn_mask: boolean, True where a query may attend to a key (as PyTorch), or a float mask added to the
            scores; broadcastable to (..., T, S). Not with ``is_causal``.
        dropout_p: dropout on the attention weights (pass 0.0 when evaluating), drawn from ``generator`` or
            ``default_generator()``.
        is_causal: hide key j from query i when j > i + (S - T) (aligned bottom-right, see the module docs;
            PyTorch aligns top-left, which differs only when T != S).
        scale: multiplies q k^T; defaults to 1 / sqrt(E).
    Returns:
        (..., T, Ev). Rows whose keys are all masked give 0 (as PyTorch 2.5+). Composed twin:
        ``composed.scaled_dot_product_attention``.
    """
    q, k, v = as_tensor(q), as_tensor(k), as_tensor(v)
    dtype = check_floating("scaled_dot_product_attention", q=q, k=k, v=v)
    scores_shape = _check_shapes(q, k, v)
    t, s = scores_shape[-2:]
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1], got {dropout_p}")
    if scale is None:  # (with E = 0 every score is an empty dot product, 0, whatever the scale: as PyTorch)
        scale = 1.0 / math.sqrt(q.shape[-1]) if q.shape[-1] else 1.0
    scale = float(scale)

    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass either attn_mask or is_causal=True, not both")

    keep, dropout_scale = None, 1.0
    if dropout_p > 0.0:
        if dropout_p == 1.0:
            keep, dropout_scale = get_array_module(q.data).zeros(scores_shape, dtype=bool), 0.0
        else:
            keep = keep_mask(scores_shape, dropout_p, dtype, generator or default_generator_like(q.data))
            dropout_scale = 1.0 / (1.0 - dropout_p)
    if is_causal and 0 < t <= s:  # every query sees at least one key: the blocked path, which skips hidden keys
        return CausalAttention(scale, keep, dropout_scale)(q, k, v)
    masks = _masks(causal_mask(t, s) if is_causal else attn_mask, scores_shape, dtype)  # (T > S: some rows see nothing)
    masks = tuple(None if m is None else to_device(m, device_of(q.data)) for m in masks)  # (to a GPU's queries)
    return ScaledDotProductAttention(scale, masks, keep, dropout_scale)(q, k, v)


def _masks(attn_mask: Any, scores_shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray | None, ...]:
    """(hidden, additive, dead) from a boolean mask (True = attend) or a float mask (added to the scores), each
    None when absent: hidden is True where a key is masked, dead True for a query row that sees no key at all
    (found on the mask, which is small; such a row outputs 0)."""
    if attn_mask is None:
        return None, None, None
    mask = to_host(attn_mask.data if isinstance(attn_mask, Tensor) else attn_mask)  # (small: checked on the host)
    mask = np.asarray(mask)
    try:
        ok = np.broadcast_shapes(mask.shape, scores_shape) == scores_shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"scaled_dot_product_attention: attn_mask of shape {mask.shape} cannot be broadcast to the "
            f"attention scores' shape {scores_shape} (..., T, S)"
        )
    if mask.dtype == bool:
        hidden, additive = np.logical_not(mask), None
        dead = hidden.all(axis=-1, keepdims=True)
    elif mask.dtype.kind == "f":
        hidden, additive = None, mask.astype(dtype, copy=False)
        dead = np.isneginf(additive).all(axis=-1, keepdims=True)
    else:
        raise TypeError(
            f"scaled_dot_product_attention: attn_mask must be boolean (True = attend) or floating point "
            f"(added to the scores), got dtype {mask.dtype}"
        )
    return hidden, additive, (dead if dead.any() else None)


def _check_shapes(q: Tensor, k: Tensor, v: Tensor) -> tuple[int, ...]:
    """Validate q, k, v and return the scores' shape (..., T, S)."""
    name = "scaled_dot_product_attention"
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError(f"{name}: q, k, v need at least 2 dims (..., L, E), got {q.shape}, {k.shape}, {v.shape}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"{name}: q's last dim {q.shape[-1]} must equal k's last dim {k.shape[-1]} (q {q.shape}, k {k.shape})"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"{name}: k and v must have the same number of keys (dim -2), got k {k.shape} and v {v.shape}")
    try:
        np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])
    except ValueError:
        raise ValueError(
            f"{name}: the batch dims of q {q.shape}, k {k.shape} and v {v.shape} cannot be broadcast together"
        ) from None
    return (*batch, q.shape[-2], k.shape[-2])
