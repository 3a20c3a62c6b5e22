"""numpy2gpt's GPT equals PyTorch's: the same weights give the same logits, loss, gradients and training run.

The reference is benchmarks/torch_reference.py, nanoGPT's architecture in PyTorch with numpy2gpt's parameter names,
so its state dict copies into numpy2gpt's GPT by name.

* One forward/backward in float32: logits, loss and every parameter's gradient agree to a relative error (error
  norm / reference norm, per tensor) well under 1e-4. The worst one is printed (run with -s to see it).
* Ten AdamW steps with weight decay groups, gradient clipping and a warmup+cosine schedule, compared in float64: the
  loss trace and the final parameters agree to ~1e-10.

Why float64 for the training run: the key part of c_attn's bias has a true gradient of exactly zero (softmax is
invariant to adding the same q.b_k to every score of a row), so in float32 both frameworks compute rounding noise
there, different noise on each side. AdamW divides each gradient by its own running RMS, which turns that noise
into steps of up to +-lr in arbitrary directions: in float32 the two traces part in that bias by design, not
through a bug, and from there everything downstream drifts apart. In float64 the noise is ~1e-18, far below AdamW's
eps=1e-8, so its steps are ~lr*1e-10 on both sides and the traces agree.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from numpy2gpt.gpt.model import GPT, GPTConfig  # noqa: E402
from numpy2gpt.nn import optim  # noqa: E402
from numpy2gpt.nn.utils import clip_grad_norm_  # noqa: E402

_REF_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "torch_reference.py"


def _load_reference():
    """Import benchmarks/torch_reference.py by path (benchmarks/ is not a package)."""
    name = "numpy2gpt_torch_reference"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _REF_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


ref = _load_reference()

CONFIGS = {
    "bias": dict(block_size=16, vocab_size=65, n_layer=2, n_head=4, n_embd=32, dropout=0.0, bias=True),
    "no_bias": dict(block_size=16, vocab_size=65, n_layer=2, n_head=2, n_embd=48, dropout=0.0, bias=False),
}


def _pair(cfg: dict, dtype=torch.float32, seed: int = 0):
    """A reference model with nanoGPT's random init and numpy2gpt's GPT holding a copy of its weights."""
    torch.manual_seed(seed)
    tmodel = ref.GPT(ref.GPTConfig(**cfg)).to(dtype)
    model = GPT(GPTConfig(**cfg))
    tsd = {k: v.detach().cpu().numpy() for k, v in tmodel.state_dict().items()}
    names = dict(model.named_parameters())
    tnames = dict(tmodel.named_parameters())
    assert set(names) == set(tnames), f"parameter names differ: {set(names) ^ set(tnames)}"
    for name, p in names.items():
        assert p.shape == tuple(tsd[name].shape), f"{name}: {p.shape} vs {tuple(tsd[name].shape)}"
        p.data = tsd[name].copy()  # the reference's dtype (float32 or float64) on both sides
    # the tie survives the copy: one Parameter object for wte and lm_head
    assert model.lm_head.weight is model.transformer.wte.weight
    return tmodel, model


def _batch(cfg: dict, batch: int, seed: int):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, cfg["vocab_size"], size=(batch, cfg["block_size"]), dtype=np.int64)
    targets = rng.integers(0, cfg["vocab_size"], size=(batch, cfg["block_size"]), dtype=np.int64)
    return idx, targets


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """Relative error of ``a`` against reference ``b``: ||a - b|| / ||b|| (in float64)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_forward_backward_match_float32(name):
    cfg = CONFIGS[name]
    tmodel, model = _pair(cfg)
    idx, targets = _batch(cfg, batch=3, seed=1)

    tlogits, tloss = tmodel(torch.from_numpy(idx), torch.from_numpy(targets))
    tloss.backward()
    logits, loss = model(idx, targets)
    loss.backward()

    assert logits.dtype == np.float32 and loss.dtype == np.float32
    errors = {
        "logits": _rel(logits.data, tlogits.detach().numpy()),
        "loss": _rel(loss.data, tloss.detach().numpy()),
    }
    tparams = dict(tmodel.named_parameters())
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert p.grad.dtype == np.float32, f"{pname}.grad is {p.grad.dtype}"
        errors[pname + ".grad"] = _rel(p.grad.data, tparams[pname].grad.numpy())
    worst = max(errors, key=errors.get)
    print(f"\n[{name}] worst float32 relative error: {worst} = {errors[worst]:.2e}")
    for key, err in errors.items():
        assert err < 1e-5, f"{key}: relative error {err:.2e} vs PyTorch"


