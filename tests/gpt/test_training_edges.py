"""The training tool at its edges (issue 9, items 8-13), mostly through the ``numpy2gpt`` command as a user meets
it: a resumed copy of a run folder, a torn metrics file, exploding weights, edited or replaced files, absurd flags,
stale temporary files, Ctrl-C. Each user-caused failure must be one line on stderr, exit code 1, no traceback."""

from __future__ import annotations

import json
import math
import os
import shutil

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.gpt import cli
from numpy2gpt.gpt import train as train_mod
from numpy2gpt.gpt.checkpoint import load_checkpoint, save_checkpoint
from numpy2gpt.gpt.model import GPT, GPTConfig
from numpy2gpt.gpt.train import TrainConfig, TrainingDiverged, train

from .test_cli import run

TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
        "--eval-iters", "2", "--eval-interval", "4", "--log-interval", "2", "--warmup-iters", "2",
        "--lr-decay-iters", "8", "--no-plot", "--no-progress", "--no-sample-at-end"]  # fmt: skip


@pytest.fixture(autouse=True)
def _fixed_peak(monkeypatch):
    monkeypatch.setattr(train_mod, "measure_matmul_peak", lambda *a, **k: 1e10)


def one_line_error(code: int, err: str, *words: str) -> None:
    """Exit code 1 and exactly one line on stderr, naming ``words``."""
    assert code == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, (word, err)


def trained(tmp_path, text_file, capsys, *extra) -> os.PathLike:
    out = tmp_path / "out"
    code, _, err = run(["train", "--data-file", text_file, "--out-dir", out, "--max-iters", 4, *TINY, *extra], capsys)
    assert code == 0, err
    return out


# -- item 8: the folder a run resumes from is where it continues --------------------------------------------------
def test_a_copied_run_folder_resumes_in_the_copy(tmp_path, text_file, capsys, monkeypatch):
    original, copy = tmp_path / "a", tmp_path / "b"
    prepared = original / "out" / "prepared"  # a data folder inside the run folder
    assert run(["prepare", "--data-file", text_file, "--out", prepared], capsys)[0] == 0
    code, _, err = run(
        ["train", "--data-dir", prepared, "--out-dir", original / "out", "--max-iters", 4, *TINY], capsys
    )
    assert code == 0, err
    shutil.copytree(original, copy)
    shutil.rmtree(prepared)  # the copy must read its own data, not the original's
    before = {p: p.read_bytes() for p in original.rglob("*") if p.is_file()}
    monkeypatch.chdir(copy)
    code, _, err = run(["train", "--resume", "--max-iters", 8], capsys)  # out_dir: the default, ./out
    assert code == 0, err
    assert load_checkpoint(copy / "out")["iter_num"] == 8
    assert {p: p.read_bytes() for p in original.rglob("*") if p.is_file()} == before  # untouched


# -- item 9: a torn metrics line does not block --resume -------------------------------------------------------------
def test_a_torn_last_metrics_line_does_not_block_resume(tmp_path, text_file, capsys):
    out = trained(tmp_path, text_file, capsys)
    with (out / "metrics.jsonl").open("a") as f:
        f.write('{"iter": 5, "lo')  # a full disk mid-append
    code, _, err = run(["train", "--resume", "--out-dir", out, "--max-iters", 8], capsys)
    assert code == 0, err
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if "loss" in r] == [2, 4, 6, 8]


# -- item 10: never save exploding weights ---------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("grad_clip", [0.0, 1.0])
def test_exploding_weights_are_never_saved(tmp_path, text_file, grad_clip):
    """At learning rate 1e6 the first step makes weights of 1e6 whose loss is still finite: this used to be saved
    as a checkpoint. (At 1e30 the activations overflow float32 to inf and the loss is nan at once, as in PyTorch,
    now that layer_norm no longer turns a row of infs into zeros; that is test_train.py's huge-learning-rate test.)"""
    config = TrainConfig(out_dir=str(tmp_path / "out"), data_file=str(text_file), n_layer=1, n_head=2, n_embd=16,
                         block_size=16, batch_size=4, max_iters=6, eval_interval=1, eval_iters=2, log_interval=1,
                         learning_rate=1e6, decay_lr=False, grad_clip=grad_clip, progress=False, plot=False,
                         sample_at_end=False, always_save_checkpoint=True)  # fmt: skip
    with pytest.raises(TrainingDiverged, match=r"\|w\| = 1.*e\+06 at iteration 1.*exploded; not saving.*nothing was"):
        train(config)
    assert not (tmp_path / "out" / "ckpt.n2g").exists()


