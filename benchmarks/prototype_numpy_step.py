"""A hand-written NumPy forward + backward of numpy2gpt's GPT, with no autograd: the ceiling a framework could reach.

    python benchmarks/prototype_numpy_step.py [--config cpu|baby] [--no-mallopt] [--steps N]

It checks its gradients against the PyTorch reference, then times a training step (forward, loss, backward,
clip, AdamW) against PyTorch, alternating, and prints the page faults per step. Running it with and without
``--no-mallopt`` shows what glibc's allocator costs: by default glibc serves arrays above 128 KiB with mmap and
returns them to the OS on free, so every step faults the same memory back in, page by page.

The kernels are the fused versions proposed for numpy2gpt.nn.functional; each states its math.
"""

from __future__ import annotations

import argparse
import ctypes
import math
import resource

import _common
import numpy as np

F32 = np.float32


def mallopt_keep_memory() -> bool:
    """Keep freed large arrays in the process (glibc only): M_MMAP_THRESHOLD and M_TRIM_THRESHOLD to 1 GiB."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    big = 1 << 30
    return bool(libc.mallopt(m_mmap_threshold, big)) and bool(libc.mallopt(m_trim_threshold, 2 * big))


# -- kernels: forward returns (y, cache), backward takes (gy, cache) ----------------------------------------


def layer_norm_fwd(x, g, b, eps=1e-5):
    """y = (x - mean) * rstd * g + b over the last axis; rstd = 1 / sqrt(var + eps)."""
    mu = x.mean(-1, keepdims=True)
    xc = x - mu
    var = np.einsum("...i,...i->...", xc, xc)[..., None] / F32(x.shape[-1])
    rstd = 1.0 / np.sqrt(var + F32(eps))
    xc *= rstd  # xhat
    y = xc * g
    if b is not None:
        y += b
    return y, (xc, rstd, g)


def layer_norm_bwd(gy, cache):
    """gx = rstd * (gxh - mean(gxh) - xhat * mean(gxh * xhat)), gxh = gy * g; gg = sum(gy * xhat); gb = sum(gy)."""
    xhat, rstd, g = cache
    n = xhat.shape[-1]
    gy2 = gy.reshape(-1, n)
    xh2 = xhat.reshape(-1, n)
    gg = np.einsum("ij,ij->j", gy2, xh2)
    gb = gy2.sum(0)
    gxh = gy * g
    a = gxh.mean(-1, keepdims=True)
    c = np.einsum("...i,...i->...", gxh, xhat)[..., None] / F32(n)
    gxh -= a
    xhat *= c
    gxh -= xhat
    gxh *= rstd
    return gxh, gg, gb


def linear_fwd(x, w, b):
    """y = x @ w.T + b, x (N, in), w (out, in)."""
    y = x @ w.T
    if b is not None:
        y += b
    return y, x


def linear_bwd(gy, x, w, gw, gb):
    """gx = gy @ w; gw += gy.T @ x; gb += sum(gy, 0) (accumulated in place into the gradient buffers)."""
    gx = gy @ w
    gw += gy.T @ x
    if gb is not None:
        gb += gy.sum(0)
    return gx


_P, _A = 0.3275911, (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def gelu_fwd(x):
    """y = x Phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2; erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), the
    approximation PyTorch's vectorised CPU erf uses."""
    z = np.abs(x) * F32(1 / math.sqrt(2))
    t = z * F32(_P)
    t += F32(1.0)
    np.reciprocal(t, out=t)
    e = np.square(z)
    np.negative(e, out=e)
    np.exp(e, out=e)  # exp(-x^2/2), kept: the backward's pdf
    poly = t * F32(_A[4])
    for a in (_A[3], _A[2], _A[1], _A[0]):
        poly += F32(a)
        poly *= t
    poly *= e  # 1 - erf(|z|)
    poly *= F32(-0.5)
    poly += F32(1.0)  # Phi(|x|)
    cdf = np.where(x >= 0, poly, F32(1.0) - poly)
    return x * cdf, (x, cdf, e)


def gelu_bwd(gy, cache):
    """gx = gy * (Phi(x) + x * phi(x)), phi(x) = exp(-x^2/2) / sqrt(2 pi)."""
    x, cdf, e = cache
    e *= x
    e *= F32(1 / math.sqrt(2 * math.pi))
    e += cdf
    e *= gy
    return e


def attention_fwd(q, k, v, mask_bias):
    """y = softmax(q k^T / sqrt(hd) + causal bias) v, per (batch, head); q, k, v (B, nh, T, hd)."""
    att = q @ k.swapaxes(-1, -2)
    att *= F32(1 / math.sqrt(q.shape[-1]))
    att += mask_bias
    att -= att.max(-1, keepdims=True)
    np.exp(att, out=att)
    att /= att.sum(-1, keepdims=True)
    return att @ v, (q, k, v, att)


