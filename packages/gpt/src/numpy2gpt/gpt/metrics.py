"""The run's log on disk: ``metrics.jsonl`` (one JSON object per line) and the loss curve ``loss.png``.

Two kinds of record, appended as the run goes:

    {"iter": 10, "loss": 2.31, "lr": 0.001, "ms": 35.2}        a training step's log line
    {"iter": 250, "train_loss": 1.9, "val_loss": 2.0}           an evaluation

A resumed run keeps the records up to its checkpoint's iteration and appends after them. ``measure_matmul_peak``
is the yardstick of the log's "% of matmul peak".
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from numpy2gpt.nn.serialization import atomic_write

METRICS_NAME = "metrics.jsonl"
PLOT_NAME = "loss.png"

__all__ = ["METRICS_NAME", "PLOT_NAME", "keep_until", "measure_matmul_peak", "plot_losses", "read_metrics",
           "write_metrics"]  # fmt: skip


def write_metrics(path: Path, record: dict[str, Any]) -> None:
    """Append ``record`` to the metrics file as one JSON line."""
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics file, oldest first ([] if there is none yet).

    A line that is not a whole record is skipped: an append cut short (a full disk, a killed process) leaves a
    torn last line, and a log must never stop a run from resuming."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("iter"), int):
            records.append(record)
    return records


def keep_until(path: Path, iter_num: int) -> list[dict[str, Any]]:
    """Drop the records after ``iter_num`` (what a longer, later-abandoned run wrote after the checkpoint a run
    resumes from) and return the ones kept."""
    kept = [r for r in read_metrics(path) if r["iter"] <= iter_num]
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))
    return kept


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
    with atomic_write(png) as f:
        fig.savefig(f, format="png")
    return png


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
