"""A float32 training step stays float32: every op's output and gradient, the gradients and the optimizer state.

Under NumPy 2 a float64 scalar times a float32 array gives float64, so one ``np.sqrt(n)`` in an op would silently
turn the rest of a step into float64 (slower, and twice the memory). This runs one full step of a small GPT with
every Function's forward and backward watched.
"""

from __future__ import annotations

import numpy as np

from numpy2gpt.autograd import Function, Tensor
from numpy2gpt.gpt.model import GPT, GPTConfig
from numpy2gpt.nn import optim
from numpy2gpt.nn.utils import clip_grad_norm_


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_training_step_computes_in_float32_only(monkeypatch):
    seen: list[tuple[str, str, np.dtype]] = []

    def watch(cls, meth):
        orig = cls.__dict__[meth]

        def wrapper(self, *args):
            out = orig(self, *args)
            for o in out if isinstance(out, tuple) else (out,):
                a = o.data if isinstance(o, Tensor) else o
                if isinstance(a, np.ndarray) and a.dtype.kind == "f":
                    seen.append((cls.__name__, meth, a.dtype))
            return out

        monkeypatch.setattr(cls, meth, wrapper)

    for cls in set(_subclasses(Function)):
        for meth in ("forward", "backward"):
            if meth in cls.__dict__:
                watch(cls, meth)

    cfg = GPTConfig(block_size=16, vocab_size=65, n_layer=2, n_head=2, n_embd=32, dropout=0.1)
    model = GPT(cfg)
    model.train()
    opt = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 65, size=(3, 16))
    _, loss = model(idx, rng.integers(0, 65, size=(3, 16)))
    opt.zero_grad()
    loss.backward()
    clip_grad_norm_(model.parameters(), 1.0)
    opt.step()

    ops = {name for name, _, _ in seen}
    assert {"Linear", "LayerNorm", "GELU", "CrossEntropy", "Embedding"} <= ops, ops  # the step was watched
    wide = sorted({(name, meth, str(dtype)) for name, meth, dtype in seen if dtype != np.float32})
    assert not wide, f"ops that produced non-float32 arrays in a float32 step: {wide}"
    for name, p in model.named_parameters():
        assert p.dtype == np.float32 and p.grad.dtype == np.float32, name
    for state in opt.state.values():
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32, key
