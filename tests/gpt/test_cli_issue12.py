"""The numpy2gpt command with issue 12's additions: nanoGPT's spellings and config files, `eval`, `export`,
`--eval-only`, `prepare --tokenizer bpe`, and a log that stays grep-able when redirected."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from numpy2gpt.gpt import cli
from numpy2gpt.gpt import train as train_mod
from numpy2gpt.gpt.checkpoint import load_checkpoint

from .test_cli import TINY, run

NANO_TINY = ["--n_layer=1", "--n_head=2", "--n_embd=16", "--block_size=16", "--batch_size=4", "--eval_iters=2",
             "--eval_interval=4", "--log_interval=2", "--warmup_iters=2", "--plot=False"]  # fmt: skip


@pytest.fixture(autouse=True)
def _fixed_peak(monkeypatch):
    monkeypatch.setattr(train_mod, "measure_matmul_peak", lambda *a, **k: 1e10)


@pytest.fixture
def text_file(tmp_path):
    lines = [" ".join(["to be or not to be that is the question"][0].split()[i % 7 :]) for i in range(200)]
    path = tmp_path / "small.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_nanogpt_flags(tmp_path, text_file, capsys):
    args = [
        "train",
        f"--data_file={text_file}",
        f"--out_dir={tmp_path / 'out'}",
        "--max_iters=4",
        *NANO_TINY,
        "--device=cpu",
        "--compile=False",
        "--bias=True",
        "--sample_at_end=False",
        "--dtype",
        "float16",
    ]
    code, out, err = run(args, capsys)
    assert code == 0, err
    assert "ignoring compile=False" in err and "ignoring dtype=float16" in err
    assert "device" not in err  # --device is a real setting (cpu, or cuda with CuPy)
    config = load_checkpoint(tmp_path / "out")["config"]
    assert (config["max_iters"], config["n_embd"], config["bias"], config["sample_at_end"]) == (4, 16, True, False)
    assert "sample:" not in out


def test_nanogpt_config_file_as_first_word(tmp_path, text_file, capsys):
    cfg = tmp_path / "train_tiny.py"
    cfg.write_text(
        f"# a nanoGPT config\nout_dir = {str(tmp_path / 'run')!r}\ndata_file = {str(text_file)!r}\n"
        "n_layer = 1\nn_head = 2\nn_embd = 8 * 2\nblock_size = 16\nbatch_size = 4\nmax_iters = 2\neval_interval = 2\n"
        "eval_iters = 1\nwarmup_iters = 1\nplot = False\nsample_at_end = False\nwandb_log = False\ncompile = False\n"
    )
    code, _, err = run(["train", cfg, "--max_iters=3"], capsys)  # flags override the file
    assert code == 0, err
    assert "ignoring wandb_log=False" in err and "ignoring compile=False" in err
    assert load_checkpoint(tmp_path / "run")["iter_num"] == 3
    cfg.write_text("n_layer = 1\nimport os\n")
    with pytest.raises(SystemExit, match=r"train_tiny\.py, line 2: `import os` is not a plain `name = value`"):
        cli.main(["train", "--config", str(cfg)])
    cfg.write_text("n_layer = 1\ntemperature = 0.8\n")
    with pytest.raises(SystemExit, match=r"unknown setting\(s\) temperature"):
        cli.main(["train", str(cfg)])


@pytest.fixture
def trained(tmp_path, text_file, capsys):
    out = tmp_path / "run"
    code, _, err = run(["train", "--data-file", text_file, "--out-dir", out, "--max-iters", 4, *TINY,
                        "--no-sample-at-end"], capsys)  # fmt: skip
    assert code == 0, err
    return out


def test_eval_command(tmp_path, trained, capsys):
    code, out, err = run(["eval", "--out-dir", trained, "--stride", 8], capsys)  # the run's own val split
    assert code == 0, err
    line = out.strip().splitlines()[-1]
    assert re.fullmatch(r"eval the val split of .*: loss \d+\.\d{4}, perplexity \d+\.\d{4} over [\d,]+ tokens "
                        r"\(\d+ windows of 16 tokens, stride 8\)", line), line  # fmt: skip
    (tmp_path / "t.txt").write_text("to be or not to be\n" * 5)
    code, out, err = run(["eval", "--out-dir", trained, "--data", tmp_path / "t.txt"], capsys)
    assert code == 0 and "perplexity" in out and "stride 8" in out  # default: block_size // 2
    (tmp_path / "short.txt").write_text("t")
    code, out, err = run(["eval", "--out-dir", trained, "--data-file", tmp_path / "short.txt"], capsys)
    assert code == 1 and err.count("\n") == 1 and "has 1 token(s); scoring needs at least 2" in err
    code, out, err = run(["eval", "--out-dir", trained, "--data-file", tmp_path / "none.txt"], capsys)
    assert code == 1 and "does not exist" in err


def test_train_eval_only(trained, capsys):
    code, out, err = run(["train", "--out-dir", trained, "--resume", "--eval_only=True"], capsys)
    assert code == 0, err
    assert re.search(r"^step 4: train loss", out, re.M) and "saved" not in out


def test_export_command(tmp_path, trained, capsys):
    code, out, err = run(["export", trained, tmp_path / "hf"], capsys)
    assert code == 0, err
    assert (tmp_path / "hf" / "model.safetensors").is_file() and "exported" in out
    (tmp_path / "broken.n2g").write_bytes(b"garbage")
    code, out, err = run(["export", tmp_path / "broken.n2g", tmp_path / "hf2"], capsys)
    assert code == 1 and err.startswith("numpy2gpt export: error: cannot read checkpoint") and err.count("\n") == 1


def test_prepare_bpe(tmp_path, text_file, capsys):
    pytest.importorskip("tokenizers")
    code, out, err = run(["prepare", "--data-file", text_file, "--tokenizer", "bpe", "--vocab-size", 270, "--out",
                          tmp_path / "d"], capsys)  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "d" / "tokenizer.json").is_file() and "vocab 270" in out
    code, out, err = run(["prepare", "--tokenizer", "bpe", "--tokenizer-file", tmp_path / "nope.json", "--out",
                          tmp_path / "e"], capsys)  # fmt: skip
    assert code == 1 and err.count("\n") == 1 and "nope.json does not exist" in err


def test_redirected_log_is_grepable(tmp_path, text_file):
    log = tmp_path / "log"
    with open(log, "w") as f:
        args = ["train", "--data-file", str(text_file), "--out-dir", str(tmp_path / "o"), "--max-iters", "4", *TINY]
        subprocess.run([sys.executable, "-m", "numpy2gpt.gpt", *args], stdout=f, stderr=subprocess.STDOUT, check=True)
    text = log.read_text()
    assert "\r" not in text
    assert re.findall(r"^iter \d+: loss", text, re.M) == ["iter 2: loss", "iter 4: loss"]
