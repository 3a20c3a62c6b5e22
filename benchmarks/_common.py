"""Shared plumbing of the benchmarks: thread settings, the reference import, timing, the matmul peak, Markdown tables.

Import this module before NumPy or torch anywhere in a benchmark: it pins both to the same number of threads
(OpenBLAS reads OPENBLAS_NUM_THREADS once, when NumPy is first imported).
"""

from __future__ import annotations

import os

THREADS = int(os.environ.get("NUMPY2GPT_BENCH_THREADS", "2"))
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import importlib.util  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def load_reference():
    """benchmarks/torch_reference.py as a module (benchmarks/ is not a package)."""
    name = "numpy2gpt_torch_reference"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "torch_reference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def import_torch():
    import torch

    torch.set_num_threads(THREADS)
    return torch


def alternate(
    fns: dict[str, Callable[[], object]], rounds: int, warmup: int = 2, inner: int = 1
) -> dict[str, list[float]]:
    """Alternate between the functions for ``rounds`` rounds; the seconds of each timed call, per function.

    Alternating (a, b, a, b, ...) rather than (a, a, ..., b, b, ...) spreads a noisy machine's slow spells over
    both sides, so the ratio of the medians is trustworthy even when the absolute times are not. With
    ``inner > 1`` each turn is ``inner`` consecutive calls of which the first is not timed: a training loop runs
    step after step, and the first step after the other framework's turn pays for waking its worker threads (and
    for the other framework's idle workers, which busy-wait for a while after their last task), which neither
    framework pays in a real loop. ``warmup`` untimed calls of each come first.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(rounds):
        order = list(fns.items()) if r % 2 == 0 else list(fns.items())[::-1]
        for k, fn in order:
            for i in range(inner):
                t0 = time.perf_counter()
                fn()
                if inner == 1 or i > 0:
                    times[k].append(time.perf_counter() - t0)
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def matmul_peak(n: int = 1024, repeats: int = 7) -> dict[str, float]:
    """Best float32 GEMM rate (GFLOP/s) of NumPy's BLAS and of torch on n x n matrices: the machine's practical peak."""
    torch = import_torch()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    out = {}
    for name, fn in (("numpy", lambda: a @ b), ("torch", lambda: ta @ tb)):
        fn()
        best = min(_time(fn) for _ in range(repeats))
        out[name] = 2 * n**3 / best / 1e9
    return out


def _time(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def machine_line() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    torch = import_torch()
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {THREADS} threads each; "
        f"NumPy {np.__version__}, torch {torch.__version__}, Python {platform.python_version()}; "
        f"load average {load:.2f} at the start"
    )


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
