"""The backward engine: generation order (the diamond), long chains, gradient accumulation, freed graphs,
retain_grad, grad(), and leaves owning their .grad arrays."""

from __future__ import annotations

import sys
from typing import ClassVar

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.autograd import Function, Tensor


class Counted(Function):
    """y = scale * x, counting how many times each instance's backward runs."""

    calls: ClassVar[dict[str, int]] = {}

    def __init__(self, label: str, scale: float):
        self.label, self.scale = label, scale

    def forward(self, x):
        return x * self.scale

    def backward(self, gy):
        Counted.calls[self.label] = Counted.calls.get(self.label, 0) + 1
        return gy * self.scale


class CountedMul(Function):
    """y = a * b, counting backward calls."""

    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        Counted.calls["f"] = Counted.calls.get("f", 0) + 1
        a, b = self.inputs
        return gy * b, gy * a


def test_diamond_with_unequal_path_lengths_runs_each_backward_once():
    """y = f(b(a), c(a)): b is one op deep, c three. A naive depth-first walk would push a's gradient
    further back after only one of the two paths; generation order waits for both."""
    Counted.calls = {}
    x = Tensor(np.array([1.5, -2.0]), requires_grad=True)
    a = Counted("a", 3.0)(x)  # a = 3x
    b = Counted("b", 2.0)(a)  # b = 2a            (1 op deep)
    c = Counted("c3", 7.0)(Counted("c2", 5.0)(Counted("c1", 0.5)(a)))  # c = 17.5a (3 ops deep)
    y = CountedMul()(b, c)  # y = 35 a^2 = 315 x^2
    y.sum().backward()
    assert Counted.calls == {"f": 1, "b": 1, "c1": 1, "c2": 1, "c3": 1, "a": 1}
    np.testing.assert_array_equal(x.grad.data, 630.0 * x.data)  # exact for these inputs
    assert a.generation == 1 and b.generation == 2 and c.generation == 4 and y.generation == 5


def test_diamond_through_builtin_ops_exact():
    x = Tensor(np.array([0.5, 2.0]), requires_grad=True)
    a = x * 2.0
    y = a * a.exp().log().tanh() + a  # two paths of different lengths from a
    y.sum().backward()
    t = np.tanh(2 * x.data)
    np.testing.assert_allclose(x.grad.data, 2 * (t + 2 * x.data * (1 - t**2)) + 2, rtol=1e-12)


def test_chain_of_10000_ops_does_not_recurse():
    limit = sys.getrecursionlimit()
    x = Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    assert y.generation == 10_000
    sys.setrecursionlimit(200)  # the engine must not need the stack
    try:
        y.backward()
    finally:
        sys.setrecursionlimit(limit)
    np.testing.assert_allclose(x.grad.data, [1.0001**10_000], rtol=1e-9)


def test_grad_accumulates_across_backward_calls_on_a_retained_graph():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad.data, [2, 4])
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [4, 8])


def test_grad_accumulates_across_two_graphs_and_zero_grad_resets():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [5, 7])
    x.zero_grad()
    assert x.grad is None
    (x * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3, 3])


def test_accumulation_makes_a_new_array_rather_than_writing_into_the_old_one():
    x = Tensor(np.array([1.0]), requires_grad=True)
    (x * 2.0).backward()
    first = x.grad
    (x * 2.0).backward()
    assert first.data[0] == 2.0 and x.grad.data[0] == 4.0


def test_second_backward_through_a_freed_graph_raises():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x.exp() * 2.0).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"second time.*retain_graph=True"):
        y.backward()


def test_retain_grad_keeps_intermediate_gradients():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3.0
    y = (h * h).sum()
    y.backward(retain_grad=True)
    np.testing.assert_array_equal(h.grad.data, 2 * h.data)
    np.testing.assert_array_equal(y.grad.data, 1.0)
    np.testing.assert_array_equal(x.grad.data, 18 * x.data)


def test_without_retain_grad_intermediates_get_no_grad():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * 3.0
    (h * h).sum().backward()
    assert h.grad is None


