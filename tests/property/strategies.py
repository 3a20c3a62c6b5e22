"""Hypothesis strategies for the property tests: shapes, dtypes, memory layouts and axis arguments.

Values come from a drawn seed (``np.random.default_rng``), not from element-by-element float strategies:
the tests compare two libraries to rounding, so what varies is the *structure* (0 to 5 dimensions, size-0
and size-1 axes, broadcasting, axis forms, dtypes) and the memory layout of the same values:

    contiguous     the array as made
    noncontiguous  every other element of a larger buffer (a strided view)
    negative       reversed views of a reversed copy (negative strides on every axis)
    fortran        column-major order
    readonly       a copy whose writeable flag is off (an op must never write into its input)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
INTS = (np.dtype(np.int64), np.dtype(np.int32))
LAYOUTS = ("contiguous", "noncontiguous", "negative", "fortran", "readonly")


def budget(n: int) -> Any:
    """Fixed seed, ``n`` examples, no deadline (a loaded CI machine is not a failure).

    Local exploration only (CI sets neither, and without them the settings are exactly these):
    ``NUMPY2GPT_PROPERTY_SEED=k`` draws from seed k instead of the test's fixed one, and
    ``NUMPY2GPT_PROPERTY_TIMES=m`` runs m times ``n`` examples.
    """
    fixed = _settings(n * int(os.environ.get("NUMPY2GPT_PROPERTY_TIMES") or 1))
    chosen = os.environ.get("NUMPY2GPT_PROPERTY_SEED")
    if not chosen:
        return fixed
    return lambda test: seed(int(chosen))(fixed(test))


def _settings(n: int) -> settings:
    return settings(
        max_examples=n,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,
        ],
    )


def relayout(a: np.ndarray, layout: str) -> np.ndarray:
    """The same values as ``a`` in another memory layout (see the module docstring)."""
    if layout == "noncontiguous" and a.ndim > 0:
        big = np.zeros((*a.shape[:-1], 2 * a.shape[-1]), dtype=a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if layout == "negative" and a.ndim > 0:
        flip = (slice(None, None, -1),) * a.ndim
        return np.ascontiguousarray(a[flip])[flip]
    if layout == "fortran":
        return np.asarray(a, order="F")  # (np.asfortranarray would make a 0-d array 1-d)
    if layout == "readonly":
        a = a.copy()
        a.setflags(write=False)
    return a


def values(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype, kind: str = "normal") -> np.ndarray:
    """Random values of ``dtype``: ``normal`` N(0, 1), ``wide`` N(0, 15²), ``tails`` U(-40, 40) (float32's
    sigmoid tails, where 1/sigmoid(x) and sigmoid(x)**2 are still representable), ``positive`` in [0.5, 2], ``away``
    |x| in [0.3, 1.5] with random signs; integers in [-4, 4] (``positive``, ``away``: [1, 4])."""
    if dtype.kind in "iu":
        low = 1 if kind in ("positive", "away") else -4
        return rng.integers(low, 5, shape).astype(dtype)
    if kind == "positive":
        return rng.uniform(0.5, 2.0, shape).astype(dtype)
    if kind == "wide":
        return (15.0 * rng.standard_normal(shape)).astype(dtype)
    if kind == "tails":
        return rng.uniform(-40.0, 40.0, shape).astype(dtype)
    if kind == "away":
        return (rng.uniform(0.3, 1.5, shape) * rng.choice([-1.0, 1.0], shape)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def shapes(min_dims: int = 0, max_dims: int = 5, min_side: int = 0, max_side: int = 4) -> st.SearchStrategy:
    """Shapes of 0 to 5 dimensions, size-0 and size-1 axes included."""
    side = st.integers(min_side, max_side)
    return st.lists(side, min_size=min_dims, max_size=max_dims).map(tuple)


@st.composite
def arrays(draw: Any, shape: tuple[int, ...], dtype: Any, kind: str = "normal") -> np.ndarray:
    """An array of ``shape`` and ``dtype`` in a drawn memory layout."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return relayout(values(rng, tuple(shape), np.dtype(dtype), kind), draw(st.sampled_from(LAYOUTS)))


@st.composite
def broadcastable(draw: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts against ``shape``: a suffix of it with some axes turned into 1, or all of it
    with up to two extra leading axes (then it is the larger one); never more than 5 dimensions."""
    keep = draw(st.integers(0, len(shape)))
    tail = [1 if draw(st.booleans()) else n for n in shape[len(shape) - keep :]]
    room = min(2, 5 - len(shape)) if keep == len(shape) else 0
    extra = draw(st.lists(st.integers(0, 3), max_size=max(0, room)))
    return (*extra, *tail)


@st.composite
def axis_forms(draw: Any, ndim: int) -> Any:
    """An axis argument: None, an int (maybe negative), or a tuple of distinct axes in any order and sign."""
    if ndim == 0:
        return draw(st.sampled_from([None, 0, -1, ()]))
    form = draw(st.sampled_from(["none", "int", "tuple"]))
    if form == "none":
        return None
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    axes = [a - ndim if draw(st.booleans()) else a for a in axes]
    return axes[0] if form == "int" else tuple(axes)


def one_axis(ndim: int) -> st.SearchStrategy:
    """A single axis of an ``ndim``-dimensional array, positive or negative."""
    return st.integers(-ndim, ndim - 1)
