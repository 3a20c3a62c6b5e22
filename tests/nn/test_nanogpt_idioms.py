"""nanoGPT's CausalSelfAttention, copied from its model.py with only the imports changed, runs on numpy2gpt and
gives PyTorch's outputs and gradients (issue 13 item 4): the PyTorch idioms it uses (``x.size()``, ``split(n,
dim=2)``, ``view``, ``transpose(1, 2)``, ``contiguous``, ``masked_fill``, ``F.softmax(att, dim=-1)``, a
registered ``torch.tril`` buffer, ``F.scaled_dot_product_attention``) all work with PyTorch's meaning."""

from __future__ import annotations

import math
import types
from dataclasses import dataclass

import numpy as np
import pytest

import numpy2gpt.autograd as ag
import numpy2gpt.nn as n2g_nn

real_torch = pytest.importorskip("torch")

# The imports nanoGPT's model.py has (import torch; import torch.nn as nn; from torch.nn import functional as F),
# pointed at numpy2gpt. This is the only change to the class below.
torch = types.SimpleNamespace(nn=n2g_nn, tril=ag.tril, ones=ag.ones)
nn = n2g_nn
F = n2g_nn.functional


@dataclass
class GPTConfig:
    block_size: int = 8
    n_embd: int = 12
    n_head: int = 3
    dropout: float = 0.0
    bias: bool = True


def make_attention_class(torch, nn, F):  # noqa: N803 - the module names nanoGPT's code refers to
    """nanoGPT's class, verbatim but for the ``flash`` switch, which is a constructor argument here."""

    class CausalSelfAttention(nn.Module):
        def __init__(self, config, flash):
            super().__init__()
            assert config.n_embd % config.n_head == 0
            # key, query, value projections for all heads, but in a batch
            self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
            # output projection
            self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
            # regularization
            self.attn_dropout = nn.Dropout(config.dropout)
            self.resid_dropout = nn.Dropout(config.dropout)
            self.n_head = config.n_head
            self.n_embd = config.n_embd
            self.dropout = config.dropout
            self.flash = flash
            if not self.flash:
                # causal mask to ensure that attention is only applied to the left in the input sequence
                self.register_buffer(
                    "bias",
                    torch.tril(torch.ones(config.block_size, config.block_size)).view(
                        1, 1, config.block_size, config.block_size
                    ),
                )

        def forward(self, x):
            B, T, C = x.size()  # noqa: N806 - batch size, sequence length, embedding dimensionality (n_embd)

            # calculate query, key, values for all heads in batch and move head forward to be the batch dim
            q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
            k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
            q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
            v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)

            # causal self-attention; Self-attend: (B, nh, T, hs) x (B, nh, hs, T) -> (B, nh, T, T)
            if self.flash:
                # efficient attention using Flash Attention CUDA kernels
                y = torch.nn.functional.scaled_dot_product_attention(
                    q, k, v, attn_mask=None, dropout_p=self.dropout if self.training else 0, is_causal=True
                )
            else:
                # manual implementation of attention
                att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
                att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
                att = F.softmax(att, dim=-1)
                att = self.attn_dropout(att)
                y = att @ v  # (B, nh, T, T) x (B, nh, T, hs) -> (B, nh, T, hs)
            y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble all head outputs side by side

            # output projection
            y = self.resid_dropout(self.c_proj(y))
            return y

    return CausalSelfAttention


@pytest.mark.parametrize("flash", [True, False])
def test_nanogpt_attention_runs_unchanged_and_matches_torch(flash: bool) -> None:
    config = GPTConfig()
    ours = make_attention_class(torch, nn, F)(config, flash).double()
    theirs = make_attention_class(real_torch, real_torch.nn, real_torch.nn.functional)(config, flash).double()
    with real_torch.no_grad():
        for name, p in ours.named_parameters():
            dict(theirs.named_parameters())[name].copy_(real_torch.from_numpy(p.data))
    x = np.random.default_rng(0).standard_normal((2, 6, config.n_embd))  # T = 6 < block_size: the mask is sliced
    xo, xt = ag.Tensor(x, requires_grad=True), real_torch.tensor(x, requires_grad=True)
    yo, yt = ours(xo), theirs(xt)
    np.testing.assert_allclose(yo.data, yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(1).standard_normal(yo.shape)
    yo.backward(g)
    yt.backward(real_torch.from_numpy(g))
    np.testing.assert_allclose(xo.grad.data, xt.grad.numpy(), rtol=1e-11, atol=1e-12)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours.get_parameter(name).grad.data, p.grad.numpy(), rtol=1e-11, atol=1e-12)
