"""nanoGPT habits: ``--max_iters=100`` flags, ``config/*.py`` files parsed (never run), ignored and unknown keys."""

from __future__ import annotations

import dataclasses

import pytest

from numpy2gpt.gpt.config_file import check_settings, normalize_argv, read_config_file, read_python_config
from numpy2gpt.gpt.train import TrainConfig

FIELDS = dataclasses.fields(TrainConfig)
KNOWN = {"--max-iters", "--bias", "--batch-size", "--prompt", "--eval-only"}
BOOLS = {"--bias", "--eval-only"}


def test_underscores_and_equals_become_dashed_flags():
    notes = []
    argv = ["--max_iters=100", "--batch_size", "4", "--bias=False", "--eval_only=True", "--prompt", "--x_y"]
    assert normalize_argv(argv, KNOWN, BOOLS, notes.append) == [
        "--max-iters=100", "--batch-size", "4", "--no-bias", "--eval-only", "--prompt", "--x_y"
    ]  # fmt: skip
    assert notes == []


def test_ignored_settings_are_dropped_with_one_line_each():
    notes = []
    argv = ["--compile=False", "--wandb_log", "--dtype", "bfloat16", "--max-iters", "3"]
    assert normalize_argv(argv, KNOWN, BOOLS, notes.append) == ["--max-iters", "3"]
    assert len(notes) == 3
    assert notes[0].startswith("numpy2gpt: ignoring compile=False:") and "torch.compile" in notes[0]
    assert "wandb_log" in notes[1] and "metrics.jsonl" in notes[1]
    assert "dtype=bfloat16" in notes[2] and "float32" in notes[2] and "no effect" in notes[2]


def test_device_is_a_real_setting():
    notes = []
    known = KNOWN | {"--device"}  # a TrainConfig field: `numpy2gpt train --device cuda` (CuPy on a GPU)
    argv = ["--device=cuda", "--device", "cpu", "--max_iters=3"]
    assert normalize_argv(argv, known, BOOLS, notes.append) == ["--device=cuda", "--device", "cpu", "--max-iters=3"]
    assert notes == []


def test_values_after_double_dash_and_unknown_flags_pass_unchanged():
    argv = ["--not_a_flag=1", "--", "--max_iters=5"]
    assert normalize_argv(argv, KNOWN, BOOLS, print) == argv


NANOGPT_CONFIG = '''"""train a miniature character-level shakespeare model"""
out_dir = 'out-shakespeare-char'
eval_interval = 250 # keep frequent because we'll overfit
eval_iters = 200
log_interval = 10
always_save_checkpoint = False
wandb_log = False # override via command line if you like
wandb_project = 'shakespeare-char'
wandb_run_name = 'mini-gpt'
dataset = 'shakespeare_char'
gradient_accumulation_steps = 1
batch_size = 64
block_size = 256 # context of up to 256 previous characters
n_layer = 6
n_head = 6
n_embd = 384
dropout = 0.2
learning_rate = 1e-3 # with baby networks can afford to go a bit higher
max_iters = 5000
lr_decay_iters = 5000 # make equal to max_iters usually
min_lr = 1e-4 # learning_rate / 10 usually
beta2 = 0.99 # make a bit bigger because number of tokens per iter is small
warmup_iters = 100 # not super necessary potentially
# on macbook also add
device = 'cpu'  # run on cpu only
compile = False # do not torch compile the model
'''


def test_nanogpt_config_file_is_read(tmp_path):
    path = tmp_path / "train_shakespeare_char.py"
    path.write_text(NANOGPT_CONFIG)
    notes = []
    settings = read_config_file(path, FIELDS, notes.append)
    assert settings["n_embd"] == 384 and settings["dropout"] == 0.2 and settings["always_save_checkpoint"] is False
    assert settings["out_dir"] == "out-shakespeare-char" and settings["learning_rate"] == 1e-3
    assert "wandb_log" not in settings and settings["device"] == "cpu"  # device: a real setting (cpu or cuda)
    assert sorted(n.split(":")[1].split("=")[0].replace("ignoring", "").strip() for n in notes) == [
        "compile", "wandb_log", "wandb_project", "wandb_run_name"
    ]  # fmt: skip
    TrainConfig(**settings)  # a valid configuration


def test_arithmetic_on_numbers_is_allowed(tmp_path):
    path = tmp_path / "c.py"
    path.write_text("gradient_accumulation_steps = 5 * 8\nmin_lr = 6e-4 / 10\nn_layer: int = -(-3)\n")
    assert read_python_config(path) == {"gradient_accumulation_steps": 40, "min_lr": 6e-4 / 10, "n_layer": 3}


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("n_layer = 2\nimport time\n", 2),
        ("n_layer = 2\n\nwandb_run_name = 'ft-' + str(time.time())\n", 3),
        ("for i in range(3):\n    n_layer = i\n", 1),
        ("n_layer = n_head = 2\n", 1),
        ("n_layer = os.system('echo hi')\n", 1),
        ("n_layer = 2 ** 100000\n", 1),
    ],
)
def test_anything_but_a_plain_assignment_is_an_error_naming_the_line(tmp_path, text, line):
    path = tmp_path / "bad.py"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"bad.py, line {line}: "):
        read_python_config(path)


def test_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("n_layer = 2\nn_head = = 3\n")
    with pytest.raises(ValueError, match="line 2: not valid Python"):
        read_python_config(path)


def test_unknown_keys_are_an_error_naming_them():
    with pytest.raises(ValueError, match=r"x.py: unknown setting\(s\) n_layers, temperatur"):
        check_settings({"n_layers": 2, "temperatur": 1.0, "n_head": 2}, FIELDS, "x.py")


def test_wrong_type_names_the_key():
    with pytest.raises(ValueError, match="n_layer must be of type int, got '2'"):
        check_settings({"n_layer": "2"}, FIELDS, "x.py")
    assert check_settings({"learning-rate": 1}, FIELDS, "x.toml") == {"learning_rate": 1.0}


def test_toml_file_still_works_and_missing_file_is_clear(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[train]\nmax-iters = 7\ndevice = 'cpu'\n")
    assert read_config_file(path, FIELDS, lambda s: None) == {"max_iters": 7, "device": "cpu"}
    with pytest.raises(FileNotFoundError, match=r"config file .*nope\.py does not exist"):
        read_config_file(tmp_path / "nope.py", FIELDS)
