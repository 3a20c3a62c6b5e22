"""Shape ops against PyTorch: reshape, view, transpose/permute/swapaxes/.T/.mT, squeeze/unsqueeze, flatten,
expand/broadcast_to, on 0- to 5-dimensional inputs in every memory layout, with negative axes.

Values and gradients are compared; where PyTorch refuses an argument (an axis out of range, flatten with
start after end, a repeated permutation axis) numpy2gpt must refuse it too.
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
from tests.property.strategies import FLOATS, arrays, budget, one_axis, shapes  # noqa: E402


def both_raise(ours: Any, theirs: Any, x: np.ndarray) -> None:
    """PyTorch refuses the call, and so does numpy2gpt (with an error of its own, not a wrong answer)."""
    with pytest.raises((RuntimeError, IndexError, ValueError, TypeError)):
        theirs(torch.tensor(x))
    with pytest.raises((ValueError, IndexError, TypeError)):
        ours(ag.Tensor(x))


@st.composite
def same_size_shape(draw: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Another shape with as many elements, maybe with one -1 (only where the size is inferable)."""
    n = int(np.prod(shape))
    dims: list[int] = []
    if n == 0:
        dims = draw(st.lists(st.integers(0, 3), min_size=1, max_size=5).filter(lambda d: 0 in d))
    else:
        rest = n
        while rest > 1 and len(dims) < 4:
            d = draw(st.sampled_from([k for k in range(1, rest + 1) if rest % k == 0]))
            dims.append(d)
            rest //= d
        dims.append(rest)
        dims = draw(st.permutations(dims))
        if draw(st.booleans()):
            dims[draw(st.integers(0, len(dims) - 1))] = -1
    return tuple(dims)


@given(st.data())
@budget(120)
def test_reshape(data: Any) -> None:
    shape = data.draw(shapes(), "shape")
    new = data.draw(same_size_shape(shape), "new shape")
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS))), "x")
    as_tuple = data.draw(st.booleans(), "shape as one tuple")
    ours = (lambda t: t.reshape(new)) if as_tuple else (lambda t: t.reshape(*new))
    assert_like_torch(ours, lambda t: t.reshape(new), [x], second=True)


def with_strides_of(x: np.ndarray) -> torch.Tensor:
    """x's values in a torch tensor laid out with x's strides (counted in elements, and positive: PyTorch has
    no negative strides, and negating every stride changes nothing a view depends on)."""
    like = torch.from_numpy(np.array(x, order="C"))
    return torch.empty_strided(x.shape, [abs(s) // x.itemsize for s in x.strides], dtype=like.dtype).copy_(like)


@given(st.data())
@budget(120)
def test_view(data: Any) -> None:
    """view never copies: it refuses exactly where PyTorch's view of a tensor with the same strides refuses,
    and elsewhere gives reshape's values and gradients, sharing the input's memory. Half the shapes have two or
    more axes longer than 1, where strides matter."""
    shape = data.draw(st.one_of(shapes(), shapes(min_dims=2, max_dims=4, min_side=2, max_side=3)), "shape")
    new = data.draw(same_size_shape(shape), "new shape")
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS))), "x")
    try:
        with_strides_of(x).view(new)
    except RuntimeError:
        with pytest.raises(ValueError, match="without a copy"):
            ag.Tensor(x).view(*new)
        return
    assert np.shares_memory(ag.Tensor(x).view(*new).data, x) or x.size == 0
    assert_like_torch(lambda t: t.view(*new), lambda t: t.view(new), [x], second=True)


@given(st.data())
@budget(150)
def test_permutations(data: Any) -> None:
    shape = data.draw(shapes(), "shape")
    n = len(shape)
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS))), "x")
    kind = data.draw(st.sampled_from(["permute", "transpose()", "transpose(a,b)", "swapaxes", ".T", ".mT"]), "op")
    if kind == "permute":
        perm = [p - n if data.draw(st.booleans()) else p for p in data.draw(st.permutations(range(n)))]
        assert_like_torch(lambda t: t.permute(*perm), lambda t: t.permute(perm), [x], second=True)
        assert_like_torch(lambda t: ag.permute(t, perm), lambda t: t.permute(perm), [x])
    elif kind in ("transpose()", ".T"):
        rev = tuple(range(n))[::-1]
        assert_like_torch(
            (lambda t: t.transpose()) if kind == "transpose()" else (lambda t: t.T), lambda t: t.permute(rev), [x]
        )
    elif kind == ".mT" and n > 0:  # (PyTorch's .mT of a 0-d tensor is a deprecated identity)
        if n < 2:
            both_raise(lambda t: t.mT, lambda t: t.mT, x)
        else:
            assert_like_torch(lambda t: t.mT, lambda t: t.mT, [x], second=True)
    elif n > 0:
        a, b = data.draw(one_axis(n), "a"), data.draw(one_axis(n), "b")
        if kind == "swapaxes":
            assert_like_torch(lambda t: ag.swapaxes(t, a, b), lambda t: t.swapaxes(a, b), [x], second=True)
        else:
            assert_like_torch(lambda t: t.transpose(a, b), lambda t: t.transpose(a, b), [x], second=True)


