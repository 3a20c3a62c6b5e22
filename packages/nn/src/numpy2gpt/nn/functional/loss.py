"""The losses: cross_entropy (the language-model loss, fused with its softmax) and mse_loss.

Each is one Function with a hand-written backward (the math in its docstring). cross_entropy keeps exp(z - max)
from forward and turns that same buffer into the gradient in place: one (N, V) buffer beyond the logits and
the fewest passes over it (why it does not call autograd's softmax kernel: the nn README). Composed twins:
``composed.cross_entropy``, ``composed.mse_loss``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from numpy2gpt.autograd import Function, Tensor, as_tensor, get_array_module, softmax_array, sum_to_array
from numpy2gpt.autograd.device import device_of, to_device, to_host
from numpy2gpt.nn.functional._util import as_operand, check_floating, index_array

_REDUCTIONS = ("mean", "sum", "none")


class CrossEntropy(Function):
    """Softmax cross-entropy of logits z (..., V), flattened to rows z_i (N, V), against integer targets t_i.

        loss_i = logsumexp(z_i) - z_i[t_i]          (0 where t_i == ignore_index)
        "mean": sum_i loss_i / (number of non-ignored rows)   (nan if every row is ignored, as PyTorch)
        "sum":  sum_i loss_i;   "none": loss_i with the targets' shape

    Backward: dz_i = w_i * (softmax(z_i) - onehot(t_i)), w_i = dy / count ("mean"), dy ("sum") or dy_i ("none"),
    and w_i = 0 for ignored rows. Forward keeps e = exp(z - max) and its row sums; backward scales e in place.
    """

    differentiable_backward = False

    def __init__(self, targets: np.ndarray, ignore_index: int, reduction: str):
        self.targets = targets.reshape(-1)
        self.reduction, self.ignore_index = reduction, ignore_index
        self.valid = None if ignore_index is None else self.targets != ignore_index
        if self.valid is not None and self.valid.all():
            self.valid = None  # the common case: nothing ignored, no masking needed
        self.count = len(self.targets) if self.valid is None else int(self.valid.sum())
        self.e: np.ndarray | None = None

    def _rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Row indices and targets to read z_i[t_i] at (ignored rows read column 0, masked out later)."""
        xp = get_array_module(self.targets)
        t = self.targets if self.valid is None else xp.where(self.valid, self.targets, 0)
        return xp.arange(len(t)), t

    def forward(self, logits: np.ndarray) -> np.ndarray:
        z = logits.reshape(len(self.targets), logits.shape[-1])  # (not -1: any size may be 0)
        xp = get_array_module(z)
        self.lse = None
        if xp.__name__ == "cupy" and z.shape[1]:  # one kernel; backward recomputes softmax from logsumexp
            from numpy2gpt.nn.functional import cupy_kernels

            loss, self.lse = cupy_kernels.cross_entropy_forward(z, self.targets, self.ignore_index)
            e = total = None
        elif z.shape[1] == 0:  # no classes: the caller checked that every row is ignored, so every loss is 0
            e, total, loss = z.copy(), xp.ones((len(z), 1), z.dtype), xp.zeros(len(z), z.dtype)
        else:
            rows, t = self._rows()
            e = xp.subtract(z, z.max(axis=1, keepdims=True))  # the buffer that becomes the gradient
            target_logit = e[rows, t]  # z_i[t_i] - m_i
            xp.exp(e, out=e)
            total = xp.einsum("ij->i", e)[:, None]  # row sums: 2.5x faster than e.sum(axis=1) for short rows
            loss = xp.log(total).reshape(-1)
            loss -= target_logit  # logsumexp(z_i) - z_i[t_i]; the max m_i cancels
        if self.valid is not None:
            loss[~self.valid] = 0.0  # (assigned, not multiplied: an ignored row may hold -inf logits)
        if self.needs_input_grad[0]:  # softmax = e / total; the division is folded into backward's scaling
            self.e, self.total = e, total
        if self.reduction == "none":
            return loss.reshape(logits.shape[:-1])
        loss_sum = loss.sum()
        if self.reduction == "sum":
            return loss_sum
        if self.count == 0:
            return xp.array(np.nan, dtype=logits.dtype)
        return loss_sum / xp.array(self.count, dtype=logits.dtype)

    def backward(self, gy: Tensor) -> np.ndarray:
        logits = self.inputs[0].data
        e, self.e = self.e, None  # backward owns exp(z - m) and turns it into the gradient in place
        total = self.total
        if self.lse is not None:  # the GPU's kernels: dz = w * (exp(z - lse) - onehot) in one pass
            return self._backward_gpu(logits, gy.data)
        if e is None:  # a second backward (retain_graph=True): recompute the softmax
            e, total = softmax_array(logits.reshape(len(self.targets), logits.shape[-1]), axis=1), 1.0
        # w_i: dL/dloss_i (dy / count, dy, or dy_i), 0 for ignored rows
        g = gy.data
        if self.reduction == "none":
            w = g.reshape(-1, 1).astype(e.dtype)
        else:
            # (with every row ignored, count is 0 and valid zeroes w below: the logits get no gradient)
            xp = get_array_module(e)
            if xp is np:
                scale = float(g) / max(self.count, 1) if self.reduction == "mean" else float(g)
                w = np.full((len(e), 1), scale, dtype=e.dtype)
            else:  # on a GPU dy stays there (float(g) would wait for the device)
                w = xp.empty((len(e), 1), dtype=e.dtype)
                w[...] = g / max(self.count, 1) if self.reduction == "mean" else g
        if self.valid is not None:
            w *= self.valid[:, None]
        e *= w / total  # w_i * softmax(z_i)
        if e.size:
            rows, t = self._rows()
            e[rows, t] -= w[:, 0]  # ... - w_i * onehot(t_i)
        return e.reshape(logits.shape)

    def _backward_gpu(self, logits: Any, g: Any) -> Any:
        from numpy2gpt.nn.functional import cupy_kernels

        xp = get_array_module(logits)
        z = logits.reshape(len(self.targets), logits.shape[-1])
        if self.reduction == "none":
            w = g.reshape(-1).astype(z.dtype)
        else:
            w = xp.empty(len(z), dtype=z.dtype)
            w[...] = g / max(self.count, 1) if self.reduction == "mean" else g
        if self.valid is not None:
            w *= self.valid
        t = self.targets if self.valid is None else xp.where(self.valid, self.targets, 0)
        return cupy_kernels.cross_entropy_backward(z, t, self.lse, w).reshape(logits.shape)


