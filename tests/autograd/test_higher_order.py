"""Higher-order derivatives: Newton's method, tanh's 2nd and 3rd derivatives, and the reference cycle that
storing a create_graph gradient in .grad makes (and how grad() avoids it)."""

from __future__ import annotations

import gc
import itertools
import weakref

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.autograd import Tensor


def test_newton_method_with_create_graph():
    """Minimize f(x) = x**4 - 2 x**2 from x = 2: x <- x - f'(x) / f''(x) converges to the minimum at 1."""
    x = Tensor(np.array(2.0), requires_grad=True)
    history = []
    for _ in range(10):
        y = x**4 - 2 * x**2
        (gx,) = ag.grad(y, x, create_graph=True)  # f'(x) = 4x^3 - 4x, itself a graph
        (gx2,) = ag.grad(gx, x)  # f''(x) = 12x^2 - 4
        np.testing.assert_allclose(gx.item(), 4 * x.item() ** 3 - 4 * x.item(), rtol=1e-12)
        np.testing.assert_allclose(gx2.item(), 12 * x.item() ** 2 - 4, rtol=1e-12)
        x = Tensor(x.data - gx.data / gx2.data, requires_grad=True)
        history.append(x.item())
    assert history[0] == pytest.approx(2 - 24 / 44)  # first step: 2 - f'(2)/f''(2) = 2 - 24/44
    assert abs(history[-1] - 1.0) < 1e-12
    assert all(a > b for a, b in itertools.pairwise(history[:6]))  # a monotone approach from above


def test_newton_method_with_backward_and_dot_grad():
    """The same with backward(create_graph=True) into .grad, dropping .grad each step (breaks the cycle)."""
    x = Tensor(np.array(2.0), requires_grad=True)
    for _ in range(10):
        y = x**4 - 2 * x**2
        y.backward(create_graph=True)
        gx = x.grad
        x.grad = None
        gx.backward()
        gx2 = x.grad
        x = Tensor(x.data - gx.data / gx2.data, requires_grad=True)
    assert abs(x.item() - 1.0) < 1e-12


def test_tanh_second_and_third_derivatives_match_closed_forms():
    x0 = np.linspace(-2.0, 2.0, 9)
    x = Tensor(x0, requires_grad=True)
    y = x.tanh()
    (d1,) = ag.grad(y.sum(), x, create_graph=True)
    (d2,) = ag.grad(d1.sum(), x, create_graph=True)
    (d3,) = ag.grad(d2.sum(), x)
    t = np.tanh(x0)
    np.testing.assert_allclose(d1.data, 1 - t**2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(d2.data, -2 * t * (1 - t**2), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(d3.data, (6 * t**2 - 2) * (1 - t**2), rtol=1e-12, atol=1e-15)


def test_higher_order_of_sin_like_polynomial_and_exp():
    x = Tensor(np.array([0.3, 1.2]), requires_grad=True)
    g = x.exp() * x  # (x e^x)^(n) = (x + n) e^x
    for n in range(1, 5):
        (g,) = ag.grad(g.sum(), x, create_graph=True)
        np.testing.assert_allclose(g.data, (x.data + n) * np.exp(x.data), rtol=1e-12)


def _graph_alive_after_drop(store_in_dot_grad: bool, break_cycle: bool) -> bool:
    """Build y = x**3 and its create_graph gradient, drop every name, and report whether x survived
    (with the cyclic garbage collector off, so only reference counting frees things)."""
    x = Tensor(np.array([1.5, -0.5]), requires_grad=True)
    probe = weakref.ref(x)
    y = (x**3).sum()
    if store_in_dot_grad:
        y.backward(create_graph=True)
        fn_probe = weakref.ref(x.grad.creator)
        if break_cycle:
            x.grad = None
    else:
        (g,) = ag.grad(y, x, create_graph=True)
        fn_probe = weakref.ref(g.creator)
        del g
    del x, y
    return probe() is not None or fn_probe() is not None


def test_create_graph_reference_cycle():
    gc.collect()
    gc.disable()
    try:
        # grad(..., create_graph=True) stores nothing on x: no cycle, freed by reference counting alone
        assert not _graph_alive_after_drop(store_in_dot_grad=False, break_cycle=False)
        # backward(create_graph=True) puts a gradient whose graph points back at x into x.grad: a cycle
        # x -> x.grad -> its creator -> ... -> x, which reference counting cannot free ...
        assert _graph_alive_after_drop(store_in_dot_grad=True, break_cycle=False)
        # ... unless .grad is cleared first
        assert not _graph_alive_after_drop(store_in_dot_grad=True, break_cycle=True)
    finally:
        gc.enable()
        gc.collect()
