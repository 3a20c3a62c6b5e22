"""float16 (an allowed default dtype) against PyTorch's CPU half precision: arithmetic, unary ops, reductions,
matmul and the nn ops, values and first derivatives, to float16's precision (a few 1e-3 relative).
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
from tests.property.strategies import arrays, broadcastable, budget, shapes  # noqa: E402

TF = torch.nn.functional
HALF = np.float16
OPS = {  # name: (numpy2gpt, torch, kinds of the inputs)
    "add": (lambda a, b: a + b, lambda a, b: a + b, ("normal", "normal")),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, ("normal", "normal")),
    "div": (lambda a, b: a / b, lambda a, b: a / b, ("normal", "away")),
    "pow": (lambda a, b: a**b, lambda a, b: a**b, ("positive", "normal")),
    "maximum": (ag.maximum, torch.maximum, ("normal", "normal")),
    "x * 0.5 + 1": (lambda a: a * 0.5 + 1, lambda a: a * 0.5 + 1, ("normal",)),
    "exp": (ag.exp, torch.exp, ("normal",)),
    "log": (ag.log, torch.log, ("positive",)),
    "sqrt": (ag.sqrt, torch.sqrt, ("positive",)),
    "tanh": (ag.tanh, torch.tanh, ("normal",)),
    "sigmoid": (ag.sigmoid, torch.sigmoid, ("normal",)),
    "sin": (ag.sin, torch.sin, ("normal",)),
    "sum": (lambda a: a.sum(-1), lambda a: a.sum(-1), ("normal",)),
    "mean": (lambda a: a.mean(), lambda a: a.mean(), ("normal",)),
    "amax": (lambda a: ag.amax(a, -1), lambda a: a.amax(-1), ("normal",)),
    "var": (lambda a: a.var(-1), lambda a: a.var(-1), ("normal",)),
    "softmax": (lambda a: F.softmax(a, -1), lambda a: a.softmax(-1), ("normal",)),
    "log_softmax": (lambda a: F.log_softmax(a, -1), lambda a: a.log_softmax(-1), ("normal",)),
    "gelu": (F.gelu, TF.gelu, ("normal",)),
    "gelu tanh": (lambda a: F.gelu(a, "tanh"), lambda a: TF.gelu(a, approximate="tanh"), ("normal",)),
    "silu": (F.silu, TF.silu, ("normal",)),
    "layer_norm": (lambda a: F.layer_norm(a, a.shape[-1:]), lambda a: TF.layer_norm(a, a.shape[-1:]), ("normal",)),
}


def assert_like_torch_in_half(ours: Any, theirs: Any, xs: list[np.ndarray]) -> None:
    """``assert_like_torch_or_float64`` at float16's tolerance: PyTorch's CPU half kernels round some
    intermediates to half, and where a result is a difference of nearly equal terms that rounding is PyTorch's
    own error (layer_norm's gradient over 2 elements, about eps / var**1.5: PyTorch's half is 57% off its float64
    value, numpy2gpt's within float16's precision of it)."""
    assert_like_torch_or_float64(ours, theirs, xs, scale=3)


@pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0:UserWarning")
@given(st.data())
@budget(120)
def test_float16_ops(data: Any) -> None:
    name = data.draw(st.sampled_from(sorted(OPS)), "op")
    ours, theirs, kinds = OPS[name]
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=3), "shape")
    xs = [data.draw(arrays(shape, HALF, kinds[0]), "x")]
    if len(kinds) == 2:
        xs.append(data.draw(arrays(data.draw(broadcastable(shape), "other shape"), HALF, kinds[1]), "y"))
    assert_like_torch_in_half(ours, theirs, xs)


@given(st.data())
@budget(60)
def test_float16_matmul_linear_attention(data: Any) -> None:
    n, k, m = (data.draw(st.integers(1, 4)) for _ in range(3))
    a, b = data.draw(arrays((n, k), HALF), "a"), data.draw(arrays((m, k), HALF), "b")
    kind = data.draw(st.sampled_from(["matmul", "linear", "attention", "cross_entropy"]), "op")
    if kind == "matmul":
        assert_like_torch(lambda x, y: x @ y.T, lambda x, y: x @ y.T, [a, b], scale=3)
    elif kind == "linear":
        assert_like_torch(F.linear, TF.linear, [a, b], scale=3)
    elif kind == "attention":
        assert_like_torch(lambda q, kv: F.scaled_dot_product_attention(q, kv, kv, is_causal=n == m),
                          lambda q, kv: TF.scaled_dot_product_attention(q, kv, kv, is_causal=n == m), [a, b],
                          scale=3)  # fmt: skip
    else:
        targets = np.random.default_rng(0).integers(0, k, n)
        assert_like_torch(lambda x: F.cross_entropy(x, targets),
                          lambda x: TF.cross_entropy(x, torch.from_numpy(targets)), [a], scale=3)  # fmt: skip
