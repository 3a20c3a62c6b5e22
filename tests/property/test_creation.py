"""Tensor construction against ``torch.tensor``: Python scalars, NumPy scalars, 0-d arrays, (nested) lists and
arrays of every dtype here, ndarray subclasses, and what must be refused.

A Tensor holds a plain, writeable-if-the-input-was ndarray (never a NumPy scalar, never a subclass such as
np.matrix, whose ``*`` is a matrix product) with PyTorch's dtype and shape; a Parameter made from a NumPy
scalar can be stepped by an optimizer like any other (issue 9 item 7).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hypothesis")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from numpy2gpt.autograd import Tensor  # noqa: E402
from numpy2gpt.nn import Parameter, optim  # noqa: E402
from tests.property.differential import assert_close, assert_like_torch  # noqa: E402
from tests.property.strategies import budget, shapes  # noqa: E402

SCALAR_TYPES = [float, int, bool, np.float32, np.float64, np.int32, np.int64, np.bool_]


@st.composite
def data_kinds(draw: Any) -> Any:
    """Something to build a tensor from, with its kind."""
    kind = draw(st.sampled_from(["scalar", "0-d array", "list", "nested list", "mixed list", "array"]))
    make = draw(st.sampled_from(SCALAR_TYPES))
    value = draw(st.sampled_from([0, 1, 3, -2]))
    if kind == "scalar":
        return make(value)
    if kind == "0-d array":
        return np.array(make(value))
    if kind == "mixed list":  # element types differ: PyTorch takes the widest (np.float64 stays float64)
        types = st.sampled_from(SCALAR_TYPES[:-1])  # (torch.tensor([0, np.False_]) is a TypeError in PyTorch)
        return [draw(types)(v) for v in draw(st.lists(st.sampled_from([0, 1, -3]), max_size=4))]
    if kind == "list":
        return [make(v) for v in draw(st.lists(st.sampled_from([0, 1, -3]), max_size=4))]
    if kind == "nested list":
        rows, cols = draw(st.integers(1, 3)), draw(st.integers(0, 3))
        return [[make(value + i + j) for j in range(cols)] for i in range(rows)]
    return np.full(draw(shapes(max_dims=3)), make(value))


@given(st.data())
@budget(150)
def test_tensor_from_data(data: Any) -> None:
    value = data.draw(data_kinds(), "data")
    ours, theirs = Tensor(value), torch.tensor(value)
    assert type(ours.data) is np.ndarray, f"Tensor({value!r}).data is a {type(ours.data).__name__}"
    assert_close(ours, theirs, f"Tensor({value!r})")
    if not isinstance(value, np.ndarray) or value.flags.writeable:
        ours.data[...] = ours.data  # a scalar input gives a writeable array of its own


def test_refused_data() -> None:
    for bad in ("text", None, {"a": 1}, object()):
        with pytest.raises(TypeError):
            Tensor(bad)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_ndarray_subclass_is_a_plain_array() -> None:
    m = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    t = Tensor(m)
    assert type(t.data) is np.ndarray
    assert_like_torch(lambda a: a * a, lambda a: a * a, [np.asarray(m)])
    assert_close(t * t, torch.tensor(np.asarray(m)) ** 2, "matrix * matrix is elementwise")


@given(st.data())
@budget(40)
def test_numpy_scalar_parameter_steps(data: Any) -> None:
    make = data.draw(st.sampled_from([np.float32, np.float64]), "scalar type")
    value = make(data.draw(st.sampled_from([0.5, -2.0, 3.25]), "value"))
    p, tp = Parameter(value), torch.nn.Parameter(torch.tensor(value))
    opt, topt = optim.SGD([p], lr=0.1, momentum=0.9), torch.optim.SGD([tp], lr=0.1, momentum=0.9, foreach=False)
    for step in range(3):
        p.grad, tp.grad = Tensor(np.array(make(step + 1.0))), torch.tensor(make(step + 1.0))
        opt.step()
        topt.step()
        assert_close(p, tp, f"after step {step}")
