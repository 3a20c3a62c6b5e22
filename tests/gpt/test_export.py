"""``export``: a checkpoint in Hugging Face's GPT-2 layout, read back by transformers (same logits) and by
``GPT.from_pretrained`` (same model); biasless models get zero biases; broken checkpoints are refused."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.gpt.checkpoint import CheckpointError, save_checkpoint
from numpy2gpt.gpt.export import export, export_model
from numpy2gpt.gpt.model import GPT, GPTConfig
from numpy2gpt.gpt.tokenizer import CharTokenizer

pytest.importorskip("safetensors")


def tiny(bias: bool, gelu: str = "none", vocab_size: int = 13) -> GPT:
    ag.manual_seed(0)
    config = GPTConfig(block_size=8, vocab_size=vocab_size, n_layer=2, n_head=2, n_embd=16, bias=bias,
                       gelu_approximate=gelu)  # fmt: skip
    model = GPT(config)
    rng = np.random.default_rng(1)
    for p in model.parameters():  # move every weight (LayerNorm gains, biases) off its initial value
        p.data += rng.standard_normal(p.data.shape).astype(np.float32) * 0.2
    return model.eval()


def save_run(model: GPT, path, tokenizer_meta) -> None:
    save_checkpoint(
        path,
        {"model": model.state_dict(), "model_args": dataclasses.asdict(model.config), "iter_num": 3,
         "tokenizer": {"tokenizer": tokenizer_meta, "vocab_size": model.config.vocab_size}},
    )  # fmt: skip


IDS = np.array([[1, 5, 2, 7, 3, 3, 0, 12], [4, 4, 9, 1, 0, 2, 11, 6]])


@pytest.mark.parametrize(("bias", "gelu"), [(False, "none"), (True, "tanh")])
def test_roundtrip_through_from_pretrained(tmp_path, bias, gelu):
    model = tiny(bias, gelu)
    save_run(model, tmp_path / "ckpt.n2g", CharTokenizer("abcdefghijklm").to_dict())
    lines = []
    export(tmp_path, tmp_path / "hf", say=lines.append)
    assert lines[0].startswith(f"exported 0.01M parameters to {tmp_path / 'hf'}; no tokenizer files")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["activation_function"] == {"none": "gelu", "tanh": "gelu_new"}[gelu]
    back = GPT.from_pretrained(tmp_path / "hf").eval()
    assert back.config.gelu_approximate == gelu and back.config.block_size == 8
    params = dict(back.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(params[name].data, p.data)
    extra = set(params) - {name for name, _ in model.named_parameters()}
    assert all(name.endswith(".bias") and not params[name].data.any() for name in extra)  # zero biases
    assert bool(extra) == (not bias)
    np.testing.assert_allclose(back(IDS)[0].data, model(IDS)[0].data, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("bias", "gelu"), [(False, "none"), (True, "tanh")])
def test_transformers_reads_the_same_logits(tmp_path, bias, gelu):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = tiny(bias, gelu)
    export_model(model, {"tokenizer": {"kind": "char", "chars": "abcdefghijklm"}}, tmp_path, say=lambda s: None)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        logits = hf(torch.from_numpy(IDS)).logits.numpy()
    np.testing.assert_allclose(logits, model(IDS)[0].data, rtol=1e-4, atol=1e-5)


def test_gpt2_tokenizer_files(tmp_path):
    transformers = pytest.importorskip("transformers")
    from numpy2gpt.gpt.tokenizer import GPT2Tokenizer

    model = tiny(True, "tanh", vocab_size=50257)
    export_model(model, {"tokenizer": {"kind": "gpt2", "name": "gpt2"}}, tmp_path, say=lambda s: None)
    assert json.loads((tmp_path / "config.json").read_text())["eos_token_id"] == 50256
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path)
    text = "Hello, I'm a language model, ünïcödé 😀<|endoftext|>"
    assert hf_tok(text)["input_ids"] == GPT2Tokenizer().encode(text)


def test_corrupt_or_missing_checkpoint_is_one_clear_error(tmp_path):
    (tmp_path / "ckpt.n2g").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        export(tmp_path, tmp_path / "hf")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        export(tmp_path / "nothing-here", tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


def test_non_finite_weights_are_not_exported(tmp_path):
    model = tiny(False)
    model.transformer.h[1].mlp.c_fc.weight.data[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"transformer\.h\.1\.mlp\.c_fc\.weight holds NaN"):
        export_model(model, {"tokenizer": {"kind": "char", "chars": "a"}}, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


def test_export_writes_all_or_nothing(tmp_path, monkeypatch):
    """model.safetensors and config.json go through nn.serialization.atomic_write: a write that fails leaves neither
    a partial file nor a temporary one behind, and a successful export leaves no temporary file either."""
    import safetensors.numpy

    model = tiny(True)
    export_model(model, {"tokenizer": {"kind": "char", "chars": "a"}}, tmp_path / "ok")
    assert sorted(p.name for p in (tmp_path / "ok").iterdir()) == ["config.json", "model.safetensors"]

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.numpy, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        export_model(model, {"tokenizer": {"kind": "char", "chars": "a"}}, tmp_path / "full")
    assert list((tmp_path / "full").iterdir()) == []
