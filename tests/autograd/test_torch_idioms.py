"""One naming rule (issue 10 item 6, issue 13 item 4): PyTorch's behaviour, both spellings accepted
(``dim=``/``axis=``, ``keepdim=``/``keepdims=``), function and method forms with the same arguments, and the
PyTorch reader's methods (size, numel, clone, t, contiguous, view, masked_fill, softmax, sin, cos, ...).
Each idiom runs in both libraries and must agree, values and gradients."""

from __future__ import annotations

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.autograd import Tensor

torch = pytest.importorskip("torch")

X0 = np.random.default_rng(0).standard_normal((2, 3, 4))


def _as_tuple(out):
    return out if isinstance(out, (tuple, list)) else (out,)


def agree(ours, theirs, *arrays):
    """``ours`` on numpy2gpt tensors and ``theirs`` on torch tensors give the same values and gradients."""
    xs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ys, zs = _as_tuple(ours(*xs)), _as_tuple(theirs(*ts))
    assert len(ys) == len(zs)
    rng = np.random.default_rng(1)
    for y, z in zip(ys, zs, strict=True):
        assert y.shape == tuple(z.shape)
        np.testing.assert_allclose(y.data, z.detach().numpy(), rtol=1e-12, atol=1e-12)
    rs = [rng.standard_normal(y.shape) for y in ys]
    sum((y * r).sum() for y, r in zip(ys, rs, strict=True)).backward()
    sum((z * torch.from_numpy(r)).sum() for z, r in zip(zs, rs, strict=True)).backward()
    for x, t in zip(xs, ts, strict=True):
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-12, atol=1e-12)


