"""Train a GPT: nanoGPT's train.py, on one CPU, in NumPy.

``train(config)`` reads top to bottom like nanoGPT's script:

    data      prepare the corpus unless done (data.ensure_data), map train.bin / val.bin
    model     from scratch, from a checkpoint (--resume) or from GPT-2's weights; AdamW
    loop      (train_loop) every eval_interval: estimate_loss (its own random stream), save_run if val improved
              lr = get_lr(iter_num) (warmup + cosine decay), in every param group
              forward_backward: gradient accumulation over micro-batches (loss / steps, backward)
              optimizer_step: clip the gradient norm, AdamW step, zero the gradients
              every log_interval: loss, lr, ms/iter, tokens/s, GFLOP/s (% of this machine's matmul peak)

What changes as the run goes lives in one ``Run`` dataclass passed to each step. Everything random draws from
``numpy2gpt.autograd.default_generator()`` (seeded once), whose state the checkpoint keeps: 100 + 100 resumed
iterations equal one 200-iteration run bit for bit. With ``--procs N`` (local_ranks.py; the command's default: one
per core) or under ``mpiexec -n N`` each rank runs this loop on its share of the step and the ranks average
their gradients before the step (distributed.py).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

import numpy2gpt.autograd as ag
from numpy2gpt.autograd.device import require as require_device
from numpy2gpt.gpt import data as gdata
from numpy2gpt.gpt import distributed, local_ranks
from numpy2gpt.gpt.checkpoint import CheckpointError, checkpoint_path, load_resumable, save_checkpoint
from numpy2gpt.gpt.metrics import (
    METRICS_NAME,
    PLOT_NAME,
    keep_until,
    measure_matmul_peak,
    plot_losses,
    write_metrics,
)
from numpy2gpt.gpt.model import GPT, GPTConfig
from numpy2gpt.gpt.pretrained import MODEL_SIZES
from numpy2gpt.nn import optim
from numpy2gpt.nn.optim.lr_scheduler import cosine_warmup_lr
from numpy2gpt.nn.serialization import remove_stale_temporaries
from numpy2gpt.nn.threads import usable_cpus
from numpy2gpt.nn.utils import clip_grad_norm_

MODEL_FIELDS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "dropout")
MAX_AUTO_PROCS = 8  # procs 0 starts at most this many (each holds a copy of the model and its AdamW moments)
PROCESS_MEMORY = 200 * 2**20  # what a rank takes besides its model: the interpreter, NumPy, numpy2gpt, buffers
EXPLODED = 1000.0  # a checkpoint's weights stay within this factor of the largest weight at the start of the run


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
    always_save_checkpoint: bool = _opt(
        False, "save at every evaluation and at the end, not only when val loss improves (the default keeps the best)"
    )
    eval_only: bool = _opt(False, "estimate the train/val loss of the model as loaded, then stop (nanoGPT's eval_only)")
    init_from: str = _opt("scratch", "'scratch', 'resume' (from out_dir's checkpoint) or a GPT-2 name (gpt2, ...)")
    weights: str = _opt("", "with --init-from gpt2*: a local folder (or file) holding the GPT-2 weights")
    # data
    dataset: str = _opt("python_docs", "built-in corpus: python_docs (embedded, offline), shakespeare_char, ...")
    data_file: str = _opt("", "train on this local text file instead of a built-in dataset")
    data_dir: str = _opt("", "a folder made by `numpy2gpt prepare` (default: OUT_DIR/data/CORPUS_TOKENIZER)")
    tokenizer: str = _opt("char", "'char' (one token per character), 'gpt2' (GPT-2 BPE) or 'bpe' (trained on the data)")
    vocab_size: int = _opt(4096, "with --tokenizer bpe: the vocabulary size to train")
    gradient_accumulation_steps: int = _opt(1, "micro-batches per optimizer step")
    batch_size: int = _opt(12, "sequences per micro-batch")
    block_size: int = _opt(64, "context length in tokens")
    # model
    n_layer: int = _opt(4, "transformer blocks")
    n_head: int = _opt(4, "attention heads per block")
    n_embd: int = _opt(128, "embedding width")
    dropout: float = _opt(0.0, "dropout probability (0 for small data, 0.1+ for fine-tuning)")
    bias: bool = _opt(False, "biases in Linear layers and LayerNorms")
    fused: bool = _opt(True, "nn's fused kernels (--no-fused: the composed Tensor ops, slower, the same numbers)")
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
    lr_decay_iters: int = _opt(0, "the cosine reaches min_lr here (0: at max_iters)")
    min_lr: float = _opt(1e-4, "final learning rate (nanoGPT: ~learning_rate/10)")
    # misc
    seed: int = _opt(1337, "seed of every random draw (init, batches, dropout)")
    device: str = _opt("cpu", "'cpu' (NumPy) or 'cuda' / 'cuda:N' (CuPy on an NVIDIA GPU: pip install "
                       "'numpy2gpt-autograd[cuda12]')")  # fmt: skip
    sample_at_end: bool = _opt(True, "print a sample from the model when training ends")
    num_sample_tokens: int = _opt(300, "length of that sample in tokens")
    plot: bool = _opt(True, "write a loss-curve PNG (needs matplotlib)")
    progress: bool = _opt(True, "show a progress bar")
    # data parallel: --procs N on this machine, or mpiexec -n N numpy2gpt train
    procs: int = _opt(1, "data-parallel over this many processes on this machine, one rank each, without MPI "
                      "(local_ranks.py); 0: one per core, as many as can share the step, at most "
                      f"{MAX_AUTO_PROCS}")  # fmt: skip
    batch_draw: str = _opt("rank", "with several ranks: 'rank' (each its own random stream, seed + rank, as "
                           "nanoGPT) or 'global' (one stream draws the step's batches, each rank trains on its "
                           "slice)")  # fmt: skip
    rank_threads: int = _opt(0, "BLAS threads per rank (0: the free cores shared among the ranks using them, "
                             "or NUMPY2GPT_NUM_THREADS)")  # fmt: skip

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
        if self.decay_lr and self.lr_decay_iters and self.lr_decay_iters < self.warmup_iters:
            raise ValueError(
                f"lr_decay_iters ({self.lr_decay_iters}) must be >= warmup_iters ({self.warmup_iters}): the cosine "
                "decay starts after the warmup"
            )
        if not self.grad_clip >= 0.0:  # (nan too)
            raise ValueError(f"grad_clip must be >= 0 (0 disables clipping, as in nanoGPT), got {self.grad_clip}")
        if self.batch_draw not in distributed.BATCH_DRAWS:
            raise ValueError(f"batch_draw must be 'rank' or 'global', got {self.batch_draw!r}")
        if self.procs < 0:
            raise ValueError(f"procs must be >= 0 (0: one per core), got {self.procs}")
        if self.procs > 1 and self.device != "cpu":
            raise ValueError(
                f"procs must be 1 (or 0) with device {self.device!r}: processes share this machine's CPU cores, "
                "one rank each"
            )
        if self.rank_threads < 0:
            raise ValueError(f"rank_threads must be >= 0 (0: automatic), got {self.rank_threads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not (self.learning_rate > 0.0 and self.min_lr >= 0.0):
            raise ValueError(f"need learning_rate > 0 and min_lr >= 0, got {self.learning_rate} and {self.min_lr}")
        if self.tokenizer not in ("char", "gpt2", "bpe"):
            raise ValueError(f"tokenizer must be 'char', 'gpt2' or 'bpe', got {self.tokenizer!r}")
        if self.tokenizer == "bpe" and not 257 <= self.vocab_size <= 65536:
            raise ValueError(f"vocab_size must be between 257 and 65536 for --tokenizer bpe, got {self.vocab_size}")
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
            fused=self.fused,
        )

    @property
    def tokenizer_tag(self) -> str:
        """The tokenizer in a data folder's name: ``char``, ``gpt2``, ``bpe4096`` (one folder per vocabulary size)."""
        return f"bpe{self.vocab_size}" if self.tokenizer == "bpe" else self.tokenizer

    @property
    def decay_iters(self) -> int:
        """Where the cosine ends: ``lr_decay_iters``, or else ``max_iters`` (not before the warmup's end)."""
        return self.lr_decay_iters or max(self.max_iters, self.warmup_iters)

    def resolved_data_dir(self) -> Path:
        """``data_dir``, or ``OUT_DIR/data/<corpus>_<tokenizer>`` (e.g. ``out/data/python_docs_char``)."""
        if self.data_dir:
            return Path(self.data_dir)
        name = gdata.default_out_dir(self.dataset, self.data_file or None, self.tokenizer_tag).name
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


