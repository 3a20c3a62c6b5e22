"""The ``numpy2gpt`` command: ``prepare``, ``train`` and ``sample``.

    numpy2gpt train                                  nanoGPT's CPU run on the embedded corpus, then a sample
    numpy2gpt train --dataset shakespeare_char       another corpus (see ``numpy2gpt prepare --help``)
    numpy2gpt train --data-file my.txt --max-iters 500 --n-layer 2
    numpy2gpt train --config run.toml --max-iters 4000   flags override the file
    numpy2gpt train --resume --max-iters 4000        continue out/ckpt.n2g to 4000 iterations
    numpy2gpt sample --prompt "def " --num-samples 3
    numpy2gpt sample --init-from gpt2 --weights ./gpt2 --prompt "Hello, I'm a language model,"

Every field of ``TrainConfig`` is a ``train`` flag, spelled with dashes (``max_iters`` -> ``--max-iters``;
booleans also have a ``--no-`` form). A ``--config`` TOML file holds the same fields (dashes or underscores).
When resuming, the run's saved configuration is the starting point, then the file, then the flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
                  "init_from": "NAME", "tokenizer": "{char,gpt2}"}  # fmt: skip


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--kebab-case`` flag per TrainConfig field. Defaults are SUPPRESSed so that only the flags a user typed
    appear in the namespace and override the config file (or, when resuming, the saved configuration)."""
    parser.add_argument("--config", metavar="FILE.toml", help="read TrainConfig fields from a TOML file first")
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
        if f.default not in ("", None):
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


def read_config_file(path: str | Path) -> dict[str, Any]:
    """TrainConfig fields from a TOML file (top level or a [train] table), checked and converted."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise SystemExit(f"numpy2gpt: config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise SystemExit(f"numpy2gpt: config file {path} is not valid TOML: {e}") from None
    if isinstance(raw.get("train"), dict):
        raw = raw["train"]
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    out: dict[str, Any] = {}
    unknown = []
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in fields:
            unknown.append(key)
            continue
        kind = _field_type(fields[name])
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise SystemExit(f"numpy2gpt: {path}: {key} must be of type {kind.__name__}, got {value!r}")
        out[name] = value
    if unknown:
        raise SystemExit(f"numpy2gpt: {path}: unknown setting(s) {', '.join(sorted(unknown))}")
    return out


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
    p.add_argument("--tokenizer", default="char", choices=["char", "gpt2"], help="default: char")
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
    s.add_argument("--prompt", default=None, help="text to continue (default: a newline / end-of-text)")
    s.add_argument("--prompt-file", default=None, help="read the prompt from this file")
    s.add_argument("--num-samples", type=int, default=1, help="default: 1")
    s.add_argument("--max-new-tokens", type=int, default=500, help="default: 500")
    s.add_argument("--temperature", type=float, default=0.8, help="<1 sharper, >1 more random; 0 greedy (0.8)")
    s.add_argument("--top-k", type=int, default=200, help="keep the k most likely tokens (default: 200; 0: all)")
    s.add_argument("--top-p", type=float, default=None, help="nucleus sampling: keep the top tokens of mass p")
    s.add_argument("--seed", type=int, default=1337, help="default: 1337")
    s.add_argument("--init-from", default="resume", help="'resume' (a checkpoint) or gpt2, gpt2-medium, ...")
    s.add_argument("--weights", default=None, help="with --init-from gpt2*: local folder of the GPT-2 weights")
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
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        settings = {**{k: v for k, v in saved.items() if k in names}, **settings}
    return TrainConfig(**settings)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``numpy2gpt`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code: 0 on success, 1 for an
    error that names a bad input (printed on stderr, no traceback), 130 when interrupted; argparse exits with 2
    for an unknown flag or a malformed value."""
    args = build_parser().parse_args(argv)
    from numpy2gpt.gpt.checkpoint import CheckpointError
    from numpy2gpt.gpt.train import TrainingDiverged

    try:
        if args.command == "prepare":
            from numpy2gpt.gpt import data

            cfg = TrainConfig(dataset=args.dataset, data_file=args.data_file or "", tokenizer=args.tokenizer)
            out = args.out or cfg.resolved_data_dir()
            data.prepare(
                dataset=args.dataset,
                data_file=args.data_file,
                out_dir=out,
                tokenizer=args.tokenizer,
                block_size=args.block_size,
            )
            meta = data.load_meta(out)
            print(
                f"prepared {meta['source']} in {out}: vocab {meta['vocab_size']}, "
                f"{meta['train_tokens']:,} train and {meta['val_tokens']:,} val tokens"
            )
        elif args.command == "train":
            from numpy2gpt.gpt.train import train

            train(train_config_from_args(args))
        elif args.command == "sample":
            from numpy2gpt.gpt.sample import read_prompt, sample

            sample(
                checkpoint=args.checkpoint or args.out_dir,
                prompt=read_prompt(args.prompt, args.prompt_file),
                num_samples=args.num_samples,
                max_new_tokens=args.max_new_tokens,
                temperature=args.temperature,
                top_k=args.top_k or None,
                top_p=args.top_p,
                seed=args.seed,
                init_from=args.init_from,
                weights=args.weights,
            )
    except (CheckpointError, TrainingDiverged, OSError, ValueError, KeyError, ImportError) as e:
        # errors that name a bad input: a missing or unreadable file (OSError: a folder given as a file too),
        # GPT-2 weights that do not match (KeyError), safetensors not installed (ImportError), ...
        message = e.args[0] if isinstance(e, KeyError) and e.args else e  # str(KeyError) adds quotes
        print(f"numpy2gpt {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        hint = " (the last checkpoint is kept; continue with --resume)" if args.command == "train" else ""
        print(f"\nnumpy2gpt {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