# The same idiom in torch's spelling and in NumPy's, as a method and as a function.
IDIOMS = {
    "x.sum(dim=-1, keepdim=True)": (lambda x: x.sum(dim=-1, keepdim=True), lambda x: x.sum(dim=-1, keepdim=True)),
    "x.sum(axis=-1, keepdims=True)": (lambda x: x.sum(axis=-1, keepdims=True), lambda x: x.sum(-1, keepdim=True)),
    "x.sum(dim=-1, keepdims=True)": (lambda x: x.sum(dim=-1, keepdims=True), lambda x: x.sum(-1, keepdim=True)),
    "ag.sum(x, dim=(0, 2))": (lambda x: ag.sum(x, dim=(0, 2)), lambda x: torch.sum(x, dim=(0, 2))),
    "x.mean(dim=1)": (lambda x: x.mean(dim=1), lambda x: x.mean(dim=1)),
    "ag.mean(x, axis=1, keepdim=True)": (lambda x: ag.mean(x, axis=1, keepdim=True), lambda x: x.mean(1, True)),
    "x.var(dim=-1, unbiased=False)": (lambda x: x.var(dim=-1, unbiased=False), lambda x: x.var(-1, unbiased=False)),
    "x.var(-1, keepdim=True, correction=0)": (
        lambda x: x.var(-1, keepdim=True, correction=0),
        lambda x: x.var(-1, keepdim=True, correction=0),
    ),
    "x.std(dim=0)": (lambda x: x.std(dim=0), lambda x: x.std(dim=0)),
    "x.amax(dim=-1)": (lambda x: x.amax(dim=-1), lambda x: x.amax(dim=-1)),
    "ag.amin(x, dim=1, keepdim=True)": (lambda x: ag.amin(x, dim=1, keepdim=True), lambda x: x.amin(1, True)),
    "x.max(dim=-1, keepdim=True)": (lambda x: x.max(dim=-1, keepdim=True), lambda x: x.amax(-1, keepdim=True)),
    "F.softmax(x, dim=-1)": (lambda x: ag.softmax(x, dim=-1), lambda x: torch.softmax(x, dim=-1)),
    "x.softmax(dim=1)": (lambda x: x.softmax(dim=1), lambda x: x.softmax(dim=1)),
    "x.log_softmax(-1)": (lambda x: x.log_softmax(-1), lambda x: x.log_softmax(-1)),
    "x.relu()": (lambda x: x.relu(), lambda x: x.relu()),
    "cat(xs, dim=1)": (lambda x: ag.cat([x, x * 2], dim=1), lambda x: torch.cat([x, x * 2], dim=1)),
    "cat(xs, axis=-1)": (lambda x: ag.concatenate([x, x], axis=-1), lambda x: torch.cat([x, x], -1)),
    "stack(xs, dim=2)": (lambda x: ag.stack([x, x], dim=2), lambda x: torch.stack([x, x], dim=2)),
    "x.split(2, dim=-1)": (lambda x: x.split(2, dim=-1), lambda x: x.split(2, dim=-1)),
    "ag.split(x, [1, 2], axis=1)": (lambda x: ag.split(x, [1, 2], axis=1), lambda x: x.split([1, 2], 1)),
    "x.chunk(2, dim=2)": (lambda x: x.chunk(2, dim=2), lambda x: x.chunk(2, dim=2)),
    "x.unbind(dim=1)": (lambda x: x.unbind(dim=1), lambda x: x.unbind(dim=1)),
    "transpose(x, 1, 2)": (lambda x: ag.transpose(x, 1, 2), lambda x: torch.transpose(x, 1, 2)),
    "x.transpose(-2, -1)": (lambda x: x.transpose(-2, -1), lambda x: x.transpose(-2, -1)),
    "transpose(x, (2, 0, 1))": (lambda x: ag.transpose(x, (2, 0, 1)), lambda x: x.permute(2, 0, 1)),
    "transpose(x)": (lambda x: ag.transpose(x), lambda x: x.permute(2, 1, 0)),
    "permute(x, 2, 0, 1)": (lambda x: ag.permute(x, 2, 0, 1), lambda x: torch.permute(x, (2, 0, 1))),
    "x.permute((1, 0, 2))": (lambda x: x.permute((1, 0, 2)), lambda x: x.permute((1, 0, 2))),
    "x.swapdims(0, 2)": (lambda x: x.swapdims(0, 2), lambda x: x.swapdims(0, 2)),
    "x.flatten(start_dim=1)": (lambda x: x.flatten(start_dim=1), lambda x: x.flatten(start_dim=1)),
    "ag.flatten(x, 0, 1)": (lambda x: ag.flatten(x, 0, 1), lambda x: torch.flatten(x, 0, 1)),
    "x.unsqueeze(dim=1)": (lambda x: x.unsqueeze(dim=1), lambda x: x.unsqueeze(dim=1)),
    "x.unsqueeze(1).squeeze(dim=1)": (lambda x: x.unsqueeze(1).squeeze(dim=1), lambda x: x.unsqueeze(1).squeeze(1)),
    "x.squeeze(0) (size 2: kept)": (lambda x: x.squeeze(0), lambda x: x.squeeze(0)),
    "ag.reshape(x, 4, 6)": (lambda x: ag.reshape(x, 4, 6), lambda x: torch.reshape(x, (4, 6))),
    "x.view(-1, 4)": (lambda x: x.view(-1, 4), lambda x: x.view(-1, 4)),
    "x.view((6, 4))": (lambda x: x.view((6, 4)), lambda x: x.view((6, 4))),
    "x.expand(2, 2, 3, 4)": (lambda x: x.expand(2, 2, 3, 4), lambda x: x.expand(2, 2, 3, 4)),
    "ag.expand(x, (3, -1, -1, 4))": (lambda x: ag.expand(x, (3, -1, -1, 4)), lambda x: x.expand(3, -1, -1, 4)),
    "x.clone()": (lambda x: x.clone() * 2, lambda x: x.clone() * 2),
    "x.transpose(0, 1).contiguous()": (
        lambda x: x.transpose(0, 1).contiguous().view(3, 8),
        lambda x: x.transpose(0, 1).contiguous().view(3, 8),
    ),
    "x[0].t()": (lambda x: x[0].t(), lambda x: x[0].t()),
    "ag.t(x[0, 0])": (lambda x: ag.t(x[0, 0]), lambda x: torch.t(x[0, 0])),
    "x.sin()": (lambda x: x.sin(), lambda x: x.sin()),
    "ag.cos(x)": (lambda x: ag.cos(x), lambda x: torch.cos(x)),
    "x.where(x > 0, 0.5 * x)": (lambda x: x.where(x.detach() > 0, x * 0.5), lambda x: x.where(x.detach() > 0, x * 0.5)),
    "x.tril(1) / x.triu()": (lambda x: x.tril(1) * 2 + x.triu(), lambda x: x.tril(1) * 2 + x.triu()),
    "x.add(x).mul(3).sub(1).div(2)": (
        lambda x: x.add(x).mul(3).sub(1).div(2).neg(),
        lambda x: x.add(x).mul(3).sub(1).div(2).neg(),
    ),
    "x.pow(2)": (lambda x: x.pow(2), lambda x: x.pow(2)),
    "masked_fill(tril == 0, -inf).softmax": (
        lambda x: x[0, :3, :3].masked_fill(ag.tril(ag.ones(3, 3)) == 0, float("-inf")).softmax(dim=-1),
        lambda x: x[0, :3, :3].masked_fill(torch.tril(torch.ones(3, 3)) == 0, float("-inf")).softmax(dim=-1),
    ),
}


