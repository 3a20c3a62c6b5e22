"""Grad mode: whether Functions record the graph.

While grad mode is off (inside ``no_grad()``), a Function computes its output and records nothing: no
creator, no saved inputs, no generation. That is what evaluation and sampling want, and what ``backward``
itself runs under unless ``create_graph=True`` asks for the backward pass to be recorded too.

All three helpers work as context managers and as decorators, nest, and restore the previous mode on the
way out, even when the block raises::

    with no_grad():            @no_grad()                 @no_grad
        y = model(x)           def evaluate(model): ...   def sample(model): ...
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _GradState(threading.local):
    """The one switch, one per thread (as in PyTorch): a thread that runs ``backward`` (under ``no_grad``) does
    not stop another thread's forward from recording. A mutable object (not a bare global) so that
    ``Function.__call__`` can read it as a plain attribute lookup; each new thread starts with grad mode on."""

    def __init__(self) -> None:
        self.enabled = True


_state = _GradState()


def is_grad_enabled() -> bool:
    """True while Functions record the graph (the default)."""
    return _state.enabled


class grad_mode:  # noqa: N801 - a context manager, named like one
    """Set grad mode to ``mode`` inside a ``with`` block, or around every call of a decorated function."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        self._previous.append(_state.enabled)
        _state.enabled = self.mode

    def __exit__(self, *exc: object) -> None:
        _state.enabled = self._previous.pop()

    def __call__(self, fn: F) -> F:
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with grad_mode(mode):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class _FixedMode(grad_mode):
    """A grad_mode with a fixed mode that also decorates without parentheses: ``@no_grad`` as ``@no_grad()``."""

    _mode: bool

    def __new__(cls, fn: Callable[..., Any] | None = None) -> Any:
        if fn is not None:  # used as a bare decorator: `@no_grad`
            return grad_mode(cls._mode)(fn)
        return super().__new__(cls)

    def __init__(self, fn: Callable[..., Any] | None = None) -> None:
        super().__init__(self._mode)


class no_grad(_FixedMode):  # noqa: N801 - named like torch.no_grad
    """Record nothing inside: ``with no_grad(): ...``, or ``@no_grad()`` / ``@no_grad`` on a function."""

    _mode = False


class enable_grad(_FixedMode):  # noqa: N801 - named like torch.enable_grad
    """Record the graph inside, even within an outer ``no_grad()``."""

    _mode = True


class set_grad_enabled(grad_mode):  # noqa: N801 - named like torch.set_grad_enabled
    """Turn recording on or off *now*: ``set_grad_enabled(False)`` as a plain call switches it for good;
    ``with set_grad_enabled(False): ...`` restores the previous mode when the block ends."""

    def __init__(self, mode: bool) -> None:
        super().__init__(mode)
        self._before = _state.enabled
        _state.enabled = self.mode

    def __enter__(self) -> None:
        self._previous.append(self._before)

    def __call__(self, fn: F) -> F:
        _state.enabled = self._before  # as a decorator it only applies inside the calls
        return super().__call__(fn)

    def __exit__(self, *exc: object) -> None:
        _state.enabled = self._previous.pop()
