"""float32 in -> float32 out and float32 gradients, for every op in the table (conftest.py), including the
rows whose other operand is a Python scalar, a NumPy float64 scalar or a float64 array (NumPy 2 would
promote ``float32_array * np.float64(2)`` to float64; numpy2gpt must not)."""

from __future__ import annotations

import numpy as np
import pytest

import numpy2gpt.autograd as ag


def _outputs(out):
    return out if isinstance(out, tuple) else (out,)


def test_float32_in_float32_out_and_grads(op_case, make_inputs):
    xs = [ag.Tensor(a.astype(np.float32), requires_grad=True) for a in make_inputs(op_case)]
    outs = _outputs(op_case.ours(*xs))
    for y in outs:
        assert y.dtype == np.float32, f"{op_case.name}: output is {y.dtype}"
    loss = sum((y * 0.5).sum() for y in outs)
    assert loss.dtype == np.float32
    loss.backward()
    for x in xs:
        assert x.grad is not None, op_case.name
        assert x.grad.dtype == np.float32, f"{op_case.name}: gradient is {x.grad.dtype}"
        assert x.grad.shape == x.shape


def test_float32_second_order_stays_float32(op_case_2nd, make_inputs):
    xs = [ag.Tensor(a.astype(np.float32), requires_grad=True) for a in make_inputs(op_case_2nd)]
    loss = sum((y * y).sum() for y in _outputs(op_case_2nd.ours(*xs)))
    grads = ag.grad(loss, xs, create_graph=True, allow_unused=True)
    for g in grads:
        assert g is None or g.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.float32])
def test_set_default_dtype_round_trip(dtype):
    assert ag.get_default_dtype() == np.float32
    ag.set_default_dtype(dtype)
    try:
        assert ag.get_default_dtype() == dtype
        assert ag.Tensor(1.5).dtype == dtype
        assert ag.Tensor([1.0, 2.0]).dtype == dtype
        assert ag.zeros(2, 3).dtype == dtype
        assert ag.randn(2).dtype == dtype
        assert ag.rand(2).dtype == dtype
        assert ag.tensor([[1.0]]).dtype == dtype
        assert ag.arange(0.0, 1.0, 0.5).dtype == dtype
        # arrays keep their own dtype whatever the default
        assert ag.Tensor(np.zeros(2, np.float32)).dtype == np.float32
    finally:
        ag.set_default_dtype(np.float32)
    assert ag.Tensor(1.5).dtype == np.float32


def test_set_default_dtype_rejects_integers():
    with pytest.raises(TypeError, match="floating"):
        ag.set_default_dtype(np.int32)


def test_constructor_dtypes():
    assert ag.Tensor(1.5).dtype == np.float32
    assert ag.Tensor([1, 2]).dtype == np.int64
    assert ag.Tensor(np.float64(1.5)).dtype == np.float64  # NumPy scalars and arrays keep their dtype
    assert ag.Tensor(np.ones(2)).dtype == np.float64
    assert ag.Tensor([1.0], dtype=np.float64).dtype == np.float64
    assert ag.arange(5).dtype == np.int64
    assert ag.full((2,), 3.0).dtype == np.float32
    assert ag.ones_like(ag.Tensor(np.ones(2))).dtype == np.float64


def test_mixed_dtype_op_gives_each_input_its_own_dtype_gradient():
    a = ag.Tensor(np.ones(3, np.float32), requires_grad=True)
    b = ag.Tensor(np.full(3, 2.0), requires_grad=True)  # float64: mixing is explicit, and promotes
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_array_equal(a.grad.data, [2, 2, 2])


def test_backward_grad_argument_is_converted_to_the_output_dtype():
    x = ag.Tensor(np.ones(3, np.float32), requires_grad=True)
    (x * 2.0).backward(ag.Tensor(np.ones(3)))  # a float64 gradient for a float32 output
    assert x.grad.dtype == np.float32
    (x * 2.0).backward(np.ones(3))
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, [4, 4, 4])


def test_cast_is_recorded_and_gradient_comes_back_in_the_input_dtype():
    x = ag.Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    y = x.astype(np.float64)
    assert y.dtype == np.float64 and type(y.creator).__name__ == "Cast"
    (y * 3.0).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, [3, 3])
    assert x.double().dtype == np.float64 and x.float() is x  # same dtype: no op
    assert x.astype(np.int64).requires_grad is False  # integer results carry no gradient


def test_integer_tensor_meeting_a_float32_tensor_gives_float32():
    x = ag.Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    ids = ag.Tensor(np.arange(6).reshape(2, 3))  # int64
    onehot = ag.Tensor(np.eye(3, dtype=np.int64))
    mask = ag.Tensor(np.array([True, False, True]))
    for y in (
        x * ids,
        ids + x,
        x / (ids + 1),
        onehot @ x.T,
        x @ onehot,
        ag.maximum(x, ids),
        ag.where(mask, ids, x),
        x * mask,
    ):
        assert y.dtype == np.float32
    (x * ids).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, ids.data)
