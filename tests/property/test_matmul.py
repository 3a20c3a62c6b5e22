"""matmul against PyTorch: 1-D to 4-D operands, batch dimensions that broadcast, size-0 and size-1 sizes,
every memory layout, float32/float64 (and int64 without gradients); first and second derivatives.

Mixed float32/float64 operands promote as NumPy does (packages/autograd README; PyTorch refuses them), so the
PyTorch side is given both in float64 then. An ndarray operand takes the tensor's dtype, as any constant.
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


@st.composite
def matmul_shapes(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    n, k, m = (draw(st.integers(0, 4)) for _ in range(3))
    batch = draw(shapes(max_dims=2), "batch")
    other = draw(broadcastable(batch))
    ba, bb = (batch, other) if draw(st.booleans()) else (other, batch)
    ba, bb = ba[max(0, len(ba) - 2) :], bb[max(0, len(bb) - 2) :]  # at most 4-D operands
    a = (k,) if draw(st.integers(0, 4)) == 0 else (*ba, n, k)
    b = (k,) if draw(st.integers(0, 4)) == 0 else (*bb, k, m)
    return a, b


def promoted(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    wide = torch.promote_types(a.dtype, b.dtype)
    return a.to(wide) @ b.to(wide)


@given(st.data())
@budget(200)
def test_matmul(data: Any) -> None:
    sa, sb = data.draw(matmul_shapes(), "shapes")
    da, db = data.draw(st.sampled_from([(f, f) for f in FLOATS] + [FLOATS, FLOATS[::-1], (INTS[0], INTS[0])]))
    a, b = data.draw(arrays(sa, da), "a"), data.draw(arrays(sb, db), "b")
    ours = data.draw(st.sampled_from([lambda x, y: x @ y, ag.matmul, lambda x, y: x.matmul(y)]), "spelling")
    frozen = data.draw(st.sampled_from([(), (True,), (False, True)]), "a constant input")
    assert_like_torch(ours, promoted, [a, b], second=True, scale=5, frozen=frozen)


@given(st.data())
@budget(60)
def test_matmul_with_ndarray(data: Any) -> None:
    sa, sb = data.draw(matmul_shapes(), "shapes")
    dtype = data.draw(st.sampled_from(FLOATS), "dtype")
    if data.draw(st.booleans(), "ndarray on the right"):
        a = data.draw(arrays(sa, dtype), "a")
        const = np.random.default_rng(0).standard_normal(sb)  # float64: takes the tensor's dtype
        assert_like_torch(
            lambda x: x @ const, lambda x: x @ torch.tensor(const, dtype=x.dtype), [a], second=True, scale=5
        )
    else:
        const = np.random.default_rng(0).standard_normal(sa)
        b = data.draw(arrays(sb, dtype), "b")
        assert_like_torch(
            lambda y: const @ y, lambda y: torch.tensor(const, dtype=y.dtype) @ y, [b], second=True, scale=5
        )
