"""The ``numpy2gpt`` command: ``prepare``, ``train`` and ``sample``.

    numpy2gpt train                                  nanoGPT's CPU run on the embedded corpus, then a sample
    numpy2gpt train --dataset shakespeare_char       another corpus (see ``numpy2gpt prepare --help``)
    numpy2gpt train --data-file my.txt --max-iters 500 --n-layer 2
    numpy2gpt train --config run.toml --max-iters 4000   flags override the file
    numpy2gpt train --resume --max-iters 4000        continue out/ckpt.n2g to 4000 iterations
    numpy2gpt sample --prompt "def " --num-samples 3
    numpy2gpt sample --init-from gpt2 --weights ./gpt2 --prompt "Hello, I'm a language model,"
    numpy2gpt eval --data-file test.txt              loss and perplexity of out/ckpt.n2g over a whole text
    numpy2gpt export out hf-model                    Hugging Face's GPT-2 layout (transformers loads it)

Every field of ``TrainConfig`` is a ``train`` flag, spelled with dashes (``max_iters`` -> ``--max-iters``;
booleans also have a ``--no-`` form). A ``--config`` file holds the same fields (dashes or underscores): TOML, or
a nanoGPT ``config/*.py`` of ``name = value`` lines (parsed, never run). nanoGPT's spellings work too
(``--max_iters=100``, ``--bias=False``, ``numpy2gpt train config/x.py``); settings that do not apply here
(``--device=cpu``, ``--compile=False``, ...) are ignored with a line saying why (see config_file.py).
When resuming, the run's saved configuration is the starting point, then the file, then the flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from numpy2gpt.autograd import allocator
from numpy2gpt.gpt import config_file
from numpy2gpt.gpt.train import TrainConfig

FIELD_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _field_type(f: dataclasses.Field) -> type:
    """A TrainConfig field's type (annotations are strings under ``from __future__ import annotations``)."""
    return FIELD_TYPES[f.type if isinstance(f.type, str) else f.type.__name__]


# Sections of `numpy2gpt train --help`: (title, the first TrainConfig field of the section), in field order.
SECTIONS = (
    ("output, evaluation, initialization", "out_dir"),
    ("data", "dataset"),
    ("model", "n_layer"),
    ("AdamW", "learning_rate"),
    ("learning-rate schedule", "decay_lr"),
    ("run", "seed"),
)
METAVARS = {int: "N", float: "X", str: "TEXT"}
FIELD_METAVARS = {"out_dir": "DIR", "data_dir": "DIR", "weights": "DIR", "data_file": "FILE", "dataset": "NAME",
                  "init_from": "NAME", "tokenizer": "{char,gpt2,bpe}",
                  "batch_draw": "{rank,global}"}  # fmt: skip


PROCS_VAR = "NUMPY2GPT_PROCS"


