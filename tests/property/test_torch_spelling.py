"""PyTorch's spelling, verbatim: each call below is one piece of source text run on a numpy2gpt Tensor (with
``lib = numpy2gpt.autograd``) and on a torch tensor (``lib = torch``), in function and method form, with
PyTorch's keywords (dim=, keepdim=, start_dim=, ...) and NumPy's where numpy2gpt accepts both (axis=,
keepdims=). Values, dtypes and gradients must agree; size()/numel()/dim() must give the same numbers.

(``max``/``min`` are numpy2gpt's amax/amin on purpose, per the autograd README, so the torch side of those
is spelled amax/amin.)
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hypothesis")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import numpy2gpt.autograd as ag  # noqa: E402
from tests.property.differential import assert_like_torch, to_torch  # noqa: E402
from tests.property.strategies import FLOATS, arrays, budget, shapes  # noqa: E402

# name: call(lib, t, d, k) where d is a valid dim of t (t has at least one dimension) and k a bool
SAME_TEXT = {
    "sum(dim=, keepdim=)": lambda lib, t, d, k: t.sum(dim=d, keepdim=k),
    "lib.sum(t, dim=)": lambda lib, t, d, k: lib.sum(t, dim=d),
    "sum((d,), keepdim=)": lambda lib, t, d, k: t.sum((d,), keepdim=k),
    "mean(d, k)": lambda lib, t, d, k: t.mean(d, k),
    "lib.mean(t, dim=, keepdim=)": lambda lib, t, d, k: lib.mean(t, dim=d, keepdim=k),
    "lib.amax(t, dim=, keepdim=)": lambda lib, t, d, k: lib.amax(t, dim=d, keepdim=k),
    "lib.amin(t, d)": lambda lib, t, d, k: lib.amin(t, d),
    "var(dim=, correction=0)": lambda lib, t, d, k: t.var(dim=d, keepdim=k, correction=0),
    "lib.std(t, dim=, keepdim=)": lambda lib, t, d, k: lib.std(t, dim=d, keepdim=k),
    "argmax(dim=, keepdim=)": lambda lib, t, d, k: t.argmax(dim=d, keepdim=k),
    "lib.argmin(t, dim=)": lambda lib, t, d, k: lib.argmin(t, dim=d),
    "softmax(dim=)": lambda lib, t, d, k: t.softmax(dim=d),
    "lib.log_softmax(t, d)": lambda lib, t, d, k: lib.log_softmax(t, d),
    "flatten(start_dim=)": lambda lib, t, d, k: t.flatten(start_dim=d),
    "lib.flatten(t, 0, d)": lambda lib, t, d, k: lib.flatten(t, 0, d),
    "transpose(d, 0)": lambda lib, t, d, k: t.transpose(d, 0),
    "lib.transpose(t, 0, d)": lambda lib, t, d, k: lib.transpose(t, 0, d),
    "swapdims(d, -1)": lambda lib, t, d, k: t.swapdims(d, -1),
    "unsqueeze(dim=)": lambda lib, t, d, k: t.unsqueeze(dim=d),
    "lib.unsqueeze(t, d)": lambda lib, t, d, k: lib.unsqueeze(t, d),
    "squeeze(dim=)": lambda lib, t, d, k: t.squeeze(dim=d),
    "lib.squeeze(t, d)": lambda lib, t, d, k: lib.squeeze(t, d),
    "lib.cat([t, t], dim=)": lambda lib, t, d, k: lib.cat([t, 2 * t], dim=d),
    "lib.stack((t, t), dim=)": lambda lib, t, d, k: lib.stack((t, t * t), dim=d),
    "split(2, dim=)": lambda lib, t, d, k: t.split(2, dim=d),
    "lib.split(t, 1, d)": lambda lib, t, d, k: lib.split(t, 1, d),
    "chunk(2, dim=)": lambda lib, t, d, k: t.chunk(2, dim=d),
    "lib.chunk(t, 3, d)": lambda lib, t, d, k: lib.chunk(t, 3, d),
    "unbind(dim=)": lambda lib, t, d, k: t.unbind(dim=d),
    "lib.unbind(t, d)": lambda lib, t, d, k: lib.unbind(t, d),
    "clone()": lambda lib, t, d, k: t.clone() * 3.0,
    "lib.clone(t)": lambda lib, t, d, k: lib.clone(t) + t,
    "sin()": lambda lib, t, d, k: t.sin(),
    "lib.cos(t)": lambda lib, t, d, k: lib.cos(t),
    "relu()": lambda lib, t, d, k: t.relu(),
    "lib.relu(t)": lambda lib, t, d, k: lib.relu(t),
    "t() of a matrix": lambda lib, t, d, k: t.flatten(1).t() if t.ndim > 1 else t.t(),
    "lib.t(t)": lambda lib, t, d, k: lib.t(t.flatten(1)) if t.ndim > 1 else lib.t(t),
    "view(-1)": lambda lib, t, d, k: t.contiguous().view(-1),
    "add/sub/mul/div methods": lambda lib, t, d, k: t.add(t.mul(2.0)).sub(0.5).div(t.abs().add(1.0)),
    "pow/neg methods": lambda lib, t, d, k: t.pow(2).neg() + t.abs().pow(0.5),
    "where(cond, other)": lambda lib, t, d, k: t.where(t > 0, 0.5 * t),
    "tril(d)": lambda lib, t, d, k: t.unsqueeze(-1).tril(d),
    "triu(diagonal=)": lambda lib, t, d, k: t.unsqueeze(0).triu(diagonal=-d),
}
SIZES = {
    "size()": lambda t, d: tuple(t.size()),
    "size(d)": lambda t, d: t.size(d),
    "size(dim=)": lambda t, d: t.size(dim=d),
    "numel()": lambda t, d: t.numel(),
    "dim()": lambda t, d: t.dim(),
    "shape": lambda t, d: tuple(t.shape),
}


@pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0:UserWarning")
@given(st.data())
@budget(250)
def test_same_source_text(data: Any) -> None:
    name = data.draw(st.sampled_from(sorted(SAME_TEXT)), "call")
    call = SAME_TEXT[name]
    shape = data.draw(shapes(min_dims=1, max_dims=4), "shape")
    n = len(shape) + (1 if name.startswith(("unsqueeze", "lib.unsqueeze", "lib.stack")) else 0)
    d = data.draw(st.integers(-n, n - 1), "dim")
    k = data.draw(st.booleans(), "keepdim")
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS)), "away"), "x")
    empty_reduction = name.startswith(("lib.am", "arg", "lib.arg")) and shape[d] == 0
    if empty_reduction:  # nothing to take the max of: both refuse
        with pytest.raises((RuntimeError, IndexError)):
            call(torch, to_torch(x), d, k)
        with pytest.raises((ValueError, IndexError, RuntimeError)):
            call(ag, ag.Tensor(x), d, k)
    else:  # (var/std where n <= correction: first order only, see test_reductions.py)
        second = not ("std" in name or "var" in name) or shape[d] > 1
        assert_like_torch(lambda t: call(ag, t, d, k), lambda t: call(torch, t, d, k), [x], second=second, scale=10)


@given(st.data())
@budget(60)
def test_sizes(data: Any) -> None:
    shape = data.draw(shapes(), "shape")
    d = data.draw(st.integers(-len(shape), len(shape) - 1) if shape else st.sampled_from([None]), "dim")
    x = data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS))), "x")
    for name, fn in SIZES.items():
        if d is not None or name not in ("size(d)", "size(dim=)"):
            assert fn(ag.Tensor(x), d) == fn(to_torch(x), d), name
