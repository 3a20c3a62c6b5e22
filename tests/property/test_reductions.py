"""Reductions against PyTorch over every axis form: None, an int, a negative int, a tuple in any order,
keepdims on and off, on 0- to 5-dimensional inputs with size-0 and size-1 axes.

sum/mean/var/std/max/min (torch's amax/amin) with first and second derivatives, var/std with corrections
0, 1 and 2 (also where the reduced count n <= correction: inf or nan as in PyTorch), argmax/argmin. Where
PyTorch raises (max of an empty axis), numpy2gpt must raise too.
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
from tests.property.differential import assert_like_torch, assert_like_torch_or_float64  # noqa: E402
from tests.property.strategies import FLOATS, INTS, arrays, axis_forms, budget, one_axis, shapes  # noqa: E402


def tdim(axis: Any, ndim: int) -> Any:
    """numpy2gpt's axis as torch's dim: None is every axis (torch's amax/var take no None with keepdim)."""
    return tuple(range(ndim)) if axis is None else axis


def reduced_count(shape: tuple[int, ...], axis: Any) -> int:
    axes = range(len(shape)) if axis is None else [axis] if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axes])) if shape else 1


REDUCTIONS = {
    "sum": (lambda x, a, k: x.sum(a, k), lambda x, d, k: x.sum(d, keepdim=k)),
    "mean": (lambda x, a, k: ag.mean(x, a, k), lambda x, d, k: x.mean(d, keepdim=k)),
    "max": (lambda x, a, k: x.max(a, k), lambda x, d, k: x.amax(d, keepdim=k)),
    "min": (lambda x, a, k: ag.min(x, a, k), lambda x, d, k: x.amin(d, keepdim=k)),
}


@given(st.data())
@budget(300)
def test_reduction(data: Any) -> None:
    name = data.draw(st.sampled_from(sorted(REDUCTIONS)), "op")
    ours, theirs = REDUCTIONS[name]
    shape = data.draw(shapes(), "shape")
    axis = data.draw(axis_forms(len(shape)), "axis")
    keep = data.draw(st.booleans(), "keepdims")
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS), "dtype")), "x")
    d = tdim(axis, len(shape))
    if name in ("max", "min") and reduced_count(shape, axis) == 0:
        with pytest.raises(Exception):  # noqa: B017 - PyTorch: IndexError or RuntimeError; any clear error
            theirs(torch.tensor(x), d, keep)
        with pytest.raises((ValueError, IndexError, RuntimeError)):
            ours(ag.Tensor(x), axis, keep)
        return
    assert_like_torch(lambda t: ours(t, axis, keep), lambda t: theirs(t, d, keep), [x], second=True, scale=5)


@pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0:UserWarning")
@given(st.data())
@budget(250)
def test_var_std(data: Any) -> None:
    std = data.draw(st.booleans(), "std")
    shape = data.draw(shapes(), "shape")
    # Without degrees of freedom (n <= correction) PyTorch's gradient over the whole tensor (dim=None) differs
    # from its gradient over every dim named, and numpy2gpt follows both: None is passed on as None, and drawn
    # both ways.
    axis = data.draw(axis_forms(len(shape)), "axis")
    if axis is None and data.draw(st.booleans(), "every axis named"):
        axis = tuple(range(len(shape)))
    keep = data.draw(st.booleans(), "keepdims")
    correction = data.draw(st.sampled_from([0, 1, 2]), "correction")
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS), "dtype")), "x")
    # Where n <= correction the value is inf or nan, and second derivatives are inf * 0 = nan (NumPy warns):
    # compared to first order only.
    second = reduced_count(shape, axis) > correction
    if std:  # std's derivatives scale as 1/std: where std is small PyTorch's float32 ones are its rounding / std
        # (over [-0.845, -0.836], second derivatives 1e-3 where the exact, float64, ones are 0 as numpy2gpt's)
        assert_like_torch_or_float64(lambda t: t.std(axis, keep, correction),
                                     lambda t: t.std(axis, keepdim=keep, correction=correction),
                                     [x], second=second, scale=10)  # fmt: skip
    else:
        assert_like_torch(lambda t: ag.var(t, axis, keep, correction),
                          lambda t: t.var(axis, keepdim=keep, correction=correction),
                          [x], second=second, scale=10)  # fmt: skip


@given(st.data())
@budget(100)
def test_argmax_argmin(data: Any) -> None:
    shape = data.draw(shapes(min_side=1), "shape")
    axis = data.draw(st.none() | one_axis(len(shape)) if shape else st.none(), "axis")
    keep = axis is not None and data.draw(st.booleans(), "keepdims")
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS + INTS)), "x"))
    if data.draw(st.booleans(), "argmax"):
        assert_like_torch(lambda t: t.argmax(axis, keep), lambda t: t.argmax(axis, keepdim=keep), [x], grad=False)
    else:
        assert_like_torch(lambda t: t.argmin(axis, keep), lambda t: t.argmin(axis, keepdim=keep), [x], grad=False)
