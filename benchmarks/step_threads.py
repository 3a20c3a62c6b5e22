"""Time numpy2gpt's training step with step threads (``--step-threads 2``) against the plain step and PyTorch eager,
alternating in one run.

    python benchmarks/step_threads.py              # both workloads -> benchmarks/results/step_threads.md
    python benchmarks/step_threads.py --quick      # a smoke run (few steps, not saved)
    python benchmarks/step_threads.py --only baby

Three steps on the same weights and batches (train_step.py's workloads and step: forward, loss, backward,
clip_grad_norm_(1.0), AdamW):

* ``numpy2gpt``: one thread, 2 BLAS threads (as train_step.py);
* ``numpy2gpt, 2 step threads``: the batch split in two halves, forward+backward of each in its own Python thread
  (``train.threaded_forward_backward``), 1 BLAS thread each, the halves' gradients summed;
* ``PyTorch``: eager, ``torch.set_num_threads(2)``.

Step threads keep both cores busy during the elementwise passes, where one thread leaves the second core to
OpenBLAS's spinning worker (benchmarks/data_parallel.py measures the same idea with two MPI processes).
"""

from __future__ import annotations

import argparse

import _common
import numpy as np
from train_step import WORKLOADS, batches, numpy_model, numpy_step_fn, torch_step_fn

THREADS = 2


def threaded_step_fn(w: dict, weights: dict[str, np.ndarray]):
    """One call = one numpy2gpt step with the micro-batch split over THREADS threads, 1 BLAS thread each."""
    from threadpoolctl import ThreadpoolController

    from numpy2gpt.gpt.train import threaded_forward_backward
    from numpy2gpt.nn import optim
    from numpy2gpt.nn.utils import clip_grad_norm_

    model = numpy_model(w, weights).train()
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]  # fmt: skip
    opt = optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99), eps=1e-8)  # as train_step.numpy_step_fn
    blas = ThreadpoolController().select(user_api="blas")
    data = batches(w)
    state = {"it": 0}

    def step():
        x, y = data[state["it"] % len(data)]
        state["it"] += 1
        opt.zero_grad()
        with blas.limit(limits=1):
            loss = threaded_forward_backward(model, x, y, THREADS, 1)
        clip_grad_norm_(params, 1.0)
        opt.step()
        return loss

    return step


def run(names: list[str], quick: bool) -> str:
    print(f"Machine: {_common.machine_line()}", flush=True)
    header = ["workload", "numpy2gpt ms", f"numpy2gpt, {THREADS} step threads ms", "PyTorch ms",
              "numpy2gpt / PyTorch", "step threads / PyTorch", "speed-up of step threads"]  # fmt: skip
    rows = []
    for name in names:
        w = WORKLOADS[name]
        tstep, tmodel = torch_step_fn(w)
        weights = {k: v.detach().numpy().copy() for k, v in tmodel.state_dict().items()}
        fns = {"numpy2gpt": numpy_step_fn(w, weights), "threads": threaded_step_fn(w, weights), "torch": tstep}
        first = {k: float(fn()) for k, fn in fns.items()}
        print(f"{name}: first losses {first}")
        if max(abs(v - first["torch"]) for v in first.values()) > 1e-3 * abs(first["torch"]):
            raise RuntimeError(f"{name}: the steps disagree ({first}); timings would be meaningless")
        times = _common.alternate(fns, rounds=3 if quick else w["rounds"], warmup=1 if quick else 2, inner=w["inner"])
        tn, tp, tt = (_common.median(times[k]) for k in ("numpy2gpt", "threads", "torch"))
        print(f"{name}: numpy2gpt {tn * 1e3:.1f} ms, step threads {tp * 1e3:.1f} ms, PyTorch {tt * 1e3:.1f} ms")
        rows.append([w["title"], f"{tn * 1e3:.1f}", f"{tp * 1e3:.1f}", f"{tt * 1e3:.1f}", f"{tn / tt:.2f}x",
                     f"{tp / tt:.2f}x", f"{tn / tp:.2f}x"])  # fmt: skip
        del fns, tstep, tmodel
    parts = [
        "# Step threads: the micro-batch split over threads, against the plain step and PyTorch",
        "",
        f"Machine: {_common.machine_line()}",
        "",
        "Medians of alternating turns in one process (ratios are the numbers to trust on a busy machine).",
        "",
        _common.markdown_table(header, rows),
        "",
        "Made by `python benchmarks/step_threads.py`.",
    ]
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=["cpu", "baby"], help="run only these workloads")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few steps, nothing saved")
    parser.add_argument("--out", default=str(_common.RESULTS / "step_threads.md"))
    args = parser.parse_args()
    report = run(args.only or ["cpu", "baby"], quick=args.quick)
    print(report)
    if not args.quick:
        _common.save_report(report, args.out)


if __name__ == "__main__":
    main()
