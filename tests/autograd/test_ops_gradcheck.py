"""Every op's gradient against central finite differences in float64 (the table is in conftest.py), and the
gradient of every op's backward too (second order), which is what create_graph=True relies on."""

from __future__ import annotations

import numpy as np

import numpy2gpt.autograd as ag


def test_gradcheck(op_case, make_inputs):
    assert ag.gradcheck(op_case.ours, *make_inputs(op_case), **op_case.gradcheck)


def test_forward_keeps_float64(op_case, make_inputs):
    """float64 in, float64 out: no op silently downcasts either."""
    out = op_case.ours(*[ag.Tensor(a, requires_grad=True) for a in make_inputs(op_case)])
    for y in out if isinstance(out, tuple) else (out,):
        assert y.dtype == np.float64, op_case.name


def test_second_order_gradcheck(op_case_2nd, make_inputs):
    """d/dx of the gradient of L = sum(r * y * y): checks that each backward is itself built from recorded,
    correctly differentiated ops (y * y makes the first gradient depend on x even for linear ops)."""
    c = op_case_2nd
    xs0 = make_inputs(c)
    r = None

    def first_gradient(*xs):
        nonlocal r
        with ag.enable_grad():
            out = c.ours(*xs)
            outs = out if isinstance(out, tuple) else (out,)
            if r is None:
                rng = np.random.default_rng(1)
                r = [rng.standard_normal(y.shape) for y in outs]
            loss = sum(((y * y) * w).sum() for y, w in zip(outs, r, strict=True))
            grads = ag.grad(loss, list(xs), create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    kw = {"atol": 1e-4, "rtol": 1e-3, **c.gradcheck}
    assert ag.gradcheck(first_gradient, *xs0, **kw)
