"""split_heads: cut the fused q, k, v projection into attention heads, with a backward that copies once.

    qkv (B, T, 3C)  ->  q, k, v, each (B, H, T, hd),  hd = C / H
    q[b, h, t, :] = qkv[b, t, 0 * C + h * hd : 0 * C + (h + 1) * hd]   (k at offset C, v at offset 2C)

Forward returns views into ``qkv``: no copy. Backward is the inverse permutation: dq, dk and dv are written
straight into one (B, T, 3C) gradient, one strided copy each. The same thing composed from autograd's ops
(``qkv.reshape(B, T, 3, H, hd).permute(2, 0, 3, 1, 4)`` then ``unbind``) gets the same gradient through a
stack of the three pieces and a reshape of the permuted result: two full copies of a (B, T, 3C) array per layer
per step, and five graph nodes instead of one. Composed twin: ``split_heads_composed``.
"""

from __future__ import annotations

import numpy as np

from numpy2gpt.autograd import Function, Tensor, get_array_module, unbind


class SplitHeads(Function):
    """qkv (B, T, 3C) -> (q, k, v), each a (B, H, T, hd) view; see the module docstring."""

    differentiable_backward = False

    def __init__(self, n_head: int):
        self.n_head = n_head

    def forward(self, qkv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        b, t, c3 = qkv.shape
        heads = qkv.reshape(b, t, 3, self.n_head, c3 // (3 * self.n_head)).transpose(2, 0, 3, 1, 4)
        return heads[0], heads[1], heads[2]

    def backward(self, *gys: Tensor | None) -> np.ndarray:
        qkv = self.inputs[0]
        b, t, c3 = qkv.shape
        g = get_array_module(qkv.data).empty((b, t, 3, self.n_head, c3 // (3 * self.n_head)), dtype=qkv.dtype)
        for i, gy in enumerate(gys):
            if gy is None:  # that piece was not used: no gradient flows back through it
                g[:, :, i] = 0.0
            else:
                g[:, :, i] = gy.data.transpose(0, 2, 1, 3)  # (B, H, T, hd) -> (B, T, H, hd)
        return g.reshape(b, t, c3)  # an array: the engine wraps it (autograd's Function contract)


def split_heads(qkv: Tensor, n_head: int) -> tuple[Tensor, Tensor, Tensor]:
    """q, k, v (each (B, H, T, C / H)) from the fused projection ``qkv`` (B, T, 3C)."""
    if qkv.ndim != 3 or qkv.shape[-1] % (3 * n_head) != 0:
        raise ValueError(f"split_heads: qkv must be (B, T, 3C) with C divisible by n_head={n_head}, got {qkv.shape}")
    return SplitHeads(n_head)(qkv)


def split_heads_composed(qkv: Tensor, n_head: int) -> tuple[Tensor, Tensor, Tensor]:
    """The same as ``split_heads`` with autograd's reshape, permute and unbind (the reference in the tests)."""
    b, t, c3 = qkv.shape
    return unbind(qkv.reshape(b, t, 3, n_head, c3 // (3 * n_head)).permute(2, 0, 3, 1, 4), 0)
