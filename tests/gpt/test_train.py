"""The training loop: it learns, it is reproducible, it resumes exactly, and it fails safely.

Every run is tiny (1 layer, n_embd 16, context 16) on a small generated text in a temporary folder, so the whole
file takes a few seconds. The machine's matmul peak is measured once per run in real use (0.3 s); here it is
replaced by a constant to keep the runs short.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from numpy2gpt.gpt import train as train_mod
from numpy2gpt.gpt.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from numpy2gpt.gpt.train import TrainConfig, TrainingDiverged, train

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "wizards",
    "quietly",
    "hex",
    "bold",
    "jumping",
    "zebras",
]


def make_corpus(path, n_words=3000, seed=0):
    """A text with a learnable structure (English-like words, short lines) and a small alphabet."""
    rng = np.random.default_rng(seed)
    lines, line = [], []
    for w in rng.choice(WORDS, size=n_words):
        line.append(str(w))
        if len(line) == 8:
            lines.append(" ".join(line) + ".")
            line = []
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(autouse=True)
def _fixed_peak(monkeypatch):
    monkeypatch.setattr(train_mod, "measure_matmul_peak", lambda *a, **k: 1e10)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus") / "small.txt")


def tiny(tmp_path, corpus, **overrides) -> TrainConfig:
    settings = dict(
        out_dir=str(tmp_path / "out"),
        data_file=str(corpus),
        n_layer=1,
        n_head=2,
        n_embd=16,
        block_size=16,
        batch_size=4,
        max_iters=12,
        lr_decay_iters=12,
        warmup_iters=2,
        eval_interval=4,
        eval_iters=2,
        log_interval=2,
        learning_rate=3e-3,
        progress=False,
        plot=False,
        sample_at_end=False,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def params(model) -> dict[str, np.ndarray]:
    return {name: p.data.copy() for name, p in model.named_parameters()}


def assert_same_params(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == np.float32
        assert np.array_equal(a[name], b[name]), f"{name} differs"


def test_defaults_are_nanogpts_cpu_shakespeare_char_run():
    c = TrainConfig()
    assert (c.n_layer, c.n_head, c.n_embd, c.block_size, c.batch_size) == (4, 4, 128, 64, 12)
    assert (c.max_iters, c.decay_iters, c.dropout, c.learning_rate, c.min_lr) == (2000, 2000, 0.0, 1e-3, 1e-4)
    assert (c.warmup_iters, c.beta2, c.weight_decay, c.grad_clip) == (100, 0.99, 0.1, 1.0)
    assert (c.eval_interval, c.eval_iters, c.log_interval) == (250, 20, 10)
    assert (c.dataset, c.out_dir, c.tokenizer, c.init_from) == ("python_docs", "out", "char", "scratch")


def test_short_run_lowers_val_loss_and_writes_checkpoint_and_metrics(tmp_path, corpus, capsys):
    cfg = tiny(tmp_path, corpus, max_iters=60, lr_decay_iters=60, eval_interval=30, learning_rate=1e-2, plot=True)
    result = train(cfg)
    out = capsys.readouterr().out
    records = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "val_loss" in r]
    assert [r["iter"] for r in evals] == [0, 30, 60]
    vocab = len(set(corpus.read_text()))
    assert evals[0]["val_loss"] == pytest.approx(math.log(vocab), abs=0.3)  # untrained: about uniform
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] - 0.8  # it learned something
    assert result.val_loss == evals[-1]["val_loss"] and result.iter_num == 60
    steps = [r for r in records if "loss" in r]
    assert [r["iter"] for r in steps] == list(range(2, 61, 2))
    assert all(r["ms"] > 0 and r["lr"] > 0 for r in steps)
    assert "tok/s" in out and "GFLOP/s" in out and "% of matmul peak" in out and "lr " in out
    ckpt = load_checkpoint(tmp_path / "out")
    assert ckpt["iter_num"] == 60 and ckpt["model_args"]["n_embd"] == 16
    assert ckpt["config"]["max_iters"] == 60 and ckpt["tokenizer"]["vocab_size"] == vocab
    png = tmp_path / "out" / "loss.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_without_matplotlib_the_run_says_why_there_is_no_loss_curve(tmp_path, corpus, monkeypatch, capsys):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if it were not installed
    train(tiny(tmp_path, corpus, max_iters=8, plot=True))
    out = capsys.readouterr().out
    assert out.count("no loss curve: matplotlib is not installed") == 1  # once, not at every evaluation
    assert not (tmp_path / "out" / "loss.png").exists() and (tmp_path / "out" / "ckpt.n2g").exists()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (dict(eval_interval=0), "eval_interval must be at least 1"),
        (dict(batch_size=-1), "batch_size must be at least 1"),
        (dict(max_iters=-5), "max_iters must be >= 0"),
        (dict(warmup_iters=50, lr_decay_iters=10), r"lr_decay_iters \(10\) must be >= warmup_iters \(50\)"),
        (dict(dropout=1.0), r"dropout must be in \[0, 1\)"),
        (dict(learning_rate=0.0), "learning_rate > 0"),
        (dict(tokenizer="wordpiece"), "tokenizer must be 'char', 'gpt2' or 'bpe'"),
        (dict(tokenizer="bpe", vocab_size=100), "vocab_size must be between 257 and 65536"),
        (dict(init_from="gpt3"), "init_from must be"),
        (dict(weights="./gpt2"), r"weights='\./gpt2' is only used with init_from gpt2"),
    ],
)
def test_impossible_settings_are_refused_by_name(bad, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**bad)


def test_learning_rate_schedule_is_nanogpts(tmp_path, corpus):
    cfg = tiny(tmp_path, corpus, learning_rate=1e-3, min_lr=1e-4, warmup_iters=10, lr_decay_iters=100)
    assert train_mod.get_lr(0, cfg) == pytest.approx(1e-3 * 1 / 11)
    assert train_mod.get_lr(10, cfg) == pytest.approx(1e-3)
    assert train_mod.get_lr(55, cfg) == pytest.approx(1e-4 + 0.5 * 9e-4)
    assert train_mod.get_lr(500, cfg) == pytest.approx(1e-4)
    assert train_mod.get_lr(500, tiny(tmp_path, corpus, decay_lr=False, learning_rate=5e-4)) == 5e-4


def test_seeded_runs_are_reproducible_and_evaluation_does_not_perturb_training(tmp_path, corpus):
    a = train(tiny(tmp_path / "a", corpus, dropout=0.1))
    b = train(tiny(tmp_path / "b", corpus, dropout=0.1, eval_interval=1000, eval_iters=5, log_interval=5))
    assert_same_params(params(a.model), params(b.model))
    c = train(tiny(tmp_path / "c", corpus, dropout=0.1, seed=7))
    assert not np.array_equal(params(a.model)["transformer.wte.weight"], params(c.model)["transformer.wte.weight"])


def test_resume_continues_exactly(tmp_path, corpus):
    """6 + 6 iterations == 12 iterations, bit for bit: dropout > 0 and gradient accumulation draw from the RNG,
    AdamW has moments, the learning rate is mid-schedule, evaluations happen at different points."""
    knobs = dict(dropout=0.2, gradient_accumulation_steps=2, max_iters=12, eval_interval=5)
    full = train(tiny(tmp_path / "full", corpus, **knobs))
    first = train(tiny(tmp_path / "split", corpus, **{**knobs, "max_iters": 6}))
    assert first.iter_num == 6
    resumed = train(tiny(tmp_path / "split", corpus, **knobs, init_from="resume"))
    assert resumed.iter_num == 12
    assert_same_params(params(full.model), params(resumed.model))
    # and the checkpoints agree: optimizer moments included
    a, b = load_checkpoint(tmp_path / "full" / "out"), load_checkpoint(tmp_path / "split" / "out")
    for key in a["optimizer"]["state"]:
        for name, value in a["optimizer"]["state"][key].items():
            assert np.array_equal(value, b["optimizer"]["state"][key][name]), (key, name)
    # the metrics log continues across the resume
    records = [json.loads(s) for s in (tmp_path / "split" / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if "loss" in r] == list(range(2, 13, 2))


@pytest.mark.parametrize(("always", "saved_at"), [(False, [4]), (True, [4, 8, 12])])
def test_checkpoint_is_saved_when_val_improves(tmp_path, corpus, monkeypatch, capsys, always, saved_at):
    """Scripted val losses 5, 4, 4.5, 4.8 at iterations 0, 4, 8, 12: saved at 4 (better), not at 8 nor at the end
    (worse: the end-of-run save never replaces a better checkpoint), unless always_save_checkpoint; the best val
    loss, 4, is kept either way."""
    val = iter([5.0, 4.0, 4.5, 4.8])
    monkeypatch.setattr(train_mod, "estimate_loss", lambda *a: {"train": 3.0, "val": next(val)})
    saves = []
    real_save = train_mod.save_checkpoint
    monkeypatch.setattr(train_mod, "save_checkpoint", lambda path, ckpt: saves.append(ckpt) or real_save(path, ckpt))
    train(tiny(tmp_path, corpus, max_iters=12, eval_interval=4, always_save_checkpoint=always))
    assert [c["iter_num"] for c in saves] == saved_at
    assert [c["best_val_loss"] for c in saves] == [4.0] * len(saved_at)
    out = capsys.readouterr().out
    assert out.count("saved checkpoint to") == len(saved_at)
    assert load_checkpoint(tmp_path / "out")["iter_num"] == saved_at[-1]
    assert ("not saving the final model: its val loss 4.8000 is above the best, 4.0000" in out) == (not always)


def test_the_end_of_run_saves_when_there_is_no_checkpoint_yet(tmp_path, corpus, monkeypatch):
    """max_iters below eval_interval: the final evaluation is the first after iteration 0, so it saves."""
    val = iter([5.0, 6.0])
    monkeypatch.setattr(train_mod, "estimate_loss", lambda *a: {"train": 3.0, "val": next(val)})
    train(tiny(tmp_path, corpus, max_iters=3, eval_interval=10))
    assert load_checkpoint(tmp_path / "out")["iter_num"] == 3


def test_resume_at_max_iters_says_there_is_nothing_to_train(tmp_path, corpus, capsys):
    train(tiny(tmp_path, corpus, max_iters=4))
    ckpt = (tmp_path / "out" / "ckpt.n2g").read_bytes()
    capsys.readouterr()
    result = train(tiny(tmp_path, corpus, max_iters=4, init_from="resume"))
    assert "already at iteration 4 (max_iters 4): nothing to train; pass a larger" in capsys.readouterr().out
    assert result.iter_num == 4 and (tmp_path / "out" / "ckpt.n2g").read_bytes() == ckpt
    records = [json.loads(s) for s in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert result.val_loss == [r["val_loss"] for r in records if "val_loss" in r][-1]  # the estimate at iteration 4


def test_resume_with_a_different_model_names_the_fields(tmp_path, corpus):
    train(tiny(tmp_path, corpus, max_iters=2))
    expected = r"n_layer: checkpoint has 1, config asks for 2; n_embd: checkpoint has 16, config asks for 32"
    with pytest.raises(CheckpointError, match=expected):
        train(tiny(tmp_path, corpus, n_embd=32, n_layer=2, init_from="resume"))
    train(tiny(tmp_path, corpus, max_iters=4, dropout=0.1, init_from="resume"))  # dropout may change


def test_resume_on_data_with_another_vocabulary_is_refused(tmp_path, corpus):
    """Same number of characters, other characters: the saved ids would silently mean other tokens."""
    train(tiny(tmp_path, corpus, max_iters=2))
    shifted = tmp_path / "shifted.txt"
    shifted.write_text(corpus.read_text().translate(str.maketrans("abcdefgh", "ABCDEFGH")))
    with pytest.raises(CheckpointError, match=r"another tokenizer .*'\\n \.ABCDEFGH.*resume with the run's own data"):
        train(tiny(tmp_path, shifted, max_iters=4, init_from="resume"))


def test_resume_without_a_checkpoint_says_so(tmp_path, corpus):
    with pytest.raises(CheckpointError, match=r"no checkpoint at .*train first"):
        train(tiny(tmp_path, corpus, init_from="resume"))


def test_a_checkpoint_without_training_state_cannot_be_resumed(tmp_path, corpus):
    train(tiny(tmp_path, corpus, max_iters=2))
    ckpt = load_checkpoint(tmp_path / "out")
    keep = ("model", "model_args", "iter_num", "tokenizer", "config")  # enough to sample from
    save_checkpoint(tmp_path / "out" / "ckpt.n2g", {k: ckpt[k] for k in keep})
    with pytest.raises(CheckpointError, match="lacks optimizer, best_val_loss, rng_state: it can be sampled from but"):
        train(tiny(tmp_path, corpus, max_iters=4, init_from="resume"))


def test_corrupt_checkpoint_is_refused_and_left_alone(tmp_path, corpus):
    train(tiny(tmp_path, corpus, max_iters=2))
    ckpt = tmp_path / "out" / "ckpt.n2g"
    data = bytearray(ckpt.read_bytes())
    data[len(data) // 2] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*ckpt\.n2g.*(checksum|corrupt)"):
        train(tiny(tmp_path, corpus, max_iters=4, init_from="resume"))
    assert ckpt.read_bytes() == bytes(data)
    ckpt.write_bytes(bytes(data[:100]))
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(ckpt)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, corpus, monkeypatch):
    cfg = tiny(tmp_path, corpus, max_iters=8, eval_interval=4)
    train(cfg)
    ckpt = tmp_path / "out" / "ckpt.n2g"
    good = ckpt.read_bytes()
    # resume and blow the weights up after two steps: the next loss is nan
    real_step = train_mod.clip_grad_norm_
    calls = {"n": 0}

    def poisoned(parameters, max_norm):
        calls["n"] += 1
        parameters = list(parameters)
        if calls["n"] == 2:
            for p in parameters:
                p.data[...] = np.nan
        return real_step(parameters, max_norm)

    monkeypatch.setattr(train_mod, "clip_grad_norm_", poisoned)
    with pytest.raises(TrainingDiverged, match=r"loss is nan at iteration 10.*last good checkpoint .* untouched"):
        train(tiny(tmp_path, corpus, max_iters=20, eval_interval=4, init_from="resume"))
    assert ckpt.read_bytes() == good
    # resuming from that checkpoint (iteration 8) drops what the failed run logged after it (iterations 9, 10)
    monkeypatch.setattr(train_mod, "clip_grad_norm_", real_step)
    train(tiny(tmp_path, corpus, max_iters=12, eval_interval=4, init_from="resume"))
    records = [json.loads(s) for s in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if "loss" in r] == [2, 4, 6, 8, 10, 12]
    assert [r["iter"] for r in records if "val_loss" in r] == [0, 4, 8, 12]


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_huge_learning_rate_diverges_cleanly(tmp_path, corpus):
    with pytest.raises(
        TrainingDiverged, match=r"loss is nan at iteration 1.*nothing was saved.*Try a lower --learning"
    ):
        train(tiny(tmp_path, corpus, learning_rate=1e30, decay_lr=False, grad_clip=0.0, max_iters=30))
    assert not (tmp_path / "out" / "ckpt.n2g").exists()  # it diverged before the first save (iteration 4)


def test_too_short_or_empty_data_is_a_clear_error(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("abcdefghij" * 3)
    with pytest.raises(ValueError, match=r"(too short|fewer than|at least).*block_size"):
        train(tiny(tmp_path, short, block_size=16))
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        train(tiny(tmp_path, empty))


def test_a_data_dir_that_was_never_prepared_is_an_error(tmp_path, corpus):
    with pytest.raises(FileNotFoundError, match=r"data folder .*nowhere.* does not exist: it was never prepared"):
        train(tiny(tmp_path, corpus, data_dir=str(tmp_path / "nowhere")))
    assert not (tmp_path / "nowhere").exists()  # nothing was prepared there in its place


def test_data_is_prepared_once_and_again_when_the_file_changes(tmp_path, corpus, capsys):
    text = tmp_path / "t.txt"
    text.write_text(corpus.read_text())
    train(tiny(tmp_path, text, max_iters=1))
    assert "preparing" in capsys.readouterr().out
    train(tiny(tmp_path, text, max_iters=1))
    assert "preparing" not in capsys.readouterr().out
    text.write_text(corpus.read_text() + "XYZ\n")
    import os

    os.utime(text, ns=(text.stat().st_atime_ns, text.stat().st_mtime_ns + 10**9))
    result = train(tiny(tmp_path, text, max_iters=1))
    assert "preparing" in capsys.readouterr().out
    assert result.model.config.vocab_size == len(set(text.read_text()))


def test_the_composed_path_trains_like_the_fused_one(tmp_path, corpus):
    """--no-fused (GPTConfig.fused=False) trains through the composed Tensor ops: the same run to float32 rounding,
    and the checkpoint records it."""
    fused = train(tiny(tmp_path / "fused", corpus, max_iters=6))
    composed = train(tiny(tmp_path / "composed", corpus, max_iters=6, fused=False))
    assert composed.model.config.fused is False
    assert load_checkpoint(tmp_path / "composed" / "out")["model_args"]["fused"] is False
    a, b = params(fused.model), params(composed.model)
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-3, atol=2e-5, err_msg=name)
    assert composed.val_loss == pytest.approx(fused.val_loss, rel=1e-4)