@pytest.mark.parametrize("name", list(IDIOMS))
def test_idiom_matches_torch(name):
    ours, theirs = IDIOMS[name]
    agree(ours, theirs, X0)


def test_size_numel_dim():
    x, t = Tensor(X0), torch.from_numpy(X0)
    assert x.size() == tuple(t.size()) == (2, 3, 4)
    assert x.size(1) == t.size(1) == 3 and x.size(-1) == t.size(-1) == 4
    assert x.numel() == t.numel() == 24 and x.dim() == t.dim() == 3
    assert x.size == 24  # NumPy's meaning, kept: the number of elements
    with pytest.raises(IndexError, match="dimension 3 is out of range"):
        x.size(3)


def test_argmax_both_spellings():
    x, t = Tensor(X0), torch.from_numpy(X0)
    np.testing.assert_array_equal(x.argmax(dim=-1).data, t.argmax(dim=-1).numpy())
    np.testing.assert_array_equal(ag.argmin(x, axis=1, keepdims=True).data, t.argmin(1, keepdim=True).numpy())
    np.testing.assert_array_equal(x.argmax().data, t.argmax().numpy())


@pytest.mark.parametrize(
    "call",
    [
        lambda x: x.sum(dim=0, axis=0),
        lambda x: x.mean(0, keepdim=True, keepdims=True),
        lambda x: ag.cat([x, x], dim=0, axis=0),
        lambda x: x.softmax(0, axis=0),
        lambda x: x.var(0, correction=0, unbiased=False),
        lambda x: x.flatten(0, start_axis=0),
    ],
)
def test_both_spellings_at_once_is_an_error(call):
    with pytest.raises(TypeError, match="both"):
        call(Tensor(X0))


def test_function_and_method_take_the_same_arguments():
    x = Tensor(X0)
    pairs = [
        (x.transpose(1, 2), ag.transpose(x, 1, 2)),
        (x.transpose((2, 0, 1)), ag.transpose(x, (2, 0, 1))),
        (x.permute(2, 0, 1), ag.permute(x, 2, 0, 1)),
        (x.reshape(4, 6), ag.reshape(x, (4, 6))),
        (x.sum(-1, True), ag.sum(x, -1, True)),
        (x.var(1, False, 0), ag.var(x, 1, False, 0)),
        (x.flatten(1), ag.flatten(x, 1)),
        (x.expand(2, 2, 3, 4), ag.expand(x, 2, 2, 3, 4)),
        (x.squeeze(), ag.squeeze(x)),
        (x.softmax(1), ag.softmax(x, 1)),
    ]
    for a, b in pairs:
        np.testing.assert_array_equal(a.data, b.data)