@given(st.data())
@budget(100)
def test_bad_axes_are_refused(data: Any) -> None:
    """An axis out of range, a permutation naming an axis twice or missing one: both libraries refuse."""
    shape = data.draw(shapes(min_dims=1), "shape")
    n = len(shape)
    x = data.draw(arrays(shape, np.float32), "x")
    bad = data.draw(st.sampled_from([n, n + 3, -n - 1]), "bad axis")
    kind = data.draw(st.sampled_from(["permute", "permute-repeat", "swapaxes", "unsqueeze", "squeeze", "flatten"]))
    if kind == "permute":
        perm = [*range(n - 1), bad]
        both_raise(lambda t: t.permute(*perm), lambda t: t.permute(*perm), x)
    elif kind == "permute-repeat" and n > 1:
        perm = [0, *range(n - 1)]
        both_raise(lambda t: t.permute(*perm), lambda t: t.permute(*perm), x)
    elif kind == "swapaxes":
        both_raise(lambda t: t.swapaxes(0, bad), lambda t: t.swapaxes(0, bad), x)
    elif kind == "unsqueeze":
        bad = n + 1 if bad > 0 else -n - 2
        both_raise(lambda t: t.unsqueeze(bad), lambda t: t.unsqueeze(bad), x)
    elif kind == "squeeze":
        both_raise(lambda t: t.squeeze(bad), lambda t: t.squeeze(bad), x)
    else:
        both_raise(lambda t: t.flatten(0, bad), lambda t: t.flatten(0, bad), x)


@given(st.data())
@budget(150)
def test_squeeze_unsqueeze(data: Any) -> None:
    shape = data.draw(shapes(max_side=2), "shape")
    n = len(shape)
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS))), "x")
    kind = data.draw(st.sampled_from(["squeeze()", "squeeze(axis)", "squeeze(axes)", "unsqueeze"]), "op")
    if kind == "squeeze()":
        assert_like_torch(lambda t: t.squeeze(), lambda t: t.squeeze(), [x], second=True)
    elif kind == "unsqueeze":
        axis = data.draw(st.integers(-n - 1, n), "axis")
        assert_like_torch(lambda t: ag.unsqueeze(t, axis), lambda t: t.unsqueeze(axis), [x], second=True)
    elif 1 in shape:  # axes of size 1 (an axis of another size: test_squeeze_other_sizes)
        ones = [a for a in range(-n, n) if shape[a] == 1]
        axis = data.draw(st.sampled_from(ones), "axis")
        axes = tuple(data.draw(st.lists(st.sampled_from(ones), max_size=n, unique_by=lambda a: a % n), "axes"))
        if kind == "squeeze(axis)":
            assert_like_torch(lambda t: t.squeeze(axis), lambda t: t.squeeze(axis), [x], second=True)
        else:
            assert_like_torch(lambda t: ag.squeeze(t, axes), lambda t: t.squeeze(axes), [x], second=True)


@given(st.data())
@budget(150)
def test_flatten(data: Any) -> None:
    shape = data.draw(shapes(), "shape")
    n = max(len(shape), 1)
    start, end = data.draw(st.integers(-n, n - 1), "start"), data.draw(st.integers(-n, n - 1), "end")
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS))), "x")
    if start % n > end % n:
        both_raise(lambda t: t.flatten(start, end), lambda t: t.flatten(start, end), x)
    else:
        assert_like_torch(lambda t: ag.flatten(t, start, end), lambda t: t.flatten(start, end), [x], second=True)


@given(st.data())
@budget(150)
def test_expand_broadcast_to(data: Any) -> None:
    shape = data.draw(shapes(max_dims=4), "shape")
    lead = data.draw(st.lists(st.integers(0, 3), max_size=5 - len(shape)), "new leading axes")
    target = [*lead, *(data.draw(st.integers(0, 3), "size") if n == 1 else n for n in shape)]
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS))), "x")
    if data.draw(st.booleans(), "expand with -1"):
        spec = [-1 if i >= len(lead) and data.draw(st.booleans()) else s for i, s in enumerate(target)]
        assert_like_torch(lambda t: t.expand(*spec), lambda t: t.expand(spec), [x], second=True)
    else:
        assert_like_torch(lambda t: ag.broadcast_to(t, target), lambda t: t.broadcast_to(target), [x], second=True)


@given(st.data())
@budget(60)
def test_squeeze_other_sizes(data: Any) -> None:
    """squeeze names an axis whose size is not 1: PyTorch leaves that axis alone (property_bugs.md P1)."""
    shape = data.draw(shapes(min_dims=1, max_side=2), "shape")
    n = len(shape)
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS))), "x")
    axes = tuple(data.draw(st.lists(one_axis(n), min_size=1, max_size=n, unique_by=lambda a: a % n), "axes"))
    assert_like_torch(lambda t: t.squeeze(axes[0]), lambda t: t.squeeze(axes[0]), [x], second=True)
    assert_like_torch(lambda t: t.squeeze(axes), lambda t: t.squeeze(axes), [x])