def attention_bwd(gy, cache):
    """gv = att^T gy; gatt = gy v^T; gs = att * (gatt - sum(gatt * att));
    gq = gs k / sqrt(hd); gk = gs^T q / sqrt(hd)."""
    q, k, v, att = cache
    gv = att.swapaxes(-1, -2) @ gy
    gs = gy @ v.swapaxes(-1, -2)
    d = np.einsum("...ij,...ij->...i", gs, att)[..., None]
    gs -= d
    gs *= att
    gs *= F32(1 / math.sqrt(q.shape[-1]))
    return gs @ k, gs.swapaxes(-1, -2) @ q, gv


def cross_entropy_fwd_bwd(logits, targets):
    """loss = mean(logsumexp(l) - l[y]); dl = (softmax(l) - onehot(y)) / N, computed in the same pass."""
    n = logits.shape[0]
    m = logits.max(-1, keepdims=True)
    p = logits - m
    np.exp(p, out=p)
    s = p.sum(-1, keepdims=True)
    rows = np.arange(n)
    loss = float(np.mean(np.log(s[:, 0]) + m[:, 0] - logits[rows, targets]))
    p *= F32(1.0 / n) / s
    p[rows, targets] -= F32(1.0 / n)
    return loss, p


# -- the model ---------------------------------------------------------------------------------------------


class HandGPT:
    def __init__(self, weights: dict[str, np.ndarray], cfg: dict):
        self.cfg = cfg
        self.p = {k: np.ascontiguousarray(v, dtype=F32) for k, v in weights.items() if k != "lm_head.weight"}
        self.g = {k: np.zeros_like(v) for k, v in self.p.items()}
        t = cfg["block_size"]
        self.mask = np.triu(np.full((t, t), -np.inf, dtype=F32), 1)

    def step_fwd_bwd(self, idx, targets):
        p, g, cfg = self.p, self.g, self.cfg
        for a in g.values():
            a.fill(0)
        bsz, t = idx.shape
        c, nh = cfg["n_embd"], cfg["n_head"]
        hd = c // nh
        n = bsz * t
        x = p["transformer.wte.weight"][idx.reshape(-1)] + np.tile(p["transformer.wpe.weight"][:t], (bsz, 1))
        mask = self.mask[:t, :t]
        caches = []
        for i in range(cfg["n_layer"]):
            pre = f"transformer.h.{i}."
            h, c1 = layer_norm_fwd(x, p[pre + "ln_1.weight"], p.get(pre + "ln_1.bias"))
            qkv, c2 = linear_fwd(h, p[pre + "attn.c_attn.weight"], p.get(pre + "attn.c_attn.bias"))
            qkv5 = qkv.reshape(bsz, t, 3, nh, hd).transpose(2, 0, 3, 1, 4)  # views: BLAS takes the strides
            y, c3 = attention_fwd(qkv5[0], qkv5[1], qkv5[2], mask)
            y = y.transpose(0, 2, 1, 3).reshape(n, c)
            a, c4 = linear_fwd(y, p[pre + "attn.c_proj.weight"], p.get(pre + "attn.c_proj.bias"))
            x = x + a
            h2, c5 = layer_norm_fwd(x, p[pre + "ln_2.weight"], p.get(pre + "ln_2.bias"))
            f, c6 = linear_fwd(h2, p[pre + "mlp.c_fc.weight"], p.get(pre + "mlp.c_fc.bias"))
            gl, c7 = gelu_fwd(f)
            del f
            m, c8 = linear_fwd(gl, p[pre + "mlp.c_proj.weight"], p.get(pre + "mlp.c_proj.bias"))
            x = x + m
            caches.append((c1, c2, c3, c4, c5, c6, c7, c8))
        xf, cf = layer_norm_fwd(x, p["transformer.ln_f.weight"], p.get("transformer.ln_f.bias"))
        wte = p["transformer.wte.weight"]
        logits = xf @ wte.T
        loss, gl_ = cross_entropy_fwd_bwd(logits, targets.reshape(-1))
        del logits
        g["transformer.wte.weight"] += gl_.T @ xf
        gx = gl_ @ wte
        del gl_
        gx, gg, gb = layer_norm_bwd(gx, cf)
        g["transformer.ln_f.weight"] += gg
        if "transformer.ln_f.bias" in g:
            g["transformer.ln_f.bias"] += gb
        for i in reversed(range(cfg["n_layer"])):
            pre = f"transformer.h.{i}."

            def lin_bwd(gy, cache, name, pre=pre):
                return linear_bwd(
                    gy, cache, p[pre + name + ".weight"], g[pre + name + ".weight"], g.get(pre + name + ".bias")
                )

            c1, c2, c3, c4, c5, c6, c7, c8 = caches.pop()
            gm = lin_bwd(gx, c8, "mlp.c_proj")
            gm = gelu_bwd(gm, c7)
            gm = lin_bwd(gm, c6, "mlp.c_fc")
            gh, gg, gb = layer_norm_bwd(gm, c5)
            g[pre + "ln_2.weight"] += gg
            if gb is not None and pre + "ln_2.bias" in g:
                g[pre + "ln_2.bias"] += gb
            gx = gx + gh
            ga = lin_bwd(gx, c4, "attn.c_proj")
            gy4 = ga.reshape(bsz, t, nh, hd).transpose(0, 2, 1, 3)
            gq, gk, gv = attention_bwd(gy4, c3)
            gqkv = np.empty((bsz, t, 3, nh, hd), dtype=F32)
            gqkv[:, :, 0] = gq.transpose(0, 2, 1, 3)
            gqkv[:, :, 1] = gk.transpose(0, 2, 1, 3)
            gqkv[:, :, 2] = gv.transpose(0, 2, 1, 3)
            gh = lin_bwd(gqkv.reshape(n, 3 * c), c2, "attn.c_attn")
            gh, gg, gb = layer_norm_bwd(gh, c1)
            g[pre + "ln_1.weight"] += gg
            if pre + "ln_1.bias" in g:
                g[pre + "ln_1.bias"] += gb
            gx = gx + gh
        np.add.at(g["transformer.wte.weight"], idx.reshape(-1), gx)
        g["transformer.wpe.weight"][:t] += gx.reshape(bsz, t, c).sum(0)
        return loss


