"""Run one computation in numpy2gpt and in PyTorch on the same inputs; compare what comes out.

``assert_like_torch(ours, theirs, arrays)`` makes a leaf of every array in both libraries (floating ones require grad),
runs the two functions, and compares, output by output:

* shape, dtype (numpy2gpt's dtype must be the one PyTorch gives) and values, NaN where PyTorch has NaN;
* the inputs, which must be unchanged afterwards (read-only inputs must not even be written to);
* first derivatives: ``grad(outputs, inputs, grad_outputs=random)`` against ``torch.autograd.grad``;
* with ``second=True``, second derivatives: the first ones are computed with ``create_graph=True`` and
  ``sum(grad_i * h_i)`` (random h) is differentiated again, in both libraries.

An input PyTorch reports as unused has a zero gradient; numpy2gpt may answer ``None`` or zeros.
float64 must agree to rounding, float32 to a few units of its precision (``scale`` widens both).

``assert_like_torch_or_float64`` is the same check, but where PyTorch's float32 kernel is itself off (its
rounding amplified, as in layer_norm's gradient over one element: rstd = 1/sqrt(eps) times float32's rounding
of x - mean, about 3e-5 where the exact gradient, PyTorch's float64 one, is 0), it compares with PyTorch
computing in float64 and rounding to the inputs' dtype instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

import numpy2gpt.autograd as ag
from numpy2gpt.autograd import Tensor

TOL = {np.dtype(np.float32): (2e-5, 2e-6), np.dtype(np.float64): (1e-10, 1e-12), np.dtype(np.float16): (2e-3, 1e-3)}


def to_torch(a: np.ndarray, requires_grad: bool = False) -> torch.Tensor:
    """A torch tensor with its own copy of ``a`` (any layout, read-only included)."""
    return torch.tensor(np.array(a, order="C")).requires_grad_(requires_grad)


def as_numpy(x: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.data
    if torch.is_tensor(x):
        return x.detach().numpy(force=True)  # force: PyTorch's lazy zero tensors too
    return np.asarray(x)


def precision(arrays: Sequence[np.ndarray]) -> np.dtype | None:
    """The least precise floating dtype among ``arrays`` (a float64 result computed from float32 inputs
    is only as accurate as float32); None if there is none."""
    floats = [a.dtype for a in arrays if a.dtype.kind == "f"]
    return min(floats, key=lambda d: d.itemsize) if floats else None


def assert_close(ours: Any, theirs: Any, what: str, scale: float = 1.0, tol: np.dtype | None = None) -> None:
    """Same shape, same dtype, same values (to rounding in ``tol``, by default the result's dtype; NaN where
    PyTorch has NaN)."""
    o, t = as_numpy(ours), as_numpy(theirs)
    assert o.shape == t.shape, f"{what}: shape {o.shape}, torch {t.shape}"
    assert o.dtype == t.dtype, f"{what}: dtype {o.dtype}, torch {t.dtype}"
    if o.dtype.kind == "f":
        rtol, atol = TOL[min(o.dtype, tol or o.dtype, key=lambda d: d.itemsize)]
        np.testing.assert_allclose(o, t, rtol=rtol * scale, atol=atol * scale, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(o, t, err_msg=what)


def outputs(y: Any) -> list[Any]:
    return list(y) if isinstance(y, (tuple, list)) else [y]


def assert_like_torch(
    ours: Callable[..., Any],
    theirs: Callable[..., Any],
    arrays: Sequence[np.ndarray],
    *,
    grad: bool = True,
    second: bool = False,
    scale: float = 1.0,
    frozen: Sequence[bool] = (),
) -> None:
    """Compare ``ours(*tensors)`` with ``theirs(*torch_tensors)``: values, dtypes, gradients (see above).
    ``frozen[i]`` makes input i a constant (requires_grad=False) in both libraries."""
    arrays = [np.asarray(a) if not isinstance(a, np.ndarray) else a for a in arrays]
    snapshot = [a.copy() for a in arrays]
    frozen = list(frozen) + [False] * (len(arrays) - len(frozen))
    floating = [grad and a.dtype.kind == "f" and not f for a, f in zip(arrays, frozen, strict=True)]
    ours_in = [Tensor(a, requires_grad=f) for a, f in zip(arrays, floating, strict=True)]
    theirs_in = [to_torch(a, f) for a, f in zip(arrays, floating, strict=True)]
    tol = precision(arrays)
    y, yt = outputs(ours(*ours_in)), outputs(theirs(*theirs_in))
    assert len(y) == len(yt), f"{len(y)} outputs, torch {len(yt)}"
    for i, (o, t) in enumerate(zip(y, yt, strict=True)):
        assert_close(o, t, f"output {i}", scale, tol)
    for i, (a, s) in enumerate(zip(arrays, snapshot, strict=True)):
        np.testing.assert_array_equal(a, s, err_msg=f"input {i} was modified")
    wrt = [i for i, f in enumerate(floating) if f]
    pairs = [(o, t) for o, t in zip(y, yt, strict=True) if t.requires_grad]
    if not wrt or not pairs:
        return
    rng = np.random.default_rng(12345)
    upstream = [rng.standard_normal(tuple(t.shape)).astype(as_numpy(o).dtype) for o, t in pairs]
    g = ag.grad([o for o, _ in pairs], [ours_in[i] for i in wrt], grad_outputs=[Tensor(u) for u in upstream],
                allow_unused=True, create_graph=second)  # fmt: skip
    gt = torch.autograd.grad([t for _, t in pairs], [theirs_in[i] for i in wrt], allow_unused=True,
                             grad_outputs=[torch.tensor(u) for u in upstream], create_graph=second)  # fmt: skip
    _compare_grads(g, gt, [arrays[i] for i in wrt], "gradient", scale, tol)
    if second:
        _second(g, gt, [ours_in[i] for i in wrt], [theirs_in[i] for i in wrt], rng, scale, tol)


def assert_like_torch_or_float64(
    ours: Callable[..., Any], theirs: Callable[..., Any], arrays: Sequence[np.ndarray], **options: Any
) -> None:
    """``assert_like_torch`` against PyTorch in the inputs' dtype or, where that fails, against PyTorch in
    float64 rounded back to the narrowest floating input's dtype (the exact answer, which a correctly rounded
    numpy2gpt is near)."""
    try:
        assert_like_torch(ours, theirs, arrays, **options)
    except AssertionError:

        def in_float64(*ts: torch.Tensor) -> Any:
            ys = theirs(*[t.double() if t.is_floating_point() else t for t in ts])
            dtypes = [t.dtype for t in ts if t.is_floating_point()]
            narrow = min(dtypes, key=lambda d: d.itemsize) if dtypes else torch.float64
            return tuple(y.to(narrow) for y in ys) if isinstance(ys, tuple) else ys.to(narrow)

        assert_like_torch(ours, in_float64, arrays, **options)


def _compare_grads(g: Sequence[Any], gt: Sequence[Any], like: Sequence[np.ndarray], what: str, scale: float,
                   tol: np.dtype | None) -> None:  # fmt: skip
    for k, (a, b, x) in enumerate(zip(g, gt, like, strict=True)):
        zero = np.zeros(x.shape, x.dtype)
        assert_close(zero if a is None else a, zero if b is None else b, f"{what} of input {k}", scale, tol)


def _second(g: Sequence[Any], gt: Sequence[Any], xs: list[Tensor], xts: list[torch.Tensor], rng: Any,
            scale: float, tol: np.dtype | None) -> None:  # fmt: skip
    """Differentiate sum(g_i * h_i) once more in both libraries (terms without a graph contribute zero)."""
    h = [rng.standard_normal(x.shape).astype(x.dtype) for x in xs]
    ours_terms = [(a * Tensor(c)).sum() for a, c in zip(g, h, strict=True) if a is not None and a.requires_grad]
    their_terms = [(b * torch.tensor(c)).sum() for b, c in zip(gt, h, strict=True) if b is not None and b.requires_grad]
    g2 = ag.grad(sum(ours_terms), xs, allow_unused=True) if ours_terms else [None] * len(xs)
    g2t = torch.autograd.grad(sum(their_terms), xts, allow_unused=True) if their_terms else [None] * len(xs)
    _compare_grads(g2, g2t, [x.data for x in xs], "second derivative", scale * 10, tol)
