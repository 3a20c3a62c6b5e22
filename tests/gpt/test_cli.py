"""The numpy2gpt command, driven through ``cli.main([...])`` in a temporary folder: prepare, train, resume,
sample; the TOML config file; argparse's errors (exit code 2) and the clear ones of ours (exit code 1)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from numpy2gpt.gpt import cli
from numpy2gpt.gpt import train as train_mod
from numpy2gpt.gpt.checkpoint import load_checkpoint
from numpy2gpt.gpt.train import TrainConfig

TINY = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
        "--eval-iters", "2", "--eval-interval", "4", "--log-interval", "2", "--warmup-iters", "2",
        "--lr-decay-iters", "8", "--no-plot"]  # fmt: skip


@pytest.fixture(autouse=True)
def _fixed_peak(monkeypatch):
    monkeypatch.setattr(train_mod, "measure_matmul_peak", lambda *a, **k: 1e10)


def run(args, capsys) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_prepare_train_resume_sample(tmp_path, text_file, capsys):
    data, out = tmp_path / "data", tmp_path / "run"
    code, stdout, _ = run(["prepare", "--data-file", text_file, "--out", data], capsys)
    assert code == 0 and "vocab" in stdout and (data / "meta.json").is_file()

    code, stdout, stderr = run(["train", "--data-dir", data, "--out-dir", out, "--max-iters", 4, *TINY,
                                "--num-sample-tokens", 30], capsys)  # fmt: skip
    assert code == 0, stderr
    assert "iter 4: loss" in stdout and "saved checkpoint" in stdout and "sample:" in stdout
    assert "\r" not in stderr and "4/4" not in stderr  # not a terminal: no progress bar, plain lines
    assert load_checkpoint(out)["iter_num"] == 4

    # --resume starts from the saved configuration: only the new max-iters is typed
    code, stdout, stderr = run(["train", "--resume", "--out-dir", out, "--max-iters", 8, "--no-sample-at-end"], capsys)
    assert code == 0, stderr
    assert "resuming from" in stdout and "iter 8: loss" in stdout and "sample:" not in stdout
    ckpt = load_checkpoint(out)
    assert ckpt["iter_num"] == 8 and ckpt["model_args"]["n_embd"] == 16 and ckpt["config"]["batch_size"] == 4

    code, stdout, stderr = run(["sample", "--out-dir", out, "--prompt", "to be", "--num-samples", 2,
                                "--max-new-tokens", 25], capsys)  # fmt: skip
    assert code == 0, stderr
    first, second = stdout.split("---------------\n")
    assert first.startswith("to be") and second.startswith("to be") and len(first) == len("to be") + 25 + 1

    prompt = tmp_path / "prompt.txt"
    prompt.write_text("the question")
    code, stdout, _ = run(["sample", "--checkpoint", out / "ckpt.n2g", "--prompt-file", prompt,
                           "--max-new-tokens", 5, "--top-k", 0], capsys)  # fmt: skip
    assert code == 0 and stdout.startswith("the question")


def test_errors_users_meet_are_clear(tmp_path, text_file, capsys):
    out = tmp_path / "run"
    code, _, err = run(["sample", "--out-dir", out], capsys)
    assert code == 1 and "no checkpoint at" in err
    assert run(["train", "--data-file", text_file, "--out-dir", out, "--max-iters", 2, *TINY,
                "--no-sample-at-end"], capsys)[0] == 0  # fmt: skip
    code, _, err = run(["train", "--resume", "--out-dir", out, "--n-embd", 32], capsys)
    assert code == 1 and "n_embd: checkpoint has 16, config asks for 32" in err
    code, _, err = run(["sample", "--out-dir", out, "--prompt", "XYZ"], capsys)
    assert code == 1 and "'X'" in err and "'Z'" in err and "vocabulary" in err
    code, _, err = run(["train", "--data-file", tmp_path / "missing.txt", "--out-dir", tmp_path / "o2"], capsys)
    assert code == 1 and "missing.txt" in err
    code, _, err = run(["train", "--data-file", tmp_path, "--out-dir", tmp_path / "o3"], capsys)  # a folder
    assert code == 1 and "not a regular file" in err and "Traceback" not in err
    (out / "ckpt.n2g").write_bytes(b"not a checkpoint at all")
    code, _, err = run(["sample", "--out-dir", out], capsys)
    assert code == 1 and "cannot read checkpoint" in err


@pytest.mark.parametrize(
    "argv",
    [["train", "--no-such-flag"], ["train", "--max-iters", "many"], ["sample", "--bogus", "1"], ["fly"], []],
)
def test_argparse_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_every_train_config_field_is_a_flag(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for f in dataclasses.fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in text, f.name
    assert "--no-decay-lr" in text and "--config" in text and "--resume" in text


def test_no_arguments_trains_the_default_config(monkeypatch):
    seen = []
    monkeypatch.setattr(train_mod, "train", seen.append)
    assert cli.main(["train"]) == 0
    assert seen == [TrainConfig()]


def test_ctrl_c_exits_130(monkeypatch, capsys, tmp_path):
    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "train", interrupted)
    assert cli.main(["train", "--out-dir", str(tmp_path)]) == 130  # what it says: test_training_edges.py
    assert "numpy2gpt train: interrupted" in capsys.readouterr().err


def test_train_prepares_the_embedded_corpus_by_default(tmp_path, capsys):
    code, stdout, stderr = run(["train", "--out-dir", tmp_path, "--max-iters", 1, *TINY, "--no-sample-at-end"], capsys)
    assert code == 0, stderr
    assert "preparing python_docs" in stdout and (tmp_path / "data" / "python_docs_char" / "meta.json").is_file()


def test_config_file_and_flags_override_it(tmp_path, monkeypatch):
    cfg = tmp_path / "run.toml"
    cfg.write_text('n_layer = 2\nn-embd = 48\nlearning_rate = 1\ndataset = "shakespeare_char"\ndecay_lr = false\n')
    seen = []
    monkeypatch.setattr(train_mod, "train", seen.append)
    assert cli.main(["train", "--config", str(cfg), "--n-layer", "3"]) == 0
    assert seen[-1] == TrainConfig(n_layer=3, n_embd=48, learning_rate=1.0, dataset="shakespeare_char", decay_lr=False)
    cfg.write_text("[train]\nmax_iters = 7\n")
    assert cli.main(["train", "--config", str(cfg)]) == 0
    assert seen[-1] == TrainConfig(max_iters=7)


@pytest.mark.parametrize(
    ("content", "message"),
    [("n_layers = 2\n", "unknown setting(s) n_layers"), ('n_layer = "two"\n', "n_layer must be of type int"),
     ("bias = 1\n", "bias must be of type bool"), ("n_layer = \n", "not valid TOML")],
)  # fmt: skip
def test_bad_config_files(tmp_path, content, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(content)
    with pytest.raises(SystemExit, match=message.replace("(", r"\(").replace(")", r"\)")):
        cli.main(["train", "--config", str(cfg)])


def test_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "numpy2gpt.gpt", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "prepare" in result.stdout and "sample" in result.stdout


def test_data_is_short_for_data_file(text_file, tmp_path, capsys):
    """`--data FILE` (the issue's spelling) means `--data-file FILE` for prepare and train."""
    data = tmp_path / "prepared"
    assert run(["prepare", "--data", text_file, "--out", data], capsys)[0] == 0
    assert (data / "meta.json").exists()
    out = tmp_path / "out"
    assert run(["train", "--data", text_file, "--out-dir", out, "--max-iters", 2, *TINY, "--no-sample-at-end"],
               capsys)[0] == 0  # fmt: skip
    assert load_checkpoint(out)["config"]["data_file"] == str(text_file.resolve())