@dataclass
class Run:
    """One training run: what it trains (set up once) and where it stands (updated by each step)."""

    config: TrainConfig
    model: GPT
    optimizer: optim.AdamW
    splits: dict[str, np.ndarray]  # "train", "val": the token arrays
    meta: dict[str, Any]  # the data's meta.json (the tokenizer), saved with every checkpoint
    out_dir: Path
    peak_flops: float  # the job's float32 matmul FLOP/s (``matmul_peak``; the best measurement so far)
    weight_limit: float = math.inf  # the largest |w| a checkpoint may hold (``weight_limit``)
    iter_num: int = 0
    start_iter: int = 0  # where this process started (> 0 when resumed)
    resumed: bool = False
    best_val_loss: float = math.inf
    losses: dict[str, float] = field(default_factory=lambda: {"train": math.nan, "val": math.nan})  # latest
    plot: bool = True
    train_seconds: float = 0.0  # time in training steps (evaluation and saving excluded)
    window_seconds: float = 0.0  # the same, since the last log line
    last_log_iter: int = 0
    world: distributed.World = distributed.SINGLE  # this process's place among the MPI ranks
    streams: dict[str, Any] = field(default_factory=dict)  # the ranks' random streams at the last evaluation

    @property
    def ckpt_file(self) -> Path:
        return checkpoint_path(self.out_dir)

    @property
    def metrics_file(self) -> Path:
        return self.out_dir / METRICS_NAME

    @property
    def tokens_per_iter(self) -> int:
        c = self.config
        return c.gradient_accumulation_steps * c.batch_size * c.block_size


