"""Special values against PyTorch: ±0, ±inf, NaN, huge and subnormal numbers mixed into ordinary ones, through
elementwise ops, reductions and the softmax family; values (inf and NaN where PyTorch has them) and first
derivatives.

NumPy's "invalid value"/"overflow" warnings on such inputs are expected and silenced here. Every value is
drawn for every op (notes/property_bugs.md P7 left powers at -0.0 and var/std with an inf out until fixed).
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
import numpy2gpt.nn.functional as F  # noqa: E402, N812
from tests.property.differential import assert_like_torch, assert_like_torch_or_float64  # noqa: E402
from tests.property.strategies import FLOATS, budget, relayout, shapes  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0:UserWarning"),
]

ALL = (0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 1e-40, -1e-40, 1.0, -1.0)


def _layer_norm64(x: Any) -> Any:
    """PyTorch's layer_norm in float64, rounded back: its float32 kernel gives nan for rows of 1e30 (H2's P8),
    where numpy2gpt gives the true (representable) output."""
    return torch.nn.functional.layer_norm(x.double(), x.shape[-1:]).to(x.dtype)


UNARY = {  # name: (numpy2gpt, torch, special values drawn from)
    "neg": (lambda x: -x, lambda x: -x, ALL),
    "exp": (ag.exp, torch.exp, ALL),
    "log": (ag.log, torch.log, ALL),
    "sqrt": (ag.sqrt, torch.sqrt, ALL),
    "tanh": (ag.tanh, torch.tanh, ALL),
    "sigmoid": (ag.sigmoid, torch.sigmoid, ALL),
    "sin": (ag.sin, torch.sin, ALL),
    "cos": (ag.cos, torch.cos, ALL),
    "abs": (ag.abs, torch.abs, ALL),
    "relu": (ag.relu, torch.relu, ALL),
    "square": (lambda x: x * x, lambda x: x * x, ALL),
    "cube": (lambda x: x**3, lambda x: x**3, ALL),
    "pow 0.5": (lambda x: x**0.5, lambda x: x**0.5, ALL),
    "pow -0.5": (lambda x: x**-0.5, lambda x: x**-0.5, ALL),
    "reciprocal": (lambda x: 1.0 / x, lambda x: 1.0 / x, ALL),
    "clip": (lambda x: x.clip(-2.0, 2.0), lambda x: x.clamp(-2.0, 2.0), ALL),
    "gelu": (F.gelu, torch.nn.functional.gelu, ALL),
    "gelu tanh": (lambda x: F.gelu(x, "tanh"), lambda x: torch.nn.functional.gelu(x, approximate="tanh"), ALL),
    "silu": (F.silu, torch.nn.functional.silu, ALL),
    "sum": (lambda x: x.sum(-1), lambda x: x.sum(-1), ALL),
    "mean": (lambda x: x.mean(-1), lambda x: x.mean(-1), ALL),
    "amax": (lambda x: ag.amax(x, -1), lambda x: x.amax(-1), ALL),
    "amin": (lambda x: ag.amin(x, -1), lambda x: x.amin(-1), ALL),
    "var": (lambda x: x.var(-1), lambda x: x.var(-1), ALL),
    "std": (lambda x: x.std(-1, correction=0), lambda x: x.std(-1, correction=0), ALL),
    "layer_norm": (lambda x: F.layer_norm(x, x.shape[-1:]), lambda x: _layer_norm64(x), ALL),
    "layer_norm composed": (lambda x: F.composed.layer_norm(x, x.shape[-1:]), lambda x: _layer_norm64(x), ALL),
    "softmax": (lambda x: F.softmax(x, -1), lambda x: x.softmax(-1), ALL),
    "log_softmax": (lambda x: F.log_softmax(x, -1), lambda x: x.log_softmax(-1), ALL),
}
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
    "where": (lambda a, b: ag.where(a > b, a, b), lambda a, b: torch.where(a > b, a, b)),
    "maximum": (ag.maximum, torch.maximum),
    "minimum": (ag.minimum, torch.minimum),
}


@st.composite
def special_arrays(draw: Any, shape: tuple[int, ...], dtype: Any, pool: tuple[float, ...]) -> np.ndarray:
    """Ordinary N(0, 1) values with about a third of the elements replaced by values from ``pool``."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = rng.standard_normal(shape)
    picks = rng.random(shape) < 0.35
    a[picks] = rng.choice(np.array(pool), int(picks.sum()))
    return relayout(a.astype(dtype), draw(st.sampled_from(["contiguous", "negative", "readonly"])))


@given(st.data())
@budget(200)
def test_unary_special(data: Any) -> None:
    name = data.draw(st.sampled_from(sorted(UNARY)), "op")
    ours, theirs, pool = UNARY[name]
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=1), "shape")
    x = data.draw(special_arrays(shape, data.draw(st.sampled_from(FLOATS), "dtype"), pool), "x")
    # std of subnormals: PyTorch's float32 gradient dy / (2 std) overflows (std(-0.0, -1e-40) = 7e-41: ±inf), where
    # its float64 one, and numpy2gpt's (which scales d = x - mean first), is ±0.707 dy: compared to float64 there
    check = assert_like_torch_or_float64 if name == "std" else assert_like_torch
    check(ours, theirs, [x], scale=10)


@given(st.data())
@budget(150)
def test_binary_special(data: Any) -> None:
    ours, theirs = BINARY[data.draw(st.sampled_from(sorted(BINARY)), "op")]
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=1), "shape")
    dtype = data.draw(st.sampled_from(FLOATS), "dtype")
    a, b = (data.draw(special_arrays(shape, dtype, ALL), name) for name in "ab")
    assert_like_torch(ours, theirs, [a, b], scale=10)
