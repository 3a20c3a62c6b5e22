"""Checkpoints: everything a run needs to continue exactly where it stopped, in one file.

A checkpoint is a nested dict written with ``numpy2gpt.nn.save`` (atomically: a crash while saving leaves the
previous file intact):

    model          the model's state_dict (name -> ndarray)
    optimizer      the optimizer's state_dict (AdamW moments and step counts, param groups)
    model_args     the GPTConfig as a dict (how to rebuild the model)
    config         the TrainConfig as a dict (how the run was set up)
    iter_num       how many optimizer steps were taken; the learning-rate schedule is a function of it
    best_val_loss  the best validation loss seen so far
    rng_state      the default generator's state: the next batch and dropout mask come from it
    tokenizer      the tokenizer's metadata (so ``sample`` can decode without the data folder)

Sampling needs only model, model_args, iter_num and tokenizer (``REQUIRED_KEYS``); resuming also needs optimizer,
best_val_loss and rng_state (``RESUME_KEYS``). The learning rate needs no state of its own: nanoGPT's schedule is a
pure function of ``iter_num``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from numpy2gpt import nn
from numpy2gpt.gpt.data import describe_tokenizer
from numpy2gpt.nn.serialization import CheckpointError  # one error type for every unusable checkpoint

__all__ = ["CHECKPOINT_NAME", "RUN_FORMAT", "CheckpointError", "check_model_args", "checkpoint_path",
           "load_checkpoint", "load_resumable", "save_checkpoint"]  # fmt: skip

CHECKPOINT_NAME = "ckpt.n2g"
RUN_FORMAT = "numpy2gpt-training-run"  # what the saved tree is (nn.serialization.FORMAT names the file's layout)
_RUN_FORMATS = (RUN_FORMAT, "numpy2gpt-checkpoint")  # the name checkpoints written before 0.2 carry
FORMAT_VERSION = 1
REQUIRED_KEYS = ("model", "model_args", "iter_num", "tokenizer")  # enough to sample
RESUME_KEYS = ("optimizer", "best_val_loss", "rng_state")  # and these to continue training exactly


def checkpoint_path(out_dir: str | os.PathLike[str]) -> Path:
    """Where a run in ``out_dir`` keeps its checkpoint."""
    return Path(out_dir) / CHECKPOINT_NAME


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Mapping[str, Any]) -> Path:
    """Write ``checkpoint`` (the dict described in this module's docstring) atomically to ``path``."""
    obj = {"format": RUN_FORMAT, "version": FORMAT_VERSION, **checkpoint}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nn.save(obj, path)
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; a clear ``CheckpointError`` if it is not one.

    ``path`` may be the file or the run's ``out_dir``.
    """
    path = Path(path)
    if path.is_dir():
        path = checkpoint_path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}: train first (numpy2gpt train --out-dir {path.parent}), "
            "or point --checkpoint at an existing file"
        )
    try:
        obj = nn.load(path)
    except Exception as e:  # nn.load names what is wrong (truncated, not a numpy2gpt file, ...)
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    if not isinstance(obj, dict) or obj.get("format") not in _RUN_FORMATS:
        raise CheckpointError(f"{path} was written by numpy2gpt.nn.save but is not a training checkpoint")
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}")
    if obj.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {obj.get('version')!r}; this numpy2gpt reads version "
            f"{FORMAT_VERSION}"
        )
    check_arrays(obj, path)
    obj["path"] = str(path)
    return obj


def check_arrays(ckpt: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Refuse a checkpoint whose ``model_args`` do not describe its arrays (an edited or damaged file), before any
    model is sized from them, and one whose weights are not finite (nothing could be sampled or trained from it).

    The arrays that the sizes show in: ``wte`` is (vocab_size, n_embd), ``wpe`` (block_size, n_embd), ``ln_f``
    (n_embd,), and there are blocks ``h.0`` .. ``h.{n_layer - 1}``."""
    args, state = ckpt["model_args"], ckpt["model"]
    if not isinstance(args, Mapping) or not isinstance(state, Mapping):
        raise CheckpointError(f"checkpoint {path}: model_args and model must be dicts")
    try:
        vocab, block, embd, layers = (int(args[k]) for k in ("vocab_size", "block_size", "n_embd", "n_layer"))
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path}: model_args lacks a valid {e}") from None
    expected = {"transformer.wte.weight": (vocab, embd), "transformer.wpe.weight": (block, embd),
                "transformer.ln_f.weight": (embd,)}  # fmt: skip
    for name, shape in expected.items():
        got = getattr(state.get(name), "shape", None)
        if got != shape:
            raise CheckpointError(
                f"checkpoint {path}: its model_args (vocab_size {vocab}, block_size {block}, n_embd {embd}) make "
                f"{name} {shape}, but the array saved is {got}: the file was edited or damaged"
            )
    found = {k.split(".")[2] for k in state if k.startswith("transformer.h.")}
    if found != {str(i) for i in range(layers)}:
        raise CheckpointError(f"checkpoint {path}: model_args say n_layer {layers}, but it holds {len(found)} blocks")
    for name, value in state.items():
        if not np.all(np.isfinite(value)):
            raise CheckpointError(f"checkpoint {path}: weight {name} is not finite (nan or inf); it cannot be used")


def check_model_args(saved: Mapping[str, Any], wanted: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Refuse to resume when the requested model differs from the checkpoint's, naming every field that does.

    Dropout may change between runs (as in nanoGPT): it is no part of the weights.
    """
    diffs = [
        f"{k}: checkpoint has {saved[k]!r}, config asks for {wanted[k]!r}"
        for k in wanted
        if k != "dropout" and k in saved and saved[k] != wanted[k]
    ]
    if diffs:
        raise CheckpointError(
            f"checkpoint {path} was trained with a different model; " + "; ".join(diffs) + ". "
            "Drop these options to resume with the checkpoint's model, or train from scratch in another --out-dir."
        )


def load_resumable(
    ckpt_file: Path, wanted: Mapping[str, Any], meta: Mapping[str, Any], data_dir: str | os.PathLike[str]
) -> dict[str, Any]:
    """The checkpoint to resume from, checked: it holds the training state, its model is the one asked for
    (``wanted``: model_args fields, see ``check_model_args``), and its tokenizer is the data's (``meta``)."""
    checkpoint = load_checkpoint(ckpt_file)
    missing = [k for k in RESUME_KEYS if k not in checkpoint]
    if missing:
        raise CheckpointError(
            f"checkpoint {ckpt_file} lacks {', '.join(missing)}: it can be sampled from but not resumed"
        )
    check_model_args(checkpoint["model_args"], wanted, ckpt_file)
    if checkpoint["tokenizer"].get("tokenizer") != meta.get("tokenizer"):  # same size, other tokens
        raise CheckpointError(
            f"checkpoint {ckpt_file} was trained on data with another tokenizer than {data_dir} (checkpoint: "
            f"{describe_tokenizer(checkpoint['tokenizer'])}; data: {describe_tokenizer(meta)}): "
            "resume with the run's own data, or train from scratch in another --out-dir"
        )
    return checkpoint
