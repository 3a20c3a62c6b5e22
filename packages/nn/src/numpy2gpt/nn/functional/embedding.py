"""embedding: look up rows of a table, y[..., :] = W[idx[...], :]; backward adds each row's gradients.

The backward's scatter-add is a segment sum (sort the ids, ``np.add.reduceat`` each run of equal ids), faster
than ``np.add.at`` (measurements: the nn README). Composed twin: ``composed.embedding`` (``weight[idx]``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numpy2gpt.autograd import Function, Tensor, as_tensor, get_array_module
from numpy2gpt.autograd.backend import scatter_add
from numpy2gpt.autograd.device import device_of, to_device, to_host
from numpy2gpt.nn.functional._util import check_floating, index_array


def segment_sum_rows(ids: np.ndarray, rows: np.ndarray, num: int) -> np.ndarray:
    """out (num, D) with out[v] = sum of rows[p] over p where ids[p] == v (ids 1-D, rows (len(ids), D)).
    On a GPU: one scatter-add kernel (atomic adds) instead of the sort."""
    xp = get_array_module(rows)
    out = xp.zeros((num, rows.shape[1]), dtype=rows.dtype)
    if len(ids) == 0:
        return out
    if xp is not np:
        scatter_add(out, ids, rows)
        return out
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
    out[sorted_ids[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return out


class Embedding(Function):
    """y = weight[idx] for integer idx (...) and weight (V, D) -> (..., D).

    dW[v] = sum over positions p with idx[p] == v of dy[p]   (a segment sum; no gradient for idx)
    """

    differentiable_backward = False

    def __init__(self, idx: np.ndarray):
        self.idx = idx

    def forward(self, weight: np.ndarray) -> np.ndarray:
        return get_array_module(weight).take(weight, self.idx, axis=0)

    def backward(self, gy: Tensor) -> np.ndarray:
        weight = self.inputs[0].data
        rows = gy.data.reshape(self.idx.size, weight.shape[1])  # (not -1: any size may be 0)
        return segment_sum_rows(self.idx.reshape(-1), rows, weight.shape[0])


def embedding(idx: Any, weight: Any) -> Tensor:
    """Rows of ``weight`` (V, D) at the integer ids ``idx`` (any shape) -> (*idx.shape, D).

    Ids outside [0, V) raise an IndexError naming them. Composed twin: ``composed.embedding``.
    """
    weight = as_tensor(weight)
    check_floating("embedding", weight=weight)
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape {weight.shape}")
    ids = index_array(idx, "embedding", "ids")
    num = weight.shape[0]
    bad = (ids < 0) | (ids >= num)
    if bad.any():
        found = np.unique(to_host(ids[bad]))
        shown = ", ".join(str(int(i)) for i in found[:10]) + (", ..." if len(found) > 10 else "")
        raise IndexError(f"embedding: ids out of range [0, {num}) for a table of {num} rows: {shown}")
    if type(weight.data) is not np.ndarray:  # a table on a GPU: the ids go there too
        ids = to_device(ids, device_of(weight.data))
    return Embedding(ids)(weight)
