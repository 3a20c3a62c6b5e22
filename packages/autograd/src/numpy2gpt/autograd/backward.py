"""The backward engine: visit recorded Functions in generation order and apply the chain rule.

Algorithm (the seed's):

1. Put the root's creator in a priority queue keyed by generation, highest first.
2. Pop a Function. Every Function that consumes one of its outputs has a higher generation and so ran
   already: each output's gradient is complete. Call ``backward`` with those gradients.
3. Add each returned gradient into its input's pending gradient, and queue the input's creator (once).
4. When the queue is empty, the pending gradients left over belong to leaves: add them to ``leaf.grad``.

Why generations rather than a plain depth-first walk: in the "diamond" ``y = f(b(a), c(a))``, ``a`` gets one
contribution through ``b`` and one through ``c``. If ``a``'s creator ran after only the first arrived, the
gradient flowing further back would be missing the second. Generation order makes that impossible, however
long each path is. The walk is a loop over a heap, not recursion, so a 10,000-op chain is fine.

Memory: pending gradients live in a dict only until their tensor's creator has run, and unless
``retain_graph=True`` each Function drops its ``inputs`` as soon as its backward has run, so activations
are freed during the backward pass, not after it. A second ``backward`` through the same graph then raises,
as in PyTorch; pass ``retain_graph=True`` to the first call to backward twice (gradients then add up).

Leaves own their gradients: the first gradient a leaf receives is stored in ``.grad`` as is when it is a
fresh array, and copied when it is a read-only broadcast view, a view of another array, or an array another
leaf (or the caller) already holds, because optimizers and clipping modify ``.grad`` in place. Later
gradients are added into a new array (``grad = grad + g``), never written into the old one.

A backward may return ndarrays instead of Tensors (fused ops do); the engine wraps them as Tensors.

Higher order: with ``create_graph=True`` the backward pass runs with grad mode on, so the gradients are
Tensors with creators of their own and can be differentiated again. Storing such a gradient in a leaf's
``.grad`` creates a reference cycle (leaf -> grad -> grad's creator -> ... -> leaf) that only the cyclic
garbage collector can free; use ``grad()``, which returns the gradients without storing them, or set
``x.grad = None`` when done (Newton's method in the README does the first).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from numpy2gpt.autograd.backend import get_array_module
from numpy2gpt.autograd.function import Function
from numpy2gpt.autograd.grad_mode import grad_mode
from numpy2gpt.autograd.tensor import Tensor


def backward(
    tensors: Tensor | Sequence[Tensor],
    grad_tensors: Any = None,
    retain_grad: bool = False,
    create_graph: bool = False,
    retain_graph: bool | None = None,
) -> None:
    """Accumulate d(tensors)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

    Args:
        tensors: the root(s), usually a scalar loss.
        grad_tensors: dL/d(root) for each root; may be omitted for one-element roots (taken as 1).
        retain_grad: also keep ``.grad`` on the intermediate (non-leaf) tensors, for inspection.
        create_graph: record the backward pass so the gradients can be differentiated again.
        retain_graph: keep the graph for another backward (defaults to ``create_graph``).
    """
    roots, grads = _roots_and_grads(tensors, grad_tensors)
    _run(roots, grads, retain_grad=retain_grad, create_graph=create_graph, retain_graph=retain_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Return d(outputs)/d(inputs) without touching any ``.grad`` (``torch.autograd.grad``).

    With ``create_graph=True`` the results are themselves differentiable and, since nothing is stored on
    the inputs, no reference cycle is made.
    """
    single = isinstance(inputs, Tensor)
    wanted = [inputs] if single else list(inputs)
    roots, grads = _roots_and_grads(outputs, grad_outputs)
    found = _run(roots, grads, create_graph=create_graph, retain_graph=retain_graph, capture={id(t) for t in wanted})
    result = tuple(found.get(id(t)) for t in wanted)
    if not allow_unused:
        for t, g in zip(wanted, result, strict=True):
            if g is None:
                label = f" {t.name!r}" if t.name else ""
                raise RuntimeError(
                    f"input{label} of shape {t.shape} was not used to compute the outputs; "
                    "pass allow_unused=True to get None for it"
                )
    return result


