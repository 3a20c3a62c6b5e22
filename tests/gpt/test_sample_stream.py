"""Sampling decodes incrementally: each new token costs the same whatever the prompt's length (the whole text was
decoded again after every token before: 15 s for 200 tokens after a 1 MB prompt)."""

from __future__ import annotations

import io

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.gpt import sample as sample_mod
from numpy2gpt.gpt.model import GPT, GPTConfig
from numpy2gpt.gpt.tokenizer import CharTokenizer, GPT2Tokenizer


class Counting:
    """A tokenizer that counts the ids it decodes."""

    def __init__(self, inner):
        self.inner, self.decoded = inner, 0
        if hasattr(inner, "token_bytes"):  # byte-level: StreamDecoder asks for each token's bytes
            self.token_bytes = self._token_bytes

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def decode(self, ids):
        self.decoded += len(ids)
        return self.inner.decode(ids)

    def _token_bytes(self, token):
        self.decoded += 1
        return self.inner.token_bytes(token)


@pytest.mark.parametrize("kind", ["char", "gpt2"])
def test_decoding_cost_does_not_grow_with_the_prompt(monkeypatch, kind):
    text = "the quick brown fox jumps over the lazy dog, naïve 日本\n" * 400
    inner = CharTokenizer.from_text(text) if kind == "char" else GPT2Tokenizer()
    ag.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=inner.vocab_size, n_layer=1, n_head=2, n_embd=16)).eval()
    meta = {"tokenizer": inner.to_dict(), "vocab_size": inner.vocab_size}
    counts = []
    for prompt in (text[:10], text):
        tok = Counting(inner)
        monkeypatch.setattr(sample_mod, "load_tokenizer", lambda meta, tok=tok: tok)
        out = io.StringIO()
        [sample] = sample_mod.sample_from_model(model, meta, prompt, max_new_tokens=50, stream=out, seed=3)
        assert out.getvalue() == sample + "\n" and sample.startswith(prompt)
        counts.append(tok.decoded - len(inner.encode(prompt)))  # decoding work beyond the prompt's one pass
    assert counts[1] == counts[0] <= 50  # one decode step per new token, whatever the prompt


def test_streamed_pieces_make_the_sample():
    tok = GPT2Tokenizer()
    ag.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=tok.vocab_size, n_layer=1, n_head=2, n_embd=16)).eval()
    writes = []

    class Stream(io.StringIO):
        def write(self, s):
            writes.append(s)
            return super().write(s)

    meta = {"tokenizer": tok.to_dict(), "vocab_size": tok.vocab_size}
    rng = np.random.default_rng(0)
    model.lm_head.weight.data[:] = rng.standard_normal(model.lm_head.weight.data.shape).astype(np.float32)
    [sample] = sample_mod.sample_from_model(model, meta, "😀", max_new_tokens=60, stream=Stream(), seed=0,
                                            temperature=2.0, top_k=None)  # fmt: skip
    assert "".join(writes) == sample + "\n" and sample.startswith("😀")
    assert "" not in writes  # a token that completes no character writes nothing
