"""Where a numpy2gpt training step spends its time: cProfile of a few steps, grouped by Function class.

    python benchmarks/profile_step.py --only cpu --steps 10      # top functions by own time
    python benchmarks/profile_step.py --only baby --steps 3 --by-op

``--by-op`` times each Function's forward and backward separately (wall clock, by wrapping them), which is the view
that says which fused op to work on next; the default view is cProfile's, which also shows the Python overhead of
the graph bookkeeping (Function.__call__, the backward engine, Tensor construction).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import io
import pstats
import time

import _common
import train_step


def by_op(w: dict, steps: int) -> str:
    """Wall time per Function class, forward and backward, by wrapping every Function subclass's methods; and of
    the optimizer step and the gradient clipping, by wrapping them before the step is built."""
    import numpy2gpt.nn.utils
    from numpy2gpt.autograd import Function
    from numpy2gpt.nn.optim import Optimizer

    totals: dict[tuple[str, str], float] = collections.defaultdict(float)
    counts: dict[tuple[str, str], int] = collections.defaultdict(int)
    wrapped = []

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in set(subclasses(Function)):
        for meth in ("forward", "backward"):
            if meth not in cls.__dict__:
                continue
            orig = cls.__dict__[meth]

            def wrapper(self, *args, _orig=orig, _key=(cls.__name__, meth)):
                t0 = time.perf_counter()
                try:
                    return _orig(self, *args)
                finally:
                    totals[_key] += time.perf_counter() - t0
                    counts[_key] += 1

            setattr(cls, meth, wrapper)
            wrapped.append((cls, meth, orig))
    for owner, name, label in ((Optimizer, "step", "Optimizer.step"),
                               (numpy2gpt.nn.utils, "clip_grad_norm_", "clip_grad_norm_")):  # fmt: skip
        orig = owner.__dict__[name]

        def timed(*args, _orig=orig, _key=(label, ""), **kwargs):
            t0 = time.perf_counter()
            try:
                return _orig(*args, **kwargs)
            finally:
                totals[_key] += time.perf_counter() - t0
                counts[_key] += 1

        setattr(owner, name, timed)
        wrapped.append((owner, name, orig))
    try:
        step = train_step.numpy_step_fn(w)  # built after the wrapping: it imports clip_grad_norm_ by name
        step()
        totals.clear()
        counts.clear()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        wall = (time.perf_counter() - t0) / steps
    finally:
        for cls, meth, orig in wrapped:
            setattr(cls, meth, orig)
    lines = [f"step: {wall * 1e3:.1f} ms (with the timing wrappers)", "", "| op | ms/step | calls/step | share |",
             "|---|---|---|---|"]  # fmt: skip
    accounted = 0.0
    for key, t in sorted(totals.items(), key=lambda kv: -kv[1]):
        accounted += t / steps
        lines.append(f"| {'.'.join(k for k in key if k)} | {t / steps * 1e3:.2f} | {counts[key] / steps:.0f} | "
                     f"{100 * t / steps / wall:.1f}% |")  # fmt: skip
    lines.append(f"| (everything else: graph bookkeeping) | {(wall - accounted) * 1e3:.2f} | | "
                 f"{100 * (wall - accounted) / wall:.1f}% |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="cpu", choices=sorted(train_step.WORKLOADS))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--by-op", action="store_true")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--out", help="with --by-op: also append the table to this Markdown file")
    args = parser.parse_args()
    w = train_step.WORKLOADS[args.only]
    if args.by_op:
        table = by_op(w, args.steps)
        print(table)
        if args.out:
            title = train_step.WORKLOADS[args.only]["title"]
            with open(args.out, "a") as f:
                f.write(f"\n## {title}: where the time goes ({_common.THREADS} threads, {args.steps} steps)\n\n")
                f.write(table + "\n")
        return
    step = train_step.numpy_step_fn(w)
    step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(args.steps):
        step()
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(args.top)
    print(f"threads: {_common.THREADS}")
    print(out.getvalue())


if __name__ == "__main__":
    main()
