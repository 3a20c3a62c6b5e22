"""Checkpoint files: what goes in comes out, and every way a file can be wrong gives an error that says which."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt import nn
from numpy2gpt.gpt.checkpoint import (
    CheckpointError,
    check_model_args,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from numpy2gpt.gpt.model import GPT, GPTConfig


def example() -> dict:
    ag.manual_seed(5)
    model = GPT(GPTConfig(block_size=4, vocab_size=2, n_layer=1, n_head=2, n_embd=8))
    ag.default_generator().random(3)  # a state that is not the freshly seeded one
    return {
        "model": {**model.state_dict(), "w": np.arange(6, dtype=np.float32).reshape(2, 3)},
        "optimizer": {"state": {0: {"step": 3.0, "exp_avg": np.ones(3, np.float32)}}, "param_groups": [{"lr": 0.1}]},
        "model_args": dataclasses.asdict(model.config),
        "config": {"max_iters": 10},
        "iter_num": 7,
        "best_val_loss": math.inf,
        "rng_state": ag.get_rng_state(),
        "tokenizer": {"tokenizer": {"kind": "char", "chars": "ab"}, "vocab_size": 2},
    }


def test_round_trip_restores_the_random_stream(tmp_path):
    ckpt = example()
    path = save_checkpoint(checkpoint_path(tmp_path / "run"), ckpt)
    assert path == tmp_path / "run" / "ckpt.n2g"
    expected_next = ag.default_generator().random(4)
    back = load_checkpoint(tmp_path / "run")  # the folder works as well as the file
    assert back["iter_num"] == 7 and back["best_val_loss"] == math.inf and back["path"] == str(path)
    assert np.array_equal(back["model"]["w"], ckpt["model"]["w"]) and back["model"]["w"].dtype == np.float32
    assert back["optimizer"]["state"][0]["step"] == 3.0
    assert back["tokenizer"] == ckpt["tokenizer"]
    ag.manual_seed(0)
    ag.set_rng_state(back["rng_state"])
    assert np.array_equal(ag.default_generator().random(4), expected_next)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"no checkpoint at .*ckpt\.n2g: train first"):
        load_checkpoint(tmp_path)


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "ckpt.n2g"
    junk.write_text("hello")
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*not a numpy2gpt checkpoint"):
        load_checkpoint(junk)
    nn.save({"weights": np.zeros(2)}, junk)  # a valid nn.save file, but not a training checkpoint
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        load_checkpoint(junk)
    nn.save({"format": "numpy2gpt-checkpoint", "model": {}}, junk)
    with pytest.raises(CheckpointError, match="lacks model_args, iter_num, tokenizer"):
        load_checkpoint(junk)
    save_checkpoint(junk, {**example(), "version": 2})  # written by a later numpy2gpt
    with pytest.raises(CheckpointError, match="has format version 2; this numpy2gpt reads version 1"):
        load_checkpoint(junk)


def test_failed_save_keeps_the_previous_file(tmp_path):
    path = save_checkpoint(tmp_path / "ckpt.n2g", example())
    before = path.read_bytes()
    bad = {**example(), "model": {"w": np.array([object()])}}  # cannot be serialized
    with pytest.raises((TypeError, ValueError)):
        save_checkpoint(path, bad)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.n2g"]  # no temporary file left behind


def test_model_args_mismatch_names_every_field():
    saved = {"n_layer": 4, "n_embd": 128, "bias": False, "dropout": 0.0, "vocab_size": 65}
    check_model_args(saved, {**saved, "dropout": 0.2}, "x")  # dropout may change
    with pytest.raises(CheckpointError, match=r"n_embd: checkpoint has 128, config asks for 64; vocab_size: "
                                              r"checkpoint has 65, config asks for 80"):  # fmt: skip
        check_model_args(saved, {**saved, "n_embd": 64, "vocab_size": 80}, "x")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            {"block_size": 10**7},
            r"block_size 10000000.*wpe\.weight \(10000000, 8\), but the array saved is \(4, 8\)",
        ),
        ({"vocab_size": 10**8}, r"vocab_size 100000000.*transformer\.wte\.weight"),
        ({"n_embd": 4096}, r"n_embd 4096"),
        ({"n_layer": 200}, r"model_args say n_layer 200, but it holds 1 blocks"),
        ({"n_layer": "many"}, r"model_args lacks a valid"),
    ],
)
def test_edited_model_args_are_refused_before_a_model_is_built(tmp_path, edit, message):
    """Issue 9 item 11: the sizes in a checkpoint are checked against its arrays before anything is allocated."""
    ckpt = example()
    path = save_checkpoint(tmp_path / "ckpt.n2g", {**ckpt, "model_args": {**ckpt["model_args"], **edit}})
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_a_checkpoint_with_nan_weights_is_refused(tmp_path):
    ckpt = example()
    ckpt["model"]["transformer.h.0.mlp.c_fc.weight"][0, 0] = np.nan
    path = save_checkpoint(tmp_path / "ckpt.n2g", ckpt)
    with pytest.raises(CheckpointError, match=r"weight transformer\.h\.0\.mlp\.c_fc\.weight is not finite"):
        load_checkpoint(path)


def test_one_error_type_and_distinct_format_names():
    """Issue 10 item 2: gpt's CheckpointError is nn's; the training-run tag is not the file layout's name."""
    from numpy2gpt.gpt import checkpoint
    from numpy2gpt.nn import serialization

    assert checkpoint.CheckpointError is serialization.CheckpointError
    assert checkpoint.RUN_FORMAT != serialization.FORMAT
