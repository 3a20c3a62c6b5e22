"""Sampling: the streamed tokens are exactly GPT.generate's, text appears as it is produced, GPT-2's end-of-text
stops it, and a prompt with characters outside the vocabulary is refused by name."""

from __future__ import annotations

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.gpt.checkpoint import save_checkpoint
from numpy2gpt.gpt.model import GPT, GPTConfig
from numpy2gpt.gpt.sample import load_model, read_prompt, sample, sample_from_model, stream_tokens
from numpy2gpt.gpt.tokenizer import CharTokenizer

CHARS = "\n abcdefghijklmnopqrstuvwxyz.,"  # 30 characters


def tiny_model(vocab_size=30, block_size=16, seed=0, bias=True) -> GPT:
    ag.manual_seed(seed)
    return GPT(GPTConfig(block_size=block_size, vocab_size=vocab_size, n_layer=2, n_head=2, n_embd=16, bias=bias))


def char_meta():
    tok = CharTokenizer(CHARS)
    return {"tokenizer": tok.to_dict(), "vocab_size": tok.vocab_size}


class Recorder:
    """A text stream that remembers each write."""

    def __init__(self):
        self.writes: list[str] = []

    def write(self, s: str) -> None:
        self.writes.append(s)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        return "".join(self.writes)


@pytest.mark.parametrize(
    ("prompt_len", "new", "kwargs"),
    [
        (3, 10, dict(temperature=1.0)),
        (5, 30, dict(temperature=0.8, top_k=5)),  # slides past block_size=16
        (20, 6, dict(temperature=1.2, top_p=0.9)),  # prompt longer than the context
        (4, 12, dict(temperature=0.0)),  # greedy
    ],
)
def test_streamed_tokens_are_generates(prompt_len, new, kwargs):
    model = tiny_model()
    prompt = np.random.default_rng(1).integers(0, len(CHARS), size=(1, prompt_len))
    expected = model.generate(prompt, new, generator=np.random.default_rng(42), **kwargs)
    expected = np.asarray(expected.data)[0, prompt_len:].tolist()
    got = list(stream_tokens(model, prompt, new, generator=np.random.default_rng(42), **kwargs))
    assert got == expected
    assert model.training  # restored


def test_sample_streams_text_as_it_is_produced():
    model = tiny_model()
    rec = Recorder()
    [text] = sample_from_model(model, char_meta(), prompt="the ", max_new_tokens=40, seed=3, stream=rec)
    assert text.startswith("the ") and len(text) == 44
    assert len(rec.writes) >= 40  # the prompt, then one piece per token
    assert rec.text == text + "\n"
    # the same seed gives the same text; sampling does not touch the global random stream
    state = ag.get_rng_state()
    again = sample_from_model(model, char_meta(), prompt="the ", max_new_tokens=40, seed=3, stream=None)
    assert again == [text]
    assert ag.get_rng_state() == state


def test_several_samples_are_separated_and_differ():
    rec = Recorder()
    texts = sample_from_model(tiny_model(), char_meta(), prompt="a", num_samples=3, max_new_tokens=30, stream=rec)
    assert len(texts) == 3 and len(set(texts)) == 3
    assert rec.text.count("---------------\n") == 2


@pytest.mark.parametrize(
    ("bad", "message"),
    [(dict(num_samples=0), "num_samples must be at least 1, got 0"), (dict(max_new_tokens=-1), "must be >= 0, got -1")],
)
def test_bad_counts_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        sample_from_model(tiny_model(), char_meta(), prompt="a", stream=None, **bad)


def test_unknown_prompt_characters_are_named():
    with pytest.raises(ValueError, match=r"'Q'.*'€'|'€'.*'Q'"):
        sample_from_model(tiny_model(), char_meta(), prompt="Qu€ry", max_new_tokens=5, stream=None)


def test_gpt2_sampling_stops_at_end_of_text():
    """A model rigged so that end-of-text (50256) is the likeliest token after ~every context stops at once."""
    model = tiny_model(vocab_size=50257, block_size=8, bias=True)
    ln_f = model.transformer.ln_f
    ln_f.weight.data[...] = 0.0
    ln_f.bias.data[...] = 1.0  # every final hidden state is the all-ones vector
    wte = model.transformer.wte.weight.data
    wte[50256] = 5.0  # so the end-of-text logit is 80, all others ~0
    meta = {"tokenizer": {"kind": "gpt2", "name": "gpt2"}, "vocab_size": 50257}
    rec = Recorder()
    [text] = sample_from_model(model, meta, prompt="Hello", max_new_tokens=20, top_k=None, stream=rec)
    assert text == "Hello"
    assert list(stream_tokens(model, np.array([[15496]]), 20, stop_token=50256)) == [50256]


def test_sample_from_a_checkpoint(tmp_path):
    model = tiny_model()
    ckpt = tmp_path / "run" / "ckpt.n2g"
    save_checkpoint(
        ckpt,
        {
            "model": model.state_dict(),
            "model_args": {"block_size": 16, "vocab_size": len(CHARS), "n_layer": 2, "n_head": 2, "n_embd": 16,
                           "dropout": 0.1, "bias": True},
            "iter_num": 0,
            "tokenizer": char_meta(),
        },
    )  # fmt: skip
    loaded, _ = load_model(tmp_path / "run")
    assert not loaded.training and loaded.config.dropout == 0.0
    for (name, a), (_, b) in zip(model.named_parameters(), loaded.named_parameters(), strict=True):
        assert np.array_equal(a.data, b.data), name
    direct = sample_from_model(model, char_meta(), prompt="ab", max_new_tokens=15, seed=9, stream=None)
    assert sample(ckpt, prompt="ab", max_new_tokens=15, seed=9, stream=None) == direct
    with pytest.raises(ValueError, match="init_from"):
        sample(ckpt, init_from="nonsense", stream=None)
    with pytest.raises(ValueError, match=r"weights='\./gpt2' is only used with init_from gpt2"):
        sample(ckpt, weights="./gpt2", stream=None)  # without --init-from gpt2 it would sample the checkpoint


def test_read_prompt_from_text_a_file_or_nanogpts_file_prefix(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("déjà vu\n", encoding="utf-8")
    assert read_prompt("hello", None) == "hello" and read_prompt(None, None) is None
    assert read_prompt(None, path) == "déjà vu\n"
    assert read_prompt(f"FILE:{path}", None) == "déjà vu\n"
    with pytest.raises(FileNotFoundError):
        read_prompt(None, tmp_path / "missing.txt")
