"""numpy2gpt on an NVIDIA GPU (CuPy) next to PyTorch eager float32 on the same GPU, in the same run.

    python benchmarks/gpu.py --out results/                    # both workloads, the short run, torch if importable
    python benchmarks/gpu.py --torch-path /tmp/torch --text shared/data/tinyshakespeare.txt
    python benchmarks/gpu.py --quick                           # a smoke run: few steps, 30 training iterations
    python benchmarks/gpu.py --cpu-reference                   # the shakespeare_char step on this CPU (NumPy)

Workloads (float32; TF32 off in torch, as CuPy's matmuls are plain float32):

* ``gpt2-124m``: a GPT-2-124M-shaped model (12 layers, 12 heads, 768 wide, vocab 50257, block 1024, biases,
  dropout 0) at batch 8: forward, loss, backward, clip_grad_norm_(1.0), AdamW step, zero_grad.
* ``shakespeare_char``: nanoGPT's config/train_shakespeare_char.py (6 layers, 6 heads, 384 wide, block 256,
  batch 64, vocab 65, no biases, dropout 0.2), the same step.

Each step ends with a device synchronize and is timed whole; the median over the timed steps is reported as
ms/step and tokens/s. numpy2gpt runs in this process; torch runs in a subprocess (``--torch-path`` adds a folder
to its import path, e.g. one ``pip install --target`` filled) on the same weights and batches (numpy2gpt's,
saved to an .npz), and the first losses in eval mode are checked to agree. Then a short training run of the
shakespeare_char config through ``numpy2gpt train --device cuda`` (``--iters``, 300 by default) reports its val
loss and ms/iter. Results: ``OUT/gpu.md`` and ``OUT/gpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

WORKLOADS = {
    "gpt2-124m": dict(
        cfg=dict(block_size=1024, vocab_size=50257, n_layer=12, n_head=12, n_embd=768, dropout=0.0, bias=True),
        batch=8,
        title="GPT-2 124M shape: train step (12L 12H 768d, B8 T1024, V50257)",
    ),
    "shakespeare_char": dict(
        cfg=dict(block_size=256, vocab_size=65, n_layer=6, n_head=6, n_embd=384, dropout=0.2, bias=False),
        batch=64,
        title="nanoGPT shakespeare_char: train step (6L 6H 384d, B64 T256, V65, dropout 0.2)",
    ),
}
HYPER = dict(lr=1e-3, weight_decay=0.1, betas=(0.9, 0.99), grad_clip=1.0)


def batches(w: dict, n: int, seed: int = 0) -> np.ndarray:
    """n (x, y) pairs of random token windows, (n, 2, B, T) int64: the same for both frameworks."""
    c = w["cfg"]
    return np.random.default_rng(seed).integers(0, c["vocab_size"], (n, 2, w["batch"], c["block_size"]))


def time_numpy2gpt(w: dict, data: np.ndarray, warmup: int, weights_file: Path | None) -> dict:
    """numpy2gpt's train step on the GPU: per-step seconds (after ``warmup``), the first eval-mode loss."""
    import cupy

    from numpy2gpt import autograd as ag
    from numpy2gpt import nn
    from numpy2gpt.gpt.model import GPT, GPTConfig

    ag.manual_seed(0)
    model = GPT(GPTConfig(**w["cfg"]))
    if weights_file is not None:
        np.savez(weights_file, **{k: v for k, v in model.state_dict().items() if k != "lm_head.weight"})
    model.to("cuda")
    opt = model.configure_optimizers(HYPER["weight_decay"], HYPER["lr"], HYPER["betas"])
    model.eval()
    with ag.no_grad():
        first = float(model(cupy.asarray(data[0, 0]), cupy.asarray(data[0, 1]))[1].item())
    model.train()
    sync = cupy.cuda.Device().synchronize
    times = []
    for i, (x, y) in enumerate(data):
        sync()
        t0 = time.perf_counter()
        _, loss = model(cupy.asarray(x), cupy.asarray(y))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), HYPER["grad_clip"])
        opt.step()
        opt.zero_grad()
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    pool = cupy.get_default_memory_pool()
    return {
        "times": times,
        "first_loss": first,
        "last_loss": float(loss.item()),
        "pool_gib": pool.total_bytes() / 2**30,
    }


