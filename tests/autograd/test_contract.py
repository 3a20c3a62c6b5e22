"""The public contract for fused ops (issue 10 items 2 and 3): ``needs_input_grad`` is known before forward,
backward may return ndarrays, and the shared kernels (softmax, log_softmax, relu, sum_to_array, as_tensor)
live in autograd, once."""

from __future__ import annotations

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.autograd import Function, Tensor

torch = pytest.importorskip("torch")


class Square(Function):
    """y = x**2 with an array backward that uses what forward saved: dx = 2 x dy."""

    differentiable_backward = False
    seen: tuple[bool, ...] | None = None

    def forward(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        Square.seen = self.needs_input_grad
        if self.needs_input_grad[0]:
            self.saved = 2.0 * x
        return x * x * w

    def backward(self, gy: Tensor) -> tuple[np.ndarray | None, np.ndarray | None]:
        need_x, need_w = self.needs_input_grad
        x, w = (t.data for t in self.inputs)
        gx = gy.data * self.saved * w if need_x else None
        gw = ag.sum_to_array(gy.data * x * x, w.shape) if need_w else None
        return gx, gw


def test_needs_input_grad_is_set_before_forward():
    x = Tensor([1.0, 2.0], requires_grad=True)
    w = Tensor([3.0])
    Square()(x, w)
    assert Square.seen == (True, False)
    Square()(w, x)
    assert Square.seen == (False, True)
    with ag.no_grad():
        f = Square()
        f(x, w)
    assert Square.seen == (False, False) and not hasattr(f, "saved")  # nothing saved when nothing records


def test_backward_may_return_arrays():
    x = Tensor([1.0, 2.0], requires_grad=True)
    w = Tensor([3.0], requires_grad=True)
    Square()(x, w).sum().backward()
    assert isinstance(x.grad, Tensor) and isinstance(w.grad, Tensor)
    np.testing.assert_array_equal(x.grad.data, [6.0, 12.0])
    np.testing.assert_array_equal(w.grad.data, [5.0])
    assert x.grad.dtype == np.float32


def test_array_gradient_under_create_graph_raises():
    class ArraySquare(Function):  # claims a differentiable backward but returns an array
        def forward(self, x):
            return x * x

        def backward(self, gy):
            return 2.0 * self.inputs[0].data * gy.data

    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"ArraySquare\.backward returned an ndarray"):
        ag.grad(ArraySquare()(x).sum(), x, create_graph=True)
    (g,) = ag.grad(ArraySquare()(x).sum(), x)
    np.testing.assert_array_equal(g.data, [2.0, 4.0])


def test_softmax_backward_twice_with_retain_graph():
    x0 = np.random.default_rng(0).standard_normal((3, 5))
    for op, top in ((ag.softmax, torch.softmax), (ag.log_softmax, torch.log_softmax)):
        x, t = Tensor(x0, requires_grad=True), torch.tensor(x0, requires_grad=True)
        w = np.random.default_rng(1).standard_normal((3, 5))
        y, z = (op(x, 1) * w).sum(), (top(t, 1) * torch.from_numpy(w)).sum()
        y.backward(retain_graph=True)
        y.backward()
        z.backward(retain_graph=True)
        z.backward()
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_softmax_second_derivative_matches_torch():
    x0 = np.random.default_rng(2).standard_normal((2, 4))
    w = np.random.default_rng(3).standard_normal((2, 4))
    for op, top in ((ag.softmax, torch.softmax), (ag.log_softmax, torch.log_softmax)):
        x, t = Tensor(x0, requires_grad=True), torch.tensor(x0, requires_grad=True)
        (g,) = ag.grad((op(x, -1) ** 2 * w).sum(), x, create_graph=True)
        (h,) = ag.grad((g * g).sum(), x)
        (gt,) = torch.autograd.grad((top(t, -1) ** 2 * torch.from_numpy(w)).sum(), t, create_graph=True)
        (ht,) = torch.autograd.grad((gt * gt).sum(), t)
        np.testing.assert_allclose(h.data, ht.numpy(), rtol=1e-10, atol=1e-12)


def test_relu_second_derivative_is_zero_and_recorded():
    x = Tensor([-1.0, 2.0, 3.0], requires_grad=True)
    (g,) = ag.grad((x.relu() * x).sum(), x, create_graph=True)  # d/dx (x relu x) = 2x where x > 0
    np.testing.assert_array_equal(g.data, [0.0, 4.0, 6.0])
    (h,) = ag.grad(g.sum(), x)
    np.testing.assert_array_equal(h.data, [0.0, 2.0, 2.0])


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_arguments(op):
    x = Tensor(np.arange(6.0).reshape(2, 3))
    fn = getattr(ag, op)
    np.testing.assert_array_equal(fn(x, axis=0).data, fn(x, 0).data)
    np.testing.assert_array_equal(fn(x).data, getattr(x, op)(-1).data)
    with pytest.raises(TypeError, match="both dim= and axis="):
        fn(x, 0, axis=0)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        fn(x, 2)
    with pytest.raises(TypeError, match="floating point"):
        fn(Tensor(np.arange(3)))


@pytest.mark.parametrize("shape", [(0, 4), (3, 0), (0,)])
def test_softmax_of_size_zero_matches_torch(shape):
    for dim in range(len(shape)):
        for op, top in ((ag.softmax, torch.softmax), (ag.log_softmax, torch.log_softmax)):
            x = Tensor(np.zeros(shape), requires_grad=True)
            y = op(x, dim)
            assert y.shape == tuple(top(torch.zeros(shape), dim).shape)
            y.sum().backward()
            assert x.grad.shape == shape


def test_array_kernels_keep_dtype_and_are_stable():
    a = np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32)
    p, lp = ag.softmax_array(a), ag.log_softmax_array(a, axis=-1)
    assert p.dtype == lp.dtype == np.float32
    np.testing.assert_allclose(p, torch.softmax(torch.from_numpy(a), -1).numpy())
    np.testing.assert_allclose(lp, torch.log_softmax(torch.from_numpy(a), -1).numpy())
    np.testing.assert_allclose(ag.softmax_array(np.arange(6.0).reshape(2, 3), 0).sum(0), np.ones(3))


def test_sum_to_array_matches_the_tensor_op():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((2, 3, 4))
    for shape in [(3, 4), (1, 4), (3, 1), (4,), (1,), (), (2, 1, 1), (2, 3, 4)]:
        expected = ag.sum_to(Tensor(g), shape).data
        got = ag.sum_to_array(g, shape)
        assert type(got) is np.ndarray and got.shape == shape
        np.testing.assert_allclose(got, expected)


def test_as_tensor_shares_and_converts():
    a = np.ones(3, dtype=np.float64)
    t = ag.as_tensor(a)
    assert t.data is a
    assert ag.as_tensor(t) is t
    assert ag.as_tensor([1.0, 2.0]).dtype == np.float32
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = ag.as_tensor(x, dtype=np.float64)
    assert y.dtype == np.float64 and y.creator is not None  # a recorded cast, as torch.as_tensor
    assert ag.as_tensor(x, np.float32) is x
