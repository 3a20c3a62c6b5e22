"""Elementwise ops against PyTorch: every broadcast, every kind of constant, float32 and float64 inputs (integer
tensors: test_integer_dtypes.py; comparisons take both).

Binary ops take two tensors of broadcastable shapes (same or mixed dtypes) or a tensor and a constant on
either side: a Python float or int, a NumPy scalar, a 0-d array or an array. One documented difference:
numpy2gpt gives a floating tensor's dtype to an array constant (no silent upcast, packages/autograd
README), where PyTorch would promote float32 with a float64 array; the PyTorch side is handed that array in
the tensor's dtype. Two floating tensors of different dtypes promote as NumPy does (same README), also
where one is 0-d (PyTorch would keep the dimensioned one's dtype): the PyTorch side gets both operands in
the promoted dtype. Values, dtypes, first and second derivatives are compared.
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
from tests.property.strategies import FLOATS, INTS, arrays, broadcastable, budget, shapes  # noqa: E402

# name: (numpy2gpt, torch, kind of a, kind of b)
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, "normal", "normal"),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, "normal", "normal"),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, "normal", "normal"),
    "div": (lambda a, b: a / b, lambda a, b: a / b, "normal", "away"),
    "pow": (lambda a, b: a**b, lambda a, b: a**b, "positive", "normal"),
    "maximum": (ag.maximum, torch.maximum, "normal", "normal"),
    "minimum": (lambda a, b: a.minimum(b), torch.minimum, "normal", "normal"),
    "functional_sub": (ag.sub, torch.sub, "normal", "normal"),
}
UNARY = {
    "neg": (lambda x: -x, lambda x: -x, "normal"),
    "exp": (ag.exp, torch.exp, "normal"),
    "log": (lambda x: x.log(), torch.log, "positive"),
    "sqrt": (ag.sqrt, torch.sqrt, "positive"),
    "tanh": (lambda x: x.tanh(), torch.tanh, "wide"),
    "sigmoid": (ag.sigmoid, torch.sigmoid, "wide"),
    "log_sigmoid": (lambda x: x.sigmoid().log(), lambda x: x.sigmoid().log(), "tails"),
    "abs": (abs, torch.abs, "away"),
    "sin": (ag.sin, torch.sin, "wide"),
    "cos": (lambda x: x.cos(), torch.cos, "normal"),
    "square": (lambda x: x**2, lambda x: x**2, "normal"),
    "rsqrt": (lambda x: x**-0.5, lambda x: x**-0.5, "positive"),
}
# A constant of each kind; for "array" a broadcastable shape is drawn.
CONSTANTS = {
    "py_float": lambda shape: 0.75,
    "py_int": lambda shape: 2,
    "np_float64": lambda shape: np.float64(1.5),
    "np_float32": lambda shape: np.float32(0.75),
    "np_int64": lambda shape: np.int64(3),
    "0d_array": lambda shape: np.array(1.25),
    "array": lambda shape: np.linspace(0.5, 2.0, int(np.prod(shape))).reshape(shape),
}


@given(st.data())
@budget(250)
def test_binary_tensor_tensor(data: Any) -> None:
    ours, theirs, ka, kb = BINARY[data.draw(st.sampled_from(sorted(BINARY)), "op")]
    shape = data.draw(shapes(), "shape")
    other = data.draw(broadcastable(shape), "other shape")
    sa, sb = (shape, other) if data.draw(st.booleans(), "a is the larger") else (other, shape)
    da, db = data.draw(st.lists(st.sampled_from(FLOATS), min_size=2, max_size=2), "dtypes")
    a = data.draw(arrays(sa, da, ka), "a")
    b = data.draw(arrays(sb, db, kb), "b")
    frozen = data.draw(st.sampled_from([(), (True,), (False, True)]), "a constant input")
    assert_like_torch(ours, theirs_numpy_promotion(theirs), [a, b], second=True,
                      scale=10 if ours is BINARY["pow"][0] else 1, frozen=frozen)  # fmt: skip


def theirs_numpy_promotion(theirs: Any) -> Any:
    """``theirs`` with two floating operands of different dtypes promoted as NumPy does first."""

    def run(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.dtype.is_floating_point and b.dtype.is_floating_point and a.dtype != b.dtype:
            wide = torch.promote_types(a.dtype, b.dtype)
            a, b = a.to(wide), b.to(wide)
        return theirs(a, b)

    return run


def _torch_constant(c: Any, t: torch.Tensor) -> Any:
    if isinstance(c, np.ndarray) and t.dtype.is_floating_point:
        return torch.tensor(c, dtype=t.dtype)  # numpy2gpt's no-upcast rule for array constants
    return torch.tensor(c) if isinstance(c, np.ndarray) else c


@given(st.data())
@budget(250)
def test_binary_tensor_constant(data: Any) -> None:
    name = data.draw(st.sampled_from(["add", "sub", "mul", "div", "pow"]), "op")
    ours_op, theirs_op, kx, _ = BINARY[name]
    shape = data.draw(shapes(), "shape")
    kind = data.draw(st.sampled_from(sorted(CONSTANTS)), "constant kind")
    c = CONSTANTS[kind](data.draw(broadcastable(shape), "constant shape"))
    reflected = data.draw(st.booleans(), "constant on the left")
    dtype = data.draw(st.sampled_from(FLOATS), "dtype")
    x = data.draw(arrays(shape, dtype, "away" if reflected and name in ("div", "pow") else kx), "x")
    if reflected:
        assert_like_torch(lambda t: ours_op(c, t), lambda t: theirs_op(_torch_constant(c, t), t), [x], second=True)
    else:
        assert_like_torch(lambda t: ours_op(t, c), lambda t: theirs_op(t, _torch_constant(c, t)), [x], second=True)


@given(st.data())
@budget(100)
def test_maximum_minimum_constant(data: Any) -> None:
    """maximum/minimum with a scalar constant, PyTorch's clamp(min=)/clamp(max=)."""
    shape = data.draw(shapes(), "shape")
    dtype = data.draw(st.sampled_from(FLOATS), "dtype")
    c = data.draw(st.sampled_from([0.5, -0.25, np.float64(0.5), 1]), "constant")
    x = data.draw(arrays(shape, dtype), "x")
    if data.draw(st.booleans(), "maximum"):
        assert_like_torch(lambda t: ag.maximum(t, c), lambda t: torch.clamp(t, min=c), [x], second=True)
    else:
        assert_like_torch(lambda t: ag.minimum(c, t), lambda t: torch.clamp(t, max=c), [x], second=True)


