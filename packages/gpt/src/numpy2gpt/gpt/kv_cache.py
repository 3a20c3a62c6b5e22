"""The KV cache: keys and values of the tokens already seen, so that sampling a token costs one position.

Without a cache, sampling token t+1 runs the whole model over all t tokens again, although the keys and values
of tokens 1..t did not change (a token only attends to the past, so appending a token changes nothing before it).
With a cache, each attention layer keeps its keys and values, and a step only computes the newest token's q, k, v
and attends with that one query over the cached keys:

    step cost without a cache:  the full forward over T tokens   ~ L * (24 T C^2 + 4 T^2 C)   FLOPs
    step cost with a cache:     one token                        ~ L * (24 C^2 + 4 T C)       FLOPs

Each layer's buffers are preallocated to the model's ``block_size`` and filled in place, so a step allocates
nothing for the cache and never copies what it already holds.

With learned absolute position embeddings the cache holds only while the context fits in ``block_size``: once
the window slides, every token moves to a new position and every cached key and value is stale. ``GPT.generate``
then refills the cache from the cropped context (see its docstring).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class LayerKVCache:
    """One attention layer's keys and values: ``k``, ``v`` of shape (B, H, max_len, head_dim), of which the first
    ``length`` positions are filled."""

    def __init__(self, batch_size: int, n_head: int, max_len: int, head_dim: int, dtype: np.dtype, xp: Any = np):
        self.k = xp.empty((batch_size, n_head, max_len, head_dim), dtype=dtype)  # xp: CuPy for a model on a GPU
        self.v = xp.empty((batch_size, n_head, max_len, head_dim), dtype=dtype)
        self.length = 0

    def append(self, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Write the new keys and values k, v (B, H, T_new, hd) after the cached ones and return the views of
        all of them, (B, H, length + T_new, hd) each."""
        start, end = self.length, self.length + k.shape[2]
        if k.shape[:2] != self.k.shape[:2] or k.shape[3] != self.k.shape[3]:
            raise ValueError(f"KV cache holds keys of shape {self.k.shape}, cannot append keys of shape {k.shape}")
        if end > self.k.shape[2]:
            raise ValueError(
                f"KV cache is full: it holds {start} of {self.k.shape[2]} positions and cannot take {k.shape[2]} more"
            )
        self.k[:, :, start:end] = k
        self.v[:, :, start:end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class KVCache:
    """The keys and values of every layer of a GPT, for a batch of ``batch_size`` sequences of up to
    ``max_len`` tokens. ``layers[i]`` belongs to block i; ``length`` is the number of tokens cached."""

    def __init__(
        self, n_layer: int, batch_size: int, n_head: int, max_len: int, head_dim: int, dtype: np.dtype, xp: Any = np
    ):
        self.max_len = max_len
        self.layers = [LayerKVCache(batch_size, n_head, max_len, head_dim, dtype, xp) for _ in range(n_layer)]

    @property
    def length(self) -> int:
        return self.layers[0].length

    def reset(self) -> None:
        """Forget every cached token (the buffers are kept and overwritten by the next tokens)."""
        for layer in self.layers:
            layer.length = 0