def log(msg: str) -> None:
    """Print a line above the progress bar, at once also when stdout is a file or a pipe (on rank 0 only)."""
    if not distributed.current_world().is_main:
        return
    tqdm.write(msg, file=sys.stdout)
    sys.stdout.flush()


# ----------------------------------------------------------------------------------------------------------------
# the training run, top to bottom


def train(config: TrainConfig) -> TrainResult:
    """Run a training job as ``config`` says; see this module's docstring for the loop.

    With ``procs`` > 1 (or under ``mpiexec -n N``) the job is data-parallel: every rank runs ``train_world`` on
    its share of each step (distributed.py); an error on any rank ends the whole job with a line naming the rank,
    rather than leaving the other ranks waiting for it."""
    procs = resolve_procs(config)
    if procs > 1:
        distributed.share_of_step(procs, config.gradient_accumulation_steps, config.batch_size)  # before starting
        log(f"processes: {procs}" + (" (procs 0: one per core)" if not config.procs else ""))
        return local_ranks.launch(procs, partial(train_world, config))
    world = distributed.init_world()
    with world.abort_on_error():
        return train_world(config, world)


def resolve_procs(config: TrainConfig) -> int:
    """How many processes ``train`` runs here: ``procs``; for 0, one per core this process may use (affinity, CPU
    quota: ``nn.threads.usable_cpus``), at most MAX_AUTO_PROCS and as many as can share the step, and 1 under
    mpiexec (its ranks are the processes) and on a GPU. Cores busy with other work count too: processes that wait
    for each other block instead of spinning, so beside busy ones they still get their share of the machine
    (benchmarks/results/data_parallel_load.md). And no more than fit in the memory free now (``procs_that_fit``)."""
    if config.procs > 1 and distributed.launched_world_size() > 1:
        raise ValueError(f"procs is {config.procs} under mpiexec: use one or the other (procs 1 with mpiexec)")
    if config.procs or distributed.launched_world_size() > 1 or config.device != "cpu":
        return config.procs or 1
    n = min(usable_cpus(), MAX_AUTO_PROCS)
    while n > 1 and not distributed.can_share(n, config.gradient_accumulation_steps, config.batch_size):
        n -= 1
    fit = procs_that_fit(config)
    if fit < n:
        log(f"procs 0: {fit} process{'es' if fit > 1 else ''}, not {n}: each holds the model's weights, gradients "
            f"and AdamW moments, and more would not fit in the memory free now")  # fmt: skip
    return min(n, fit)