def test_backward_on_non_scalar_without_grad_names_the_shape():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"\(2, 3\)"):
        (x * 2.0).backward()


def test_backward_with_explicit_gradient_for_non_scalar():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    g = np.arange(6.0).reshape(2, 3)
    (x * 2.0).backward(g)
    np.testing.assert_array_equal(x.grad.data, 2 * g)
    with pytest.raises(RuntimeError, match=r"gradient of shape \(3,\) given for an output of shape \(2, 3\)"):
        (x * 2.0).backward(np.ones(3))


def test_backward_on_a_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(2)).sum().backward()


@pytest.mark.parametrize("data", [np.array([1, 2]), np.array([True]), 3])
def test_integer_tensors_cannot_require_grad(data):
    with pytest.raises(TypeError, match="floating point"):
        Tensor(data, requires_grad=True)
    with pytest.raises(TypeError, match="floating point"):
        Tensor(data).requires_grad_()


def test_constants_and_integer_outputs_get_no_gradient():
    x = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    c = Tensor(np.array([3.0, 4.0]))
    y = (x * c).sum()
    assert not (x > 0).requires_grad and (x > 0).creator is None
    y.backward()
    assert c.grad is None
    np.testing.assert_array_equal(x.grad.data, [3, 4])


def test_leaves_never_share_a_gradient_array():
    """Optimizers and clipping modify .grad in place: two leaves must never hold the same array."""
    w1 = Tensor(np.ones(3), requires_grad=True)
    w2 = Tensor(np.ones(3), requires_grad=True)
    (w1 + w2).sum().backward()
    assert not np.shares_memory(w1.grad.data, w2.grad.data)
    w1.grad.data *= 0.5  # writeable, and leaves w2 alone
    np.testing.assert_array_equal(w2.grad.data, [1, 1, 1])

    x = Tensor(np.ones((2, 3)), requires_grad=True)
    b = Tensor(np.ones(6), requires_grad=True)
    ((x.reshape(6) + b) * 2.0).sum().backward()  # x gets a view of the array b gets
    assert not np.shares_memory(x.grad.data, b.grad.data)
    assert x.grad.data.flags.writeable and b.grad.data.flags.writeable


def test_leaf_grad_is_writeable_not_a_broadcast_view():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    x.sum().backward()  # dy broadcast to x's shape: a read-only view with stride 0
    x.grad.data *= 2.0
    np.testing.assert_array_equal(x.grad.data, np.full((2, 3), 2.0))


def test_leaf_grad_does_not_alias_the_callers_gradient_or_a_retained_grad():
    x = Tensor(np.ones(3), requires_grad=True)
    g = np.array([1.0, 2.0, 3.0])
    x.backward(g)  # a leaf as the root: its gradient is the caller's array
    x.grad.data[0] = 100.0
    assert g[0] == 1.0
    h = x * 1.0
    y = h + x
    y.backward(np.ones(3), retain_grad=True)
    assert not np.shares_memory(h.grad.data, x.grad.data)


def test_grad_returns_gradients_without_touching_dot_grad():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    w = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    h = x * w
    y = (h * h).sum()
    gx, gh = ag.grad(y, [x, h], retain_graph=True)
    np.testing.assert_array_equal(gx.data, 2 * h.data * w.data)
    np.testing.assert_array_equal(gh.data, 2 * h.data)  # an intermediate works too
    assert x.grad is None and w.grad is None and h.grad is None
    (gw,) = ag.grad(y, w)
    np.testing.assert_array_equal(gw.data, 2 * h.data * x.data)


def test_grad_unused_input():
    x = Tensor(np.ones(2), requires_grad=True)
    z = Tensor(np.ones(2), requires_grad=True, name="z")
    y = (x * 2.0).sum()
    with pytest.raises(RuntimeError, match="'z' of shape \\(2,\\) was not used"):
        ag.grad(y, [x, z], retain_graph=True)
    gx, gz = ag.grad(y, [x, z], allow_unused=True)
    assert gz is None and gx.data.tolist() == [2.0, 2.0]


