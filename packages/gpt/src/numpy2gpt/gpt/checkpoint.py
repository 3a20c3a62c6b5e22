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

from numpy2gpt import nn

CHECKPOINT_NAME = "ckpt.n2g"
FORMAT = "numpy2gpt-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("model", "model_args", "iter_num", "tokenizer")  # enough to sample
RESUME_KEYS = ("optimizer", "best_val_loss", "rng_state")  # and these to continue training exactly


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, unreadable, or made for a different model."""


def checkpoint_path(out_dir: str | os.PathLike[str]) -> Path:
    """Where a run in ``out_dir`` keeps its checkpoint."""
    return Path(out_dir) / CHECKPOINT_NAME


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Mapping[str, Any]) -> Path:
    """Write ``checkpoint`` (the dict described in this module's docstring) atomically to ``path``."""
    obj = {"format": FORMAT, "version": FORMAT_VERSION, **checkpoint}
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
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path} was written by numpy2gpt.nn.save but is not a training checkpoint")
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}")
    if obj.get("version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {obj.get('version')!r}; this numpy2gpt reads version "
            f"{FORMAT_VERSION}"
        )
    obj["path"] = str(path)
    return obj


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