def test_view_shares_memory_and_refuses_a_copy():
    x = Tensor(np.zeros((2, 3)))
    v = x.view(3, 2)
    v.data[0, 0] = 7.0
    assert x.data[0, 0] == 7.0  # same data, as torch's view
    with pytest.raises(ValueError, match=r"view: shape \(3, 2\) .* without a copy; use reshape"):
        x.t().view(6)
    with pytest.raises(RuntimeError):
        torch.zeros(2, 3).t().view(6)  # torch refuses too
    np.testing.assert_array_equal(x.t().contiguous().view(6).data, x.data.T.reshape(6))


def test_clone_is_a_recorded_copy_and_contiguous_copies_only_when_needed():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    c = x.clone()
    c.data[...] = 5.0
    assert x.data[0, 0] == 1.0 and c.creator is not None
    assert x.contiguous() is x
    xt = x.t().contiguous()
    assert xt.data.flags.c_contiguous and xt.creator is not None
    (xt * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.full((2, 3), 3.0))


def test_t_refuses_three_dimensions():
    with pytest.raises(ValueError, match="t: expects a tensor with at most 2 dimensions"):
        Tensor(X0).t()


@pytest.mark.parametrize("op", [ag.sin, ag.cos])
def test_sin_cos_gradcheck_first_and_second_order(op):
    x0 = np.random.default_rng(3).uniform(-3, 3, (3, 4))
    assert ag.gradcheck(op, x0)

    def first(x):
        with ag.enable_grad():  # gradcheck runs fn under no_grad to find the output's shape
            (g,) = ag.grad((op(x) ** 2).sum(), x, create_graph=True)
        return g

    assert ag.gradcheck(first, x0, atol=1e-4)
    x, t = Tensor(x0, requires_grad=True), torch.tensor(x0, requires_grad=True)
    top = torch.sin if op is ag.sin else torch.cos
    (g,) = ag.grad(op(x).sum(), x, create_graph=True)
    (h,) = ag.grad(g.sum(), x)
    (gt,) = torch.autograd.grad(top(t).sum(), t, create_graph=True)
    (ht,) = torch.autograd.grad(gt.sum(), t)
    np.testing.assert_allclose(h.data, ht.numpy(), rtol=1e-12, atol=1e-12)


def test_nanogpt_attention_runs_with_only_its_imports_changed():
    """nanoGPT's CausalSelfAttention forward (the non-flash path), written as in model.py."""
    import math

    rng = np.random.default_rng(0)
    B, T, C, n_head = 2, 5, 8, 2  # noqa: N806 - nanoGPT's names
    x0, w0 = rng.standard_normal((B, T, C)), rng.standard_normal((C, 3 * C)) * 0.3
    bias0 = np.tril(np.ones((T, T))).reshape(1, 1, T, T)

    def attention(lib, x, w, bias, softmax):
        q, k, v = (x @ w).split(C, dim=2)
        k = k.view(B, T, n_head, C // n_head).transpose(1, 2)  # (B, nh, T, hs)
        q = q.view(B, T, n_head, C // n_head).transpose(1, 2)
        v = v.view(B, T, n_head, C // n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(bias[:, :, :T, :T] == 0, float("-inf"))
        att = softmax(att, dim=-1)
        y = att @ v
        return y.transpose(1, 2).contiguous().view(B, T, C)

    def ours(x, w):
        return attention(ag, x, w, Tensor(bias0), ag.softmax)

    def theirs(x, w):
        return attention(torch, x, w, torch.from_numpy(bias0), torch.softmax)

    agree(ours, theirs, x0, w0)