def procs_that_fit(config: TrainConfig) -> int:
    """How many processes may each hold a copy of the training state (16 bytes per float32 parameter: weights,
    gradients, AdamW's two moments) and ``PROCESS_MEMORY`` within half of the memory free now; the other half is
    left for the activations (the same in all: each process computes 1/N of the batch) and everything else."""
    free = local_ranks.available_memory()
    if free is None:
        return MAX_AUTO_PROCS
    n_layer, n_embd = MODEL_SIZES.get(config.init_from, (config.n_layer, config.n_embd))
    gpt2 = config.init_from in MODEL_SIZES or config.tokenizer == "gpt2"
    vocab = 50257 if gpt2 else config.vocab_size if config.tokenizer == "bpe" else 256  # (char: at most ~256)
    block = 1024 if config.init_from in MODEL_SIZES else config.block_size
    per_process = 16 * parameter_estimate(n_layer, n_embd, vocab, block) + PROCESS_MEMORY
    return max(1, free // 2 // per_process)


def parameter_estimate(n_layer: int, n_embd: int, vocab_size: int, block_size: int) -> int:
    """A GPT's parameters, about 12 L C^2 + (V + T) C (the blocks' matrices, the token and position embeddings)."""
    return 12 * n_layer * n_embd**2 + (vocab_size + block_size) * n_embd


def train_world(config: TrainConfig, world: distributed.World) -> TrainResult:
    """``train`` on this rank of ``world``: the thread policy, then ``train_rank``."""
    distributed.share_of_step(world.size, config.gradient_accumulation_steps, config.batch_size)  # or one line
    local = isinstance(world.comm, local_ranks.LocalComm)
    # Local ranks share this machine's cores equally (measuring busy cores now would count the ranks starting).
    threads = config.rank_threads or (max(1, usable_cpus() // world.size) if local else 0)
    policy = distributed.set_rank_threads(world, threads)
    if local:
        log(f"data-parallel over {world.size} processes on this machine; rank 0 {policy}")
    elif world.distributed:
        log(f"data-parallel over {world.size} MPI ranks ({world.local_size} on this machine); rank 0 {policy}")
    else:
        log(str(policy))
    return train_rank(config, world)


def train_rank(config: TrainConfig, world: distributed.World) -> TrainResult:
    """``train`` on this rank of ``world`` (every rank runs it; a single process is a world of one)."""
    device = require_device(config.device)  # before any work: one line if CuPy or the GPU is missing
    ag.allocator.keep_freed_memory()  # a training run: keep freed memory for the next step (see allocator.py)
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)  # what a killed save left behind

    # ---- data
    data_dir, meta, splits = load_data(config, world)

    # ---- model and optimizer
    ag.manual_seed(config.seed)
    checkpoint = None
    if config.init_from == "resume":  # read by rank 0, sent to the other ranks
        wanted = {k: getattr(config, k) for k in MODEL_FIELDS} | {"vocab_size": int(meta["vocab_size"])}
        resumable = load_resumable(checkpoint_path(out_dir), wanted, meta, data_dir) if world.is_main else None
        checkpoint = world.broadcast(resumable)
    model, config = init_model(config, int(meta["vocab_size"]), checkpoint)
    world.broadcast_parameters(model.parameters())  # every rank starts from rank 0's weights
    model.to(device)  # initialised (or loaded) on the host, then moved: the same weights on every device
    optimizer = model.configure_optimizers(config.weight_decay, config.learning_rate, (config.beta1, config.beta2))
    peak = matmul_peak(world) if world.is_main else math.nan
    run = Run(config, model, optimizer, splits, meta, out_dir, peak, plot=config.plot and world.is_main, world=world)
    if config.eval_only:
        return eval_only(run, checkpoint)
    if checkpoint is not None:
        restore(run, checkpoint)
    elif run.metrics_file.exists() and world.is_main:
        run.metrics_file.unlink()  # a fresh run starts a fresh log
    note = distributed.seed_rank_stream(world, config.batch_draw, config.seed, checkpoint, run.iter_num)
    if note:
        log(note)
    run.weight_limit = weight_limit(model)
    log(
        f"{model.num_parameters() / 1e6:.2f}M parameters, vocab {model.config.vocab_size}, "
        f"{run.tokens_per_iter:,} tokens per iteration; float32 matmul peak of this machine: "
        f"{run.peak_flops / 1e9:.1f} GFLOP/s"
    )
    return train_loop(run)


def train_loop(run: Run) -> TrainResult:
    """The loop: evaluate every ``eval_interval`` iterations (and save), else one optimizer step (learning rate,
    forward and backward over the micro-batches, the gradients averaged over the ranks, clip, AdamW) and a log
    line every ``log_interval``; then ``finish``."""
    config, model, optimizer, world = run.config, run.model, run.optimizer, run.world
    if run.resumed and run.iter_num >= config.max_iters:
        log(
            f"the checkpoint is already at iteration {run.iter_num} (max_iters {config.max_iters}): nothing to "
            "train; pass a larger --max-iters to continue"
        )
    model.train()
    off = None if config.progress else True  # None: the bar only on a terminal; a log file gets plain lines
    bar = tqdm(total=config.max_iters, initial=run.iter_num, desc="training", unit="it", disable=off)
    bar.disable = bar.disable or not world.is_main
    average = distributed.GradientAverager(world, model.parameters())  # one Allreduce per step, after backward
    t_start = time.perf_counter()
    try:
        while True:
            final = run.iter_num >= config.max_iters
            resumed_here = run.resumed and run.iter_num == run.start_iter  # evaluated before it was saved
            if (run.iter_num % config.eval_interval == 0 or final) and not resumed_here:
                evaluate(run, final)
            if final:
                break
            t0 = time.perf_counter()
            lr = get_lr(run.iter_num, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            lossf = forward_backward(model, run.splits["train"], config, run.iter_num, world)
            (lossf,) = average(lossf)  # the gradients and the loss, averaged over the ranks
            optimizer_step(model, optimizer, config.grad_clip, run.iter_num)
            run.iter_num += 1
            dt = time.perf_counter() - t0
            run.train_seconds, run.window_seconds = run.train_seconds + dt, run.window_seconds + dt
            bar.update(1)
            if world.is_main and (run.iter_num % config.log_interval == 0 or run.iter_num == config.max_iters):
                log_step(run, lossf, lr, bar)
    except TrainingDiverged as e:
        bar.close()
        kept = (
            f"the last good checkpoint {run.ckpt_file} is untouched" if run.ckpt_file.exists() else "nothing was saved"
        )
        raise TrainingDiverged(f"{e}: training stopped ({kept}). Try a lower --learning-rate or --grad-clip.") from None
    bar.close()
    return finish(run, time.perf_counter() - t_start)


# ----------------------------------------------------------------------------------------------------------------
# the steps, in the order train() uses them


def load_data(config: TrainConfig, world: distributed.World) -> tuple[Path, dict[str, Any], dict[str, np.ndarray]]:
    """The run's prepared data folder (prepared first unless it is ready: by one rank per machine while the others
    wait), its meta.json, and its train and val splits."""
    if world.local_rank > 0:
        world.barrier()  # this machine's first rank prepares the data; the others then find it ready
    data_dir = gdata.ensure_data(
        config.resolved_data_dir(), config.dataset, config.data_file or None, config.tokenizer, config.block_size,
        given=bool(config.data_dir), log=log, vocab_size=config.vocab_size,
    )  # fmt: skip
    if world.local_rank == 0:
        world.barrier()
    return data_dir, gdata.load_meta(data_dir), gdata.load_splits(data_dir, config.block_size)


def init_model(config: TrainConfig, vocab_size: int, checkpoint: dict[str, Any] | None) -> tuple[GPT, TrainConfig]:
    """The model to train: the checkpoint's, GPT-2's (``init_from`` gpt2*), or a new one. Returns it with the
    config, which for GPT-2 records GPT-2's architecture (so the checkpoint describes the model it holds)."""
    if checkpoint is not None:
        model = GPT(GPTConfig(**{**checkpoint["model_args"], "dropout": config.dropout, "fused": config.fused}))
        model.load_state_dict(checkpoint["model"])
        log(f"resuming from {checkpoint['path']} at iteration {checkpoint['iter_num']}")
    elif config.init_from.startswith("gpt2"):
        model = GPT.from_pretrained(config.weights or config.init_from, dropout=config.dropout,
                                    block_size=config.block_size, fused=config.fused)  # fmt: skip
        config = dataclasses.replace(config, **{k: getattr(model.config, k) for k in MODEL_FIELDS})
        log(f"initialized from {config.weights or config.init_from}: {model.config}")
        if model.config.vocab_size != vocab_size:
            raise ValueError(
                f"{config.init_from} has a vocabulary of {model.config.vocab_size} tokens but the data was "
                f"prepared with {vocab_size}: prepare it with --tokenizer gpt2"
            )
    else:
        check_fits_in_memory(config.model_config(vocab_size))
        model = GPT(config.model_config(vocab_size))
    return model, config


def check_fits_in_memory(c: GPTConfig) -> None:
    """Refuse, before allocating it, a model whose training state alone (weights, gradients and AdamW's two
    moments: 16 bytes per float32 parameter, ~12 L C^2 + (V + T) C parameters) exceeds this machine's memory."""
    n = parameter_estimate(c.n_layer, c.n_embd, c.vocab_size, c.block_size)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # no sysconf (Windows): let the allocation decide
        return
    if 16 * n > memory:
        raise ValueError(
            f"a model of n_layer {c.n_layer}, n_embd {c.n_embd}, block_size {c.block_size} and vocabulary "
            f"{c.vocab_size} has about {n:,} parameters: training it needs over {16 * n / 2**30:,.0f} GiB, more "
            f"than this machine's {memory / 2**30:,.0f} GiB; use a smaller --n-embd, --n-layer or --block-size"
        )


def restore(run: Run, checkpoint: dict[str, Any]) -> None:
    """Continue where the checkpoint stopped: AdamW's moments, the iteration, the best val loss, the random
    stream, and the metrics log up to that iteration."""
    run.optimizer.load_state_dict(checkpoint["optimizer"])
    run.iter_num = run.start_iter = run.last_log_iter = int(checkpoint["iter_num"])
    run.best_val_loss = float(checkpoint["best_val_loss"])
    run.resumed = True
    ag.set_rng_state(checkpoint["rng_state"])
    records = keep_until(run.metrics_file, run.iter_num) if run.world.is_main else []
    evals = [r for r in records if "val_loss" in r]
    if evals:  # the estimate made when the checkpoint was saved (for the progress bar and the summary)
        run.losses = {"train": evals[-1]["train_loss"], "val": evals[-1]["val_loss"]}


def eval_only(run: Run, checkpoint: dict[str, Any] | None) -> TrainResult:
    """nanoGPT's ``--eval_only``: estimate the train and val loss of the model as loaded (``eval_iters`` batches
    each) and stop; nothing is trained or written. ``numpy2gpt eval`` scores every token of a text instead."""
    iter_num = int(checkpoint["iter_num"]) if checkpoint is not None else 0
    losses = estimate_loss(run.model, run.splits, run.config, iter_num)
    log(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
    best = float(checkpoint["best_val_loss"]) if checkpoint is not None else losses["val"]
    return TrainResult(run.model, iter_num, losses["train"], losses["val"], best, None, 0.0, 0.0)


def estimate_loss(
    model: GPT, splits: dict[str, np.ndarray], config: TrainConfig, iter_num: int,
    world: distributed.World = distributed.SINGLE,
) -> dict[str, float]:  # fmt: skip
    """Mean loss over ``eval_iters`` batches of each split, in eval mode (no dropout) and without a graph.

    The batches come from a generator seeded by (seed, iter_num), never from the training stream, so whether and
    how often a run evaluates does not change its training. MPI ranks share the batches (rank r scores batches
    r, r + N, ...) and sum their losses: the same estimate as one process, in 1/N of the time."""
    rng = np.random.default_rng([config.seed, iter_num])
    was_training = model.training
    model.eval()
    out = {}
    with ag.no_grad():
        for split, tokens in splits.items():
            losses = []
            for i in range(config.eval_iters):
                x, y = gdata.get_batch(tokens, config.batch_size, config.block_size, rng=rng)  # every rank draws all
                if i % world.size == world.rank:
                    _, loss = model(x, y)
                    losses.append(float(loss.item()))
            total, count = world.sum([math.fsum(losses), len(losses)])
            out[split] = float(total / count)
    model.train(was_training)
    return out


def matmul_peak(world: distributed.World, seconds: float = 0.3) -> float:
    """The job's float32 matmul FLOP/s, the yardstick of the log's "% of matmul peak": this process's BLAS (with
    its threads) times the ranks, each of which has as many."""
    return measure_matmul_peak(seconds=seconds) * world.size


def evaluate(run: Run, final: bool) -> None:
    """Estimate the losses, log them, and save a checkpoint if val improved (always at the end)."""
    if run.iter_num > run.start_iter and run.world.is_main:
        run.peak_flops = max(run.peak_flops, matmul_peak(run.world, seconds=0.1))
    losses = estimate_loss(run.model, run.splits, run.config, run.iter_num, run.world)
    run.streams = distributed.stream_states(run.world, run.config.batch_draw)  # collective: on every rank
    log(f"step {run.iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
    if not (math.isfinite(losses["train"]) and math.isfinite(losses["val"])):
        raise TrainingDiverged(f"the loss estimate is {losses} at iteration {run.iter_num}")
    if run.world.is_main:
        write_metrics(
            run.metrics_file, {"iter": run.iter_num, "train_loss": losses["train"], "val_loss": losses["val"]}
        )
    improved = losses["val"] < run.best_val_loss
    run.losses, run.best_val_loss = losses, min(run.best_val_loss, losses["val"])
    wanted = improved or run.config.always_save_checkpoint
    if (run.iter_num > 0 or final) and (wanted or (final and not run.ckpt_file.exists())):
        save_run(run)
        log(f"saved checkpoint to {run.ckpt_file}")
    elif final:
        log(
            f"not saving the final model: its val loss {losses['val']:.4f} is above the best, "
            f"{run.best_val_loss:.4f}, which {run.ckpt_file} keeps (--always-save-checkpoint saves the last)"
        )
    if run.plot and plot_losses(run.metrics_file, run.out_dir / PLOT_NAME) is None:
        log("no loss curve: matplotlib is not installed (pip install 'numpy2gpt-gpt[plot]'; --no-plot hides this)")
        run.plot = False  # said once


def weight_limit(model: GPT) -> float:
    """The largest |weight| a checkpoint may hold: ``EXPLODED`` times the largest at the start of the run (at
    least 1: LayerNorm's gains start at 1). AdamW moves a weight by about the learning rate per step, so a healthy
    run stays far below it; a run whose learning rate is far too high passes it long before the loss says so."""
    return EXPLODED * max(1.0, max(float(np.abs(p.data).max()) for p in model.parameters()))


def save_run(run: Run) -> None:
    """Write the checkpoint (see checkpoint.py for what it holds); never weights that are not finite or that
    exploded (beyond ``run.weight_limit``)."""
    for name, p in run.model.named_parameters():
        largest = float(np.abs(p.data).max())
        if not math.isfinite(largest):
            raise TrainingDiverged(f"parameter {name} is not finite at iteration {run.iter_num}; not saving it")
        if largest > run.weight_limit:
            raise TrainingDiverged(
                f"parameter {name} reached |w| = {largest:.3g} at iteration {run.iter_num}, beyond "
                f"{run.weight_limit:.3g} ({EXPLODED:g} x the largest weight at the start of the run): the weights "
                "exploded; not saving them"
            )
    if not run.world.is_main:
        return  # rank 0 writes (every rank holds the same weights)
    save_checkpoint(
        run.ckpt_file,
        {
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "model_args": dataclasses.asdict(run.model.config),
            "config": saved_config(run.config),
            "iter_num": run.iter_num,
            "best_val_loss": run.best_val_loss,
            "rng_state": ag.get_rng_state(),
            "tokenizer": run.meta,
            **run.streams,  # world_size, batch_draw, each rank's random stream (rank_rng_states)
        },
    )


def saved_config(config: TrainConfig) -> dict[str, Any]:
    """The config as the checkpoint stores it: its folders absolute, so that a resumed copy of the run folder can
    tell which paths lay inside it (see ``cli.resume_settings``)."""
    saved = dataclasses.asdict(config)
    for key in ("out_dir", "data_dir", "data_file"):
        if saved[key]:
            saved[key] = str(Path(saved[key]).expanduser().resolve())
    return saved


def get_lr(it: int, config: TrainConfig) -> float:
    """nanoGPT's schedule: linear warmup, cosine decay to min_lr at lr_decay_iters, then min_lr."""
    if not config.decay_lr:
        return config.learning_rate
    return cosine_warmup_lr(it, config.learning_rate, config.min_lr, config.warmup_iters, config.decay_iters)


def forward_backward(
    model: GPT, tokens: np.ndarray, config: TrainConfig, iter_num: int, world: distributed.World = distributed.SINGLE
) -> float:
    """Accumulate the gradient of the mean loss over ``gradient_accumulation_steps`` micro-batches (each loss
    divided by their number, then backward) and return that mean loss. With N ranks each runs its share: steps / N
    micro-batches, or 1/N of each one's rows (distributed.rank_batches); the average of the ranks' gradients is
    then the whole's."""
    steps, _ = distributed.share_of_step(world.size, config.gradient_accumulation_steps, config.batch_size)
    lossf = 0.0

    def draw(rows: int) -> tuple[np.ndarray, np.ndarray]:
        return gdata.get_batch(tokens, rows, config.block_size)

    batches = distributed.rank_batches(
        world, draw, config.gradient_accumulation_steps, config.batch_size, config.batch_draw
    )
    for x, y in batches:
        _, loss = model(x, y)
        micro = float(loss.item())
        if not math.isfinite(micro):
            raise TrainingDiverged(f"the loss is {micro} at iteration {iter_num}")
        (loss / steps).backward()
        lossf += micro / steps
    return lossf


def optimizer_step(model: GPT, optimizer: optim.AdamW, grad_clip: float, iter_num: int) -> None:
    """Clip the gradient norm to ``grad_clip`` (0: no clipping), take the AdamW step, zero the gradients."""
    if grad_clip > 0.0:
        norm = clip_grad_norm_(model.parameters(), grad_clip)
        if not math.isfinite(norm):
            raise TrainingDiverged(f"the gradient norm is {norm} at iteration {iter_num}")
    optimizer.step()
    optimizer.zero_grad()


def log_step(run: Run, lossf: float, lr: float, bar: Any) -> None:
    """The log line of a training step (timings averaged since the previous one), the bar, the metrics file."""
    dt = run.window_seconds / (run.iter_num - run.last_log_iter)  # seconds per step since the last log line
    run.window_seconds, run.last_log_iter = 0.0, run.iter_num
    tok_s = run.tokens_per_iter / dt
    flops = run.model.estimate_flops_per_token() * run.tokens_per_iter / dt  # PaLM's 6N + 12LHQT, nanoGPT's MFU
    log(
        f"iter {run.iter_num}: loss {lossf:.4f}, lr {lr:.2e}, {dt * 1000:.1f} ms/iter, {tok_s:,.0f} tok/s, "
        f"{flops / 1e9:.1f} GFLOP/s ({100 * flops / run.peak_flops:.0f}% of matmul peak)"
    )
    bar.set_postfix(loss=f"{lossf:.4f}", val=f"{run.losses['val']:.4f}", tok_s=f"{tok_s:,.0f}")
    write_metrics(run.metrics_file, {"iter": run.iter_num, "loss": lossf, "lr": lr, "ms": dt * 1000})


def finish(run: Run, seconds: float) -> TrainResult:
    """The closing summary, the sample at the end, and the result."""
    if run.plot and (run.out_dir / PLOT_NAME).exists():
        log(f"loss curve: {run.out_dir / PLOT_NAME}")
    steps = run.iter_num - run.start_iter
    tokens_per_sec = steps * run.tokens_per_iter / run.train_seconds if steps else 0.0
    log(
        f"{steps} iterations in {seconds:.1f} s ({run.train_seconds:.1f} s of training steps, "
        f"{tokens_per_sec:,.0f} tokens/s); val loss {run.losses['val']:.4f} (best {run.best_val_loss:.4f})"
    )
    sample_text = None
    if run.config.sample_at_end and run.config.num_sample_tokens > 0 and run.world.is_main:
        from numpy2gpt.gpt.sample import sample_from_model

        log("sample:")
        sample_text = sample_from_model(run.model, run.meta, prompt=None, max_new_tokens=run.config.num_sample_tokens,
                                        seed=run.config.seed, stream=sys.stdout)  # fmt: skip
    return TrainResult(
        model=run.model,
        iter_num=run.iter_num,
        train_loss=run.losses["train"],
        val_loss=run.losses["val"],
        best_val_loss=run.best_val_loss,
        checkpoint=run.ckpt_file if run.ckpt_file.exists() else None,
        seconds=seconds,
        tokens_per_sec=tokens_per_sec,
        sample=sample_text,
    )


__all__ = ["CheckpointError", "Run", "TrainConfig", "TrainResult", "TrainingDiverged", "estimate_loss", "train"]
