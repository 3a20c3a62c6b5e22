"""no_grad / enable_grad / set_grad_enabled: context managers and decorators, nesting, exceptions."""

from __future__ import annotations

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.autograd import Tensor


def test_nothing_is_recorded_under_no_grad():
    x = Tensor(np.ones(3), requires_grad=True)
    with ag.no_grad():
        y = (x * 2.0).exp().sum()
        parts = x.split(1)
    assert y.creator is None and not y.requires_grad and y.generation == 0
    assert all(p.creator is None for p in parts)
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_nesting_and_restoring():
    assert ag.is_grad_enabled()
    with ag.no_grad():
        assert not ag.is_grad_enabled()
        with ag.enable_grad():
            assert ag.is_grad_enabled()
            x = Tensor(np.ones(2), requires_grad=True)
            assert (x * 2.0).creator is not None
            with ag.no_grad():
                assert not ag.is_grad_enabled()
            assert ag.is_grad_enabled()
        assert not ag.is_grad_enabled()
    assert ag.is_grad_enabled()


def test_restored_after_an_exception():
    with pytest.raises(ValueError), ag.no_grad():
        raise ValueError("boom")
    assert ag.is_grad_enabled()
    with ag.no_grad():
        with pytest.raises(KeyError), ag.enable_grad():
            raise KeyError("boom")
        assert not ag.is_grad_enabled()


@pytest.mark.parametrize("decorate", [ag.no_grad(), ag.no_grad], ids=["no_grad()", "no_grad"])
def test_no_grad_as_decorator(decorate):
    @decorate
    def evaluate(x):
        """Docstring kept."""
        assert not ag.is_grad_enabled()
        return x * 2.0

    x = Tensor(np.ones(2), requires_grad=True)
    assert evaluate(x).creator is None
    assert ag.is_grad_enabled()
    assert evaluate.__doc__ == "Docstring kept." and evaluate.__name__ == "evaluate"

    @decorate
    def fails():
        raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        fails()
    assert ag.is_grad_enabled()


@pytest.mark.parametrize("decorate", [ag.enable_grad(), ag.enable_grad], ids=["enable_grad()", "enable_grad"])
def test_enable_grad_as_decorator_inside_no_grad(decorate):
    @decorate
    def train_step(x):
        return x * 2.0

    x = Tensor(np.ones(2), requires_grad=True)
    with ag.no_grad():
        assert train_step(x).creator is not None
        assert not ag.is_grad_enabled()


def test_decorated_function_can_recurse_and_one_instance_can_be_reused():
    guard = ag.no_grad()

    @guard
    def depth(n):
        assert not ag.is_grad_enabled()
        return 0 if n == 0 else 1 + depth(n - 1)

    assert depth(5) == 5 and ag.is_grad_enabled()
    with guard:
        with guard:
            assert not ag.is_grad_enabled()
        assert not ag.is_grad_enabled()
    assert ag.is_grad_enabled()


def test_set_grad_enabled_as_call_and_as_context_manager():
    ag.set_grad_enabled(False)
    assert not ag.is_grad_enabled()
    ag.set_grad_enabled(True)
    assert ag.is_grad_enabled()
    with ag.set_grad_enabled(False):
        assert not ag.is_grad_enabled()
    assert ag.is_grad_enabled()
    with ag.no_grad(), ag.set_grad_enabled(True):
        assert ag.is_grad_enabled()
    assert ag.is_grad_enabled()


def test_backward_runs_without_recording_unless_create_graph():
    x = Tensor(np.ones(2), requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.creator is None and not x.grad.requires_grad
    (g,) = ag.grad((x * x).sum(), x, create_graph=True)
    assert g.creator is not None and g.requires_grad


def test_grad_mode_is_per_thread():
    """As in PyTorch: one thread inside no_grad() (as backward runs) does not stop another thread's forward from
    recording, and a new thread starts with grad mode on."""
    import threading

    entered, release = threading.Event(), threading.Event()

    def hold_no_grad() -> None:
        with ag.no_grad():
            entered.set()
            release.wait(5)

    holder = threading.Thread(target=hold_no_grad)
    holder.start()
    entered.wait(5)
    try:
        assert ag.is_grad_enabled()
        x = Tensor(np.ones(3), requires_grad=True)
        assert (x * 2.0).sum().creator is not None
    finally:
        release.set()
        holder.join()
    seen = []
    with ag.no_grad():
        worker = threading.Thread(target=lambda: seen.append(ag.is_grad_enabled()))
        worker.start()
        worker.join()
    assert seen == [True]