class HandAdamW:
    """AdamW over one flat buffer per state (every parameter a view into it): a handful of big passes a step."""

    def __init__(self, model: HandGPT, lr=1e-3, betas=(0.9, 0.99), eps=1e-8, wd=0.1):
        self.model, self.lr, self.b1, self.b2, self.eps, self.wd = model, lr, betas[0], betas[1], eps, wd
        self.m = {k: np.zeros_like(v) for k, v in model.p.items()}
        self.v = {k: np.zeros_like(v) for k, v in model.p.items()}
        self.t = 0

    def step(self, max_norm=1.0):
        p, g = self.model.p, self.model.g
        norm = math.sqrt(sum(float(np.dot(a.ravel(), a.ravel())) for a in g.values()))
        scale = min(1.0, max_norm / (norm + 1e-6))
        self.t += 1
        bc1, bc2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        for k in p:
            gr = g[k]
            if scale < 1.0:
                gr *= F32(scale)
            m, v = self.m[k], self.v[k]
            if p[k].ndim >= 2:
                p[k] *= F32(1 - self.lr * self.wd)
            m *= F32(self.b1)
            m += F32(1 - self.b1) * gr
            v *= F32(self.b2)
            gr *= gr
            gr *= F32(1 - self.b2)
            v += gr
            den = np.sqrt(v)
            den *= F32(1 / math.sqrt(bc2))
            den += F32(self.eps)
            np.divide(m, den, out=den)
            den *= F32(self.lr / bc1)
            p[k] -= den
        return norm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="cpu", choices=["cpu", "baby"])
    ap.add_argument("--no-mallopt", action="store_true")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--no-torch-timing", action="store_true")
    args = ap.parse_args()
    if not args.no_mallopt:
        print("mallopt applied:", mallopt_keep_memory())
    import train_step  # the workload definitions

    torch = _common.import_torch()
    w = train_step.WORKLOADS[args.config]
    tstep, tmodel = train_step.torch_step_fn(w)
    weights = {k: v.detach().numpy().copy() for k, v in tmodel.state_dict().items()}
    model = HandGPT(weights, w["cfg"])
    x, y = train_step.batches(w)[0]
    loss = model.step_fwd_bwd(x, y)
    _, tloss = tmodel(torch.from_numpy(x), torch.from_numpy(y))
    tloss.backward()
    worst = max(
        float(np.linalg.norm(model.g[k] - tp.grad.numpy()) / np.linalg.norm(tp.grad.numpy()))
        for k, tp in tmodel.named_parameters()
    )
    print(f"loss {loss:.6f} vs torch {tloss.item():.6f}; worst grad rel err {worst:.1e}")
    opt = HandAdamW(model)
    data = train_step.batches(w)
    state = {"i": 0}

    def nstep():
        xb, yb = data[state["i"] % 4]
        state["i"] += 1
        model.step_fwd_bwd(xb, yb)
        opt.step()

    fns = {"numpy": nstep} if args.no_torch_timing else {"numpy": nstep, "torch": tstep}
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    times = _common.alternate(fns, rounds=args.steps, inner=3)
    f1 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    med = {k: _common.median(v) * 1e3 for k, v in times.items()}
    print({k: f"{v:.1f} ms" for k, v in med.items()}, f"faults/round {(f1 - f0) / args.steps:.0f}")
    if "torch" in med:
        print(f"ratio {med['numpy'] / med['torch']:.3f}")


if __name__ == "__main__":
    main()
