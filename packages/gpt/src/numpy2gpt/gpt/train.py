"""Train a GPT: nanoGPT's train.py, on one CPU, in NumPy.

The loop, flat as in nanoGPT::

    for iter_num in range(start, max_iters):
        every eval_interval: estimate train/val loss (own random stream), save a checkpoint if val improved
        lr = warmup + cosine decay (a pure function of iter_num), set in every param group
        gradient accumulation: loss / steps, backward, for each micro-batch
        clip the gradient norm, AdamW step, zero the gradients
        every log_interval: loss, lr, ms/iter, tokens/s, GFLOP/s (as % of this machine's matmul peak)

Everything random (weight init, batches, dropout) draws from ``numpy2gpt.autograd.default_generator()``,
seeded once with ``seed``. The checkpoint saves its state with the weights, the AdamW moments and
``iter_num``, so a run of 100 iterations resumed for 100 more ends with exactly the parameters of one run of
200. Evaluation draws its batches from a separate generator seeded by (seed, iter_num), so evaluating (or not)
never changes the training stream.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

import numpy2gpt.autograd as ag
from numpy2gpt.gpt import corpora
from numpy2gpt.gpt import data as gdata
from numpy2gpt.gpt.checkpoint import (
    RESUME_KEYS,
    CheckpointError,
    check_model_args,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from numpy2gpt.gpt.model import GPT, GPTConfig
from numpy2gpt.nn.optim.lr_scheduler import cosine_warmup_lr
from numpy2gpt.nn.utils import clip_grad_norm_

METRICS_NAME = "metrics.jsonl"
PLOT_NAME = "loss.png"
MODEL_FIELDS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "dropout")


def _opt(default: Any, help: str) -> Any:  # noqa: A002 - argparse's word
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Every knob of a training run. The defaults are nanoGPT's documented CPU run of shakespeare_char
    (``--device=cpu --compile=False --eval_iters=20 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4
    --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0``), on the embedded python_docs corpus."""

    # I/O
    out_dir: str = _opt("out", "folder for the checkpoint, metrics, loss curve (and the prepared data)")
    eval_interval: int = _opt(250, "estimate train/val loss every this many iterations")
    log_interval: int = _opt(10, "print a log line (and update the progress bar) every this many iterations")
    eval_iters: int = _opt(20, "batches per split for each loss estimate")
    always_save_checkpoint: bool = _opt(False, "save at every evaluation, not only when val loss improves")
    init_from: str = _opt("scratch", "'scratch', 'resume' (from out_dir's checkpoint) or a GPT-2 name (gpt2, ...)")
    weights: str = _opt("", "with --init-from gpt2*: a local folder (or file) holding the GPT-2 weights")
    # data
    dataset: str = _opt("python_docs", "built-in corpus: python_docs (embedded, offline), shakespeare_char, ...")
    data_file: str = _opt("", "train on this local text file instead of a built-in dataset")
    data_dir: str = _opt("", "a folder made by `numpy2gpt prepare` (default: OUT_DIR/data/CORPUS_TOKENIZER)")
    tokenizer: str = _opt("char", "'char' (one token per character) or 'gpt2' (GPT-2 BPE)")
    gradient_accumulation_steps: int = _opt(1, "micro-batches per optimizer step")
    batch_size: int = _opt(12, "sequences per micro-batch")
    block_size: int = _opt(64, "context length in tokens")
    # model
    n_layer: int = _opt(4, "transformer blocks")
    n_head: int = _opt(4, "attention heads per block")
    n_embd: int = _opt(128, "embedding width")
    dropout: float = _opt(0.0, "dropout probability (0 for small data, 0.1+ for fine-tuning)")
    bias: bool = _opt(False, "biases in Linear layers and LayerNorms")
    # AdamW
    learning_rate: float = _opt(1e-3, "maximum learning rate")
    max_iters: int = _opt(2000, "total optimizer steps")
    weight_decay: float = _opt(0.1, "AdamW weight decay (2-D weights only)")
    beta1: float = _opt(0.9, "AdamW beta1")
    beta2: float = _opt(0.99, "AdamW beta2")
    grad_clip: float = _opt(1.0, "clip the gradient norm to this (0 disables)")
    # learning-rate schedule
    decay_lr: bool = _opt(True, "warmup then cosine decay (otherwise a constant learning_rate)")
    warmup_iters: int = _opt(100, "linear warmup steps")
    lr_decay_iters: int = _opt(2000, "the cosine reaches min_lr here (nanoGPT: ~max_iters)")
    min_lr: float = _opt(1e-4, "final learning rate (nanoGPT: ~learning_rate/10)")
    # misc
    seed: int = _opt(1337, "seed of every random draw (init, batches, dropout)")
    sample_at_end: bool = _opt(True, "print a sample from the model when training ends")
    num_sample_tokens: int = _opt(300, "length of that sample in tokens")
    plot: bool = _opt(True, "write a loss-curve PNG (needs matplotlib)")
    progress: bool = _opt(True, "show a progress bar")

    def __post_init__(self) -> None:
        """Refuse settings that cannot work, naming the field, before any data is prepared."""
        positive = ("eval_interval", "log_interval", "eval_iters", "gradient_accumulation_steps", "batch_size",
                    "block_size", "n_layer", "n_head", "n_embd")  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("max_iters", "warmup_iters", "lr_decay_iters", "num_sample_tokens"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.decay_lr and self.lr_decay_iters < self.warmup_iters:
            raise ValueError(
                f"lr_decay_iters ({self.lr_decay_iters}) must be >= warmup_iters ({self.warmup_iters}): the cosine "
                "decay starts after the warmup"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not (self.learning_rate > 0.0 and self.min_lr >= 0.0):
            raise ValueError(f"need learning_rate > 0 and min_lr >= 0, got {self.learning_rate} and {self.min_lr}")
        if self.tokenizer not in ("char", "gpt2"):
            raise ValueError(f"tokenizer must be 'char' or 'gpt2', got {self.tokenizer!r}")
        if self.init_from not in ("scratch", "resume") and not self.init_from.startswith("gpt2"):
            raise ValueError(
                f"init_from must be 'scratch', 'resume' or a GPT-2 name (gpt2, ...), not {self.init_from!r}"
            )
        if self.weights and self.init_from == "scratch":  # (a resumed fine-tuning run keeps its saved weights path)
            raise ValueError(f"weights={self.weights!r} is only used with init_from gpt2 (--init-from gpt2)")

    def model_config(self, vocab_size: int) -> GPTConfig:
        """The GPTConfig of the model this run trains from scratch, for a vocabulary of ``vocab_size`` tokens."""
        return GPTConfig(
            block_size=self.block_size,
            vocab_size=vocab_size,
            n_layer=self.n_layer,
            n_head=self.n_head,
            n_embd=self.n_embd,
            dropout=self.dropout,
            bias=self.bias,
        )

    def resolved_data_dir(self) -> Path:
        """``data_dir``, or ``OUT_DIR/data/<corpus>_<tokenizer>`` (e.g. ``out/data/python_docs_char``)."""
        if self.data_dir:
            return Path(self.data_dir)
        name = gdata.default_out_dir(self.dataset, self.data_file or None, self.tokenizer).name
        return Path(self.out_dir) / "data" / name


@dataclass
class TrainResult:
    """What ``train`` returns: the trained model and a summary of the run."""

    model: GPT
    iter_num: int
    train_loss: float
    val_loss: float
    best_val_loss: float
    checkpoint: Path | None
    seconds: float
    tokens_per_sec: float
    sample: str | None = None


class TrainingDiverged(RuntimeError):  # noqa: N818 - reads as what happened
    """The loss became NaN or infinite; the run stopped without saving the broken weights."""


# ----------------------------------------------------------------------------------------------------------------
# helpers


def measure_matmul_peak(n: int = 1024, seconds: float = 0.3) -> float:
    """This machine's float32 matmul speed in FLOP/s: the best of repeated n x n @ n x n products (2 n^3 FLOPs
    each) over about ``seconds``. The yardstick for how well training uses the CPU.

    Other programs running at the same time make it read low; ``train`` measures again at every evaluation and
    keeps the best, so the estimate only improves."""
    rng = np.random.default_rng(0)  # its own generator: the training stream is untouched
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=out)  # warm-up (thread pool, caches)
    best = math.inf
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


def get_lr(it: int, config: TrainConfig) -> float:
    """nanoGPT's schedule: linear warmup, cosine decay to min_lr at lr_decay_iters, then min_lr."""
    if not config.decay_lr:
        return config.learning_rate
    return cosine_warmup_lr(it, config.learning_rate, config.min_lr, config.warmup_iters, config.lr_decay_iters)


def estimate_loss(model: GPT, splits: dict[str, np.ndarray], config: TrainConfig, iter_num: int) -> dict[str, float]:
    """Mean loss over ``eval_iters`` batches of each split, in eval mode (no dropout) and without a graph.

    The batches come from a generator seeded by (seed, iter_num), never from the training stream, so whether and
    how often a run evaluates does not change its training."""
    rng = np.random.default_rng([config.seed, iter_num])
    was_training = model.training
    model.eval()
    out = {}
    with ag.no_grad():
        for split, tokens in splits.items():
            losses = []
            for _ in range(config.eval_iters):
                x, y = gdata.get_batch(tokens, config.batch_size, config.block_size, rng=rng)
                _, loss = model(x, y)
                losses.append(float(loss.item()))
            out[split] = math.fsum(losses) / len(losses)
    model.train(was_training)
    return out


def ensure_data(config: TrainConfig, log: Callable[[str], None] = print) -> Path:
    """The prepared data folder of this config, preparing the corpus first unless it is there already.

    With ``data_dir`` given, that folder is used as prepared (``numpy2gpt prepare --out DIR``), and a folder that
    was never prepared is an error (a mistyped path must not quietly train on the default corpus); otherwise the
    corpus is prepared into ``OUT_DIR/data/<corpus>_<tokenizer>`` unless that folder already holds it (for a
    ``data_file``: unless the file changed since)."""
    if config.data_dir:
        gdata.load_meta(config.data_dir)  # FileNotFoundError: "... it was never prepared; run numpy2gpt prepare"
        return Path(config.data_dir)
    data_dir = config.resolved_data_dir()
    if not _is_prepared(data_dir, config):
        log(f"preparing {config.data_file or config.dataset} with the {config.tokenizer} tokenizer in {data_dir}")
        gdata.prepare(
            dataset=config.dataset,
            data_file=config.data_file or None,
            out_dir=data_dir,
            tokenizer=config.tokenizer,
            block_size=config.block_size,
        )
    return data_dir


def _is_prepared(data_dir: Path, config: TrainConfig) -> bool:
    meta_file = data_dir / "meta.json"
    try:
        meta = gdata.load_meta(data_dir)
    except (OSError, ValueError):
        return False
    if meta.get("tokenizer", {}).get("kind") != config.tokenizer:
        return False
    if config.data_file:
        path = Path(config.data_file)
        return (
            meta.get("data_file") == str(path.expanduser().resolve())  # the file it was prepared from
            and path.is_file()
            and path.stat().st_mtime_ns <= meta_file.stat().st_mtime_ns
        )
    return meta.get("dataset") == corpus_name(config.dataset)


def corpus_name(dataset: str) -> str:
    """The canonical name of a built-in corpus (``shakespeare`` -> ``shakespeare_char``)."""
    return corpora._ALIASES.get(dataset, dataset)


def _describe_tokenizer(meta: dict[str, Any]) -> str:
    """A short description of a tokenizer meta for error messages: its kind and, for characters, the set."""
    tok = meta.get("tokenizer") or {}
    if tok.get("kind") == "char":
        return f"{len(tok.get('chars', ''))} characters {tok.get('chars', '')!r}"[:120]
    return str(tok.get("name") or tok.get("kind"))


def write_metrics(path: Path, record: dict[str, Any]) -> None:
    """Append ``record`` to the metrics file as one JSON line."""
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics file, oldest first ([] if there is none yet)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_losses(metrics_file: Path, png: Path) -> Path | None:
    """Train and val loss against iteration, from the metrics file, as a PNG (None without matplotlib).

    Uses matplotlib's object API with the Agg canvas, so it never opens a window or touches pyplot's state."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    records = read_metrics(metrics_file)
    steps = [(r["iter"], r["loss"]) for r in records if "loss" in r]
    evals = [(r["iter"], r["train_loss"], r["val_loss"]) for r in records if "val_loss" in r]
    fig = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if steps:
        ax.plot(*zip(*steps, strict=True), color="tab:blue", alpha=0.35, lw=1, label="train (batch)")
    if evals:
        it, tr, va = zip(*evals, strict=True)
        ax.plot(it, tr, "o-", color="tab:blue", label="train (estimate)")
        ax.plot(it, va, "o-", color="tab:orange", label="val (estimate)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("cross-entropy loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = png.with_name(png.name + ".tmp")
    fig.savefig(tmp, format="png")
    tmp.replace(png)
    return png


# ----------------------------------------------------------------------------------------------------------------
# the training run


def train(config: TrainConfig) -> TrainResult:
    """Run a training job as ``config`` says; see this module's docstring for the loop."""
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_file = checkpoint_path(out_dir)
    metrics_file = out_dir / METRICS_NAME
    png_file = out_dir / PLOT_NAME

    def log(msg: str) -> None:
        tqdm.write(msg, file=sys.stdout)  # above the progress bar
        sys.stdout.flush()  # at once also when stdout is a file or a pipe (`numpy2gpt train > log.txt`)

    # ---- data
    data_dir = ensure_data(config, log)
    meta = gdata.load_meta(data_dir)
    splits = {"train": gdata.load_split(data_dir, "train"), "val": gdata.load_split(data_dir, "val")}
    for split, tokens in splits.items():
        if len(tokens) <= config.block_size:
            raise ValueError(
                f"the {split} split of {data_dir} has {len(tokens)} tokens, fewer than block_size+1 = "
                f"{config.block_size + 1}: use a longer text or a smaller --block-size"
            )
    vocab_size = int(meta["vocab_size"])

    # ---- model and optimizer
    ag.manual_seed(config.seed)
    checkpoint = None
    if config.init_from == "resume":
        checkpoint = load_checkpoint(ckpt_file)
        missing = [k for k in RESUME_KEYS if k not in checkpoint]
        if missing:
            raise CheckpointError(
                f"checkpoint {ckpt_file} lacks {', '.join(missing)}: it can be sampled from but not resumed"
            )
        wanted = {k: getattr(config, k) for k in MODEL_FIELDS} | {"vocab_size": vocab_size}
        check_model_args(checkpoint["model_args"], wanted, ckpt_file)
        if checkpoint["tokenizer"].get("tokenizer") != meta.get("tokenizer"):  # same size, other tokens
            raise CheckpointError(
                f"checkpoint {ckpt_file} was trained on data with another tokenizer than {data_dir} "
                f"(checkpoint: {_describe_tokenizer(checkpoint['tokenizer'])}; data: {_describe_tokenizer(meta)}): "
                "resume with the run's own data, or train from scratch in another --out-dir"
            )
        model_args = GPTConfig(**{**checkpoint["model_args"], "dropout": config.dropout})
        model = GPT(model_args)
        model.load_state_dict(checkpoint["model"])
        log(f"resuming from {ckpt_file} at iteration {checkpoint['iter_num']}")
    elif config.init_from.startswith("gpt2"):
        model = load_pretrained(config.init_from, config.weights, config.dropout, config.block_size)
        # the architecture is GPT-2's: record it, so that the checkpoint's config describes the model it holds
        config = dataclasses.replace(config, **{k: getattr(model.config, k) for k in MODEL_FIELDS})
        log(f"initialized from {config.weights or config.init_from}: {model.config}")
        if model.config.vocab_size != vocab_size:
            raise ValueError(
                f"{config.init_from} has a vocabulary of {model.config.vocab_size} tokens but the data was "
                f"prepared with {vocab_size}: prepare it with --tokenizer gpt2"
            )
    else:
        model = GPT(config.model_config(vocab_size))

    optimizer = model.configure_optimizers(config.weight_decay, config.learning_rate, (config.beta1, config.beta2))
    iter_num, best_val_loss = 0, math.inf
    losses = {"train": math.nan, "val": math.nan}  # the latest estimate
    if checkpoint is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        iter_num = int(checkpoint["iter_num"])
        best_val_loss = float(checkpoint["best_val_loss"])
        ag.set_rng_state(checkpoint["rng_state"])
        # the log continues; drop what a longer, later-abandoned run wrote after this checkpoint
        kept = [r for r in read_metrics(metrics_file) if r["iter"] <= iter_num]
        metrics_file.write_text("".join(json.dumps(r) + "\n" for r in kept))
        evals = [r for r in kept if "val_loss" in r]
        if evals:  # the estimate made when the checkpoint was saved (for the progress bar and the summary)
            losses = {"train": evals[-1]["train_loss"], "val": evals[-1]["val_loss"]}
    elif metrics_file.exists():
        metrics_file.unlink()  # a fresh run starts a fresh log

    n_params = model.num_parameters()
    tokens_per_iter = config.gradient_accumulation_steps * config.batch_size * config.block_size
    peak = measure_matmul_peak()
    start_iter = iter_num
    flops_per_iter = model.estimate_flops_per_token() * tokens_per_iter  # PaLM's 6N + 12LHQT, as nanoGPT's MFU
    log(
        f"{n_params / 1e6:.2f}M parameters, vocab {vocab_size}, {tokens_per_iter:,} tokens per iteration; "
        f"float32 matmul peak of this machine: {peak / 1e9:.1f} GFLOP/s"
    )

    def save(iter_num: int, best_val_loss: float) -> None:
        for name, p in model.named_parameters():
            if not np.all(np.isfinite(p.data)):
                raise TrainingDiverged(f"parameter {name} is not finite at iteration {iter_num}; not saving it")
        save_checkpoint(
            ckpt_file,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "model_args": dataclasses.asdict(model.config),
                "config": dataclasses.asdict(config),
                "iter_num": iter_num,
                "best_val_loss": best_val_loss,
                "rng_state": ag.get_rng_state(),
                "tokenizer": meta,
            },
        )

    plot = config.plot

    def evaluate(iter_num: int, best_val_loss: float, final: bool) -> tuple[dict[str, float], float]:
        """Estimate the losses, log them, and save a checkpoint if val improved (always at the end)."""
        nonlocal peak, plot
        if iter_num > start_iter:
            peak = max(peak, measure_matmul_peak(seconds=0.1))
        losses = estimate_loss(model, splits, config, iter_num)
        log(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
        if not (math.isfinite(losses["train"]) and math.isfinite(losses["val"])):
            raise TrainingDiverged(f"the loss estimate is {losses} at iteration {iter_num}")
        write_metrics(metrics_file, {"iter": iter_num, "train_loss": losses["train"], "val_loss": losses["val"]})
        improved = losses["val"] < best_val_loss
        best_val_loss = min(best_val_loss, losses["val"])
        if final or (iter_num > 0 and (improved or config.always_save_checkpoint)):
            save(iter_num, best_val_loss)
            log(f"saved checkpoint to {ckpt_file}")
        if plot and plot_losses(metrics_file, png_file) is None:
            log("no loss curve: matplotlib is not installed (pip install 'numpy2gpt-gpt[plot]'; --no-plot hides this)")
            plot = False  # said once
        return losses, best_val_loss

    # ---- the loop
    if checkpoint is not None and iter_num >= config.max_iters:
        log(
            f"the checkpoint is already at iteration {iter_num} (max_iters {config.max_iters}): nothing to train; "
            "pass a larger --max-iters to continue"
        )
    model.train()
    bar = tqdm(
        total=config.max_iters, initial=iter_num, desc="training", unit="it", disable=not config.progress, leave=True
    )
    lossf = math.nan
    t_start = time.perf_counter()
    last_log_iter = iter_num
    train_seconds = window_seconds = 0.0  # time spent in training steps (evaluation and saving excluded)
    try:
        while True:
            final = iter_num >= config.max_iters
            resumed_here = checkpoint is not None and iter_num == start_iter  # evaluated before it was saved
            if (iter_num % config.eval_interval == 0 or final) and not resumed_here:
                losses, best_val_loss = evaluate(iter_num, best_val_loss, final)
            if final:
                break

            t0 = time.perf_counter()
            lr = get_lr(iter_num, config)
            for group in optimizer.param_groups:
                group["lr"] = lr

            # forward/backward over the micro-batches; the loss is averaged, hence the division
            lossf = 0.0
            for _ in range(config.gradient_accumulation_steps):
                x, y = gdata.get_batch(splits["train"], config.batch_size, config.block_size)
                _, loss = model(x, y)
                micro = float(loss.item())
                if not math.isfinite(micro):
                    raise TrainingDiverged(f"the loss is {micro} at iteration {iter_num}")
                lossf += micro / config.gradient_accumulation_steps
                (loss / config.gradient_accumulation_steps).backward()
            if config.grad_clip > 0.0:
                norm = clip_grad_norm_(model.parameters(), config.grad_clip)
                if not math.isfinite(norm):
                    raise TrainingDiverged(f"the gradient norm is {norm} at iteration {iter_num}")
            optimizer.step()
            optimizer.zero_grad()
            iter_num += 1
            step_seconds = time.perf_counter() - t0
            train_seconds += step_seconds
            window_seconds += step_seconds
            bar.update(1)

            if iter_num % config.log_interval == 0 or iter_num == config.max_iters:
                dt = window_seconds / (iter_num - last_log_iter)  # seconds per step since the last log line
                window_seconds, last_log_iter = 0.0, iter_num
                tok_s = tokens_per_iter / dt
                gflops = flops_per_iter / dt / 1e9
                log(
                    f"iter {iter_num}: loss {lossf:.4f}, lr {lr:.2e}, {dt * 1000:.1f} ms/iter, {tok_s:,.0f} tok/s, "
                    f"{gflops:.1f} GFLOP/s ({100 * gflops * 1e9 / peak:.0f}% of matmul peak)"
                )
                bar.set_postfix(loss=f"{lossf:.4f}", val=f"{losses['val']:.4f}", tok_s=f"{tok_s:,.0f}")
                write_metrics(metrics_file, {"iter": iter_num, "loss": lossf, "lr": lr, "ms": dt * 1000})
    except TrainingDiverged as e:
        bar.close()
        kept = f"the last good checkpoint {ckpt_file} is untouched" if ckpt_file.exists() else "nothing was saved"
        raise TrainingDiverged(f"{e}: training stopped ({kept}). Try a lower --learning-rate or --grad-clip.") from None
    bar.close()
    seconds = time.perf_counter() - t_start

    if plot and png_file.exists():
        log(f"loss curve: {png_file}")
    steps = iter_num - start_iter
    tokens_per_sec = steps * tokens_per_iter / train_seconds if steps else 0.0
    log(
        f"{steps} iterations in {seconds:.1f} s ({train_seconds:.1f} s of training steps, "
        f"{tokens_per_sec:,.0f} tokens/s); val loss {losses['val']:.4f} (best {best_val_loss:.4f})"
    )

    sample_text = None
    if config.sample_at_end and config.num_sample_tokens > 0:
        from numpy2gpt.gpt.sample import sample_from_model

        log("sample:")
        sample_text = sample_from_model(
            model, meta, prompt=None, max_new_tokens=config.num_sample_tokens, seed=config.seed, stream=sys.stdout
        )
    return TrainResult(
        model=model,
        iter_num=iter_num,
        train_loss=losses["train"],
        val_loss=losses["val"],
        best_val_loss=best_val_loss,
        checkpoint=ckpt_file if ckpt_file.exists() else None,
        seconds=seconds,
        tokens_per_sec=tokens_per_sec,
        sample=sample_text,
    )


def load_pretrained(name: str, weights: str, dropout: float, block_size: int | None) -> GPT:
    """GPT-2 weights from a local folder or file (``weights``) or else the local Hugging Face cache (``name``:
    gpt2, gpt2-medium, ...), cropped to ``block_size`` (None: GPT-2's 1024 positions)."""
    return GPT.from_pretrained(weights or name, dropout=dropout, block_size=block_size)


__all__ = ["CheckpointError", "TrainConfig", "TrainResult", "TrainingDiverged", "estimate_loss", "train"]
