"""Indexing and selection against PyTorch: ints, slices with any step (negative ones too), None, integer
arrays with repeats and negative entries, boolean masks, Tensor indices; where, masked_fill, tril/triu.

PyTorch has no negative slice steps, so the PyTorch side of a basic index applies each slice as an
``index_select`` of the positions NumPy's slice picks (the same elements in the same order). Gradients of an
index that reads an element several times must add up; second derivatives are compared too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hypothesis")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import numpy2gpt.autograd as ag  # noqa: E402
from tests.property.differential import assert_like_torch  # noqa: E402
from tests.property.strategies import FLOATS, arrays, broadcastable, budget, shapes  # noqa: E402


@st.composite
def slices(draw: Any, n: int) -> slice:
    bound = st.none() | st.integers(-n - 2, n + 2)
    step = draw(st.none() | st.sampled_from([1, 2, 3, -1, -2, -3]))
    return slice(draw(bound), draw(bound), step)


@st.composite
def basic_index(draw: Any, shape: tuple[int, ...]) -> tuple[Any, ...]:
    """A tuple of ints, slices and None covering some leading axes."""
    index: list[Any] = []
    for n in shape[: draw(st.integers(0, len(shape)))]:
        if draw(st.integers(0, 5)) == 0:
            index.append(None)
        if n > 0 and draw(st.integers(0, 3)) == 0:
            index.append(draw(st.integers(-n, n - 1)))
        else:
            index.append(draw(slices(n)))
    return tuple(index)


def torch_basic(t: torch.Tensor, index: tuple[Any, ...]) -> torch.Tensor:
    axis = 0
    for i in index:
        if i is None:
            t, axis = t.unsqueeze(axis), axis + 1
        elif isinstance(i, slice):
            picked = torch.tensor(np.arange(t.shape[axis])[i].copy())
            t, axis = t.index_select(axis, picked), axis + 1
        else:
            t = t.select(axis, i)
    return t


@given(st.data())
@budget(200)
def test_basic_index(data: Any) -> None:
    shape = data.draw(shapes(), "shape")
    index = data.draw(basic_index(shape), "index")
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS))), "x")
    single = index[0] if len(index) == 1 else index
    assert_like_torch(lambda t: t[single], lambda t: torch_basic(t, index), [x], second=True)


def other_index_shape(data: Any, ishape: tuple[int, ...]) -> tuple[int, ...]:
    return data.draw(broadcastable(ishape).filter(len), "other index shape")


@given(st.data())
@budget(200)
def test_integer_array_index(data: Any) -> None:
    """One or two integer arrays (repeats, negative entries, broadcasting) among full slices."""
    shape = data.draw(shapes(min_dims=1, min_side=1), "shape")
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS))), "x")
    n_arrays = data.draw(st.integers(1, min(2, len(shape))), "how many arrays")
    axes = sorted(data.draw(st.permutations(range(len(shape))))[:n_arrays])
    ishape = data.draw(shapes(min_dims=1, max_dims=2, max_side=5), "index shape")
    index: list[Any] = [slice(None)] * (axes[-1] + 1)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    for a in axes:  # the second array's shape broadcasts against the first's; no 0-d arrays (PyTorch reads
        # a 0-d index tensor as an int, NumPy as an array: numpy2gpt indexes as NumPy does)
        index[a] = rng.integers(-shape[a], shape[a], ishape if a == axes[0] else other_index_shape(data, ishape))
    # (a list cannot spell an empty leading axis: np.empty((0, 3), int).tolist() is [], shape (0,))
    as_list = n_arrays == 1 and len(index) == 1 and 0 not in ishape[:-1] and data.draw(st.booleans(), "as a list")
    ours_index = index[0].tolist() if as_list else tuple(index)
    theirs_index = tuple(torch.from_numpy(i) if isinstance(i, np.ndarray) else i for i in index)
    assert_like_torch(lambda t: t[ours_index], lambda t: t[theirs_index], [x], second=True)
    tensor_index = tuple(ag.Tensor(i) if isinstance(i, np.ndarray) else i for i in index)
    assert_like_torch(lambda t: t[tensor_index], lambda t: t[theirs_index], [x])


@given(st.data())
@budget(150)
def test_boolean_mask(data: Any) -> None:
    """A mask over the leading k axes (all of them included), or over one axis after full slices."""
    shape = data.draw(shapes(min_dims=1), "shape")
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS))), "x")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    if data.draw(st.booleans(), "leading mask"):
        mask = rng.random(shape[: data.draw(st.integers(1, len(shape)))]) > 0.5
        index: Any = mask
        theirs_index: Any = torch.from_numpy(mask)
    else:
        axis = data.draw(st.integers(0, len(shape) - 1), "axis")
        mask = rng.random(shape[axis]) > 0.5
        index = (*(slice(None),) * axis, mask)
        theirs_index = (*(slice(None),) * axis, torch.from_numpy(mask))
    assert_like_torch(lambda t: t[index], lambda t: t[theirs_index], [x], second=True)
    assert_like_torch(lambda t: t[ag.Tensor(mask)] if index is mask else t[index], lambda t: t[theirs_index], [x])


@given(st.data())
@budget(150)
def test_where(data: Any) -> None:
    shape = data.draw(shapes(), "shape")
    sa = data.draw(broadcastable(shape), "a shape")
    sb = data.draw(broadcastable(np.broadcast_shapes(shape, sa)), "b shape")
    dtype = data.draw(st.sampled_from(FLOATS), "dtype")
    cond = np.asarray(np.random.default_rng(data.draw(st.integers(0, 99))).random(shape) > 0.5)
    a, b = data.draw(arrays(sa, dtype), "a"), data.draw(arrays(sb, dtype), "b")
    assert_like_torch(lambda p, q: ag.where(cond, p, q), lambda p, q: torch.where(torch.from_numpy(cond), p, q),
                      [a, b], second=True)  # fmt: skip
    c = data.draw(st.sampled_from([0.5, np.float64(-2.0), 3]), "scalar")
    assert_like_torch(
        lambda p: ag.where(ag.Tensor(cond), c, p), lambda p: torch.where(torch.from_numpy(cond), c, p), [a]
    )


@given(st.data())
@budget(150)
def test_masked_fill(data: Any) -> None:
    shape = data.draw(shapes(), "shape")
    mshape = data.draw(broadcastable(shape).filter(lambda s: np.broadcast_shapes(s, shape) == shape), "mask shape")
    mask = np.asarray(np.random.default_rng(data.draw(st.integers(0, 99))).random(mshape) > 0.5)
    value = data.draw(st.sampled_from([0.0, -1.5, np.float64(2.5), -np.inf, 7]), "value")
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS))), "x")
    assert_like_torch(lambda t: t.masked_fill(mask, value), lambda t: t.masked_fill(torch.from_numpy(mask), value),
                      [x], second=True)  # fmt: skip


@given(st.data())
@budget(100)
def test_tril_triu(data: Any) -> None:
    shape = data.draw(shapes(min_dims=2, max_dims=4), "shape")
    k = data.draw(st.integers(-4, 4), "k")
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS))), "x")
    if data.draw(st.booleans(), "tril"):
        assert_like_torch(lambda t: ag.tril(t, k), lambda t: t.tril(k), [x], second=True)
    else:
        assert_like_torch(lambda t: ag.triu(t, k), lambda t: t.triu(k), [x], second=True)


ODD_INDICES = {  # numpy2gpt's index, PyTorch's (a nested list is NumPy's int array, not PyTorch's tuple: omitted)
    "True": (True, True),
    "False": (False, False),
    "empty list": ([], []),
    "empty int array": (np.array([], int), torch.tensor([], dtype=torch.long)),
    "(None, ...)": ((None, Ellipsis), (None, Ellipsis)),
    "(..., 0, None)": ((Ellipsis, 0, None), (Ellipsis, 0, None)),
    "all-false row mask": (np.zeros(3, bool), torch.zeros(3, dtype=torch.bool)),
    "list with a negative": ([1, -1], [1, -1]),
    "tuple of lists": (([0, 2], [1, 3]), ([0, 2], [1, 3])),
    "bool list": ([True, False, True], [True, False, True]),
    "np.int64 scalar": (np.int64(1), 1),
    "step past the end": ((slice(None), slice(5, None, 2)), (slice(None), slice(5, None, 2))),
}


@pytest.mark.parametrize("name", sorted(ODD_INDICES))
def test_odd_indices(name: str) -> None:
    ours, theirs = ODD_INDICES[name]
    x = np.random.default_rng(0).standard_normal((3, 4))
    assert_like_torch(lambda t: t[ours], lambda t: t[theirs], [x], second=True)
