"""``evaluate``: every token scored once, in strided windows, checked against a hand computation on a tiny model."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.gpt.checkpoint import save_checkpoint
from numpy2gpt.gpt.evaluate import evaluate, evaluate_tokens, scored_windows
from numpy2gpt.gpt.model import GPT, GPTConfig
from numpy2gpt.gpt.tokenizer import CharTokenizer

TEXT = "the cat sat on the mat. the dog sat on the log.\n"


def tiny_model(block_size: int = 8, vocab_size: int = 11) -> GPT:
    ag.manual_seed(0)
    model = GPT(GPTConfig(block_size=block_size, vocab_size=vocab_size, n_layer=1, n_head=2, n_embd=16))
    for p in model.parameters():  # larger weights than the init, so that the context matters
        p.data += np.random.default_rng(1).standard_normal(p.data.shape).astype(np.float32) * 0.3
    return model


def hand_loss(model: GPT, tokens: np.ndarray, stride: int) -> float:
    """Target y_i = tokens[i + 1] is read from x[begin:i + 1], where begin is the first multiple of stride whose
    window (begin + block_size) reaches past i. One forward pass per token, the last position's log-softmax."""
    ctx = model.config.block_size
    nll = []
    for i in range(len(tokens) - 1):
        begin = max(0, -(-(i - ctx + 1) // stride) * stride)
        logits, _ = model(tokens[None, begin : i + 1])
        z = logits.data[0, -1].astype(np.float64)
        nll.append(np.log(np.exp(z - z.max()).sum()) + z.max() - z[tokens[i + 1]])
    return float(np.mean(nll))


@pytest.mark.parametrize(("n_tokens", "stride", "batch_size"), [(30, 3, None), (30, 8, 2), (30, 1, 5), (9, 4, 1)])
def test_matches_a_hand_computation(n_tokens, stride, batch_size):
    model = tiny_model()
    tokens = np.random.default_rng(2).integers(0, 11, size=n_tokens)
    result = evaluate_tokens(model, tokens, stride=stride, batch_size=batch_size, progress=False)
    assert result.tokens == n_tokens - 1
    assert result.loss == pytest.approx(hand_loss(model, tokens, stride), rel=1e-5)
    assert result.perplexity == pytest.approx(math.exp(result.loss))


def test_one_window_equals_the_models_own_loss():
    model = tiny_model(block_size=16)
    tokens = np.random.default_rng(3).integers(0, 11, size=17)
    _, loss = model(tokens[None, :-1], tokens[None, 1:])
    assert evaluate_tokens(model, tokens, progress=False).loss == pytest.approx(float(loss.item()), rel=1e-5)


def test_every_target_is_scored_once():
    for n, ctx, s in [(1, 4, 1), (10, 4, 2), (10, 4, 4), (37, 8, 3), (8, 8, 5)]:
        scored = [i for _, end, first in scored_windows(n, ctx, s) for i in range(first, end)]
        assert scored == list(range(n))
        assert all(end - begin <= ctx and begin <= first for begin, end, first in scored_windows(n, ctx, s))


def test_bad_stride_and_too_short_text():
    model = tiny_model()
    with pytest.raises(ValueError, match="stride must be between 1 and block_size=8, got 9"):
        evaluate_tokens(model, np.arange(10) % 11, stride=9)
    with pytest.raises(ValueError, match="has 1 token"):
        evaluate_tokens(model, np.array([3]))


@pytest.fixture
def run_dir(tmp_path):
    tok = CharTokenizer.from_text(TEXT)
    model = tiny_model(block_size=8, vocab_size=tok.vocab_size)
    save_checkpoint(
        tmp_path / "ckpt.n2g",
        {"model": model.state_dict(), "model_args": dataclasses.asdict(model.config), "iter_num": 0,
         "tokenizer": {"tokenizer": tok.to_dict(), "vocab_size": tok.vocab_size}},
    )  # fmt: skip
    return tmp_path, model, tok


def test_evaluate_a_checkpoint_on_a_text_file(run_dir):
    folder, model, tok = run_dir
    (folder / "eval.txt").write_text(TEXT)
    lines = []
    result = evaluate(folder, data_file=folder / "eval.txt", stride=4, progress=False, say=lines.append)
    assert result.loss == pytest.approx(hand_loss(model, tok.encode_array(TEXT).astype(np.int64), 4), rel=1e-5)
    assert lines == [f"eval {folder / 'eval.txt'}: {result}"]
    assert "perplexity" in lines[0]


def test_short_texts(run_dir):
    folder = run_dir[0]
    lines = []
    result = evaluate(folder, text="the cat", say=lines.append)  # 7 tokens, context 8: one window and a note
    assert result.windows == 1 and result.tokens == 6 and "fewer than the context" in lines[0]
    with pytest.raises(ValueError, match="has 1 token"):
        evaluate(folder, text="t")
    with pytest.raises(ValueError, match="character"):
        evaluate(folder, text="XYZ")  # not in the character vocabulary
    with pytest.raises(FileNotFoundError, match=r"eval text file .* does not exist"):
        evaluate(folder, data_file=folder / "missing.txt")
    with pytest.raises(ValueError, match="exactly one of"):
        evaluate(folder, text="the cat", data_file=folder / "missing.txt")
    with pytest.raises(ValueError, match="does not say what data it was trained on"):
        evaluate(folder)


def test_evaluate_a_prepared_split(run_dir):
    from numpy2gpt.gpt.data import load_split, prepare

    folder, model, tok = run_dir
    (folder / "corpus.txt").write_text(TEXT * 10)
    prepare(data_file=folder / "corpus.txt", out_dir=folder / "data", tokenizer=tok)
    result = evaluate(folder, data_dir=folder / "data", split="val", stride=8, say=lambda s: None)
    val = np.asarray(load_split(folder / "data", "val"), dtype=np.int64)
    assert result.tokens == len(val) - 1
    assert result.loss == pytest.approx(hand_loss(model, val, 8), rel=1e-5)
    prepare(data_file=folder / "corpus.txt", out_dir=folder / "other", tokenizer=CharTokenizer.from_text(TEXT + "!"))
    with pytest.raises(ValueError, match="prepared with another tokenizer"):
        evaluate(folder, data_dir=folder / "other")