def _roots_and_grads(tensors: Tensor | Sequence[Tensor], grad_tensors: Any) -> tuple[list[Tensor], list[Tensor]]:
    roots = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is None or isinstance(grad_tensors, (Tensor, np.ndarray)):
        grad_tensors = [grad_tensors] * len(roots) if len(roots) == 1 else grad_tensors
    if grad_tensors is None:
        grad_tensors = [None] * len(roots)
    grads = []
    for root, g in zip(roots, grad_tensors, strict=True):
        if not root.requires_grad:
            raise RuntimeError(
                f"backward() on a tensor of shape {root.shape} that does not require grad: no recorded op "
                "made it (was it computed under no_grad(), or only from tensors with requires_grad=False?)"
            )
        if g is None:
            if root.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient argument needs a one-element output, but this one has "
                    f"shape {root.shape}; pass grad=dL/d(output) of that shape, or reduce it first (e.g. .sum())"
                )
            g = Tensor._wrap(get_array_module(root.data).ones_like(root.data))
        else:
            g = g if isinstance(g, Tensor) else Tensor(np.asarray(g, dtype=root.dtype))
            if g.shape != root.shape:
                raise RuntimeError(f"gradient of shape {g.shape} given for an output of shape {root.shape}")
            if g.dtype != root.dtype:
                g = g.astype(root.dtype)
        grads.append(g)
    return roots, grads


def _run(
    roots: list[Tensor],
    root_grads: list[Tensor],
    *,
    create_graph: bool,
    retain_graph: bool | None,
    retain_grad: bool = False,
    capture: set[int] | None = None,
) -> dict[int, Tensor]:
    """The engine. Returns the captured gradients (for ``grad()``); fills leaf ``.grad`` otherwise."""
    if retain_graph is None:
        retain_graph = create_graph
    sink = _Sink(capture, user_grads={id(g.data) for g in root_grads})

    # id(tensor) -> [tensor, gradient so far]. Holding the tensor keeps its id valid and keeps the output
    # alive until its creator has used its gradient.
    pending: dict[int, list[Any]] = {}
    queue: list[tuple[int, int, Function]] = []
    queued: set[int] = set()
    tiebreak = itertools.count()  # equal generations pop in the order they were queued

    def add_grad(t: Tensor, g: Tensor) -> None:
        entry = pending.get(id(t))
        if entry is None:
            pending[id(t)] = [t, g]
        else:
            entry[1] = entry[1] + g
        f = t.creator
        if f is not None and id(f) not in queued:
            queued.add(id(f))
            heapq.heappush(queue, (-f.generation, next(tiebreak), f))

    with grad_mode(create_graph):
        for root, g in zip(roots, root_grads, strict=True):
            add_grad(root, g)

        while queue:
            f = heapq.heappop(queue)[2]
            _check_runnable(f, create_graph)
            ys = [ref() for ref in f.outputs]  # held until backward has run: it may read them
            gys = []
            for y in ys:
                entry = pending.pop(id(y), None) if y is not None else None
                gy = None if entry is None else entry[1]
                if gy is not None and (capture is not None or retain_grad):
                    sink.store(y, gy)
                gys.append(gy)

            for x, gx in _input_grads(f, f.backward(*gys), create_graph):
                add_grad(x, gx)
            if not retain_graph:
                f.inputs = None  # free the activations this Function kept alive
            del ys, gys

        # What is still pending belongs to leaves (tensors with no creator).
        for t, g in pending.values():
            sink.store(t, g)
    return sink.captured