# -- items 11 and 12: inconsistent files and absurd flags: one line, before allocating -----------------------------
@pytest.mark.parametrize(
    ("edit", "words"),
    [
        ({"vocab_size": 10**8}, ["meta.json", "vocab_size 100000000"]),
        ({"vocab_size": "many"}, ["meta.json", "vocab_size 'many'"]),
        ({"vocab_size": 40}, ["meta.json", "vocab_size 40", "tokenizer has"]),
        ({"tokenizer": None}, ["meta.json", "tokenizer"]),
        ({"train_tokens": -3}, ["meta.json", "train_tokens -3"]),
    ],
)
def test_an_edited_meta_json_is_one_line(tmp_path, text_file, capsys, edit, words):
    data = tmp_path / "data"
    assert run(["prepare", "--data-file", text_file, "--out", data], capsys)[0] == 0
    meta = json.loads((data / "meta.json").read_text())
    (data / "meta.json").write_text(json.dumps({**meta, **edit}))
    code, _, err = run(["train", "--data-dir", data, "--out-dir", tmp_path / "out", *TINY], capsys)
    one_line_error(code, err, *words)


def test_a_random_train_bin_is_one_line(tmp_path, text_file, capsys):
    data = tmp_path / "data"
    assert run(["prepare", "--data-file", text_file, "--out", data], capsys)[0] == 0
    size = (data / "train.bin").stat().st_size
    (data / "train.bin").write_bytes(np.random.default_rng(0).bytes(size))
    code, _, err = run(["train", "--data-dir", data, "--out-dir", tmp_path / "out", *TINY], capsys)
    one_line_error(code, err, "train.bin", "outside the vocabulary")


def test_an_absurd_model_size_is_refused_before_allocating(tmp_path, text_file, capsys):
    code, _, err = run(["train", "--data-file", text_file, "--out-dir", tmp_path / "out", *TINY,
                        "--n-embd", 10**6], capsys)  # fmt: skip
    one_line_error(code, err, "n_embd 1000000", "GiB", "--n-embd")


def test_an_edited_checkpoint_is_one_line_and_quick(tmp_path, text_file, capsys):
    out = trained(tmp_path, text_file, capsys)
    ckpt = load_checkpoint(out)
    save_checkpoint(out / "ckpt.n2g", {**ckpt, "model_args": {**ckpt["model_args"], "block_size": 10**7}})
    for command in (["sample", "--out-dir", out, "--max-new-tokens", 2], ["train", "--resume", "--out-dir", out]):
        code, _, err = run(command, capsys)
        one_line_error(code, err, "block_size 10000000", "edited or damaged")


