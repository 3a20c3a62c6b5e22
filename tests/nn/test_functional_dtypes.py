"""One rule for an array argument of another float dtype in the nn ops, fused and composed alike (H2's P11).

An array passed where PyTorch needs a tensor is a tensor of its own dtype (np.zeros: float64). Then PyTorch's
behaviour with two tensors: linear, layer_norm and attention refuse mixed float dtypes (one line naming them),
mse_loss promotes (float32 input, float64 target: a float64 loss; the input's gradient stays float32). Python
numbers and lists, which have no dtype, take the input's. Before, the fused ops refused every mix and the
composed twins gave float64 for some and float32 for others.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest

import numpy2gpt.nn.functional as F  # noqa: N812
from numpy2gpt.autograd import Tensor

torch = pytest.importorskip("torch")
TF = torch.nn.functional

X = np.linspace(-1.0, 1.0, 6, dtype=np.float32).reshape(2, 3)
C = np.linspace(0.5, 1.5, 9).reshape(3, 3)  # float64
V = np.linspace(-0.5, 0.5, 3)  # float64
REFUSED = {  # name: (call with numpy2gpt's F or F.composed, the same in PyTorch)
    "linear weight": (lambda f, x: f.linear(x, C), lambda x: TF.linear(x, torch.from_numpy(C))),
    "linear bias": (lambda f, x: f.linear(x, C.astype(np.float32), V),
                    lambda x: TF.linear(x, torch.from_numpy(C.astype(np.float32)), torch.from_numpy(V))),
    "layer_norm weight": (lambda f, x: f.layer_norm(x, (3,), V), lambda x: TF.layer_norm(x, (3,), torch.from_numpy(V))),
    "layer_norm bias": (lambda f, x: f.layer_norm(x, (3,), None, V),
                        lambda x: TF.layer_norm(x, (3,), None, torch.from_numpy(V))),
    "attention": (lambda f, x: f.scaled_dot_product_attention(x, C, C),
                  lambda x: TF.scaled_dot_product_attention(x, torch.from_numpy(C), torch.from_numpy(C))),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(REFUSED))
@pytest.mark.parametrize("module", [F, F.composed], ids=["fused", "composed"])
def test_mixed_float_dtypes_are_refused_where_torch_refuses_them(module, name):
    ours, theirs = REFUSED[name]
    with pytest.raises(RuntimeError):
        theirs(torch.from_numpy(X).requires_grad_())
    with pytest.raises(TypeError, match=r"same dtype, got .*float32.*float64"):
        ours(module, Tensor(X, requires_grad=True))


@pytest.mark.parametrize("target", [np.zeros((2, 3)), Tensor(np.zeros((2, 3))), np.full((1, 3), 0.25)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("fn", [F.mse_loss, F.composed.mse_loss], ids=["fused", "composed"])
def test_mse_loss_promotes_a_float64_target_like_torch(fn, reduction, target):
    t_np = target.data if isinstance(target, Tensor) else target
    x = Tensor(X, requires_grad=True)
    warns = fn is F.mse_loss and t_np.shape != X.shape  # (the fused op warns as PyTorch; the twin does not)
    with pytest.warns(UserWarning, match="broadcast") if warns else nullcontext():
        y = fn(x, target, reduction=reduction)
    tx = torch.from_numpy(X.copy()).requires_grad_()
    z = TF.mse_loss(tx, torch.from_numpy(t_np).expand(X.shape), reduction=reduction)
    assert y.dtype == np.float64 == np.dtype(str(z.dtype).removeprefix("torch."))
    g = np.linspace(1.0, 2.0, z.numel()).reshape(z.shape)
    y.backward(Tensor(g))
    z.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y.data, z.detach().numpy(), rtol=1e-12)
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("target", [0.25, [[0.0, 0.5, 1.0]], np.float32(0.25), np.zeros((2, 3), np.float32)])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("fn", [F.mse_loss, F.composed.mse_loss], ids=["fused", "composed"])
def test_mse_loss_targets_without_a_wider_dtype_keep_the_inputs(fn, dtype, target):
    """Python numbers and lists take the input's dtype; a float32 array widens only a float16 input."""
    x = Tensor(X.astype(dtype), requires_grad=True)
    with pytest.warns(UserWarning) if fn is F.mse_loss and np.shape(target) != X.shape else nullcontext():
        y = fn(x, target)
    widened = np.result_type(dtype, target.dtype) if isinstance(target, (np.ndarray, np.generic)) else dtype
    assert y.dtype == widened
    y.backward()
    assert x.grad.dtype == dtype
