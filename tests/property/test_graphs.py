"""Random multi-op programs against PyTorch, with first and second derivatives.

A program starts from two or three inputs of broadcastable shapes (0 to 4 dimensions, size-0 and size-1
axes, every memory layout) and applies 1 to 8 random steps, each taking its operands from anything computed
so far, so values are reused (the engine must add several gradient contributions) and broadcast. Every step
is smooth or piecewise smooth on all reals and bounded in growth, so no input overflows. The same program
runs in both libraries; ``assert_like_torch`` compares the result, ``grad(..., create_graph=True)`` with
``torch.autograd.grad(..., create_graph=True)``, and the derivative of ``sum(grad * h)`` once more.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hypothesis")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import numpy2gpt.autograd as ag  # noqa: E402
from tests.property.differential import assert_close, assert_like_torch, to_torch  # noqa: E402
from tests.property.strategies import FLOATS, arrays, broadcastable, budget, shapes  # noqa: E402

OURS = SimpleNamespace(maximum=ag.maximum, minimum=ag.minimum, where=ag.where, amax=lambda x, a: x.max(a, True))
THEIRS = SimpleNamespace(maximum=torch.maximum, minimum=torch.minimum, where=torch.where,
                         amax=lambda x, a: x.amax(a, True))  # fmt: skip

UNARY = {
    "tanh": lambda lib, x: x.tanh(),
    "sigmoid": lambda lib, x: x.sigmoid(),
    "square": lambda lib, x: x * x,
    "cube": lambda lib, x: x**3,
    "exp(tanh)": lambda lib, x: x.tanh().exp(),
    "sqrt(x^2+1)": lambda lib, x: (x * x + 1.0).sqrt(),
    "log(x^2+1)": lambda lib, x: (x * x + 1).log(),
    "x/(x^2+1)": lambda lib, x: x / (x * x + 1.0),
    "neg": lambda lib, x: -x,
    "scale": lambda lib, x: 0.5 * x - 0.25,
    "abs": lambda lib, x: x.abs(),
    "clip": lambda lib, x: x.clamp(-0.8, 0.8),
    "rsqrt": lambda lib, x: (x * x + 0.5) ** -0.5,
    "sin": lambda lib, x: x.sin(),
    "cos(2x)": lambda lib, x: (2.0 * x).cos(),
}
REDUCE = {
    "sum": lambda lib, x, a: x.sum(a, True),
    "mean": lambda lib, x, a: x.mean(a, True),
    "amax": lambda lib, x, a: lib.amax(x, a),
}
BINARY = {
    "add": lambda lib, a, b: a + b,
    "sub": lambda lib, a, b: a - b,
    "mul": lambda lib, a, b: a * b,
    "div": lambda lib, a, b: a / (b * b + 1.0),
    "pow": lambda lib, a, b: (a * a + 1.0) ** b.tanh(),
    "maximum": lambda lib, a, b: lib.maximum(a, b),
    "minimum": lambda lib, a, b: lib.minimum(a, b),
    "where": lambda lib, a, b: lib.where(a > b, a * b, a - b),
}


@st.composite
def programs(draw: Any) -> list[tuple[Any, ...]]:
    """Steps ("u", name, i), ("r", name, i, axis seed) or ("b", name, i, j) over a growing pool of values."""
    steps: list[tuple[Any, ...]] = []
    pool = draw(st.integers(2, 3))
    for _ in range(draw(st.integers(1, 8))):
        pick = st.integers(0, pool - 1)
        kind = draw(st.sampled_from("uuurbbb"))
        if kind == "u":
            steps.append(("u", draw(st.sampled_from(sorted(UNARY))), draw(pick)))
        elif kind == "r":
            steps.append(("r", draw(st.sampled_from(sorted(REDUCE))), draw(pick), draw(st.integers(0, 99))))
        else:
            steps.append(("b", draw(st.sampled_from(sorted(BINARY))), draw(pick), draw(pick)))
        pool += 1
    return steps


def run(lib: Any, steps: list[tuple[Any, ...]], *inputs: Any) -> Any:
    pool = list(inputs)
    for step in steps:
        if step[0] == "u":
            pool.append(UNARY[step[1]](lib, pool[step[2]]))
        elif step[0] == "r":
            x = pool[step[2]]
            pool.append(REDUCE[step[1]](lib, x, step[3] % x.ndim) if x.ndim and 0 not in x.shape else x)
        else:
            pool.append(BINARY[step[1]](lib, pool[step[2]], pool[step[3]]))
    return pool[-1] + pool[-2]  # the last two results, so most programs use more than one input


@given(st.data())
@budget(250)
def test_random_program(data: Any) -> None:
    shape = data.draw(shapes(max_dims=4, max_side=3), "shape")
    dtype = data.draw(st.sampled_from(FLOATS), "dtype")
    xs = [data.draw(arrays(shape, dtype), "x0")]
    for _ in range(2):  # each input broadcasts against all the ones before it
        own = data.draw(broadcastable(shape), "shape")
        xs.append(data.draw(arrays(own, dtype), "x"))
        shape = np.broadcast_shapes(shape, own)
    steps = data.draw(programs(), "program")
    frozen = data.draw(st.lists(st.booleans(), min_size=3, max_size=3), "inputs without requires_grad")
    assert_like_torch(lambda *ts: run(OURS, steps, *ts), lambda *ts: run(THEIRS, steps, *ts), xs, second=True,
                      scale=20 if dtype == np.float32 else 5, frozen=frozen)  # fmt: skip


@pytest.mark.filterwarnings("ignore:grad and param do not obey the gradient layout contract:UserWarning")  # torch
@given(st.data())
@budget(80)
def test_backward_accumulates_into_leaves(data: Any) -> None:
    """The same programs through ``backward()``: leaves' ``.grad`` as PyTorch's, twice with retain_graph (the
    gradients add up), in each leaf's own dtype (float32 and float64 leaves mixed)."""
    shape = data.draw(shapes(max_dims=3, max_side=3), "shape")
    xs = [data.draw(arrays(shape, data.draw(st.sampled_from(FLOATS))), "x0")]
    for _ in range(2):
        own = data.draw(broadcastable(shape), "shape")
        xs.append(data.draw(arrays(own, data.draw(st.sampled_from(FLOATS))), "x"))
        shape = np.broadcast_shapes(shape, own)
    steps = data.draw(programs(), "program")
    ours = [ag.Tensor(x, requires_grad=True) for x in xs]
    theirs = [to_torch(x, True) for x in xs]
    # NumPy's promotion, which numpy2gpt follows: a 0-d float64 leaf widens float32 ones (PyTorch's would not), so
    # PyTorch computes in np.result_type too, through casts that carry each gradient back in its leaf's dtype.
    common = getattr(torch, str(np.result_type(*xs)))
    y, yt = run(OURS, steps, *ours), run(THEIRS, steps, *(t.to(common) for t in theirs))
    g = np.random.default_rng(0).standard_normal(y.shape).astype(y.dtype)
    for _ in range(2):
        y.backward(ag.Tensor(g), retain_graph=True)
        yt.backward(torch.tensor(g).to(yt.dtype), retain_graph=True)
    grads = [x.grad.data for x in ours if x.grad is not None]
    for i, g in enumerate(grads):  # leaves own their .grad: writeable, shared with no other leaf or input
        assert g.flags.writeable, f"grad {i} is read-only"
        assert not any(np.shares_memory(g, other) for other in grads[:i] + [x.data for x in ours]), f"grad {i} shared"
    for i, (x, xt) in enumerate(zip(ours, theirs, strict=True)):
        zero = np.zeros(x.shape, x.dtype)
        assert_close(zero if x.grad is None else x.grad, zero if xt.grad is None else xt.grad, f"x{i}.grad",
                     scale=20, tol=np.dtype(np.float32))  # fmt: skip