TORCH_STEP = r"""
import json, sys, time
import numpy as np
import torch
sys.path.insert(0, sys.argv[1])
import torch_reference as R
args = json.loads(sys.argv[2])
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = torch.device("cuda")
torch.manual_seed(0)
model = R.GPT(R.GPTConfig(**args["cfg"])).to(dev)
saved = np.load(args["weights"])
state = {k: torch.from_numpy(saved[k]) for k in saved.files}
missing, unexpected = model.load_state_dict(state, strict=False)
assert not unexpected and all(k == "lm_head.weight" for k in missing), (missing, unexpected)
opt = R.configure_optimizer(model, args["lr"], args["weight_decay"], tuple(args["betas"]))
data = torch.from_numpy(np.load(args["data"])).to(dev)
model.eval()
with torch.no_grad():
    first = float(model(data[0, 0], data[0, 1])[1])
model.train()
times = []
for i in range(len(data)):
    torch.cuda.synchronize(); t0 = time.perf_counter()
    _, loss = model(data[i, 0], data[i, 1])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), args["grad_clip"])
    opt.step()
    opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    if i >= args["warmup"]:
        times.append(time.perf_counter() - t0)
print("RESULT " + json.dumps({"times": times, "first_loss": first, "last_loss": float(loss.detach()),
      "torch": torch.__version__, "peak_gib": torch.cuda.max_memory_allocated() / 2**30}))
"""


def time_torch(w: dict, data_file: Path, weights_file: Path, warmup: int, torch_path: str | None, timeout: float):
    """The same step in PyTorch eager (a subprocess, so torch's CUDA context and memory stay out of ours)."""
    env = dict(os.environ)
    if torch_path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (torch_path, env.get("PYTHONPATH", "")) if p)
    args = {**HYPER, "cfg": w["cfg"], "weights": str(weights_file), "data": str(data_file), "warmup": warmup}
    try:
        done = subprocess.run(
            [sys.executable, "-c", TORCH_STEP, str(HERE), json.dumps(args)],
            env=env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"error": f"torch did not finish in {timeout:.0f} s"}
    line = next((s for s in done.stdout.splitlines() if s.startswith("RESULT ")), None)
    if line is None:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        return {"error": f"torch failed (exit {done.returncode}): {tail}"}
    return json.loads(line[len("RESULT ") :])


def run_workload(name: str, steps: int, warmup: int, torch_path: str | None, no_torch: bool, tmp: Path) -> dict:
    w = WORKLOADS[name]
    data = batches(w, steps + warmup)
    weights_file = None if no_torch else tmp / f"{name}-weights.npz"
    ours = time_numpy2gpt(w, data, warmup, weights_file)
    result = {"title": w["title"], "tokens_per_step": w["batch"] * w["cfg"]["block_size"], "numpy2gpt": ours}
    if not no_torch:
        np.save(tmp / f"{name}-data.npy", data)
        result["torch"] = time_torch(w, tmp / f"{name}-data.npy", weights_file, warmup, torch_path, timeout=240)
    return result


def short_run(text: str | None, iters: int, out: Path) -> dict:
    """nanoGPT's shakespeare_char configuration trained ``iters`` iterations by the CLI on the GPU."""
    run_dir = Path(tempfile.gettempdir()) / "n2g-short-run"  # (its checkpoint stays out of the results folder)
    argv = [sys.executable, "-m", "numpy2gpt.gpt", "train", "--device", "cuda", "--out-dir", str(run_dir),
            "--n-layer", "6", "--n-head", "6", "--n-embd", "384", "--block-size", "256", "--batch-size", "64",
            "--dropout", "0.2", "--no-bias", "--learning-rate", "1e-3", "--min-lr", "1e-4", "--beta2", "0.99",
            "--warmup-iters", "100", "--lr-decay-iters", "5000", "--max-iters", str(iters),
            "--eval-interval", str(iters), "--eval-iters", "20", "--log-interval", "50", "--no-progress",
            "--no-plot", "--num-sample-tokens", "200"]  # fmt: skip
    argv += ["--data-file", text] if text else ["--dataset", "python_docs"]
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    log = done.stdout + done.stderr
    (out / "short_run.log").write_text(log, encoding="utf-8")
    vals = re.findall(r"val loss ([0-9.]+)", log)
    step_ms = re.findall(r"([0-9.,]+) ms/iter", log) or re.findall(r"time ([0-9.,]+)\s*ms", log)
    return {
        "exit": done.returncode,
        "data": text or "python_docs (embedded)",
        "iters": iters,
        "val_loss": float(vals[-1]) if vals else None,
        "ms_per_iter_logged": step_ms[-3:],
        "seconds": round(time.perf_counter() - t0, 1),
        "tail": log.strip().splitlines()[-12:],
    }