def cross_entropy(logits: Any, targets: Any, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy between ``logits`` (..., V) and integer class ids ``targets`` (...).

    Unlike ``torch.nn.functional.cross_entropy`` (which wants the classes on axis 1), the classes are on the
    LAST axis, which is how a language model produces them: logits (B, T, V) with targets (B, T) work as
    they are, as do (N, V) with (N,). Rows whose target equals ``ignore_index`` contribute nothing.
    ``reduction``: "mean" over the non-ignored rows (nan if none), "sum", or "none" (shape of targets).
    Composed twin: ``composed.cross_entropy``.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    logits = as_tensor(logits)
    check_floating("cross_entropy", logits=logits)
    t = index_array(targets, "cross_entropy", "targets (class ids)")
    if logits.ndim == 0:
        raise ValueError("cross_entropy: logits must have at least one dimension (the classes)")
    if t.shape != logits.shape[:-1]:
        raise ValueError(
            f"cross_entropy: targets of shape {t.shape} do not match logits of shape {logits.shape}: targets "
            f"must have the logits' leading shape {logits.shape[:-1]} (classes are on the last axis)"
        )
    vocab = logits.shape[-1]
    bad = (t < 0) | (t >= vocab)
    if ignore_index is not None:
        bad &= t != ignore_index
    if bad.any():
        ids = np.unique(to_host(t[bad]))
        shown = ", ".join(str(int(i)) for i in ids[:10]) + (", ..." if len(ids) > 10 else "")
        raise IndexError(
            f"cross_entropy: target ids out of range [0, {vocab}) for {vocab} classes: {shown} "
            f"(ignore_index is {ignore_index})"
        )
    if type(logits.data) is not np.ndarray:  # logits on a GPU: the targets go there too
        t = to_device(t, device_of(logits.data))
    return CrossEntropy(t, ignore_index, reduction)(logits)


class MSELoss(Function):
    """Mean squared error of input and target (same shape, or broadcast together as PyTorch does).

    d = input - target;   "none": d^2;   "sum": sum d^2;   "mean": sum d^2 / d.size  (nan for no elements)
    d input = 2 d w,  d target = -2 d w   (each summed back to its shape), w = dy, dy / d.size, or dy_i
    """

    differentiable_backward = False

    def __init__(self, reduction: str):
        self.reduction = reduction

    def forward(self, x: np.ndarray, target: np.ndarray) -> np.ndarray:
        d = np.subtract(x, target)
        if True in self.needs_input_grad:
            self.d = d
        sq = np.square(d)
        if self.reduction == "none":
            return sq
        if self.reduction == "sum":
            return sq.sum()
        return sq.sum() / np.array(d.size, dtype=d.dtype) if d.size else np.array(np.nan, dtype=d.dtype)

    def backward(self, gy: Tensor) -> tuple[np.ndarray | None, np.ndarray | None]:
        x, target = self.inputs
        scale = 2.0 / max(self.d.size, 1) if self.reduction == "mean" else 2.0
        g = self.d * (gy.data * scale).astype(self.d.dtype)  # 2 d w
        need_x, need_target = self.needs_input_grad
        gx = sum_to_array(g, x.shape) if need_x else None
        gt = -sum_to_array(g, target.shape) if need_target else None
        return gx, gt


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002 - torch's name
    """Mean squared error (``torch.nn.functional.mse_loss``): the mean (or sum, or each) of (input - target)^2.

    Different shapes broadcast together, with PyTorch's warning (usually a mistake, e.g. (N, 1) against (N,)).
    Composed twin: ``composed.mse_loss``.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"mse_loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    x = as_tensor(input)
    target = as_operand(target, x)
    check_floating("mse_loss", input=x)
    check_floating("mse_loss", target=target)
    if x.dtype != target.dtype:  # two floating tensors promote, as in PyTorch (a float64 array target: float64)
        dtype = np.result_type(x.dtype, target.dtype)
        x, target = x.astype(dtype), target.astype(dtype)
    if x.shape != target.shape:
        try:
            np.broadcast_shapes(x.shape, target.shape)
        except ValueError:
            raise ValueError(
                f"mse_loss: input of shape {x.shape} and target of shape {target.shape} cannot be broadcast together"
            ) from None
        warnings.warn(
            f"mse_loss: target shape {target.shape} differs from input shape {x.shape}; they are broadcast "
            "together, which is likely not what you want (as PyTorch warns)",
            UserWarning,
            stacklevel=2,
        )
    return MSELoss(reduction)(x, target)
