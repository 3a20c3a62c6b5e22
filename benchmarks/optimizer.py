"""The optimizer step and gradient clipping of a GPT, alone: numpy2gpt's AdamW over flat buffers against its
per-parameter loop, and PyTorch's AdamW (the default single-tensor loop, foreach, fused), in one run.

    python benchmarks/optimizer.py              # CPU config and baby GPT -> benchmarks/results/optimizer.md
    python benchmarks/optimizer.py --quick      # a smoke run, not saved

The parameters are the GPT's (nanoGPT's two decay groups), the gradients fixed random arrays; every contender
steps its own copy. Before timing, the flat and per-parameter paths are checked to give the same bits, and
PyTorch's single-tensor AdamW the same values to float32 rounding. Medians over alternating turns.
"""

from __future__ import annotations

import argparse

import _common
import numpy as np
import train_step


def numpy_contender(w: dict, flat: bool, seed: int = 0):
    """One call = one AdamW step of numpy2gpt over the GPT's parameters (fixed gradients)."""
    from numpy2gpt.autograd import Tensor
    from numpy2gpt.nn import optim

    params = list(train_step.numpy_model(w).parameters())
    rng = np.random.default_rng(seed)
    for p in params:
        p.data = rng.standard_normal(p.shape, dtype=np.float32) * np.float32(0.02)
        p.grad = Tensor(rng.standard_normal(p.shape, dtype=np.float32) * np.float32(0.01))
    opt = optim.AdamW(
        [{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
         {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
        lr=1e-3, betas=(0.9, 0.99), eps=1e-8,
    )  # fmt: skip
    if not flat:
        opt.elementwise = False  # the per-parameter loop (what every step ran before the flat buffers)
    return opt.step, params


def torch_contender(params_np: list[np.ndarray], grads_np: list[np.ndarray], **kwargs):
    torch = _common.import_torch()
    params = [torch.from_numpy(p.copy()).requires_grad_(True) for p in params_np]
    for p, g in zip(params, grads_np, strict=True):
        p.grad = torch.from_numpy(g.copy())
    opt = torch.optim.AdamW(
        [{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
         {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
        lr=1e-3, betas=(0.9, 0.99), eps=1e-8, **kwargs,
    )  # fmt: skip
    return opt.step, params


def clip_contenders(w: dict):
    """numpy2gpt's and PyTorch's clip_grad_norm_ over the same gradients (max_norm huge: norms only, no scaling,
    so repeated calls measure the same work; the scaling pass costs about one more norm pass)."""
    torch = _common.import_torch()
    from numpy2gpt.nn.utils import clip_grad_norm_

    _, params = numpy_contender(w, flat=True)
    tparams = [torch.from_numpy(p.data.copy()).requires_grad_(True) for p in params]
    for p, t in zip(params, tparams, strict=True):
        t.grad = torch.from_numpy(p.grad.data.copy())
    return (lambda: clip_grad_norm_(params, 1e30)), (lambda: torch.nn.utils.clip_grad_norm_(tparams, 1e30))


def run(names: list[str], quick: bool) -> str:
    print(f"Machine: {_common.machine_line()}", flush=True)
    header = ["workload", "parameters", "flat chunks ms", "per-parameter ms", "flat / per-parameter",
              "PyTorch ms (single-tensor / foreach / fused)", "flat / PyTorch fused",
              "clip_grad_norm_ ms (PyTorch)"]  # fmt: skip
    rows = []
    for name in names:
        w = train_step.WORKLOADS[name]
        flat_step, flat_params = numpy_contender(w, flat=True)
        loop_step, loop_params = numpy_contender(w, flat=False)
        start = [p.data.copy() for p in flat_params]
        grads = [p.grad.data for p in flat_params]
        variants = {"single": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
        torch_steps = {k: torch_contender(start, grads, **kw) for k, kw in variants.items()}
        for _ in range(3):  # the same bits, and PyTorch's values
            flat_step(), loop_step(), torch_steps["single"][0]()
        for p, q, t in zip(flat_params, loop_params, torch_steps["single"][1], strict=True):
            if not np.array_equal(p.data, q.data):
                raise RuntimeError(f"{name}: flat and per-parameter AdamW differ: timings would be meaningless")
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-5, atol=1e-7)
        fns = {"flat": flat_step, "loop": loop_step, **{k: v[0] for k, v in torch_steps.items()}}
        times = _common.alternate(fns, rounds=3 if quick else 12, inner=3)
        med = {k: _common.median(v) * 1e3 for k, v in times.items()}
        ours_clip, torch_clip = clip_contenders(w)
        ct = _common.alternate({"n": ours_clip, "t": torch_clip}, rounds=3 if quick else 12, inner=3)
        n_params = sum(p.size for p in start)
        rows.append([
            w["title"].split(":")[0], f"{n_params / 1e6:.2f} M", f"{med['flat']:.2f}", f"{med['loop']:.2f}",
            f"**{med['flat'] / med['loop']:.2f}x**", f"{med['single']:.2f} / {med['foreach']:.2f} / {med['fused']:.2f}",
            f"{med['flat'] / med['fused']:.2f}x",
            f"{_common.median(ct['n']) * 1e3:.2f} ({_common.median(ct['t']) * 1e3:.2f})",
        ])  # fmt: skip
        print(" | ".join(rows[-1]), flush=True)
    parts = [
        "# The optimizer step alone: AdamW over a GPT's parameters",
        "",
        f"Machine: {_common.machine_line()}.",
        "",
        "Medians over alternating turns of 3 consecutive steps, the first untimed. 'flat chunks' is numpy2gpt's "
        "AdamW over flat buffers (optim/flat.py), 'per-parameter' the same rule run once per parameter (as before; "
        "bit-identical results, checked); PyTorch's AdamW in its three CPU implementations. clip_grad_norm_ here "
        "computes the norms only (max_norm 1e30).",
        "",
        _common.markdown_table(header, rows),
        "",
        "Made by `python benchmarks/optimizer.py`.",
    ]
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=["cpu", "baby"], help="run only these workloads")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few rounds, nothing saved")
    parser.add_argument("--out", default=str(_common.RESULTS / "optimizer.md"))
    args = parser.parse_args()
    report = run(args.only or ["cpu", "baby"], args.quick)
    print(report)
    if not args.quick:
        _common.save_report(report, args.out)


if __name__ == "__main__":
    main()
