"""GPT-2 weights in the Hugging Face layout load into numpy2gpt's GPT and behave exactly like the reference.

The reference users trust is ``transformers``' GPT2LMHeadModel: a small random-weight one is saved with
``save_pretrained`` into a temporary folder, loaded with ``from_pretrained``, and its logits and greedy
generation are matched. No network: nothing here downloads.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.gpt.model import from_pretrained
from numpy2gpt.gpt.pretrained import config_from_hf, resolve

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

VOCAB = 50257


@pytest.fixture(scope="module")
def hf_model_dir(tmp_path_factory):
    """A tiny random GPT-2 (full 50257 vocabulary) saved as model.safetensors + config.json."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_head=2, n_embd=32, vocab_size=VOCAB, n_positions=24)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # random, non-trivial biases and LayerNorm parameters so that every tensor matters
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.add_(torch.randn_like(p) * 0.1)
    folder = tmp_path_factory.mktemp("gpt2-tiny")
    model.save_pretrained(folder)
    return folder, model


def test_logits_match_transformers(hf_model_dir):
    folder, hf = hf_model_dir
    model = from_pretrained(folder)
    assert model.config.vocab_size == VOCAB and model.config.block_size == 24
    idx = np.random.default_rng(0).integers(0, VOCAB, size=(2, 17))
    with ag.no_grad():
        logits, _ = model(idx)
    with torch.no_grad():
        expected = hf(torch.from_numpy(idx)).logits.numpy()
    assert logits.dtype == np.float32
    np.testing.assert_allclose(logits.data, expected, rtol=1e-4, atol=2e-5)


def test_greedy_generation_matches_transformers(hf_model_dir):
    folder, hf = hf_model_dir
    model = from_pretrained(folder)
    prompt = np.array([[464, 2068, 7586, 21831]])
    ours = model.generate(prompt, max_new_tokens=15, temperature=0.0)
    with torch.no_grad():
        theirs = hf.generate(
            torch.from_numpy(prompt), max_new_tokens=15, do_sample=False, pad_token_id=50256, eos_token_id=None
        ).numpy()
    assert ours.data.tolist() == theirs.tolist()


def test_loads_a_weight_file_and_a_cached_model_name(hf_model_dir, tmp_path, monkeypatch):
    folder, _ = hf_model_dir
    direct = from_pretrained(folder / "model.safetensors")
    snapshot = tmp_path / "hub" / "models--openai-community--gpt2" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for f in ("config.json", "model.safetensors"):
        shutil.copy(folder / f, snapshot / f)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    cached = from_pretrained("gpt2", allow_download=False)
    for (name, a), (_, b) in zip(direct.named_parameters(), cached.named_parameters(), strict=True):
        assert np.array_equal(a.data, b.data), name


def test_missing_files_say_where_they_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="looked in") as err:
        resolve("gpt2-medium", allow_download=False)
    assert "empty-cache" in str(err.value)
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        resolve(tmp_path, allow_download=False)
    with pytest.raises(FileNotFoundError, match="known model name"):
        resolve("gpt3-ultra", allow_download=False)


def save_edited_copy(folder, tmp_path, edit):
    """Copy the saved model into ``tmp_path`` with ``edit(state)`` applied to its tensors; returns the copy."""
    from safetensors.numpy import load_file, save_file

    state = load_file(str(folder / "model.safetensors"))
    edit(state)
    save_file(state, str(tmp_path / "model.safetensors"))
    shutil.copy(folder / "config.json", tmp_path / "config.json")
    return tmp_path


def test_a_wrong_shape_names_the_tensor(hf_model_dir, tmp_path):
    def narrow(state):
        state["transformer.h.1.mlp.c_fc.weight"] = state["transformer.h.1.mlp.c_fc.weight"][:, :100].copy()

    with pytest.raises(ValueError, match=r"transformer\.h\.1\.mlp\.c_fc\.weight.*shape"):
        from_pretrained(save_edited_copy(hf_model_dir[0], tmp_path, narrow))


def test_a_missing_tensor_is_named(hf_model_dir, tmp_path):
    def drop(state):
        del state["transformer.ln_f.bias"]

    with pytest.raises(KeyError, match=r"transformer\.ln_f\.bias"):
        from_pretrained(save_edited_copy(hf_model_dir[0], tmp_path, drop))


def test_corrupt_weight_file_is_refused(hf_model_dir, tmp_path):
    folder, _ = hf_model_dir
    shutil.copy(folder / "config.json", tmp_path / "config.json")
    (tmp_path / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:1000])
    with pytest.raises(ValueError, match="safetensors"):
        from_pretrained(tmp_path)


def test_unsupported_config_is_refused():
    base = {"model_type": "gpt2", "n_embd": 32, "n_layer": 1, "n_head": 2, "vocab_size": 10, "n_positions": 8}
    with pytest.raises(ValueError, match="n_inner"):
        config_from_hf({**base, "n_inner": 100})
    with pytest.raises(ValueError, match="scale_attn_by_inverse_layer_idx"):
        config_from_hf({**base, "scale_attn_by_inverse_layer_idx": True})
    with pytest.raises(ValueError, match="activation_function"):
        config_from_hf({**base, "activation_function": "relu"})


def test_crop_block_size_keeps_the_first_positions(hf_model_dir):
    folder, hf = hf_model_dir
    model = from_pretrained(folder, block_size=8)
    assert model.config.block_size == 8
    assert model.transformer.wpe.weight.shape == (8, 32)
    idx = np.arange(8)[None] * 7
    with ag.no_grad():
        logits, _ = model(idx)
    with torch.no_grad():
        expected = hf(torch.from_numpy(idx)).logits.numpy()
    np.testing.assert_allclose(logits.data, expected, rtol=1e-4, atol=2e-5)


def test_fine_tuning_lowers_the_loss_on_new_text(hf_model_dir):
    folder, _ = hf_model_dir
    ag.manual_seed(0)
    model = from_pretrained(folder)
    text = np.array([464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13] * 4)
    x, y = text[None, :-1][:, :20], text[None, 1:][:, :20]
    opt = model.configure_optimizers(weight_decay=0.0, learning_rate=1e-2, betas=(0.9, 0.99))
    losses = []
    for _ in range(15):
        _, loss = model(x, y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0], losses


def test_loaded_weights_are_float32_and_tied(hf_model_dir):
    folder, _ = hf_model_dir
    model = from_pretrained(folder)
    assert model.lm_head.weight is model.transformer.wte.weight
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert json.loads((folder / "config.json").read_text())["activation_function"] == "gelu_new"
    assert model.config.gelu_approximate == "tanh"
