"""Making tensors, random numbers and seeds, and the Tensor's plain-array behaviour."""

from __future__ import annotations

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.autograd import Tensor


def test_manual_seed_fixes_every_draw_and_reseeds_in_place():
    g = ag.default_generator()
    ag.manual_seed(42)
    a = ag.randn(3, 2).data, ag.rand(4).data
    ag.manual_seed(42)
    b = ag.randn((3, 2)).data, ag.rand(4).data
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert ag.default_generator() is g  # code that kept the generator sees the new seed too
    ag.manual_seed(42)
    np.testing.assert_array_equal(g.standard_normal(3, dtype=np.float32), a[0].reshape(-1)[:3])


def test_rng_state_round_trip():
    state = ag.get_rng_state()
    x = ag.randn(5).data
    ag.set_rng_state(state)
    np.testing.assert_array_equal(ag.randn(5).data, x)


def test_constructors():
    assert ag.zeros(2, 3).shape == (2, 3) and ag.ones((2,)).data.tolist() == [1.0, 1.0]
    assert ag.full((2,), 7.0).data.tolist() == [7.0, 7.0]
    assert ag.arange(3).data.tolist() == [0, 1, 2]
    assert ag.zeros(2, requires_grad=True).requires_grad
    src = np.ones(2)
    copied = ag.tensor(src)
    src[0] = 5.0
    assert copied.data[0] == 1.0  # tensor() copies; Tensor() wraps
    assert Tensor(src).data is src
    assert ag.randn_like(ag.zeros(2, 3)).shape == (2, 3)
    assert ag.zeros_like(Tensor(np.ones(2))).dtype == np.float64


def test_tensor_basics():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="x")
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and len(x) == 2 and x.is_leaf
    assert "name='x'" in repr(x) and "requires_grad=True" in repr(x)
    assert "creator=Mul" in repr(x * 2.0)
    assert np.asarray(x) is x.data and x.numpy() is x.data
    d = x.detach()
    assert d.data is x.data and not d.requires_grad and d.creator is None
    assert x.argmax().item() == 5 and x.argmin(axis=1).tolist() == [0, 0]
    assert {x: 1}[x] == 1  # hashable by identity, though == is elementwise
    assert (x == x).dtype == np.bool_ and (x != 1.0).data.sum() == 5
    assert (x <= 2.0).data.sum() == 3 and (x < 2.0).data.sum() == 2
    assert (x > 2.0).data.sum() == 3 and (x >= 2.0).data.sum() == 4 and +x is x


def test_iteration_gives_recorded_rows():
    x = Tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    rows = list(x)
    assert len(rows) == 3 and rows[1].data.tolist() == [2.0, 3.0]
    sum(r.sum() * float(i) for i, r in enumerate(rows)).backward()
    np.testing.assert_array_equal(x.grad.data, [[0, 0], [1, 1], [2, 2]])
    with pytest.raises(TypeError, match="0-d"):
        list(Tensor(1.0))


def test_small_corners():
    x = Tensor(np.array([[1.0, -2.0], [3.0, 0.5]]), requires_grad=True)
    assert Tensor(x).data is x.data  # a Tensor from a Tensor shares the array
    assert bool(Tensor(2.0)) and not bool(Tensor(0.0))
    assert ag.full_like(x, 3.0).data.tolist() == [[3.0, 3.0], [3.0, 3.0]] and ag.rand_like(x).dtype == np.float64
    np.testing.assert_array_equal(x.matmul(x).data, x.data @ x.data)
    np.testing.assert_array_equal(x.minimum(0.0).data, np.minimum(x.data, 0.0))
    assert Tensor(np.float32(2.0)).dtype == np.float32 and Tensor(np.float32(2.0)).shape == ()
    assert ag.flatten(Tensor(3.0)).shape == (1,)
    assert '(["Min<br/>gen 0"])' in ag.to_mermaid(x.min(0))
    with pytest.raises(ValueError, match=r"minimum: shapes \(2, 2\) and \(3,\)"):
        ag.minimum(x, Tensor(np.ones(3)))
    with pytest.raises(ValueError, match="0-d tensors have no axis"):
        ag.concatenate([Tensor(1.0), Tensor(2.0)])


def test_function_without_forward_or_backward_says_so():
    class Half(ag.Function):
        def forward(self, x):
            return x / 2

    x = Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(NotImplementedError, match="Half must define backward"):
        Half()(x).sum().backward()
    with pytest.raises(NotImplementedError, match="Bare must define forward"):
        type("Bare", (ag.Function,), {})()(x)


def test_set_grad_enabled_as_a_decorator_only_applies_inside():
    @ag.set_grad_enabled(False)
    def predict(x):
        assert not ag.is_grad_enabled()
        return x * 2.0

    assert ag.is_grad_enabled()  # decorating switched nothing for good
    assert predict(Tensor(np.ones(1), requires_grad=True)).creator is None
    assert ag.is_grad_enabled()
