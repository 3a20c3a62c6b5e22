"""Joining and splitting against PyTorch: cat/concatenate, stack, split (a size or sections), chunk (PyTorch's
rule: pieces of ceil(n / chunks), maybe fewer pieces than asked), unbind; any axis, negative ones too,
size-0 axes and pieces, mixed float dtypes (promoted as both libraries do), every memory layout.

Gradients are compared both when every piece is used and when only one of them is.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hypothesis")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import numpy2gpt.autograd as ag  # noqa: E402
from tests.property.differential import assert_like_torch, to_torch  # noqa: E402
from tests.property.strategies import FLOATS, arrays, budget, one_axis, shapes  # noqa: E402


@given(st.data())
@budget(150)
def test_cat(data: Any) -> None:
    shape = data.draw(shapes(min_dims=1, max_dims=4), "shape")
    axis = data.draw(one_axis(len(shape)), "axis")
    count = data.draw(st.integers(1, 4), "how many")
    dtypes = data.draw(st.lists(st.sampled_from(FLOATS), min_size=count, max_size=count), "dtypes")
    xs = []
    for dtype in dtypes:
        part = list(shape)
        part[axis] = data.draw(st.integers(0, 3), "size along axis")
        xs.append(data.draw(arrays(tuple(part), dtype), "x"))
    ours = data.draw(st.sampled_from([ag.cat, ag.concatenate]), "spelling")
    frozen = data.draw(st.lists(st.booleans(), max_size=count), "inputs without requires_grad")
    assert_like_torch(lambda *ts: ours(list(ts), axis), lambda *ts: torch.cat(ts, axis), xs, second=True, frozen=frozen)


@given(st.data())
@budget(120)
def test_stack(data: Any) -> None:
    shape = data.draw(shapes(max_dims=4), "shape")
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)), "axis")
    count = data.draw(st.integers(1, 4), "how many")
    dtypes = data.draw(st.lists(st.sampled_from(FLOATS), min_size=count, max_size=count), "dtypes")
    xs = [data.draw(arrays(shape, dtype), "x") for dtype in dtypes]
    assert_like_torch(lambda *ts: ag.stack(ts, axis), lambda *ts: torch.stack(ts, axis), xs, second=True)


@st.composite
def sections(draw: Any, n: int) -> list[int]:
    """Piece sizes (0 allowed) that add up to n."""
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=4)))
    edges = [0, *cuts, n]
    return [b - a for a, b in itertools.pairwise(edges)]


@given(st.data())
@budget(200)
def test_split_chunk_unbind(data: Any) -> None:
    shape = data.draw(shapes(min_dims=1, max_dims=4), "shape")
    axis = data.draw(one_axis(len(shape)), "axis")
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS))), "x")
    kind = data.draw(st.sampled_from(["split-size", "split-sections", "chunk", "unbind"]), "op")
    if kind == "split-size":
        size = data.draw(st.integers(1, 4), "size")
        ours, theirs = (lambda t: t.split(size, axis)), (lambda t: t.split(size, axis))
    elif kind == "split-sections":
        secs = data.draw(sections(shape[axis]), "sections")
        ours, theirs = (lambda t: ag.split(t, secs, axis)), (lambda t: t.split(secs, axis))
    elif kind == "chunk":
        chunks = data.draw(st.integers(1, 5), "chunks")
        ours, theirs = (lambda t: t.chunk(chunks, axis)), (lambda t: t.chunk(chunks, axis))
    else:
        ours, theirs = (lambda t: ag.unbind(t, axis)), (lambda t: t.unbind(axis))
    assert_like_torch(ours, theirs, [x], second=True)
    pieces = len(theirs(to_torch(x)))
    if pieces:
        k = data.draw(st.integers(0, pieces - 1), "the piece used")
        assert_like_torch(lambda t: ours(t)[k] * 2.0, lambda t: theirs(t)[k] * 2.0, [x], second=True)
