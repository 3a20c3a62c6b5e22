"""Integer tensors against PyTorch: which dtype comes out when they meet floats, constants and each other.

PyTorch's rules: an int tensor with a Python or NumPy float scalar, and every floating function of an int
tensor (exp, sqrt, true division, ...), give the default float dtype; an int tensor with a floating tensor
gives that tensor's dtype; int with int stays int. numpy2gpt follows them (issue 9 item 3), under either
default dtype; gradients flow to the floating operands only.
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

BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "pow": (lambda a, b: a**b, lambda a, b: a**b),
    "maximum": (ag.maximum, torch.maximum),
    "minimum": (ag.minimum, torch.minimum),
}
UNARY = {
    "neg": (lambda x: -x, lambda x: -x),
    "abs": (ag.abs, torch.abs),
    "exp": (ag.exp, torch.exp),
    "log": (ag.log, torch.log),
    "sqrt": (ag.sqrt, torch.sqrt),
    "tanh": (ag.tanh, torch.tanh),
    "sigmoid": (ag.sigmoid, torch.sigmoid),
    "pow_half": (lambda x: x**0.5, lambda x: x**0.5),
    "clip_float": (lambda x: x.clip(1.5, None), lambda x: x.clamp(1.5, None)),
    "clip_int": (lambda x: x.clip(None, 2), lambda x: x.clamp(None, 2)),
    "maximum_float": (lambda x: ag.maximum(x, 0.5), lambda x: x.clamp(min=0.5)),
    "where_float": (lambda x: ag.where(x > 2, x, 0.5), lambda x: torch.where(x > 2, x, 0.5)),
    "masked_fill_float": (lambda x: x.masked_fill(x > 2, 0.5), lambda x: x.masked_fill(x > 2, 0.5)),
}
SCALARS = [0.5, 2, np.float64(0.5), np.float32(1.5), np.int64(3)]


def set_default(dtype: Any) -> None:
    """Both libraries' default dtype (conftest.py puts float32 back after each test)."""
    ag.set_default_dtype(dtype)
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)


@given(st.data())
@budget(150)
def test_int_unary(data: Any) -> None:
    set_default(data.draw(st.sampled_from(FLOATS), "default dtype"))
    ours, theirs = UNARY[data.draw(st.sampled_from(sorted(UNARY)), "op")]
    x = data.draw(arrays(data.draw(shapes(), "shape"), data.draw(st.sampled_from(INTS)), "positive"), "x")
    assert_like_torch(ours, theirs, [x])


@given(st.data())
@budget(200)
def test_int_with_tensor(data: Any) -> None:
    """int with int stays int (true division excepted); int with a floating tensor takes its dtype."""
    set_default(data.draw(st.sampled_from(FLOATS), "default dtype"))
    ours, theirs = BINARY[data.draw(st.sampled_from(sorted(BINARY)), "op")]
    shape = data.draw(shapes(), "shape")
    other = data.draw(broadcastable(shape), "other")
    dtypes = data.draw(
        st.sampled_from([(INTS[0], INTS[0]), (INTS[1], INTS[1]), *((i, f) for i in INTS for f in FLOATS)])
    )
    if data.draw(st.booleans(), "int on the right"):
        dtypes = dtypes[::-1]
    a = data.draw(arrays(shape, dtypes[0], "positive"), "a")
    b = data.draw(arrays(other, dtypes[1], "positive"), "b")
    assert_like_torch(ours, theirs, [a, b], second=True)


@given(st.data())
@budget(150)
def test_int_with_scalar(data: Any) -> None:
    """An int tensor with a Python or NumPy scalar: float scalars give the default float dtype."""
    set_default(data.draw(st.sampled_from(FLOATS), "default dtype"))
    ours, theirs = BINARY[data.draw(st.sampled_from(sorted(BINARY)), "op")]
    c = data.draw(st.sampled_from(SCALARS), "scalar")
    x = data.draw(arrays(data.draw(shapes(), "shape"), data.draw(st.sampled_from(INTS)), "positive"), "x")
    if ours in (ag.maximum, ag.minimum):
        assert_like_torch(
            lambda t: ours(t, c), lambda t: theirs(t, torch.tensor(c, dtype=torch.result_type(t, c))), [x]
        )
    elif data.draw(st.booleans(), "scalar on the left"):
        assert_like_torch(lambda t: ours(c, t), lambda t: theirs(c, t), [x])
    else:
        assert_like_torch(lambda t: ours(t, c), lambda t: theirs(t, c), [x])


@given(st.data())
@budget(100)
def test_int_joined_with_float(data: Any) -> None:
    """cat/stack of an int tensor with a floating one: the floating dtype, gradient to the floating one."""
    dtype = data.draw(st.sampled_from(FLOATS), "float dtype")
    shape = data.draw(shapes(min_dims=1, max_dims=3), "shape")
    ints = data.draw(arrays(shape, data.draw(st.sampled_from(INTS))), "ints")
    floats = data.draw(arrays(shape, dtype), "floats")
    axis = data.draw(st.integers(-len(shape), len(shape) - 1), "axis")
    if data.draw(st.booleans(), "stack"):
        assert_like_torch(
            lambda a, b: ag.stack([a, b], axis), lambda a, b: torch.stack([a.to(b.dtype), b], axis), [ints, floats]
        )
    else:
        assert_like_torch(
            lambda a, b: ag.cat([b, a], axis), lambda a, b: torch.cat([b, a.to(b.dtype)], axis), [ints, floats]
        )
