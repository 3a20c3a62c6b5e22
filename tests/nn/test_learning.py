"""Learning end to end: the README example runs, an MLP solves XOR, and small character language models reach
the entropy of their training text (a bound computed from the text itself)."""

import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import numpy2gpt.nn as nn
import numpy2gpt.nn.functional as F  # noqa: N812 - as in torch
from numpy2gpt.autograd import Tensor, manual_seed, no_grad
from numpy2gpt.nn import optim

README = Path(__file__).resolve().parents[2] / "packages" / "nn" / "README.md"


def test_readme_code_blocks_run(tmp_path, monkeypatch, capsys):
    """Every ```python block of the nn README runs as written (each on its own), the training example included."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 2 and any("optim.Adam" in b for b in blocks)
    monkeypatch.chdir(tmp_path)  # the example writes moons.ckpt
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out
    assert "accuracy 100%" in out and (tmp_path / "moons.ckpt").exists()


def test_mlp_solves_xor():
    manual_seed(0)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0])
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        loss = F.cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.dtype == np.float32 and loss.item() < 0.05
    with no_grad():
        assert (model(Tensor(x)).data.argmax(-1) == y).all()


TEXT = "the quick brown fox jumps over the lazy dog. a lazy cat naps in the sun. " * 4


def conditional_entropy(text, context):
    """H(next char | previous `context` chars) of the text, in nats: the best loss any model can reach."""
    pairs = Counter((text[i - context : i], text[i]) for i in range(context, len(text)))
    contexts = Counter(text[i - context : i] for i in range(context, len(text)))
    n = sum(pairs.values())
    return -sum(c / n * math.log(c / contexts[ctx]) for (ctx, _), c in pairs.items())


def encode(text):
    chars = sorted(set(text))
    return np.array([chars.index(c) for c in text]), len(chars)


def train(model, inputs, targets, steps, lr):
    opt = optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(model(inputs), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_bigram_language_model_reaches_the_text_entropy():
    ids, vocab = encode(TEXT)

    class Bigram(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Embedding(vocab, vocab)  # row i: the logits of the char after char i

        def forward(self, idx):
            return self.table(idx)

    manual_seed(0)
    losses = train(Bigram(), ids[:-1], ids[1:], steps=300, lr=0.1)
    bound = conditional_entropy(TEXT, 1)  # about 1.0 nats, against log(27) = 3.3 for guessing
    assert losses[0] > 2.5
    assert losses[-1] < bound + 0.05, (losses[-1], bound)


def test_mlp_language_model_with_context_learns_the_text():
    """Bengio-style: embed the previous 4 characters, concatenate, MLP, logits of the next one."""
    ids, vocab = encode(TEXT)
    block = 4
    windows = np.stack([ids[i : len(ids) - block + i] for i in range(block)], axis=1)  # (N, block)
    targets = ids[block:]

    class CharMLP(nn.Module):
        def __init__(self, n_embd=8, n_hidden=64):
            super().__init__()
            self.wte = nn.Embedding(vocab, n_embd)
            self.mlp = nn.Sequential(nn.Linear(block * n_embd, n_hidden), nn.GELU(), nn.Linear(n_hidden, vocab))

        def forward(self, idx):
            x = self.wte(idx)  # (N, block, n_embd)
            return self.mlp(x.reshape(x.shape[0], -1))

    manual_seed(0)
    model = CharMLP()
    losses = train(model, windows, targets, steps=100, lr=0.05)
    bound = conditional_entropy(TEXT, block)  # 0.065 nats: only "the " is ambiguous (q, l or s follows)
    assert losses[0] > math.log(vocab) - 0.5
    assert losses[-1] < bound + 0.02, (losses[-1], bound)
    # greedy generation from "the q" reproduces the text
    model.eval()
    chars = sorted(set(TEXT))
    context = [chars.index(c) for c in "the q"[-block:]]
    out = "the q"
    with no_grad():
        for _ in range(20):
            nxt = int(model(np.array([context])).data.argmax(-1)[0])
            out += chars[nxt]
            context = [*context[1:], nxt]
    assert out == TEXT[: len(out)]  # "the quick brown fox jumps"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_keeps_the_dtype(dtype):
    manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.GELU(), nn.Linear(4, 2)).to(dtype)
    opt = optim.SGD(model.parameters(), lr=0.1)
    loss = F.cross_entropy(model(Tensor(np.ones((5, 3), dtype=dtype))), np.zeros(5, dtype=np.int64))
    loss.backward()
    opt.step()
    assert loss.dtype == dtype
    assert all(p.dtype == dtype and p.grad.dtype == dtype for p in model.parameters())


def test_load_state_dict_keeps_the_optimizer_working_on_the_loaded_values(tmp_path):
    """Loading writes into the existing arrays, so an optimizer made before the load trains the loaded model."""
    manual_seed(0)
    model, source = nn.Linear(3, 2), nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.5)
    nn.save(source.state_dict(), tmp_path / "source.ckpt")
    model.load_state_dict(nn.load(tmp_path / "source.ckpt"))
    np.testing.assert_array_equal(model.weight.data, source.weight.data)
    x = Tensor(np.ones((4, 3), dtype=np.float32))
    model(x).sum().backward()
    opt.step()
    # one SGD step from the loaded weights: w - lr * dL/dw, with dL/dw = sum over the batch of x = 4
    np.testing.assert_allclose(model.weight.data, source.weight.data - 0.5 * 4, rtol=1e-6)
    np.testing.assert_allclose(model.bias.data, source.bias.data - 0.5 * 4, rtol=1e-6)
