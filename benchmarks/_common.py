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


def as_entry_point() -> None:
    """What the ``numpy2gpt`` CLI and ``train()`` do at start-up, so that numpy2gpt is timed as it runs there:
    keep freed memory in the process (``allocator.keep_freed_memory``: no page faults on every step's arrays).
    Importing numpy2gpt does not do it. In the alternating runs PyTorch shares the process and so the setting;
    the memory subprocesses give each framework alone."""
    from numpy2gpt.autograd import allocator

    allocator.keep_freed_memory()


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


def cpu_info() -> dict[str, str]:
    """The CPU from /proc/cpuinfo: model, vendor and the widest SIMD level its flags announce."""
    info = {"model": platform.processor() or platform.machine(), "vendor": "?", "simd": "?"}
    try:
        with open("/proc/cpuinfo") as f:
            fields = dict(line.split(":", 1) for line in f.read().split("\n\n")[0].splitlines() if ":" in line)
    except OSError:
        return info
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = set(fields.get("flags", "").split())
    info["model"] = fields.get("model name", info["model"])
    info["vendor"] = fields.get("vendor_id", "?")
    if {"avx512f", "avx512bw", "avx512vl"} <= flags:
        info["simd"] = "AVX-512" + (" (+BF16)" if "avx512_bf16" in flags else "")
    elif {"avx2", "fma"} <= flags:
        info["simd"] = "AVX2+FMA"
    elif "avx" in flags:
        info["simd"] = "AVX"
    elif "sse4_2" in flags:
        info["simd"] = "SSE4.2"
    return info


def blas_info() -> str:
    """NumPy's BLAS as threadpoolctl sees it: library, version, kernel (architecture), threading layer, threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "BLAS unknown (threadpoolctl not installed)"
    libs = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    if not libs:
        return "no BLAS library loaded"
    return "; ".join(
        f"{lib['internal_api']} {lib.get('version') or ''} (kernel {lib.get('architecture') or '?'}, "
        f"{lib.get('threading_layer') or '?'}, {lib['num_threads']} threads)".replace("  ", " ")
        for lib in libs
    )


def machine_line() -> str:
    """One line naming the machine: CPU model, vendor, SIMD level, cores, BLAS kernel and threads, versions, load."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    torch = import_torch()
    cpu = cpu_info()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{cpu['model']} ({cpu['vendor']}, {cpu['simd']}), {os.cpu_count()} cores ({usable} usable), "
        f"{THREADS} threads each; NumPy {np.__version__} with {blas_info()}; torch {torch.__version__} "
        f"(CPU capability {torch.backends.cpu.get_cpu_capability()}); Python {platform.python_version()}; "
        f"load average {load:.2f} at the start"
    )


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def save_report(report: str, out: str | Path) -> None:
    """Write a finished Markdown table to ``out`` (folders made as needed) and say where."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(f"saved {out}")