@given(st.data())
@budget(60)
def test_third_derivative(data: Any) -> None:
    """Differentiating three times: d/dx of sum(h2 * d/dx of sum(h1 * d/dx of sum(u * program)))."""
    shape = data.draw(shapes(max_dims=3, max_side=3), "shape")
    dtype = np.dtype(np.float64)
    xs = [data.draw(arrays(shape, dtype), "x0"), data.draw(arrays(data.draw(broadcastable(shape)), dtype), "x1")]
    steps = data.draw(programs(), "program")  # (the third input is x0 again)
    ours, theirs = [ag.Tensor(x, requires_grad=True) for x in xs], [to_torch(x, True) for x in xs]
    y, yt = run(OURS, steps, *ours, ours[0]), run(THEIRS, steps, *theirs, theirs[0])
    rng = np.random.default_rng(0)
    u = rng.standard_normal(y.shape)
    s, st_ = (y * ag.Tensor(u)).sum(), (yt * torch.tensor(u)).sum()
    for order in (1, 2, 3):  # a side whose last derivative has no graph has zero derivatives from there on
        g = ag.grad(s, ours, allow_unused=True, create_graph=order < 3) if s is not None else [None] * 2
        gt = (
            torch.autograd.grad(st_, theirs, allow_unused=True, create_graph=order < 3)
            if st_ is not None
            else [None] * 2
        )
        for i, (a, b) in enumerate(zip(g, gt, strict=True)):
            zero = np.zeros(xs[i].shape)
            assert_close(zero if a is None else a, zero if b is None else b, f"derivative {order} of x{i}", scale=100)
        hs = [rng.standard_normal(x.shape) for x in xs]
        terms = [(a * ag.Tensor(h)).sum() for a, h in zip(g, hs, strict=True) if a is not None and a.requires_grad]
        tterms = [(b * torch.tensor(h)).sum() for b, h in zip(gt, hs, strict=True) if b is not None and b.requires_grad]
        s, st_ = sum(terms) if terms else None, sum(tterms) if tterms else None
