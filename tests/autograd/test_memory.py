"""Memory: the graph is freed by reference counting alone (weak outputs, inputs dropped by backward), deep
graphs free without recursion, and a training-like loop does not grow."""

from __future__ import annotations

import gc
import sys
import tracemalloc
import weakref

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.autograd import Tensor


@pytest.fixture
def no_gc():
    gc.collect()
    gc.disable()
    yield
    gc.enable()


def test_intermediates_freed_after_backward_and_dropping_the_output(no_gc):
    w = Tensor(np.ones((4, 4)), requires_grad=True)
    x = Tensor(np.ones((2, 4)))
    h = (x @ w).tanh()
    t_probe, f_probe = weakref.ref(h), weakref.ref(h.creator)
    loss = (h * h).sum()
    del h
    assert t_probe() is not None  # the Mul that consumes h keeps it for its backward
    loss.backward()
    assert t_probe() is None  # backward dropped the Mul's inputs: h is gone already
    loss_creator = weakref.ref(loss.creator)
    del loss
    assert f_probe() is None and loss_creator() is None
    assert w.grad is not None


def test_graph_freed_when_output_dropped_without_backward(no_gc):
    x = Tensor(np.ones(3), requires_grad=True)
    h = x.exp()
    probes = [weakref.ref(h), weakref.ref(h.creator)]
    y = (h * 2.0).sum()
    del h
    assert all(p() is not None for p in probes)
    del y
    assert all(p() is None for p in probes)


def test_retain_graph_keeps_inputs_until_the_output_goes(no_gc):
    x = Tensor(np.ones(3), requires_grad=True)
    h = x.exp()
    probe = weakref.ref(h)
    y = (h * h).sum()
    del h
    y.backward(retain_graph=True)
    assert probe() is not None
    del y
    assert probe() is None


def test_outputs_are_held_weakly(no_gc):
    x = Tensor(np.ones(3), requires_grad=True)
    y = x.exp()
    f = y.creator
    assert isinstance(f.outputs[0], weakref.ref)
    del y
    assert f.outputs[0]() is None  # the Function alone does not keep its output alive


def test_10000_deep_graph_drawn_and_freed_without_recursion(no_gc):
    limit = sys.getrecursionlimit()
    x = Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y + 1.0
    mermaid = ag.to_mermaid(y)
    assert mermaid.count("-->") == 2 * 10_000
    bottom = weakref.ref(x)
    probe = weakref.ref(y.creator)
    deep = weakref.ref(_nth_creator(y, 9_999))
    del x
    sys.setrecursionlimit(1_000)  # CPython frees chains with its "trashcan", not the C stack
    try:
        del y
    finally:
        sys.setrecursionlimit(limit)
    assert probe() is None and deep() is None and bottom() is None


def _nth_creator(y: Tensor, n: int):
    f = y.creator
    for _ in range(n):
        f = f.inputs[0].creator
    return f


def test_training_loop_does_not_grow_memory():
    """1,000 forward/backward steps of a small MLP: traced memory stays flat. A leak of one (16, 32) float64
    activation per step would add 4 MB; the bound is 100 kB."""
    rng = np.random.default_rng(0)
    w1 = Tensor(rng.standard_normal((8, 32)) * 0.1, requires_grad=True)
    b1 = Tensor(np.zeros(32), requires_grad=True)
    w2 = Tensor(rng.standard_normal((32, 1)) * 0.1, requires_grad=True)
    x = Tensor(rng.standard_normal((16, 8)))
    target = Tensor(rng.standard_normal((16, 1)))

    def step():
        h = (x @ w1 + b1).tanh()
        loss = ((h @ w2 - target) ** 2).mean()
        loss.backward()
        for p in (w1, b1, w2):
            p.data -= 0.01 * p.grad.data
            p.zero_grad()
        return loss.item()

    for _ in range(20):  # warm up caches (NumPy, the interpreter)
        step()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        losses = [step() for _ in range(1_000)]
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 100_000, f"memory grew by {grown} bytes over 1,000 steps"
    assert losses[-1] < losses[0]