@given(st.data())
@budget(250)
def test_unary(data: Any) -> None:
    ours, theirs, kind = UNARY[data.draw(st.sampled_from(sorted(UNARY)), "op")]
    shape = data.draw(shapes(), "shape")
    dtype = data.draw(st.sampled_from(FLOATS), "dtype")
    x = data.draw(arrays(shape, dtype, kind), "x")
    assert_like_torch(ours, theirs, [x], second=True)


@given(st.data())
@budget(100)
def test_clip(data: Any) -> None:
    shape = data.draw(shapes(), "shape")
    dtype = data.draw(st.sampled_from(FLOATS), "dtype")
    lo = data.draw(st.sampled_from([None, -0.5, -1, np.float64(-0.3)]), "min")
    hi = data.draw(st.sampled_from([None, 0.5, 2, np.float64(0.3)]), "max")
    if lo is None and hi is None:
        hi = 0.5
    x = data.draw(arrays(shape, dtype), "x")
    assert_like_torch(lambda t: t.clip(lo, hi), lambda t: torch.clamp(t, lo, hi), [x], second=True)


COMPARE = {"eq": (ag.eq, torch.eq), "ne": (ag.ne, torch.ne), "lt": (ag.lt, torch.lt),
           "le": (ag.le, torch.le), "gt": (ag.gt, torch.gt), "ge": (ag.ge, torch.ge)}  # fmt: skip


@given(st.data())
@budget(100)
def test_comparisons(data: Any) -> None:
    """Comparisons give bool tensors (ties made likely with small integers)."""
    ours, theirs = COMPARE[data.draw(st.sampled_from(sorted(COMPARE)), "op")]
    shape = data.draw(shapes(), "shape")
    other = data.draw(broadcastable(shape), "other")
    da, db = data.draw(st.lists(st.sampled_from(FLOATS + INTS[:1]), min_size=2, max_size=2), "dtypes")
    a = np.round(data.draw(arrays(shape, da), "a"))
    b = np.round(data.draw(arrays(other, db), "b"))
    assert_like_torch(ours, theirs, [a, b], grad=False)