def _check_runnable(f: Function, create_graph: bool) -> None:
    """Refuse a second pass through freed inputs, and a recorded pass through a backward written on arrays."""
    if f.inputs is None:
        raise RuntimeError(
            f"trying to backward through {f.name} a second time: its saved inputs were freed by the "
            "first backward; pass retain_graph=True to the first backward() to keep them"
        )
    if create_graph and not f.differentiable_backward:
        raise RuntimeError(
            f"{f.name}'s backward is written on raw arrays (a fused op) and cannot be recorded; "
            "create_graph=True needs the composed version of this op"
        )


def _input_grads(f: Function, gxs: Any, create_graph: bool) -> list[tuple[Tensor, Tensor]]:
    """(input, gradient) for each input of ``f`` that requires grad and got one: checked against the input's
    shape, ndarrays wrapped, and converted to the input's own dtype (mixed-dtype ops)."""
    gxs = gxs if isinstance(gxs, tuple) else (gxs,)
    if len(gxs) != len(f.inputs):
        raise RuntimeError(f"{f.name}.backward returned {len(gxs)} gradients for {len(f.inputs)} inputs")
    out = []
    for x, gx in zip(f.inputs, gxs, strict=True):
        if gx is None or not x.requires_grad:
            continue
        if not isinstance(gx, Tensor):
            gx = _wrap_array_grad(f, gx, create_graph)
        if gx.data.shape != x.data.shape:
            raise RuntimeError(
                f"{f.name}.backward returned a gradient of shape {gx.shape} for an input of shape {x.shape}"
            )
        out.append((x, gx if gx.dtype == x.dtype else gx.astype(x.dtype)))
    return out


@dataclass
class _Sink:
    """Where finished gradients go: ``grad()`` captures those of the tensors it was asked about (by id);
    ``backward()`` adds them to ``.grad``."""

    capture: set[int] | None
    user_grads: set[int]  # the caller's arrays: never store them as a .grad
    captured: dict[int, Tensor] = field(default_factory=dict)
    handed_out: set[int] = field(default_factory=set)  # ids of arrays already stored in some .grad

    def store(self, t: Tensor, g: Tensor) -> None:
        if self.capture is not None:
            if id(t) in self.capture:
                self.captured[id(t)] = g
        elif t.grad is None:
            t.grad = _own(g, self.handed_out, self.user_grads)
        else:
            t.grad = t.grad + g  # a new array: never modify a .grad someone may hold


def _wrap_array_grad(f: Function, gx: Any, create_graph: bool) -> Tensor:
    """A gradient that ``f.backward`` returned as an ndarray, as a Tensor. An array has no graph, so under
    ``create_graph=True`` it would be a wrong (constant) higher derivative: that raises instead."""
    if create_graph:
        raise RuntimeError(
            f"{f.name}.backward returned an ndarray, which cannot be differentiated again; with "
            "create_graph=True it must return Tensors (compute with Tensor ops when grad mode is on)"
        )
    return Tensor._wrap(gx if type(gx) is np.ndarray or get_array_module(gx) is not np else np.asarray(gx))


def _own(g: Tensor, handed_out: set[int], user_grads: set[int]) -> Tensor:
    """``g`` as a gradient a leaf may own: optimizers and gradient clipping modify ``.grad`` in place, so it
    must be writeable and share memory with no other leaf's gradient.

    A gradient array can fail that in three ways: it is a read-only broadcast view (the gradient of
    ``x.sum()`` is ``ones(())`` broadcast to x's shape), a view of another array (``reshape`` passes views
    back), or the very object another leaf already got (``(w1 + w2).sum()`` hands the same dy to both) or
    the caller passed in. Those are copied; the usual fresh array is kept as is. A gradient with a graph of
    its own (``create_graph=True``) is copied by a recorded op, ``g * 1``, so that its graph stays intact."""
    a = g.data
    if not a.flags.writeable or a.base is not None or id(a) in handed_out or id(a) in user_grads:
        g = Tensor._wrap(a.copy()) if g.creator is None else g * 1.0
    handed_out.add(id(g.data))
    return g