def test_a_gpt2_config_with_a_smaller_vocabulary_than_the_tokenizer_is_one_line(tmp_path, capsys):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    ag.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=100, n_layer=1, n_head=2, n_embd=8, bias=True))
    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    tensors = {name: np.ascontiguousarray(p.data.T if name.endswith(conv1d) else p.data)
               for name, p in model.named_parameters() if name != "lm_head.weight"}  # fmt: skip
    safetensors_numpy.save_file(tensors, str(tmp_path / "model.safetensors"))
    hf = {"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 2, "vocab_size": 100, "n_positions": 8}
    (tmp_path / "config.json").write_text(json.dumps(hf))
    code, _, err = run(["sample", "--init-from", "gpt2", "--weights", tmp_path, "--prompt", "Hello"], capsys)
    one_line_error(code, err, "vocabulary (100 tokens) is smaller than its tokenizer's (50257)")
    (tmp_path / "config.json").write_text(json.dumps({**hf, "vocab_size": 10**8}))  # and one the weights contradict
    code, _, err = run(["sample", "--init-from", "gpt2", "--weights", tmp_path], capsys)
    one_line_error(code, err, "config.json", "(100000000, 8)", "(100, 8)")


# -- item 13 ----------------------------------------------------------------------------------------------------------
def test_a_data_file_replaced_with_its_timestamp_kept_is_prepared_again(tmp_path, text_file, capsys):
    out = trained(tmp_path, text_file, capsys)
    replacement = tmp_path / "other.txt"
    replacement.write_text(text_file.read_text().upper())  # other characters, other vocabulary
    stat = text_file.stat()
    shutil.copyfile(replacement, text_file)
    os.utime(text_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # `cp -p`: the old timestamp
    code, stdout, err = run(["train", "--data-file", text_file, "--out-dir", out, "--max-iters", 2, *TINY], capsys)
    assert code == 0, err
    assert "preparing" in stdout
    assert load_checkpoint(out)["tokenizer"]["tokenizer"]["chars"] == "".join(sorted(set(replacement.read_text())))


def test_stale_temporary_files_are_removed(tmp_path, text_file, capsys):
    out = trained(tmp_path, text_file, capsys)
    data = out / "data" / "small_char"
    stale = [
        out / ".ckpt.n2g.0123456789ab.tmp",
        out / ".loss.png.a1b2c3d4e5f6.tmp",
        data / ".train.bin.00ff00ff00ff.tmp",
    ]
    for path in stale:
        path.write_bytes(b"half a file")
    keep = out / "notes.tmp"  # not one of ours
    keep.write_text("mine")
    code, _, err = run(["train", "--resume", "--out-dir", out, "--max-iters", 6], capsys)
    assert code == 0, err
    assert not any(p.exists() for p in stale) and keep.read_text() == "mine"


def test_a_negative_grad_clip_is_refused(tmp_path, text_file, capsys):
    with pytest.raises(ValueError, match=r"grad_clip must be >= 0 \(0 disables"):
        TrainConfig(grad_clip=-1.0)
    TrainConfig(grad_clip=0.0)  # nanoGPT's way to disable clipping
    code, _, err = run(
        ["train", "--data-file", text_file, "--out-dir", tmp_path / "o", *TINY, "--grad-clip", -1], capsys
    )
    one_line_error(code, err, "grad_clip must be >= 0")


def test_sampling_a_checkpoint_with_nan_weights_fails(tmp_path, text_file, capsys):
    out = trained(tmp_path, text_file, capsys)
    ckpt = load_checkpoint(out)
    ckpt["model"]["transformer.ln_f.weight"][:] = np.nan
    save_checkpoint(out / "ckpt.n2g", ckpt)
    code, stdout, err = run(["sample", "--out-dir", out, "--max-new-tokens", 5], capsys)
    one_line_error(code, err, "ln_f.weight is not finite")
    assert stdout.strip() == ""


def test_non_finite_logits_are_an_error_not_a_sample():
    from numpy2gpt.gpt.sampling import sample_from_logits

    for temperature in (0.0, 1.0):
        with pytest.raises(ValueError, match="not finite"):
            sample_from_logits(np.array([[0.0, math.nan, 1.0]]), temperature=temperature)


@pytest.mark.parametrize("saved", [False, True])
def test_ctrl_c_says_whether_a_checkpoint_is_kept(tmp_path, text_file, capsys, monkeypatch, saved):
    out = trained(tmp_path, text_file, capsys) if saved else tmp_path / "out"

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "train", interrupted)
    resume = ["--resume"] if saved else ["--data-file", str(text_file)]
    assert cli.main(["train", *resume, "--out-dir", str(out)]) == 130
    err = capsys.readouterr().err
    if saved:
        assert "interrupted (the last checkpoint is kept; continue with --resume)" in err
    else:
        assert "interrupted (no checkpoint was saved)" in err and "kept" not in err
