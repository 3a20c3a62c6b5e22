"""Export a model to Hugging Face's GPT-2 layout, the inverse of :mod:`numpy2gpt.gpt.pretrained`.

``export_model(model, meta, folder)`` writes

    config.json          a GPT2Config: sizes, ``activation_function`` ("gelu" for nanoGPT's exact GELU, "gelu_new"
                         for GPT-2's tanh form), layer-norm epsilon 1e-5, no dropout, tied embeddings
    model.safetensors    the weights under transformers' names; the Conv1D weights of c_attn, c_proj and c_fc
                         transposed to (in, out); ``lm_head.weight`` left out (it is ``transformer.wte.weight``);
                         a model trained without biases gets zero biases (the same function)
    tokenizer files      GPT-2's ``vocab.json`` + ``merges.txt``, or the ``tokenizer.json`` of a BPE trained with
                         ``--tokenizer bpe``; a character vocabulary has no transformers tokenizer (none written)

so ``transformers.GPT2LMHeadModel.from_pretrained(folder)`` computes the same logits, and
``GPT.from_pretrained(folder)`` reads the same model back. Writing needs the ``safetensors`` package
(``pip install 'numpy2gpt-gpt[pretrained]'``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from numpy2gpt import nn
from numpy2gpt.gpt.model import GPT
from numpy2gpt.gpt.pretrained import CONV1D

__all__ = ["export", "export_model", "hf_config", "hf_state_dict"]

_CONV1D_MODULES = tuple(suffix.removesuffix(".weight") for suffix in CONV1D)  # attn.c_attn, ...


def hf_config(model: GPT, eos_token_id: int | None = None) -> dict[str, Any]:
    """The ``config.json`` of ``model`` as transformers' GPT2Config reads it."""
    c = model.config
    eos = 0 if eos_token_id is None else int(eos_token_id)
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": c.vocab_size,
        "n_positions": c.block_size,
        "n_ctx": c.block_size,
        "n_embd": c.n_embd,
        "n_layer": c.n_layer,
        "n_head": c.n_head,
        "n_inner": None,
        "activation_function": "gelu_new" if c.gelu_approximate == "tanh" else "gelu",
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        "layer_norm_epsilon": 1e-5,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "tie_word_embeddings": True,
        "use_cache": True,
        "bos_token_id": eos,
        "eos_token_id": eos,
        "torch_dtype": "float32",
    }


def hf_state_dict(model: GPT) -> dict[str, np.ndarray]:
    """The weights under transformers' GPT-2 names (Conv1D weights as (in, out)), with zero biases for a model
    built without them, contiguous float32. Refuses non-finite weights, naming the first."""
    state: dict[str, np.ndarray] = {}
    for name, p in model.named_parameters():
        if name == "lm_head.weight":
            continue  # tied to transformer.wte.weight
        value = np.asarray(p.data, dtype=np.float32)
        if not np.all(np.isfinite(value)):
            raise ValueError(f"parameter {name} holds NaN or infinite values; not exporting broken weights")
        state[name] = np.ascontiguousarray(value.T if name.endswith(CONV1D) else value)
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.LayerNorm)) and module.bias is None and name != "lm_head":
            out_features = state[f"{name}.weight"].shape[-1 if name.endswith(_CONV1D_MODULES) else 0]
            state[f"{name}.bias"] = np.zeros(out_features, dtype=np.float32)  # built with bias=False
    return state


def _write_tokenizer(meta: dict[str, Any], folder: Path, block_size: int) -> str:
    """The tokenizer files transformers reads for ``meta``'s tokenizer; returns what was written, in words."""
    tok = meta.get("tokenizer", meta)
    kind = tok.get("kind")
    special = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    if kind == "gpt2":
        from numpy2gpt.gpt.tokenizer import GPT2Tokenizer, gpt2_vocab_dir

        GPT2Tokenizer()  # checks the files' SHA-256 before they are copied
        source = gpt2_vocab_dir()
        shutil.copyfile(source / "encoder.json", folder / "vocab.json")
        shutil.copyfile(source / "vocab.bpe", folder / "merges.txt")
        config = {"tokenizer_class": "GPT2Tokenizer", "model_max_length": block_size, **special}
        _write_json(folder / "tokenizer_config.json", config)
        return "GPT-2's tokenizer (vocab.json, merges.txt)"
    if kind == "bpe":
        from numpy2gpt.gpt.tokenizer import load_tokenizer

        bpe = load_tokenizer(meta)
        (folder / "tokenizer.json").write_text(bpe.to_json(), encoding="utf-8")
        config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": block_size}
        _write_json(folder / "tokenizer_config.json", config)
        return f"the trained byte-level BPE (tokenizer.json, vocabulary {bpe.vocab_size})"
    return f"no tokenizer files: transformers has no equivalent of the {kind!r} tokenizer"


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    with nn.serialization.atomic_write(path) as f:
        f.write((json.dumps(obj, indent=2) + "\n").encode("utf-8"))


def export_model(
    model: GPT, meta: dict[str, Any], folder: str | os.PathLike[str], say: Callable[[str], None] = print
) -> Path:
    """Write ``model`` (and the tokenizer described by ``meta``, the data's metadata) to ``folder`` in Hugging
    Face's GPT-2 layout; see the module docstring. Returns the folder."""
    try:
        from safetensors.numpy import save as safetensors_bytes
    except ImportError:
        raise ImportError(
            "exporting writes model.safetensors, which needs the safetensors package: "
            "pip install 'numpy2gpt-gpt[pretrained]'"
        ) from None
    state = hf_state_dict(model)  # before anything is written: broken weights leave no half-exported folder
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"export folder {folder} is a file")
    folder.mkdir(parents=True, exist_ok=True)
    eos = 50256 if meta.get("tokenizer", meta).get("kind") == "gpt2" else None
    with nn.serialization.atomic_write(folder / "model.safetensors") as f:  # all or nothing, as every file we write
        f.write(safetensors_bytes(state, metadata={"format": "pt"}))
    _write_json(folder / "config.json", hf_config(model, eos))
    tokenizer_note = _write_tokenizer(meta, folder, model.config.block_size)
    say(f"exported {model.num_params(non_embedding=False) / 1e6:.2f}M parameters to {folder}; {tokenizer_note}")
    return folder


def export(
    checkpoint: str | os.PathLike[str], folder: str | os.PathLike[str], say: Callable[[str], None] = print
) -> Path:
    """Export a checkpoint (a ``ckpt.n2g`` file or a run's out_dir) to ``folder`` (see :func:`export_model`)."""
    from numpy2gpt.gpt.sample import load_model

    model, meta = load_model(checkpoint)
    return export_model(model, meta, folder, say)
