"""--step-threads N: each micro-batch split into N chunks, forward and backward of each in its own thread, the
chunks' gradients summed. The same loss and gradients as the unsplit step, up to float32 rounding."""

from __future__ import annotations

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.gpt import train as train_mod
from numpy2gpt.gpt.model import GPT, GPTConfig
from numpy2gpt.gpt.train import TrainConfig, forward_backward, train


def _grads(config: TrainConfig) -> tuple[float, dict[str, np.ndarray]]:
    ag.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, n_layer=2, n_head=2, n_embd=16, block_size=8, dropout=0.0, bias=True))
    tokens = np.random.default_rng(1).integers(0, 11, 500).astype(np.uint16)
    ag.manual_seed(1)  # the batch draws
    loss = forward_backward(model, tokens, config, iter_num=0)
    return loss, {name: p.grad.data.copy() for name, p in model.named_parameters()}


@pytest.mark.parametrize("threads, accumulation", [(2, 1), (3, 2), (5, 1)])
def test_step_threads_give_the_unsplit_loss_and_gradients(threads, accumulation):
    """Batch 5 splits unevenly into 2 or 3 chunks (the chunks' means are weighted by their sizes), or one row each;
    with gradient accumulation the chunks' gradients add to the earlier micro-batches' ones."""
    common = dict(batch_size=5, block_size=8, gradient_accumulation_steps=accumulation)
    loss1, grads1 = _grads(TrainConfig(**common))
    loss_n, grads_n = _grads(TrainConfig(**common, step_threads=threads))
    assert loss_n == pytest.approx(loss1, rel=1e-6)
    assert grads_n.keys() == grads1.keys()
    for name, g in grads1.items():
        assert grads_n[name].dtype == np.float32
        np.testing.assert_allclose(grads_n[name], g, rtol=1e-4, atol=1e-7, err_msg=name)


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(step_threads=0), "step_threads must be between 1 and batch_size"),
        (dict(step_threads=13), r"step_threads must be between 1 and batch_size \(12\)"),
        (dict(step_threads=2, dropout=0.1), "step_threads > 1 needs dropout 0"),
        (dict(step_threads=2, device="cuda"), "step_threads > 1 needs dropout 0 and device cpu"),
    ],
)
def test_impossible_step_threads_are_refused_by_name(bad, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**bad)


def test_a_run_with_step_threads_trains_like_one_without(tmp_path, monkeypatch, capsys):
    """The flag wired through train(): the log says so, and 4 steps land on the same weights to rounding."""
    monkeypatch.setattr(train_mod, "measure_matmul_peak", lambda *a, **k: 1e10)
    corpus = tmp_path / "small.txt"
    corpus.write_text("the quick brown fox jumps over a lazy dog.\n" * 200)

    def run(name: str, **extra: int) -> train_mod.TrainResult:
        return train(TrainConfig(out_dir=str(tmp_path / name), data_file=str(corpus), n_layer=1, n_head=2, n_embd=16,
                                 block_size=16, batch_size=4, max_iters=4, eval_interval=4, eval_iters=2,
                                 progress=False, plot=False, sample_at_end=False, **extra))  # fmt: skip

    one, two = run("one"), run("two", step_threads=2)
    assert "2 step threads" in capsys.readouterr().out
    for (name, a), b in zip(one.model.named_parameters(), two.model.parameters(), strict=True):
        np.testing.assert_allclose(b.data, a.data, rtol=1e-3, atol=2e-5, err_msg=name)
    assert two.val_loss == pytest.approx(one.val_loss, rel=1e-4)
