"""Bad arguments, generated: where PyTorch refuses a call, numpy2gpt must refuse it too, with one line that names
the problem (a shape, an axis or a size from the call), never a wrong answer or a bare NumPy traceback.

Shapes that do not broadcast, matmul with mismatched inner sizes, axes out of range or repeated, joins of
tensors whose other sizes differ, split sections that do not add up, reshape/expand to impossible shapes,
layer_norm/embedding/cross_entropy arguments that do not fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hypothesis")

from hypothesis import assume, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import numpy2gpt.autograd as ag  # noqa: E402
import numpy2gpt.nn.functional as F  # noqa: E402, N812
from tests.property.differential import to_torch  # noqa: E402
from tests.property.strategies import arrays, budget, shapes  # noqa: E402

TF = torch.nn.functional
OURS_ERRORS = (ValueError, IndexError, TypeError, RuntimeError)


def both_refuse(ours: Any, theirs: Any, xs: list[np.ndarray], names: tuple[Any, ...]) -> None:
    """PyTorch raises; numpy2gpt raises one of OURS_ERRORS with a one-line message naming one of ``names``."""
    with pytest.raises(Exception):  # noqa: B017 - PyTorch's types vary (RuntimeError, IndexError, ValueError)
        theirs(*[to_torch(x) for x in xs])
    with pytest.raises(OURS_ERRORS) as info:
        ours(*[ag.Tensor(x) for x in xs])
    message = str(info.value)
    assert message and "\n" not in message.strip(), f"not one line: {message!r}"
    spelled = {str(n) for n in names} | {str(n).replace(" ", "") for n in names}
    assert any(s in message for s in spelled), f"{message!r} names none of {names}"


@st.composite
def clashing_shapes(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes that do not broadcast: some aligned pair of sizes differs and neither is 1."""
    a = draw(shapes(min_dims=1, max_side=4))
    b = list(a[len(a) - draw(st.integers(1, len(a))) :])
    i = draw(st.integers(0, len(b) - 1))
    b[i] = draw(st.sampled_from([n for n in (2, 3, 5) if n != a[len(a) - len(b) + i] and a[len(a) - len(b) + i] != 1]
                                or [0]))  # fmt: skip
    assume(a[len(a) - len(b) + i] != 1 and b[i] != a[len(a) - len(b) + i])
    return a, tuple(b)


@given(st.data())
@budget(80)
def test_no_broadcast(data: Any) -> None:
    sa, sb = data.draw(clashing_shapes(), "shapes")
    a, b = data.draw(arrays(sa, np.float32), "a"), data.draw(arrays(sb, np.float32), "b")
    op = data.draw(st.sampled_from(["add", "mul", "div", "pow", "maximum", "where"]), "op")
    fns = {"add": (lambda x, y: x + y, lambda x, y: x + y), "mul": (ag.mul, torch.mul),
           "div": (lambda x, y: x / y, lambda x, y: x / y), "pow": (lambda x, y: x**y, lambda x, y: x**y),
           "maximum": (ag.maximum, torch.maximum),
           "where": (lambda x, y: ag.where(x > 0, x, y), lambda x, y: torch.where(x > 0, x, y))}  # fmt: skip
    both_refuse(*fns[op], [a, b], (sa, sb))


@given(st.data())
@budget(60)
def test_matmul_mismatch(data: Any) -> None:
    n, k, m = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3))
    k2 = data.draw(st.integers(0, 5).filter(lambda v: v != k), "other inner size")
    sa = (n, k) if data.draw(st.booleans()) else (k,)
    sb = (k2, m) if data.draw(st.booleans()) else (k2,)
    a, b = data.draw(arrays(sa, np.float64)), data.draw(arrays(sb, np.float64))
    both_refuse(lambda x, y: x @ y, lambda x, y: x @ y, [a, b], (sa, sb, k, k2))


@given(st.data())
@budget(80)
def test_bad_axes(data: Any) -> None:
    shape = data.draw(shapes(min_dims=1, max_dims=4), "shape")
    n = len(shape)
    bad = data.draw(st.sampled_from([n, n + 2, -n - 1]), "axis")
    x = data.draw(arrays(shape, np.float32), "x")
    op = data.draw(st.sampled_from(["sum", "mean", "amax", "var", "softmax", "cat", "stack", "split", "unbind",
                                    "repeated"]), "op")  # fmt: skip
    assume(not (op == "cat" and shape == (0,)))  # PyTorch's legacy rule: cat skips 1-D empty tensors, any dim
    if op == "repeated":
        axes = (0, -n) if data.draw(st.booleans()) else (n - 1, -1)
        both_refuse(lambda t: t.sum(axes), lambda t: t.sum(axes), [x], (axes, 0, n - 1))
        return
    if op == "stack":
        bad = n + 2 if bad == n else bad - 1 if bad < 0 else bad  # stack accepts the axis n
    calls = {"sum": (lambda t: t.sum(bad), lambda t: t.sum(bad)),
             "mean": (lambda t: ag.mean(t, bad), lambda t: t.mean(bad)),
             "amax": (lambda t: ag.amax(t, bad), lambda t: t.amax(bad)),
             "var": (lambda t: t.var(bad), lambda t: t.var(bad)),
             "softmax": (lambda t: F.softmax(t, bad), lambda t: t.softmax(bad)),
             "cat": (lambda t: ag.cat([t, t], bad), lambda t: torch.cat([t, t], bad)),
             "stack": (lambda t: ag.stack([t, t], bad), lambda t: torch.stack([t, t], bad)),
             "split": (lambda t: t.split(1, bad), lambda t: t.split(1, bad)),
             "unbind": (lambda t: ag.unbind(t, bad), lambda t: t.unbind(bad))}  # fmt: skip
    both_refuse(*calls[op], [x], (bad,))


