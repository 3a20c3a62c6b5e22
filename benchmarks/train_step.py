"""Time a full GPT training step of numpy2gpt against PyTorch eager on the same machine, in the same run.

    python benchmarks/train_step.py              # the full table -> benchmarks/results/train_step.md
    python benchmarks/train_step.py --quick      # a smoke run (few steps, not saved)
    python benchmarks/train_step.py --only cpu   # one workload: cpu, baby, gpt2-fwd

Workloads (float32 throughout, 2 threads for both: torch.set_num_threads(2), OPENBLAS_NUM_THREADS=2):

* ``cpu``: nanoGPT's CPU configuration of shakespeare_char (vocab 65, 4 layers, 4 heads, n_embd 128, block 64,
  batch 12, dropout 0): forward, loss, backward, clip_grad_norm_(1.0), AdamW step (nanoGPT's decay groups).
* ``baby``: nanoGPT's "baby GPT" (vocab 65, 6 layers, 6 heads, n_embd 384, block 256) at batch 8, dropout 0,
  the same step.
* ``gpt2-fwd``: no-grad forward of a GPT-2-124M-shaped model (vocab 50257, 12 layers, 12 heads, 768 wide) on 256
  tokens, random weights.

Both models hold the same weights (the reference's, copied by name), so the first losses are checked to agree.
The frameworks take turns of a few consecutive steps and the medians are reported: on a noisy machine the ratio
is the number to trust. Peak memory is each framework's own subprocess (nothing of the other imported): its peak
resident size (VmHWM, what ru_maxrss reports for a process started from a shell) after a few steps, and the same
minus the process's resident size before the model was built (the libraries' share).
The page faults per step come from the same subprocess (ru_minflt).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import _common
import numpy as np

WORKLOADS = {
    "cpu": dict(
        cfg=dict(block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=True),
        batch=12,
        rounds=12,
        inner=5,
        train=True,
        title="nanoGPT CPU config: train step (4L 4H 128d, B12 T64, V65)",
    ),
    "baby": dict(
        cfg=dict(block_size=256, vocab_size=65, n_layer=6, n_head=6, n_embd=384, dropout=0.0, bias=True),
        batch=8,
        rounds=8,
        inner=3,
        train=True,
        title="baby GPT: train step (6L 6H 384d, B8 T256, V65)",
    ),
    "gpt2-fwd": dict(
        cfg=dict(block_size=1024, vocab_size=50257, n_layer=12, n_head=12, n_embd=768, dropout=0.0, bias=True),
        batch=1,
        seq=256,
        rounds=6,
        inner=3,
        train=False,
        title="GPT-2 124M shape: no-grad forward (12L 12H 768d, B1 T256, V50257)",
    ),
}


def _seq(w: dict) -> int:
    return w.get("seq", w["cfg"]["block_size"])


def batches(w: dict, n: int = 4, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    shape = (w["batch"], _seq(w))
    v = w["cfg"]["vocab_size"]
    return [(rng.integers(0, v, size=shape), rng.integers(0, v, size=shape)) for _ in range(n)]


def matmul_flops(w: dict) -> float:
    """Matmul FLOPs of one step (nanoGPT's MFU convention: attention counted over the full T x T, no causal saving).

    Per token, forward: 24 C^2 per layer (qkv 6C^2, proj 2C^2, MLP 16C^2) + 4 T C per layer (q k^T and att v)
    + 2 C V (lm_head). A training step is 3 forwards' worth (backward computes two products per forward one).
    """
    c = w["cfg"]
    per_token = c["n_layer"] * (24 * c["n_embd"] ** 2 + 4 * _seq(w) * c["n_embd"]) + 2 * c["n_embd"] * c["vocab_size"]
    return per_token * w["batch"] * _seq(w) * (3 if w["train"] else 1)


# -- numpy2gpt -------------------------------------------------------------------------------------------


def numpy_model(w: dict, weights: dict[str, np.ndarray] | None = None):
    from numpy2gpt.gpt.model import GPT, GPTConfig

    _common.as_entry_point()

    model = GPT(GPTConfig(**w["cfg"]))
    if weights is not None:
        for name, p in model.named_parameters():
            p.data = np.ascontiguousarray(weights[name], dtype=np.float32)
    return model


def numpy_step_fn(w: dict, weights: dict[str, np.ndarray] | None = None):
    """One call = one step of numpy2gpt; returns the loss (or the logits' checksum for a forward)."""
    from numpy2gpt.autograd import no_grad
    from numpy2gpt.nn import optim
    from numpy2gpt.nn.utils import clip_grad_norm_

    model = numpy_model(w, weights)
    data = batches(w)
    state = {"it": 0}
    if not w["train"]:
        model.eval()
        x = data[0][0]

        def forward():
            with no_grad():
                logits, _ = model(x)
            return logits.data

        return forward

    model.train()
    params = list(model.parameters())
    opt = optim.AdamW(
        [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=1e-3,
        betas=(0.9, 0.99),
        eps=1e-8,
    )

    def step():
        x, y = data[state["it"] % len(data)]
        state["it"] += 1
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    return step


# -- PyTorch ---------------------------------------------------------------------------------------------


def torch_step_fn(w: dict, seed: int = 0):
    """One call = one step of the PyTorch reference; also returns the model (for its weights)."""
    torch = _common.import_torch()
    ref = _common.load_reference()
    torch.manual_seed(seed)
    model = ref.GPT(ref.GPTConfig(**w["cfg"]))
    data = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches(w)]
    state = {"it": 0}
    if not w["train"]:
        model.eval()
        x = data[0][0]

        def forward():
            with torch.no_grad():
                logits, _ = model(x)
            return logits.numpy()

        return forward, model

    model.train()
    opt = ref.configure_optimizer(model, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.99))

    def step():
        x, y = data[state["it"] % len(data)]
        state["it"] += 1
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    return step, model


# -- memory, in a subprocess per framework ----------------------------------------------------------------


def _status_kb(field: str) -> int:
    """A memory field of /proc/self/status in KiB (VmRSS: resident now; VmHWM: the peak resident size)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def child(framework: str, workload: str, steps: int) -> None:
    """Run in a fresh process: build one framework's model, run ``steps`` steps, print peak RSS and faults."""
    w = WORKLOADS[workload]
    if framework == "torch":
        _common.import_torch()
        _common.load_reference()
    else:
        import numpy2gpt.gpt.model
        import numpy2gpt.nn.optim  # noqa: F401
    baseline = _status_kb("VmRSS")
    fn = torch_step_fn(w)[0] if framework == "torch" else numpy_step_fn(w)
    fn()
    fn()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    elapsed = time.perf_counter() - t0
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / steps
    # The peak resident size of this process: VmHWM, the high-water mark that ru_maxrss reports for a process
    # started from a shell. ru_maxrss itself cannot be used here: Linux carries the parent's peak over fork and
    # exec into the child's ru_maxrss, and the parent holds both models.
    peak = _status_kb("VmHWM")
    result = {"peak_kb": peak, "baseline_kb": baseline, "faults_per_step": faults, "s_per_step": elapsed / steps}
    print(json.dumps(result))


def measure_memory(framework: str, workload: str, steps: int) -> dict:
    env = dict(__import__("os").environ)
    env.update(OPENBLAS_NUM_THREADS=str(_common.THREADS), OMP_NUM_THREADS=str(_common.THREADS))
    out = subprocess.run(
        [sys.executable, __file__, "--child", framework, workload, "--steps", str(steps)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"memory subprocess {framework}/{workload} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- the table -------------------------------------------------------------------------------------------


def run(names: list[str], quick: bool, memory: bool) -> str:
    print(f"Machine: {_common.machine_line()}", flush=True)
    peak = _common.matmul_peak()
    header = [
        "workload",
        "numpy2gpt ms",
        "PyTorch ms",
        "ratio (numpy2gpt / PyTorch)",
        "numpy2gpt tok/s",
        "PyTorch tok/s",
        "numpy2gpt GFLOP/s (% peak)",
        "PyTorch GFLOP/s (% peak)",
    ]
    mem_header = ["workload", "numpy2gpt peak RSS MB (above baseline)", "PyTorch peak RSS MB (above baseline)",
                  "numpy2gpt page faults/step", "PyTorch page faults/step", "numpy2gpt alone ms",
                  "PyTorch alone ms"]  # fmt: skip
    rows, mem_rows, measured = [], [], []
    for name in names:
        w = WORKLOADS[name]
        rounds = 3 if quick else w["rounds"]
        tstep, tmodel = torch_step_fn(w)
        weights = {k: v.detach().numpy().copy() for k, v in tmodel.state_dict().items()}
        nstep = numpy_step_fn(w, weights)
        # same weights, same data: the first results must agree before any timing means anything
        first_n, first_t = nstep(), tstep()
        if w["train"]:
            agree = abs(first_n - first_t) / abs(first_t)
            print(f"{name}: first loss numpy2gpt {first_n:.6f}, PyTorch {first_t:.6f} (rel diff {agree:.1e})")
        else:
            agree = float(np.abs(first_n - first_t).max() / np.abs(first_t).max())
            print(f"{name}: forward logits max rel diff {agree:.1e}")
        if agree > 1e-3:
            raise RuntimeError(f"{name}: numpy2gpt and PyTorch disagree ({agree:.1e}); timings would be meaningless")
        times = _common.alternate(
            {"numpy2gpt": nstep, "torch": tstep}, rounds=rounds, warmup=1 if quick else 2, inner=w["inner"]
        )
        del nstep, tstep, tmodel, weights
        tn, tt = _common.median(times["numpy2gpt"]), _common.median(times["torch"])
        measured.append((w, tn, tt))
        print(
            f"{name}: numpy2gpt {tn * 1e3:.1f} ms, PyTorch {tt * 1e3:.1f} ms, ratio {tn / tt:.3f} "
            f"(numpy2gpt min {min(times['numpy2gpt']) * 1e3:.1f}, PyTorch min {min(times['torch']) * 1e3:.1f})",
            flush=True,
        )
        if memory:
            steps = 2 if quick else max(3, rounds // 3)
            mn, mt = measure_memory("numpy", name, steps), measure_memory("torch", name, steps)

            def mb(m: dict) -> str:
                return f"{m['peak_kb'] / 1024:.0f} ({(m['peak_kb'] - m['baseline_kb']) / 1024:.0f})"

            mem_rows.append(
                [w["title"], mb(mn), mb(mt), f"{mn['faults_per_step']:,.0f}", f"{mt['faults_per_step']:,.0f}",
                 f"{mn['s_per_step'] * 1e3:.1f}", f"{mt['s_per_step'] * 1e3:.1f}"]
            )  # fmt: skip
            print(f"{name}: memory numpy2gpt {mn}, PyTorch {mt}", flush=True)

    # the peak again at the end: on a busy machine one reading can come out low; keep the best of both
    peak = {k: max(v, _common.matmul_peak()[k]) for k, v in peak.items()}
    best_peak = max(peak.values())
    for w, tn, tt in measured:
        tokens = w["batch"] * _seq(w)
        flops = matmul_flops(w)
        rows.append(
            [
                w["title"],
                f"{tn * 1e3:.1f}",
                f"{tt * 1e3:.1f}",
                f"**{tn / tt:.2f}x**",
                f"{tokens / tn:,.0f}",
                f"{tokens / tt:,.0f}",
                f"{flops / tn / 1e9:.0f} ({100 * flops / tn / 1e9 / best_peak:.0f}%)",
                f"{flops / tt / 1e9:.0f} ({100 * flops / tt / 1e9 / best_peak:.0f}%)",
            ]
        )
    parts = [
        "# numpy2gpt vs PyTorch eager: training step",
        "",
        f"Machine: {_common.machine_line()}.",
        "float32 matmul peak (1024^3 GEMM, best of 7, measured before and after the runs): "
        f"NumPy/OpenBLAS {peak['numpy']:.0f} GFLOP/s, "
        f"torch {peak['torch']:.0f} GFLOP/s; '% peak' below is of {best_peak:.0f}.",
        "",
        "Medians over alternating turns in one process (same weights, same batches): each turn runs a few "
        "consecutive steps of one framework and times all but the first (see `_common.alternate`); "
        "ratio < 1 means numpy2gpt is faster.",
        "GFLOP/s counts matmul FLOPs only, nanoGPT's MFU convention (attention over the full T x T).",
        "",
        _common.markdown_table(header, rows),
    ]
    if mem_rows:
        parts += [
            "",
            "Peak memory: each framework alone in its own subprocess (its peak resident size, VmHWM, after a few "
            "steps: what ru_maxrss reports for a process started from a shell); in brackets, the "
            "peak minus the resident size after importing the libraries, before the model was built. The same "
            "subprocesses give the page faults per step and the step time of each framework alone (not alternated, "
            "so noisier; PyTorch there runs with glibc's default malloc settings, whereas in the alternating run "
            "above it shares numpy2gpt's process and so its malloc settings).",
            "",
            _common.markdown_table(mem_header, mem_rows),
        ]
    parts += ["", "Made by `python benchmarks/train_step.py`."]
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=sorted(WORKLOADS), help="run only these workloads")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few steps, nothing saved")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--out", default=str(_common.RESULTS / "train_step.md"))
    parser.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "WORKLOAD"), help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.steps)
        return
    names = args.only or list(WORKLOADS)
    report = run(names, quick=args.quick, memory=not args.no_memory)
    print(report)
    if not args.quick:
        _common.save_report(report, args.out)


if __name__ == "__main__":
    main()
