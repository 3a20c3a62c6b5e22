"""Score a model on a text: the mean loss and perplexity over every token, once each, in order.

The model sees at most ``block_size`` tokens, so a long text is cut into windows of that length which start every
``stride`` tokens (Hugging Face's perplexity recipe, "strided sliding windows")::

    tokens t_0 ... t_N                       inputs x = t_0..t_{N-1}, targets y = t_1..t_N (N predictions)
    window w: x[b_w : b_w + block_size]      b_w = 0, stride, 2 stride, ...
    it scores the targets not scored yet     y[e_{w-1} : e_w], e_w = min(b_w + block_size, N)

so target ``y_i`` is predicted once, from the ``i - b_w + 1 >= block_size - stride + 1`` tokens before it (all of
them in the first window). ``stride = block_size`` gives disjoint windows (fastest, the least context on
average); ``stride = 1`` gives every token its full context (one forward pass per token). The default,
``block_size // 2``, gives each token at least half a context for twice the cost of disjoint windows.

    loss = (1 / N) sum_i -log softmax(logits_i)[y_i]      perplexity = exp(loss)

(log-softmax in float64 from the model's logits). ``numpy2gpt eval`` is the command; ``numpy2gpt train
--eval-only`` is nanoGPT's quick estimate from random batches instead.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

import numpy2gpt.autograd as ag
from numpy2gpt.autograd.device import require as require_device
from numpy2gpt.autograd.device import to_host
from numpy2gpt.gpt.model import GPT

__all__ = ["EvalResult", "evaluate", "evaluate_tokens", "scored_windows"]

LOGITS_BUDGET_BYTES = 1 << 28  # windows per batch: as many as keep the float32 logits under 256 MiB


@dataclass
class EvalResult:
    """The mean next-token loss (nats) over ``tokens`` predictions and its perplexity."""

    loss: float
    perplexity: float
    tokens: int
    windows: int
    block_size: int
    stride: int

    def __str__(self) -> str:
        return (
            f"loss {self.loss:.4f}, perplexity {self.perplexity:.4f} over {self.tokens:,} tokens "
            f"({self.windows} windows of {self.block_size} tokens, stride {self.stride})"
        )


def scored_windows(n: int, block_size: int, stride: int) -> list[tuple[int, int, int]]:
    """``(begin, end, first_scored)`` for each window over ``n`` input positions: the window reads
    ``x[begin:end]`` and scores the targets ``y[first_scored:end]``, so every target is scored exactly once."""
    if n < 1:
        raise ValueError("nothing to score: the text needs at least 2 tokens (one to read, one to predict)")
    if not 1 <= stride <= block_size:
        raise ValueError(f"stride must be between 1 and block_size={block_size}, got {stride}")
    windows, prev_end, begin = [], 0, 0
    while prev_end < n:
        end = min(begin + block_size, n)
        windows.append((begin, end, prev_end))
        prev_end, begin = end, begin + stride
    return windows


def _nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """-log softmax(logits)[targets] per row, in float64 (logits (M, V), targets (M,))."""
    z = logits.astype(np.float64)
    m = z.max(axis=-1, keepdims=True)
    logsumexp = m[:, 0] + np.log(np.exp(z - m).sum(axis=-1))
    return logsumexp - z[np.arange(len(targets)), targets]


def evaluate_tokens(
    model: GPT,
    tokens: np.ndarray,
    stride: int | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> EvalResult:
    """The loss of ``model`` on the token array ``tokens`` (see the module docstring), in eval mode, no graph.

    ``stride`` defaults to ``block_size // 2``; ``batch_size`` (windows per forward pass) to as many as keep the
    logits under 256 MiB; ``progress``: a progress bar (None: only on a terminal)."""
    tokens = np.asarray(tokens)
    block_size = model.config.block_size
    stride = max(1, block_size // 2) if stride is None else int(stride)
    n = len(tokens) - 1
    if n < 1:
        raise ValueError(f"the text has {len(tokens)} token(s); scoring needs at least 2 (one to read, one to predict)")
    windows = scored_windows(n, block_size, stride)
    if batch_size is None:
        batch_size = max(1, LOGITS_BUDGET_BYTES // (4 * block_size * model.config.vocab_size))
    was_training = model.training
    model.eval()
    total, done = 0.0, 0
    bar = tqdm(total=n, desc="eval", unit="tok", disable=None if progress is None else not progress, leave=False)
    try:
        with ag.no_grad():
            i = 0
            while i < len(windows):
                length = windows[i][1] - windows[i][0]
                group = [windows[i]]  # windows of the same length, batched together
                while len(group) < batch_size and i + len(group) < len(windows):
                    nxt = windows[i + len(group)]
                    if nxt[1] - nxt[0] != length:
                        break
                    group.append(nxt)
                i += len(group)
                x = np.stack([np.asarray(tokens[b:e], dtype=np.int64) for b, e, _ in group])
                logits = to_host(model(x)[0].data)  # (from a GPU: the scores come back to be summed in float64)
                for row, (b, e, first) in enumerate(group):
                    targets = np.asarray(tokens[first + 1 : e + 1], dtype=np.int64)
                    total += math.fsum(_nll(logits[row, first - b :], targets))
                    done += e - first
                bar.update(sum(e - first for _, e, first in group))
    finally:
        bar.close()
        model.train(was_training)
    loss = total / done
    return EvalResult(loss, math.exp(min(loss, 700.0)), done, len(windows), block_size, stride)


def run_data_dir(checkpoint: str | os.PathLike[str]) -> Path:
    """The prepared data a checkpoint was trained on: its ``data_dir``, else the folder ``train`` prepared inside
    the run folder (the checkpoint's own folder, so a moved run folder still finds it)."""
    from numpy2gpt.gpt.checkpoint import load_checkpoint
    from numpy2gpt.gpt.data import default_out_dir

    ckpt = load_checkpoint(checkpoint)
    config = ckpt.get("config") or {}
    if config.get("data_dir"):
        return Path(config["data_dir"])
    if "dataset" not in config:
        raise ValueError(
            f"checkpoint {ckpt['path']} does not say what data it was trained on: give a data file or folder"
        )
    tag = f"bpe{config.get('vocab_size')}" if config.get("tokenizer") == "bpe" else config.get("tokenizer", "char")
    name = default_out_dir(config["dataset"], config.get("data_file") or None, tag).name
    return Path(ckpt["path"]).parent / "data" / name


def _load(checkpoint: str | os.PathLike[str], init_from: str, weights: str | None) -> tuple[GPT, dict[str, Any]]:
    """The model to score and its data metadata (the tokenizer), from a checkpoint or pretrained GPT-2."""
    if init_from == "resume":
        from numpy2gpt.gpt.sample import load_model

        return load_model(checkpoint)
    if init_from.startswith("gpt2"):
        model = GPT.from_pretrained(weights or init_from)
        return model, {"tokenizer": {"kind": "gpt2", "name": "gpt2"}, "vocab_size": model.config.vocab_size}
    raise ValueError(f"init_from must be 'resume' or a GPT-2 name (gpt2, gpt2-medium, ...), not {init_from!r}")


def evaluate(
    checkpoint: str | os.PathLike[str] = "out",
    data_file: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    split: str = "val",
    *,
    text: str | None = None,
    init_from: str = "resume",
    weights: str | None = None,
    stride: int | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    say: Callable[[str], None] = print,
    device: str = "cpu",
) -> EvalResult:
    """Score a checkpoint (``checkpoint``: a file or an out_dir) or pretrained GPT-2 (``init_from="gpt2"``, from
    ``weights`` or the Hugging Face cache) on ``text``, on a UTF-8 ``data_file``, or on the ``split`` of a folder
    made by ``prepare`` (which must use the model's tokenizer); with none of these, a checkpoint is scored on the
    ``split`` of the data it was trained on (:func:`run_data_dir`). Prints one line through ``say`` and returns it."""
    from numpy2gpt.gpt.tokenizer import load_tokenizer

    device = require_device(device)  # one line if a GPU is asked for and cannot be had
    model, meta = _load(checkpoint, init_from, weights)
    model.to(device)
    sources = [s is not None for s in (text, data_file, data_dir)]
    if sum(sources) == 0 and init_from == "resume":
        data_dir = run_data_dir(checkpoint)
    elif sum(sources) != 1:
        raise ValueError("evaluate needs exactly one of text=, data_file= (a text file) or data_dir= (prepared data)")
    if data_dir is not None:
        from numpy2gpt.gpt import data as gdata

        data_meta = gdata.load_meta(data_dir)
        if data_meta.get("tokenizer") != meta.get("tokenizer"):
            raise ValueError(
                f"{data_dir} was prepared with another tokenizer ({data_meta['tokenizer'].get('kind')}) than the "
                f"model's ({meta['tokenizer'].get('kind')}): evaluate a text file, or prepare the data again"
            )
        tokens: np.ndarray = gdata.load_split(data_dir, split)  # type: ignore[arg-type]
        what = f"the {split} split of {data_dir}"
    else:
        if data_file is not None:
            path = Path(data_file)
            if not path.is_file():
                raise FileNotFoundError(f"eval text file {path} does not exist")
            text = path.read_text(encoding="utf-8")
            what = str(path)
        else:
            what = "the text"
        tokens = load_tokenizer(meta).encode_array(text)
    if len(tokens) < 2:
        raise ValueError(f"{what} has {len(tokens)} token(s); scoring needs at least 2 (one to read, one to predict)")
    if len(tokens) - 1 < model.config.block_size:
        say(
            f"note: {what} has {len(tokens)} tokens, fewer than the context ({model.config.block_size} + 1): "
            "one window, each token predicted from the tokens before it"
        )
    result = evaluate_tokens(model, tokens, stride, batch_size, progress)
    say(f"eval {what}: {result}")
    sys.stdout.flush()
    return result
