"""Issue 12 in the training loop: lr_decay_iters follows max_iters, --eval-only, plain grep-able log lines when the
output is not a terminal, and a BPE trained on the data used by train, sample, eval and export alike."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

from numpy2gpt.gpt import train as train_mod
from numpy2gpt.gpt.checkpoint import load_checkpoint
from numpy2gpt.gpt.train import TrainConfig, get_lr, train

from .test_train import make_corpus, tiny


@pytest.fixture(autouse=True)
def _fixed_peak(monkeypatch):
    monkeypatch.setattr(train_mod, "measure_matmul_peak", lambda *a, **k: 1e10)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus") / "small.txt")


def test_lr_decay_iters_defaults_to_max_iters():
    c = TrainConfig(max_iters=500)
    assert c.lr_decay_iters == 0 and c.decay_iters == 500
    assert get_lr(500, c) == pytest.approx(c.min_lr)  # the issue: 91% of the peak rate at the end before
    assert get_lr(300, c) > c.min_lr
    assert TrainConfig(max_iters=5).decay_iters == 100  # shorter than the warmup: never reaches the cosine
    assert TrainConfig(max_iters=500, lr_decay_iters=300).decay_iters == 300
    assert get_lr(400, TrainConfig(max_iters=500, lr_decay_iters=300)) == pytest.approx(1e-4)


def test_eval_only_estimates_and_writes_nothing(tmp_path, corpus, capsys):
    trained = train(tiny(tmp_path, corpus, max_iters=4))
    ckpt = (tmp_path / "out" / "ckpt.n2g").read_bytes()
    metrics = (tmp_path / "out" / "metrics.jsonl").read_text()
    capsys.readouterr()
    result = train(tiny(tmp_path, corpus, max_iters=4, init_from="resume", eval_only=True))
    out = capsys.readouterr().out
    assert re.search(r"^step 4: train loss \d+\.\d{4}, val loss \d+\.\d{4}$", out, re.M)
    assert "saved checkpoint" not in out and "iter " not in out
    assert result.iter_num == 4 and result.checkpoint is None
    assert result.val_loss == pytest.approx(trained.val_loss)  # the same batches: estimate_loss's own stream
    assert (tmp_path / "out" / "ckpt.n2g").read_bytes() == ckpt
    assert (tmp_path / "out" / "metrics.jsonl").read_text() == metrics
    fresh = train(tiny(tmp_path / "fresh", corpus, eval_only=True))
    assert fresh.iter_num == 0 and not (tmp_path / "fresh" / "out" / "ckpt.n2g").exists()


def test_log_is_plain_lines_when_not_a_terminal(tmp_path, corpus, capsys):
    train(tiny(tmp_path, corpus, max_iters=4, progress=True))  # capsys: stdout and stderr are not terminals
    captured = capsys.readouterr()
    assert "\r" not in captured.out + captured.err
    assert re.findall(r"^iter (\d+): loss", captured.out, re.M) == ["2", "4"]


def test_progress_bar_on_a_terminal(tmp_path, corpus, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    train(tiny(tmp_path, corpus, max_iters=4, progress=True))
    err = capsys.readouterr().err
    assert "training" in err and "4/4" in err and "loss=" in err  # the bar, with the loss
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    train(tiny(tmp_path, corpus, max_iters=4, progress=False))
    assert "4/4" not in capsys.readouterr().err  # --no-progress


def test_bpe_tokenizer_through_train_sample_eval_export(tmp_path, corpus):
    pytest.importorskip("tokenizers")
    from numpy2gpt.gpt.evaluate import evaluate
    from numpy2gpt.gpt.export import export
    from numpy2gpt.gpt.sample import sample

    cfg = tiny(tmp_path, corpus, tokenizer="bpe", vocab_size=300, max_iters=4)
    result = train(cfg)
    data_dir = tmp_path / "out" / "data" / "small_bpe300"
    assert (data_dir / "tokenizer.json").is_file()
    ckpt = load_checkpoint(tmp_path / "out")
    assert ckpt["model_args"]["vocab_size"] == 300 and "json" in ckpt["tokenizer"]["tokenizer"]
    (data_dir / "tokenizer.json").unlink()  # the checkpoint carries its vocabulary
    texts = sample(tmp_path / "out", prompt="the zebras 日本 😀", max_new_tokens=5, stream=None)
    assert texts[0].startswith("the zebras 日本 😀")  # unknown text encodes byte by byte
    score = evaluate(tmp_path / "out", text="the quick brown fox jumps over a lazy dog.\n" * 3, say=lambda s: None)
    assert np.isfinite(score.loss) and score.tokens > 10
    export(tmp_path / "out", tmp_path / "hf", say=lambda s: None)
    assert json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())["tokenizer_class"] == (
        "PreTrainedTokenizerFast"
    )
    transformers = pytest.importorskip("transformers")
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    from numpy2gpt.gpt.tokenizer import load_tokenizer

    ours = load_tokenizer(ckpt["tokenizer"])
    assert hf_tok("the lazy dog, ünï")["input_ids"] == ours.encode("the lazy dog, ünï")
    assert result.iter_num == 4
    # a folder made by `prepare` whose tokenizer file is gone: one clear error (train prepares its own folder again)
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json is missing: it holds the BPE vocabulary"):
        train(tiny(tmp_path, corpus, tokenizer="bpe", vocab_size=300, data_dir=str(data_dir)))
    train(tiny(tmp_path, corpus, tokenizer="bpe", vocab_size=300, max_iters=6, init_from="resume"))
    assert (data_dir / "tokenizer.json").is_file()  # prepared again: the same BPE (training is deterministic)