def command_defaults() -> dict[str, Any]:
    """Where the command's defaults differ from TrainConfig's: ``procs`` is 0, one process per core (a
    function call of ``train`` stays in its process), or ``NUMPY2GPT_PROCS`` when set (a non-negative integer)."""
    value = os.environ.get(PROCS_VAR, "0").strip() or "0"
    if not value.isdigit():
        raise ValueError(f"{PROCS_VAR} must be a non-negative integer (0: one process per core), got {value!r}")
    return {"procs": int(value)}


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--kebab-case`` flag per TrainConfig field. Defaults are SUPPRESSed so that only the flags a user typed
    appear in the namespace and override the config file (or, when resuming, the saved configuration)."""
    parser.add_argument(
        "--config", metavar="FILE", help="read the settings from a TOML file or a nanoGPT config .py file first"
    )
    parser.add_argument(
        "--resume", action="store_const", const="resume", dest="init_from", default=argparse.SUPPRESS,
        help="continue the run in --out-dir (same as --init-from resume)",
    )  # fmt: skip
    starts = {first: title for title, first in SECTIONS}
    group: Any = parser  # the parser, then each section's argument group
    for f in dataclasses.fields(TrainConfig):
        if f.name in starts:
            group = parser.add_argument_group(starts[f.name])
        kind = _field_type(f)
        flag = "--" + f.name.replace("_", "-")
        flags = (flag, "--data") if f.name == "data_file" else (flag,)  # the and nanoGPT-style short name
        help_text = f.metadata.get("help", "")
        if f.name == "procs":
            help_text += f" (default: 0, or {PROCS_VAR})"
        elif f.default not in ("", None):
            help_text += f" (default: {f.default})"
        if kind is bool:
            group.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text
            )
        else:
            metavar = FIELD_METAVARS.get(f.name, METAVARS[kind])
            group.add_argument(
                *flags, dest=f.name, type=kind, default=argparse.SUPPRESS, metavar=metavar, help=help_text
            )


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """TrainConfig fields from a TOML file (top level or a [train] table) or a nanoGPT-style ``config/*.py`` (plain
    ``name = value`` lines, parsed and never run), checked and converted (see config_file.py)."""
    try:
        return config_file.read_config_file(path, dataclasses.fields(TrainConfig), say=_note)
    except (OSError, ValueError) as e:
        raise SystemExit(f"numpy2gpt: {e}") from None


def nanogpt_argv(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """``argv`` with nanoGPT's spellings made this parser's (see ``config_file.normalize_argv``), and nanoGPT's
    ``train.py config/x.py`` (a config file as the first word) made ``train --config config/x.py``."""
    known, switches = set(), set()
    for action in parser._actions:  # argparse lists its options only in this attribute
        for sub in action.choices.values() if isinstance(action.choices, dict) else ():
            for option in sub._actions:
                known.update(s for s in option.option_strings if s.startswith("--"))
                if isinstance(option, argparse.BooleanOptionalAction):
                    switches.add(option.option_strings[0])
    argv = list(argv)
    if argv[:1] == ["train"] and len(argv) > 1 and argv[1].endswith(".py") and not argv[1].startswith("-"):
        argv[1:2] = ["--config", argv[1]]
    return config_file.normalize_argv(argv, known, switches, say=_note)


def build_parser() -> argparse.ArgumentParser:
    """The ``numpy2gpt`` parser with its three subcommands: ``prepare``, ``train`` (one flag per TrainConfig field)
    and ``sample``."""
    parser = argparse.ArgumentParser(
        prog="numpy2gpt",
        description="Train and sample a GPT written in NumPy (nanoGPT's recipe, on your CPU).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run 'numpy2gpt COMMAND --help' for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("prepare", help="tokenize a corpus into train.bin/val.bin + meta.json")
    p.add_argument("--dataset", default="python_docs", help="built-in corpus (default: python_docs, embedded)")
    p.add_argument(
        "--data-file",
        "--data",
        dest="data_file",
        default=None,
        help="a local UTF-8 text file instead of a built-in corpus",
    )
    p.add_argument("--tokenizer", default="char", choices=["char", "gpt2", "bpe"], help="default: char")
    p.add_argument("--vocab-size", type=int, default=4096, help="with --tokenizer bpe: vocabulary to train (4096)")
    p.add_argument("--tokenizer-file", default=None, help="with --tokenizer bpe: use this tokenizer.json instead")
    p.add_argument("--block-size", type=int, default=None, help="check that each split holds one window of this")
    p.add_argument(
        "--out",
        default=None,
        help="folder to write to (default: out/data/CORPUS_TOKENIZER, where "
        "`numpy2gpt train` with the same --dataset/--data-file/--tokenizer looks)",
    )

    t = sub.add_parser("train", help="train a GPT (defaults: nanoGPT's CPU shakespeare_char configuration)")
    add_train_arguments(t)

    s = sub.add_parser("sample", help="generate text from a checkpoint or from pretrained GPT-2")
    s.add_argument("--out-dir", default="out", help="run folder whose checkpoint to load (default: out)")
    s.add_argument("--checkpoint", default=None, help="a checkpoint file (overrides --out-dir)")
    s.add_argument("--prompt", "--start", default=None, help="text to continue (default: a newline / end-of-text)")
    s.add_argument("--prompt-file", default=None, help="read the prompt from this file")
    s.add_argument("--num-samples", type=int, default=1, help="default: 1")
    s.add_argument("--max-new-tokens", type=int, default=500, help="default: 500")
    s.add_argument("--temperature", type=float, default=0.8, help="<1 sharper, >1 more random; 0 greedy (0.8)")
    s.add_argument("--top-k", type=int, default=200, help="keep the k most likely tokens (default: 200; 0: all)")
    s.add_argument("--top-p", type=float, default=None, help="nucleus sampling: keep the top tokens of mass p")
    s.add_argument("--seed", type=int, default=1337, help="default: 1337")
    s.add_argument("--device", default="cpu", help="'cpu' or 'cuda' (a GPU, with CuPy installed)")
    s.add_argument("--init-from", default="resume", help="'resume' (a checkpoint) or gpt2, gpt2-medium, ...")
    s.add_argument("--weights", default=None, help="with --init-from gpt2*: local folder of the GPT-2 weights")

    e = sub.add_parser("eval", help="loss and perplexity of a checkpoint (or GPT-2) over a text, every token once")
    e.add_argument("--out-dir", default="out", help="run folder whose checkpoint to score (default: out)")
    e.add_argument("--checkpoint", default=None, help="a checkpoint file (overrides --out-dir)")
    e.add_argument("--init-from", default="resume", help="'resume' (a checkpoint) or gpt2, gpt2-medium, ...")
    e.add_argument("--weights", default=None, help="with --init-from gpt2*: local folder of the GPT-2 weights")
    e.add_argument("--data-file", "--data", dest="data_file", default=None, help="a UTF-8 text file to score")
    e.add_argument("--data-dir", default=None, help="a folder made by `prepare` (default: the run's own data)")
    e.add_argument("--split", default="val", choices=["train", "val"], help="with --data-dir: the split (val)")
    e.add_argument("--stride", type=int, default=None, help="windows start every N tokens (default: block_size/2)")
    e.add_argument("--batch-size", type=int, default=None, help="windows per forward pass (default: automatic)")
    e.add_argument("--device", default="cpu", help="'cpu' or 'cuda' (a GPU, with CuPy installed)")

    x = sub.add_parser("export", help="write a checkpoint in Hugging Face's GPT-2 layout (transformers loads it)")
    x.add_argument("checkpoint", metavar="CKPT", help="a checkpoint file or a run folder (e.g. out)")
    x.add_argument("folder", metavar="DIR", help="the folder to write config.json, model.safetensors, tokenizer to")
    return parser


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults <- (when resuming) the checkpoint's saved config <- the --config file <- the typed flags."""
    typed = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)}
    from_file = read_config_file(args.config) if args.config else {}
    settings = {**from_file, **typed}
    if settings.get("init_from") == "resume":
        from numpy2gpt.gpt.checkpoint import checkpoint_path, load_checkpoint

        out_dir = settings.get("out_dir", TrainConfig.out_dir)
        saved = load_checkpoint(checkpoint_path(out_dir)).get("config") or {}
        settings = {**resume_settings(saved, out_dir), **settings}
    return TrainConfig(**{**command_defaults(), **settings})


def resume_settings(saved: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """The saved TrainConfig fields a resumed run starts from, re-rooted at the folder it resumes from: the run
    continues in ``out_dir`` (a copied run folder never writes into the original), and a ``data_dir`` or
    ``data_file`` that lay inside the saved run's folder is taken from the same place inside ``out_dir``."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    settings = {k: v for k, v in saved.items() if k in names}
    old_root = os.path.abspath(os.path.expanduser(str(settings.pop("out_dir", "") or ".")))
    for key in ("data_dir", "data_file"):
        if settings.get(key):
            path = os.path.abspath(os.path.expanduser(str(settings[key])))
            if os.path.commonpath([path, old_root]) == old_root:
                settings[key] = str(Path(out_dir) / os.path.relpath(path, old_root))
    return settings


def run_prepare(args: argparse.Namespace) -> None:
    """``numpy2gpt prepare``: tokenize a corpus into a data folder and say what was made."""
    from numpy2gpt.gpt import data

    cfg = TrainConfig(dataset=args.dataset, data_file=args.data_file or "", tokenizer=args.tokenizer,
                      vocab_size=args.vocab_size)  # fmt: skip
    out = args.out or cfg.resolved_data_dir()
    data.prepare(dataset=args.dataset, data_file=args.data_file, out_dir=out, tokenizer=args.tokenizer,
                 block_size=args.block_size, vocab_size=args.vocab_size,
                 tokenizer_file=args.tokenizer_file)  # fmt: skip
    meta = data.load_meta(out)
    print(
        f"prepared {meta['source']} in {out}: vocab {meta['vocab_size']}, "
        f"{meta['train_tokens']:,} train and {meta['val_tokens']:,} val tokens"
    )


def run_train(args: argparse.Namespace) -> None:
    """``numpy2gpt train``: the configuration from the flags (and file, and checkpoint), then ``train``."""
    from numpy2gpt.gpt.train import train

    allocator.keep_freed_memory()  # the process is a training run: reuse freed memory (see allocator.py)
    config = train_config_from_args(args)
    args.out_dir = config.out_dir  # where the checkpoint is, should the run be interrupted
    train(config)


def run_eval(args: argparse.Namespace) -> None:
    """``numpy2gpt eval``: loss and perplexity of a checkpoint (or GPT-2) over a text or a prepared split."""
    from numpy2gpt.gpt.evaluate import evaluate

    evaluate(args.checkpoint or args.out_dir, data_file=args.data_file, data_dir=args.data_dir,
             split=args.split, init_from=args.init_from, weights=args.weights, stride=args.stride,
             batch_size=args.batch_size, device=args.device)  # fmt: skip


def run_export(args: argparse.Namespace) -> None:
    """``numpy2gpt export``: a checkpoint in Hugging Face's GPT-2 layout."""
    from numpy2gpt.gpt.export import export

    export(args.checkpoint, args.folder)


def run_sample(args: argparse.Namespace) -> None:
    """``numpy2gpt sample``: stream text from a checkpoint or from GPT-2."""
    from numpy2gpt.gpt.sample import read_prompt, sample

    sample(checkpoint=args.checkpoint or args.out_dir, prompt=read_prompt(args.prompt, args.prompt_file),
           num_samples=args.num_samples, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
           top_k=args.top_k or None, top_p=args.top_p, seed=args.seed, init_from=args.init_from,
           weights=args.weights, device=args.device)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``numpy2gpt`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code: 0 on success, 1 for an
    error that names a bad input (printed on stderr, no traceback), 130 when interrupted; argparse exits with 2
    for an unknown flag or a malformed value."""
    parser = build_parser()
    args = parser.parse_args(nanogpt_argv(sys.argv[1:] if argv is None else argv, parser))
    from numpy2gpt.gpt.checkpoint import CheckpointError, checkpoint_path
    from numpy2gpt.gpt.local_ranks import RankFailedError
    from numpy2gpt.gpt.train import TrainingDiverged

    commands = {"prepare": run_prepare, "train": run_train, "eval": run_eval, "export": run_export,
                "sample": run_sample}  # fmt: skip
    try:
        commands[args.command](args)
    except (CheckpointError, TrainingDiverged, RankFailedError, OSError, ValueError, KeyError, ImportError) as e:
        # errors that name a bad input: a missing or unreadable file (OSError: a folder given as a file too),
        # GPT-2 weights that do not match (KeyError), safetensors not installed (ImportError), ...; and another
        # --procs rank's failure (its own message is above)
        message = e.args[0] if isinstance(e, KeyError) and e.args else e  # str(KeyError) adds quotes
        print(f"numpy2gpt {args.command}: error: {' '.join(str(message).split())}", file=sys.stderr)  # one line
        return 1
    except MemoryError:
        print(
            f"numpy2gpt {args.command}: error: out of memory; use a smaller model or batch (--n-embd, --n-layer, "
            "--block-size, --batch-size, --num-samples)",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        hint = ""
        if args.command == "train":
            kept = checkpoint_path(getattr(args, "out_dir", TrainConfig.out_dir)).is_file()
            hint = " (the last checkpoint is kept; continue with --resume)" if kept else " (no checkpoint was saved)"
        print(f"\nnumpy2gpt {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
