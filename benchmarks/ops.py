"""Time the hot ops of a GPT step, numpy2gpt against PyTorch: each regression gets a name.

    python benchmarks/ops.py            # the table -> benchmarks/results/ops.md
    python benchmarks/ops.py --quick    # a smoke run, not saved
    python benchmarks/ops.py --only gelu --only layer_norm --out /tmp/ops.md   # some ops

Shapes are the baby GPT's (B 8, T 256, C 384, 6 heads, V 65) plus the two GPT-2-sized cases where the vocabulary
matters (cross-entropy and embedding at V 50257). float32, 2 threads each. Each op's backward is driven by a fixed
random upstream gradient; both frameworks get the same arrays. The medians of alternating runs are reported.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import _common
import numpy as np

B, T, C, H, V = 8, 256, 384, 6, 65


@dataclass
class OpCase:
    name: str
    shape: str
    make: Callable[[np.random.Generator], tuple[list[np.ndarray], list[np.ndarray]]]  # (float inputs, other args)
    ours: Callable[..., object]  # (F, float Tensors, other arrays) -> output Tensor
    theirs: Callable[..., object]  # (torch F, float tensors, other tensors) -> output tensor
    scalar_out: bool = False


def _f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape, dtype=np.float32) * np.float32(scale)).astype(np.float32)


CASES = [
    OpCase(
        "linear (c_fc)",
        f"x ({B}, {T}, {C}) @ W ({4 * C}, {C})^T + b",
        lambda r: ([_f32(r, B, T, C), _f32(r, 4 * C, C, scale=0.02), _f32(r, 4 * C, scale=0.02)], []),
        lambda f, xs, o: f.linear(xs[0], xs[1], xs[2]),
        lambda f, xs, o: f.linear(xs[0], xs[1], xs[2]),
    ),
    OpCase(
        "linear (c_attn)",
        f"x ({B}, {T}, {C}) @ W ({3 * C}, {C})^T + b",
        lambda r: ([_f32(r, B, T, C), _f32(r, 3 * C, C, scale=0.02), _f32(r, 3 * C, scale=0.02)], []),
        lambda f, xs, o: f.linear(xs[0], xs[1], xs[2]),
        lambda f, xs, o: f.linear(xs[0], xs[1], xs[2]),
    ),
    OpCase(
        "layer_norm",
        f"({B}, {T}, {C}), weight and bias",
        lambda r: ([_f32(r, B, T, C), 1 + _f32(r, C, scale=0.1), _f32(r, C, scale=0.1)], []),
        lambda f, xs, o: f.layer_norm(xs[0], (C,), xs[1], xs[2], 1e-5),
        lambda f, xs, o: f.layer_norm(xs[0], (C,), xs[1], xs[2], 1e-5),
    ),
    OpCase(
        "gelu (exact)",
        f"({B}, {T}, {4 * C})",
        lambda r: ([_f32(r, B, T, 4 * C)], []),
        lambda f, xs, o: f.gelu(xs[0]),
        lambda f, xs, o: f.gelu(xs[0]),
    ),
    OpCase(
        "causal attention (sdpa)",
        f"q, k, v ({B}, {H}, {T}, {C // H})",
        lambda r: ([_f32(r, B, H, T, C // H) for _ in range(3)], []),
        lambda f, xs, o: f.scaled_dot_product_attention(xs[0], xs[1], xs[2], is_causal=True),
        lambda f, xs, o: f.scaled_dot_product_attention(xs[0], xs[1], xs[2], is_causal=True),
    ),
    OpCase(
        "cross_entropy",
        f"logits ({B}, {T}, {V})",
        lambda r: ([_f32(r, B, T, V)], [r.integers(0, V, size=(B, T))]),
        lambda f, xs, o: f.cross_entropy(xs[0], o[0]),
        lambda f, xs, o: f.cross_entropy(xs[0].reshape(-1, V), o[0].reshape(-1)),
        scalar_out=True,
    ),
    OpCase(
        "cross_entropy (GPT-2 vocab)",
        "logits (1, 256, 50257)",
        lambda r: ([_f32(r, 1, 256, 50257)], [r.integers(0, 50257, size=(1, 256))]),
        lambda f, xs, o: f.cross_entropy(xs[0], o[0]),
        lambda f, xs, o: f.cross_entropy(xs[0].reshape(-1, 50257), o[0].reshape(-1)),
        scalar_out=True,
    ),
    OpCase(
        "embedding",
        f"ids ({B}, {T}) into ({V}, {C})",
        lambda r: ([_f32(r, V, C, scale=0.02)], [r.integers(0, V, size=(B, T))]),
        lambda f, xs, o: f.embedding(o[0], xs[0]),
        lambda f, xs, o: f.embedding(o[0], xs[0]),
    ),
    OpCase(
        "embedding (GPT-2 vocab)",
        "ids (4, 256) into (50257, 768)",
        lambda r: ([_f32(r, 50257, 768, scale=0.02)], [r.integers(0, 50257, size=(4, 256))]),
        lambda f, xs, o: f.embedding(o[0], xs[0]),
        lambda f, xs, o: f.embedding(o[0], xs[0]),
    ),
]


def runners(case: OpCase, seed: int = 0):
    """Four zero-argument callables: numpy2gpt forward, numpy2gpt forward+backward, and the same for PyTorch."""
    torch = _common.import_torch()
    import torch.nn.functional as TF  # noqa: N812

    import numpy2gpt.nn.functional as F  # noqa: N812
    from numpy2gpt.autograd import Tensor, no_grad

    _common.as_entry_point()
    rng = np.random.default_rng(seed)
    floats, others = case.make(rng)
    nx = [Tensor(a, requires_grad=True) for a in floats]
    tx = [torch.from_numpy(a.copy()).requires_grad_(True) for a in floats]
    to = [torch.from_numpy(a) for a in others]
    with no_grad():
        out_shape = case.ours(F, nx, others).shape
    gy = None if case.scalar_out else _f32(rng, *out_shape)
    tgy = None if gy is None else torch.from_numpy(gy)

    def n_fwd():
        with no_grad():
            case.ours(F, nx, others)

    def n_fwd_bwd():
        for t in nx:
            t.grad = None
        y = case.ours(F, nx, others)
        y.backward(gy)

    def t_fwd():
        with torch.no_grad():
            case.theirs(TF, tx, to)

    def t_fwd_bwd():
        for t in tx:
            t.grad = None
        y = case.theirs(TF, tx, to)
        y.backward(tgy)

    # both must compute the same thing before their times are compared
    n_fwd_bwd()
    t_fwd_bwd()
    for a, b in zip(nx, tx, strict=True):
        err = float(np.linalg.norm(a.grad.data - b.grad.numpy()) / max(np.linalg.norm(b.grad.numpy()), 1e-30))
        if not err < 1e-4:
            raise RuntimeError(f"{case.name}: gradients differ from PyTorch (relative error {err:.1e})")
    return n_fwd, n_fwd_bwd, t_fwd, t_fwd_bwd


def run(quick: bool, only: list[str] | None = None) -> str:
    print(f"Machine: {_common.machine_line()}", flush=True)
    header = ["op", "shape", "numpy2gpt fwd ms", "PyTorch fwd ms", "fwd ratio", "numpy2gpt fwd+bwd ms",
              "PyTorch fwd+bwd ms", "fwd+bwd ratio"]  # fmt: skip
    rows = []
    for case in CASES:
        if only and not any(name in case.name for name in only):
            continue
        n_fwd, n_fb, t_fwd, t_fb = runners(case)
        rounds = 2 if quick else 8
        tf = _common.alternate({"n": n_fwd, "t": t_fwd}, rounds=rounds, inner=4)
        tb = _common.alternate({"n": n_fb, "t": t_fb}, rounds=rounds, inner=4)
        nf, tff = _common.median(tf["n"]) * 1e3, _common.median(tf["t"]) * 1e3
        nb, tbb = _common.median(tb["n"]) * 1e3, _common.median(tb["t"]) * 1e3
        rows.append([case.name, case.shape, f"{nf:.2f}", f"{tff:.2f}", f"{nf / tff:.2f}x", f"{nb:.2f}", f"{tbb:.2f}",
                     f"**{nb / tbb:.2f}x**"])  # fmt: skip
        print(" | ".join(rows[-1]), flush=True)
    parts = [
        "# numpy2gpt vs PyTorch eager: the hot ops",
        "",
        f"Machine: {_common.machine_line()}.",
        "",
        "Medians over alternating turns of 4 consecutive calls, the first untimed (forward alone under no-grad; "
        "forward + backward with a fixed upstream "
        "gradient); ratio < 1 means numpy2gpt is faster. Each op is first checked to give PyTorch's gradients.",
        "",
        _common.markdown_table(header, rows),
        "",
        "Made by `python benchmarks/ops.py`.",
    ]
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few rounds, nothing saved")
    parser.add_argument("--out", default=str(_common.RESULTS / "ops.md"))
    parser.add_argument("--only", action="append", help="only the ops whose name contains this (e.g. gelu)")
    args = parser.parse_args()
    report = run(args.quick, args.only)
    print(report)
    if not args.quick:
        _common.save_report(report, args.out)


if __name__ == "__main__":
    main()