def test_eval_forward_matches_without_targets():
    cfg = CONFIGS["bias"]
    tmodel, model = _pair(cfg)
    tmodel.eval()
    model.eval()
    idx, _ = _batch(cfg, batch=2, seed=2)
    idx = idx[:, :7]  # shorter than block_size
    with torch.no_grad():
        tlogits, tloss = tmodel(torch.from_numpy(idx))
    logits, loss = model(idx)
    assert tloss is None and loss is None
    assert logits.shape == (2, 7, cfg["vocab_size"])
    assert _rel(logits.data, tlogits.numpy()) < 1e-5


def _train(cfg: dict, steps: int = 10, dtype=torch.float64):
    """``steps`` AdamW steps on both sides (nanoGPT's groups, clip 1.0, warmup + cosine); the two loss traces and
    the two models."""
    tmodel, model = _pair(cfg, dtype=dtype, seed=3)
    tmodel.train()
    model.train()
    max_lr, min_lr, warmup, max_iters, wd = 3e-3, 3e-4, 3, steps, 0.1
    topt = ref.configure_optimizer(tmodel, lr=max_lr, weight_decay=wd, betas=(0.9, 0.99))
    params = list(model.parameters())
    opt = optim.AdamW(
        [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": wd},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ],
        lr=max_lr,
        betas=(0.9, 0.99),
        eps=1e-8,
    )
    tlosses, losses, tnorms, norms = [], [], [], []
    batches = [_batch(cfg, batch=4, seed=100 + i) for i in range(2)]  # two batches, alternating: the loss must fall
    for it in range(steps):
        lr = ref.cosine_warmup_lr(it, max_lr, min_lr, warmup, max_iters)
        idx, targets = batches[it % len(batches)]

        for group in topt.param_groups:
            group["lr"] = lr
        _, tloss = tmodel(torch.from_numpy(idx), torch.from_numpy(targets))
        topt.zero_grad(set_to_none=True)
        tloss.backward()
        tnorms.append(float(torch.nn.utils.clip_grad_norm_(tmodel.parameters(), 1.0)))
        topt.step()
        tlosses.append(tloss.item())

        for group in opt.param_groups:
            group["lr"] = lr
        _, loss = model(idx, targets)
        opt.zero_grad()
        loss.backward()
        norms.append(float(clip_grad_norm_(model.parameters(), 1.0)))
        opt.step()
        losses.append(loss.item())
    return tmodel, model, np.array(tlosses), np.array(losses), np.array(tnorms), np.array(norms)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_adamw_training_matches_float64(name):
    tmodel, model, tlosses, losses, tnorms, norms = _train(CONFIGS[name])
    assert all(p.dtype == np.float64 for p in model.parameters()), "the float64 run must stay float64"
    assert np.all(np.isfinite(losses))
    assert tnorms.max() > 1.0, "the run should exercise clipping at least once"
    np.testing.assert_allclose(losses, tlosses, rtol=1e-10, atol=0)
    np.testing.assert_allclose(norms, tnorms, rtol=1e-9, atol=0)
    tparams = dict(tmodel.named_parameters())
    worst = 0.0
    for pname, p in model.named_parameters():
        tp = tparams[pname].detach().numpy()
        err = float(np.max(np.abs(p.data - tp)))
        worst = max(worst, err)
        assert err < 1e-9, f"{pname}: max abs difference {err:.2e} after {len(losses)} AdamW steps"
    print(
        f"\nfloat64 AdamW x{len(losses)}: loss trace {losses[0]:.4f} -> {losses[-1]:.4f}, worst param diff {worst:.1e}"
    )
    assert losses[-1] < losses[0], "ten steps of AdamW should lower the training loss"
