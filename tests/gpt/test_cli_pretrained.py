"""``--init-from gpt2 --weights DIR``: sampling from and fine-tuning GPT-2 weights in Hugging Face's layout.

The "GPT-2" here is a tiny random one (1 layer, n_embd 16, the full 50257-token vocabulary) written by this test
as ``config.json`` + ``model.safetensors`` exactly as Hugging Face lays them out (Conv1D weights stored (in, out),
no lm_head), so nothing is downloaded.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.gpt import cli
from numpy2gpt.gpt import train as train_mod
from numpy2gpt.gpt.checkpoint import load_checkpoint
from numpy2gpt.gpt.model import GPT, GPTConfig, from_pretrained
from numpy2gpt.gpt.sample import sample_from_model

safetensors_numpy = pytest.importorskip("safetensors.numpy")  # the [pretrained] extra; installed for the tests

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


@pytest.fixture(autouse=True)
def _fixed_peak(monkeypatch):
    monkeypatch.setattr(train_mod, "measure_matmul_peak", lambda *a, **k: 1e10)


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    ag.manual_seed(0)
    config = GPTConfig(block_size=32, vocab_size=50257, n_layer=1, n_head=2, n_embd=16, bias=True)
    model = GPT(config)
    tensors = {}
    for name, p in model.named_parameters():
        if name == "lm_head.weight":
            continue  # tied to wte, not stored
        tensors[name] = np.ascontiguousarray(p.data.T if name.endswith(CONV1D) else p.data)
    folder = tmp_path_factory.mktemp("gpt2-tiny")
    safetensors_numpy.save_file(tensors, str(folder / "model.safetensors"))
    hf_config = {"model_type": "gpt2", "n_embd": 16, "n_layer": 1, "n_head": 2, "vocab_size": 50257,
                 "n_positions": 32, "activation_function": "gelu_new"}  # fmt: skip
    (folder / "config.json").write_text(json.dumps(hf_config))
    return folder


def test_sample_from_pretrained_weights(gpt2_dir, capsys):
    code = cli.main(["sample", "--init-from", "gpt2", "--weights", str(gpt2_dir), "--prompt", "Hello, world",
                     "--max-new-tokens", "8", "--seed", "5"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    meta = {"tokenizer": {"kind": "gpt2", "name": "gpt2"}, "vocab_size": 50257}
    [expected] = sample_from_model(
        from_pretrained(gpt2_dir), meta, "Hello, world", max_new_tokens=8, seed=5, stream=None
    )
    assert out == expected + "\n" and out.startswith("Hello, world")


def test_fine_tune_pretrained_weights_and_resume(gpt2_dir, tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("The weights of a pretrained model are a good place to start.\n" * 40)
    run = tmp_path / "ft"
    common = ["--out-dir", run, "--eval-iters", 1, "--eval-interval", 2, "--log-interval", 1, "--batch-size", 2,
              "--no-plot", "--no-sample-at-end", "--no-progress"]  # fmt: skip
    args = ["train", "--init-from", "gpt2", "--weights", gpt2_dir, "--tokenizer", "gpt2", "--data-file", text,
            "--block-size", 16, "--max-iters", 2, "--dropout", 0.1, "--learning-rate", 1e-3, *common]  # fmt: skip
    assert cli.main([str(a) for a in args]) == 0, capsys.readouterr().err
    ckpt = load_checkpoint(run)
    assert ckpt["model_args"]["block_size"] == 16  # cropped from 32
    assert ckpt["model_args"]["gelu_approximate"] == "tanh" and ckpt["model_args"]["vocab_size"] == 50257
    assert ckpt["config"]["n_layer"] == 1 and ckpt["config"]["n_embd"] == 16  # the config describes the model
    resume = ["train", "--resume", "--out-dir", str(run), "--max-iters", "4", "--always-save-checkpoint"]  # the last
    assert cli.main(resume) == 0, capsys.readouterr().err
    assert load_checkpoint(run)["iter_num"] == 4
    capsys.readouterr()
    # the fine-tuned checkpoint samples like any other: GPT-2's tokenizer and architecture (tanh GELU) come with it
    assert cli.main(["sample", "--out-dir", str(run), "--prompt", "The weights", "--max-new-tokens", "5"]) == 0
    out = capsys.readouterr().out
    model = GPT(GPTConfig(**load_checkpoint(run)["model_args"]))
    model.load_state_dict(load_checkpoint(run)["model"])
    meta = {"tokenizer": {"kind": "gpt2", "name": "gpt2"}, "vocab_size": 50257}
    [expected] = sample_from_model(model, meta, "The weights", max_new_tokens=5, stream=None)
    assert out == expected + "\n" and out.startswith("The weights")


def test_pretrained_needs_bpe_data(gpt2_dir, tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("characters only " * 100)
    args = ["train", "--init-from", "gpt2", "--weights", gpt2_dir, "--data-file", text, "--out-dir", tmp_path / "o",
            "--block-size", 16]  # fmt: skip
    assert cli.main([str(a) for a in args]) == 1
    assert "prepare it with --tokenizer gpt2" in capsys.readouterr().err


def test_weights_that_do_not_match_are_a_clear_error(gpt2_dir, tmp_path, capsys):
    state = safetensors_numpy.load_file(str(gpt2_dir / "model.safetensors"))
    del state["transformer.ln_f.bias"]
    safetensors_numpy.save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text((gpt2_dir / "config.json").read_text())
    assert cli.main(["sample", "--init-from", "gpt2", "--weights", str(tmp_path), "--max-new-tokens", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "numpy2gpt sample: error: weights do not match GPT-2's layout: missing ['transformer.ln_f.bias']"
    )
