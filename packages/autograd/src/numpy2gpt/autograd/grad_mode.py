"""Grad mode: whether Functions record the graph.

While grad mode is off (inside ``no_grad()``), a Function computes its output and records nothing: no
creator, no saved inputs, no generation. That is what evaluation and sampling want, and what ``backward``
itself runs under unless ``create_graph=True`` asks for the backward pass to be recorded too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_enabled = True


def is_grad_enabled() -> bool:
    """True while Functions record the graph (the default)."""
    return _enabled


def set_grad_enabled(mode: bool) -> None:
    """Turn graph recording on or off. Prefer the context managers below, which restore the old mode."""
    global _enabled
    _enabled = bool(mode)


class grad_mode:  # noqa: N801 - a context manager, named like one
    """Set grad mode to ``mode`` inside a ``with`` block, or around every call of a decorated function."""

    def __init__(self, mode: bool) -> None:
        self.mode = bool(mode)
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        self._previous.append(is_grad_enabled())
        set_grad_enabled(self.mode)

    def __exit__(self, *exc: object) -> None:
        set_grad_enabled(self._previous.pop())

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with grad_mode(self.mode):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(grad_mode):  # noqa: N801 - named like torch.no_grad
    """Record nothing inside: ``with no_grad(): ...`` or ``@no_grad()`` on a function."""

    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(grad_mode):  # noqa: N801 - named like torch.enable_grad
    """Record the graph inside, even within an outer ``no_grad()``."""

    def __init__(self) -> None:
        super().__init__(True)
