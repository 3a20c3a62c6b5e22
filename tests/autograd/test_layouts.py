"""Every op in the table (conftest.py) on inputs laid out in memory the unusual ways: transposed (Fortran order),
negative strides, every-other-element strides, and read-only arrays. Each must give exactly what the same op
gives on a fresh C-contiguous copy, values and gradients (to rounding: BLAS may add up a strided vector in
another order), and must leave its input untouched."""

from __future__ import annotations

import numpy as np
import pytest

from numpy2gpt.autograd import Tensor


def _transposed(a: np.ndarray) -> np.ndarray:
    return a.T.copy().T  # same values, Fortran order (non-contiguous when ndim >= 2)


def _reversed(a: np.ndarray) -> np.ndarray:
    return np.flip(np.flip(a).copy())  # same values, negative strides on every axis


def _strided(a: np.ndarray) -> np.ndarray:
    big = np.full(tuple(2 * n for n in a.shape), np.nan)
    every_other = (slice(None, None, 2),) * a.ndim
    big[every_other] = a
    return big[every_other]  # same values, strides twice the usual


def _read_only(a: np.ndarray) -> np.ndarray:
    b = a.copy()
    b.setflags(write=False)
    return b


LAYOUTS = {"transposed": _transposed, "reversed": _reversed, "strided": _strided, "read-only": _read_only}


def _run(op, arrays):
    xs = [Tensor(a, requires_grad=True) for a in arrays]
    out = op(*xs)
    ys = out if isinstance(out, tuple) else (out,)
    rng = np.random.default_rng(1)
    sum((y * rng.standard_normal(y.shape)).sum() for y in ys).backward()
    return [y.data for y in ys], [np.zeros(x.shape) if x.grad is None else x.grad.data for x in xs]


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_layout_does_not_change_the_result(op_case, make_inputs, layout):
    plain = make_inputs(op_case)
    odd = [LAYOUTS[layout](a) for a in plain]
    for a, b in zip(plain, odd, strict=True):
        assert np.array_equal(a, b)
    before = [b.copy() for b in odd]
    ys, gs = _run(op_case.ours, plain)
    try:
        ys2, gs2 = _run(op_case.ours, odd)
    except ValueError as e:  # view never copies: these strides cannot be viewed so (torch refuses too)
        assert op_case.name.startswith("view") and not odd[0].flags.c_contiguous and "without a copy" in str(e)
        return
    for y, y2 in zip(ys + gs, ys2 + gs2, strict=True):
        np.testing.assert_allclose(y2, y, rtol=1e-13, atol=1e-15)  # BLAS may sum strided vectors in another order
    for b, b0 in zip(odd, before, strict=True):
        np.testing.assert_array_equal(b, b0)  # the inputs were not written to


@pytest.mark.parametrize("layout", ["C order", *LAYOUTS])
@pytest.mark.parametrize(
    ("shape", "new"), [((2, 2), (1, 1, 4)), ((2, 3), (3, 2)), ((2, 3, 2), (6, 2)), ((3, 2), (-1,))]
)
def test_reshape_copies_where_view_refuses_like_torch(layout, shape, new):
    """reshape is a view when the strides allow one and a copy otherwise, in every layout, with reshape's
    gradient; view refuses exactly where PyTorch's view of a tensor with the same strides does. (The property
    tests drew a (2, 2) Fortran-order array to (1, 1, 4): their reshape(*shape) spelling called view.)"""
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).standard_normal(shape)
    odd = a if layout == "C order" else LAYOUTS[layout](a)
    g = np.random.default_rng(1).standard_normal(a.reshape(new).shape)
    t = torch.tensor(a, requires_grad=True)
    t.reshape(new).backward(torch.tensor(g))
    for y in (lambda x: x.reshape(*new), lambda x: x.reshape(new)):
        x = Tensor(odd, requires_grad=True)
        out = y(x)
        out.backward(Tensor(g))
        np.testing.assert_array_equal(out.data, t.reshape(new).detach().numpy())
        np.testing.assert_array_equal(x.grad.data, t.grad.numpy())
    same_strides = torch.empty_strided(odd.shape, [abs(s) // odd.itemsize for s in odd.strides], dtype=t.dtype)
    same_strides.copy_(torch.tensor(a))  # (no negative strides in torch; negating all changes no view rule)
    try:
        same_strides.view(new)
    except RuntimeError:
        with pytest.raises(ValueError, match=r"cannot be viewed .* without a copy"):
            Tensor(odd).view(*new)
    else:
        v = Tensor(odd).view(*new)
        assert np.shares_memory(v.data, odd)
        np.testing.assert_array_equal(v.data, a.reshape(new))
