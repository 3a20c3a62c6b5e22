"""gradcheck itself: it passes a correct Function and catches a wrong one, naming the worst element."""

from __future__ import annotations

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.autograd import Function, GradcheckError, Tensor


class Cube(Function):
    """y = x**3.  dx = 3 x**2 dy."""

    def forward(self, x):
        return x**3

    def backward(self, gy):
        (x,) = self.inputs
        return gy * 3.0 * x * x


class WrongCube(Function):
    """y = x**3 with a wrong backward at one element (index 1 gets 2 x**2 dy)."""

    def forward(self, x):
        return x**3

    def backward(self, gy):
        (x,) = self.inputs
        factor = np.array([3.0, 2.0, 3.0])
        return gy * x * x * factor


class ScaledAdd(Function):
    """y = a + 2 b, with b's gradient off by a constant (wrong)."""

    def forward(self, a, b):
        return a + 2 * b

    def backward(self, gy):
        return gy, gy * 2.0 + 0.01


X = np.array([0.5, -1.5, 2.0])


def test_passes_for_a_correct_function():
    assert ag.gradcheck(lambda x: Cube()(x), X)


def test_fails_for_a_wrong_function_naming_the_worst_element():
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(3,\)\) at index \(1,\)") as info:
        ag.gradcheck(lambda x: WrongCube()(x), X)
    # the message shows analytic and numeric values: at x = -1.5, dy/dx = 6.75 but backward said 4.5 (times r)
    assert "analytic" in str(info.value) and "numeric" in str(info.value)
    assert ag.gradcheck(lambda x: WrongCube()(x), X, raise_exception=False) is False


def test_names_the_wrong_input_of_several():
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(2, 2\)\)"):
        ag.gradcheck(lambda a, b: ScaledAdd()(a, b), np.ones((2, 2)), np.ones((2, 2)))


def test_checks_in_float64_even_for_float32_inputs():
    seen = []

    def fn(x):
        seen.append(x.dtype)
        return x.tanh()

    assert ag.gradcheck(fn, Tensor(np.array([0.1, 0.2], np.float32)))
    assert set(seen) == {np.dtype(np.float64)}


def test_non_float_arguments_pass_through():
    idx = np.array([2, 0, 2])
    assert ag.gradcheck(lambda x, i: x[i], X, idx)
    with pytest.raises(ValueError, match="no floating point input"):
        ag.gradcheck(lambda i: i, idx)


def test_multiple_outputs():
    assert ag.gradcheck(lambda x: x.reshape(2, 3).split([1, 2], axis=1), np.arange(6.0))


@pytest.mark.parametrize(
    "make",
    [
        lambda a: np.asfortranarray(a),  # its float64 copy stays Fortran-ordered
        lambda a: a.T,  # a transposed view
        lambda a: a[:, ::-1],  # negative strides
        lambda a: np.ascontiguousarray(a),
    ],
    ids=["fortran", "transposed", "reversed", "contiguous"],
)
def test_the_numeric_gradient_sees_every_element_of_any_layout(make):
    x = make(np.random.default_rng(0).standard_normal((3, 4)))
    assert ag.gradcheck(lambda t: Cube()(t).sum(), x)  # (once the numeric gradient was 0 for a Fortran array)
    with pytest.raises(GradcheckError, match=r"analytic .*, numeric "):
        ag.gradcheck(lambda t: DoubledCube()(t).sum(), x)  # and a wrong gradient is still caught


class DoubledCube(Cube):
    """Cube with the gradient doubled (wrong): 6 x**2 dy."""

    def backward(self, gy):
        return 2.0 * super().backward(gy)