def cpu_reference(steps: int) -> None:
    """The shakespeare_char step on this machine's CPU (NumPy): the denominator of the 'x faster than the CPU'."""
    from numpy2gpt import autograd as ag
    from numpy2gpt import nn
    from numpy2gpt.gpt.model import GPT, GPTConfig

    w = WORKLOADS["shakespeare_char"]
    ag.allocator.keep_freed_memory()
    ag.manual_seed(0)
    model = GPT(GPTConfig(**w["cfg"]))
    opt = model.configure_optimizers(HYPER["weight_decay"], HYPER["lr"], HYPER["betas"])
    times = []
    for x, y in batches(w, steps + 1):
        t0 = time.perf_counter()
        _, loss = model(x, y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), HYPER["grad_clip"])
        opt.step()
        opt.zero_grad()
        times.append(time.perf_counter() - t0)
    print(f"CPU shakespeare_char step: median {1e3 * float(np.median(times[1:])):.0f} ms over {steps} steps "
          f"(after one warm-up step), {os.cpu_count()} CPUs")  # fmt: skip


def device_line() -> str:
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    rt = cupy.cuda.runtime.runtimeGetVersion()
    drv = cupy.cuda.runtime.driverGetVersion()
    return (f"{name}, {props['totalGlobalMem'] / 2**30:.0f} GiB; CUDA runtime {rt // 1000}.{rt % 1000 // 10}, driver "
            f"{drv // 1000}.{drv % 1000 // 10}; CuPy {cupy.__version__}, NumPy {np.__version__}, Python "
            f"{sys.version.split()[0]}; {os.cpu_count()} CPUs")  # fmt: skip


def markdown(results: dict) -> str:
    lines = ["# numpy2gpt on a GPU", "", f"Machine: {results['device']}", ""]
    lines += ["| workload | numpy2gpt ms/step | tokens/s | torch eager ms/step | tokens/s | numpy2gpt / torch "
              "| first loss (ours, torch) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results["workloads"].values():
        ours = r["numpy2gpt"]
        ms = 1e3 * float(np.median(ours["times"]))
        row = [r["title"], f"{ms:.1f}", f"{r['tokens_per_step'] / ms * 1e3:,.0f}"]
        t = r.get("torch", {"error": "not run (--no-torch)"})
        if "times" in t:
            tms = 1e3 * float(np.median(t["times"]))
            row += [f"{tms:.1f}", f"{r['tokens_per_step'] / tms * 1e3:,.0f}", f"{ms / tms:.2f}x",
                    f"{ours['first_loss']:.4f}, {t['first_loss']:.4f}"]  # fmt: skip
        else:
            row += [t["error"], "", "", f"{ours['first_loss']:.4f}, -"]
        lines.append("| " + " | ".join(row) + " |")
    s = results.get("short_run")
    if s:
        lines += ["", f"Short run (numpy2gpt train --device cuda, shakespeare_char config, {s['iters']} iterations on "
                  f"{s['data']}): exit {s['exit']}, val loss {s['val_loss']}, {s['seconds']} s in all; logged ms/iter "
                  f"{', '.join(s['ms_per_iter_logged']) or '-'}", "", "```", *s["tail"], "```"]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(HERE / "results"), help="folder for gpu.md and gpu.json")
    p.add_argument("--text", default=None, help="text file for the short run (default: the embedded corpus)")
    p.add_argument("--iters", type=int, default=300, help="iterations of the short run (0: skip it)")
    p.add_argument("--steps", type=int, default=10, help="timed steps per workload")
    p.add_argument("--only", choices=sorted(WORKLOADS), default=None, help="one workload")
    p.add_argument("--torch-path", default=None, help="a folder holding torch (pip install --target)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    p.add_argument("--quick", action="store_true", help="3 timed steps, a 30-iteration short run")
    p.add_argument("--cpu-reference", action="store_true", help="time the shakespeare_char step on the CPU, only")
    args = p.parse_args()
    if args.cpu_reference:
        cpu_reference(3)
        return
    if args.quick:
        args.steps, args.iters = 3, min(args.iters, 30)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {"device": device_line(), "workloads": {}}
    print(results["device"], flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in [args.only] if args.only else list(WORKLOADS):
            r = run_workload(name, args.steps, 3, args.torch_path, args.no_torch, Path(tmp))
            results["workloads"][name] = r
            print(json.dumps({name: {k: v for k, v in r.items() if k != "title"}}, default=str)[:2000], flush=True)
            (out / "gpu.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    if args.iters > 0:
        results["short_run"] = short_run(args.text, args.iters, out)
    (out / "gpu.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    (out / "gpu.md").write_text(markdown(results), encoding="utf-8")
    print(markdown(results))


if __name__ == "__main__":
    main()