@given(st.data())
@budget(60)
def test_bad_joins_and_splits(data: Any) -> None:
    shape = data.draw(shapes(min_dims=2, max_dims=3, min_side=1), "shape")
    x = data.draw(arrays(shape, np.float32), "x")
    other = (*shape[:-1], shape[-1] + 1)
    y = data.draw(arrays(other, np.float32), "y")
    kind = data.draw(st.sampled_from(["cat", "stack", "split", "chunk0", "split0"]), "op")
    if kind == "cat":  # joined on axis 0, the last sizes differ
        both_refuse(lambda a, b: ag.cat([a, b], 0), lambda a, b: torch.cat([a, b], 0), [x, y], (shape, other))
    elif kind == "stack":
        both_refuse(lambda a, b: ag.stack([a, b]), lambda a, b: torch.stack([a, b]), [x, y], (shape, other))
    elif kind == "split":
        secs = [shape[0], 1]
        both_refuse(lambda a: ag.split(a, secs, 0), lambda a: a.split(secs, 0), [x], (secs, shape[0], shape))
    elif kind == "chunk0":
        both_refuse(lambda a: a.chunk(0), lambda a: a.chunk(0), [x], ("0", "chunks"))
    else:
        both_refuse(lambda a: a.split(0), lambda a: a.split(0), [x], ("0", "split_size"))


@given(st.data())
@budget(60)
def test_bad_shapes(data: Any) -> None:
    shape = data.draw(shapes(min_dims=1, max_dims=3, min_side=1), "shape")
    x = data.draw(arrays(shape, np.float32), "x")
    size = int(np.prod(shape))
    kind = data.draw(st.sampled_from(["reshape", "reshape-two-minus-one", "expand", "view-size"]), "op")
    if kind == "reshape":
        new = (size + 1,)
        both_refuse(lambda t: t.reshape(new), lambda t: t.reshape(new), [x], (new, shape, size))
    elif kind == "reshape-two-minus-one":
        both_refuse(lambda t: t.reshape(-1, -1), lambda t: t.reshape(-1, -1), [x], ("-1",))
    elif kind == "expand":
        new = (*shape[:-1], shape[-1] + 1) if shape[-1] != 1 else shape[1:]  # a size changed, or fewer dims
        both_refuse(lambda t: t.expand(*new), lambda t: t.expand(*new), [x], (new, shape))
    else:
        new = (size, 2)
        both_refuse(lambda t: t.view(*new), lambda t: t.view(*new), [x], (new, shape, size))


@given(st.data())
@budget(60)
def test_bad_nn_arguments(data: Any) -> None:
    rows, dim = data.draw(st.integers(1, 4), "rows"), data.draw(st.integers(1, 3), "dim")
    kind = data.draw(st.sampled_from(["embedding", "layer_norm", "cross_entropy-target", "linear"]), "op")
    if kind == "embedding":
        bad = data.draw(st.sampled_from([rows, rows + 3, -1]), "id")
        ids = np.array([0, bad])
        both_refuse(lambda w: F.embedding(ids, w), lambda w: TF.embedding(torch.from_numpy(ids), w),
                    [np.ones((rows, dim), np.float32)], (bad,))  # fmt: skip
    elif kind == "layer_norm":
        x = np.ones((2, dim), np.float32)
        both_refuse(lambda t: F.layer_norm(t, (dim + 1,)), lambda t: TF.layer_norm(t, (dim + 1,)), [x],
                    ((dim + 1,), (2, dim), dim + 1))  # fmt: skip
    elif kind == "cross_entropy-target":
        bad = data.draw(st.sampled_from([dim, dim + 2, -2]), "target")
        targets = np.array([0, bad])
        both_refuse(lambda t: F.cross_entropy(t, targets), lambda t: TF.cross_entropy(t, torch.from_numpy(targets)),
                    [np.ones((2, dim), np.float32)], (bad,))  # fmt: skip
    else:
        x, w = np.ones((2, dim), np.float32), np.ones((3, dim + 1), np.float32)
        both_refuse(F.linear, TF.linear, [x, w], ((2, dim), (3, dim + 1), dim, dim + 1))