def test_backward_of_several_roots():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    ag.backward([(x * 2.0).sum(), (x * x).sum()])
    np.testing.assert_array_equal(x.grad.data, [4, 6])


def test_multi_output_function_with_an_unused_output():
    x = Tensor(np.arange(6.0), requires_grad=True)
    _, b, _ = x.split(2)  # the first and last pieces are never used
    (b * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0, 0, 3, 3, 0, 0])


def test_custom_function_backward_checks():
    class WrongShape(Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return Tensor._wrap(np.ones(5))

    class WrongCount(Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy, gy

    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(
        RuntimeError, match=r"WrongShape.backward returned a gradient of shape \(5,\) for an input of shape \(3,\)"
    ):
        WrongShape()(x).sum().backward()
    with pytest.raises(RuntimeError, match=r"WrongCount\.backward returned 2 gradients for 1 inputs"):
        WrongCount()(x).sum().backward()


def test_needs_input_grad_lets_backward_skip_work():
    seen = []

    class Probe(Function):
        def forward(self, a, b):
            return a * b

        def backward(self, gy):
            seen.append(self.needs_input_grad)
            a, b = self.inputs
            return (gy * b if self.needs_input_grad[0] else None, gy * a if self.needs_input_grad[1] else None)

    x = Tensor(np.ones(2), requires_grad=True)
    Probe()(x, np.full(2, 3.0)).sum().backward()
    assert seen == [(True, False)]
    np.testing.assert_array_equal(x.grad.data, [3, 3])


def test_non_differentiable_backward_refuses_create_graph():
    class Fused(Function):
        differentiable_backward = False

        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return Tensor._wrap(gy.data * 2)

    x = Tensor(np.ones(2), requires_grad=True)
    y = Fused()(x).sum()
    with pytest.raises(RuntimeError, match=r"Fused.*create_graph"):
        ag.grad(y, x, create_graph=True)
    (g,) = ag.grad(Fused()(x).sum(), x)
    np.testing.assert_array_equal(g.data, [2, 2])


def test_function_call_records_only_when_needed():
    x = Tensor(np.ones(2))
    y = x.exp()
    assert y.creator is None and not y.requires_grad and y.generation == 0
    w = Tensor(np.ones(2), requires_grad=True)
    z = ag.exp(w)
    assert z.creator is not None and len(z.creator.inputs) == 1 and z.creator.inputs[0] is w
    assert z.requires_grad and z.generation == 1 and z.creator.needs_input_grad == (True,)


def test_leaves_own_their_grad_with_create_graph_too():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    w1 = Tensor(np.ones(2), requires_grad=True)
    w2 = Tensor(np.ones(2), requires_grad=True)
    ((w1 + w2) * x * x).sum().backward(create_graph=True)  # w1 and w2 would get the same x*x
    assert w1.grad is not w2.grad and not np.shares_memory(w1.grad.data, w2.grad.data)
    np.testing.assert_array_equal(w1.grad.data, [1, 4])
    (gx,) = ag.grad(w2.grad.sum(), x)  # the copy kept the graph: d(sum x^2)/dx = 2x
    np.testing.assert_array_equal(gx.data, [2, 4])
    for t in (x, w1, w2):
        t.grad = None  # break the create_graph cycles


def test_function_inputs_may_be_constants_and_do_not_upcast():
    class Affine(Function):
        """y = a * x + b with constants a, b passed as inputs."""

        def forward(self, x, a, b):
            return a * x + b

        def backward(self, gy):
            return gy * self.inputs[1], None, None

    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    y = Affine()(x, np.float64(2.0), np.array([0.5, 1.0, 1.5]))
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.data.tolist() == [2.0, 2.0, 2.0]
    z = Affine()(x, np.array([1, 2, 3]), 0.0)  # integer constants keep their dtype (indices stay indices)
    assert z.creator.inputs[1].dtype == np.int64 and z.creator.inputs[2].dtype == np.float32
