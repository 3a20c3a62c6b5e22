"""On a GPU: op gradients against NumPy's, the GPT's loss and gradients against the CPU model on the same weights,
training steps, sampling with the KV cache, a checkpoint GPU -> CPU -> GPU and ``numpy2gpt train --device cuda``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from gpu import require_gpu

import numpy2gpt.autograd as ag
import numpy2gpt.nn.functional as F  # noqa: N812
from numpy2gpt import nn
from numpy2gpt.autograd import Tensor
from numpy2gpt.gpt.model import GPT, GPTConfig

cupy = require_gpu()

CFG = GPTConfig(block_size=32, vocab_size=65, n_layer=2, n_head=4, n_embd=64, dropout=0.0, bias=True)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)  # float64: cuBLAS and NumPy agree to ~1e-13


OPS = {
    "matmul": (lambda a, b: a @ b, [(3, 4, 5), (5, 6)]),
    "exp_log_tanh": (lambda a: (a.exp() + 1.0).log() * a.tanh(), [(4, 5)]),
    "sigmoid_relu_abs": (lambda a: a.sigmoid() + a.relu() - a.abs(), [(4, 5)]),
    "softmax": (lambda a: a.softmax(-1) + a.log_softmax(0), [(4, 5)]),
    "reductions": (lambda a: a.sum(1) + a.mean(1) + a.max(1) + a.var(1) + a.std(1), [(4, 6)]),
    "shape": (lambda a: a.reshape(6, 4).T[1:, ::2].transpose(0, 1).unsqueeze(0), [(4, 6)]),
    "getitem": (lambda a: a[[0, 2, 2]] * 2.0, [(4, 6)]),
    "cat_split": (lambda a, b: ag.concatenate([a, b], 0).split([2, 5], 0)[1], [(3, 4), (4, 4)]),
    "where_clip": (lambda a, b: ag.where(a > 0, a, b).clip(-0.5, 0.7).maximum(b), [(4, 5), (4, 5)]),
    "linear": (lambda x, w, b: F.linear(x, w, b), [(3, 5), (4, 5), (4,)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, 5, w, b), [(3, 5), (5,), (5,)]),
    "gelu": (lambda x: F.gelu(x) + F.gelu(x, approximate="tanh"), [(3, 5)]),
    "attention": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), [(2, 3, 7, 4)] * 3),
    "embedding": (lambda w: F.embedding(np.array([[1, 0, 1, 3]]), w), [(5, 3)]),
    "cross_entropy": (lambda z: F.cross_entropy(z, np.array([1, 0, -1, 4]), ignore_index=-1), [(4, 5)]),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_values_and_gradients_equal_numpy(name):
    fn, shapes = OPS[name]
    arrays = [rand(*s, seed=i) for i, s in enumerate(shapes)]
    results = []
    for to in (np.asarray, cupy.asarray):
        ts = [Tensor(to(a), requires_grad=True) for a in arrays]
        if name in ("embedding", "cross_entropy") and to is cupy.asarray:  # index arrays follow the data
            fn = _on_gpu_ids(fn, name)
        out = fn(*ts)
        w = to(rand(*out.shape, seed=99))
        (out * Tensor(w)).sum().backward()
        results.append([out.data] + [t.grad.data for t in ts])
    for cpu, gpu in zip(*results, strict=True):
        assert isinstance(gpu, cupy.ndarray)
        np.testing.assert_allclose(cupy.asnumpy(gpu), cpu, rtol=1e-10, atol=1e-12)


def _on_gpu_ids(fn, name):
    if name == "embedding":
        return lambda w: F.embedding(cupy.asarray([[1, 0, 1, 3]]), w)
    return lambda z: F.cross_entropy(z, cupy.asarray([1, 0, -1, 4]), ignore_index=-1)


def twins(dtype=np.float64, config=CFG):
    ag.manual_seed(0)
    cpu = GPT(config).to(dtype)
    gpu = GPT(config).to(dtype)
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu.to("cuda")


def batch(seed):
    return np.random.default_rng(seed).integers(0, CFG.vocab_size, (4, CFG.block_size))


@pytest.mark.parametrize("fused", [True, False])
def test_gpt_loss_and_gradients_equal_the_cpu_model(fused):
    cpu, gpu = twins(config=GPTConfig(**{**CFG.__dict__, "fused": fused}))
    x, y = batch(0), batch(1)
    _, loss_cpu = cpu(x, y)
    loss_cpu.backward()
    _, loss_gpu = gpu(cupy.asarray(x), cupy.asarray(y))
    loss_gpu.backward()
    assert float(loss_gpu.item()) == pytest.approx(float(loss_cpu.item()), rel=1e-12)
    for (name, p), q in zip(gpu.named_parameters(), cpu.parameters(), strict=True):
        np.testing.assert_allclose(cupy.asnumpy(p.grad.data), q.grad.data, rtol=1e-8, atol=1e-12, err_msg=name)


def test_training_steps_follow_the_cpu_run():
    cpu, gpu = twins(np.float32)
    opts = [m.configure_optimizers(weight_decay=0.1, learning_rate=3e-3, betas=(0.9, 0.95)) for m in (cpu, gpu)]
    losses = {"cpu": [], "gpu": []}
    for _ in range(8):
        for key, model, opt, to in (("cpu", cpu, opts[0], np.asarray), ("gpu", gpu, opts[1], cupy.asarray)):
            _, loss = model(to(batch(0)), to(batch(1)))  # one batch, learned by heart: the loss must fall
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses[key].append(float(loss.item()))
    np.testing.assert_allclose(losses["gpu"], losses["cpu"], rtol=2e-4)
    assert losses["gpu"][-1] < losses["gpu"][0]
    assert all(isinstance(s["exp_avg"], cupy.ndarray) for s in opts[1].state.values())


def test_sampling_with_the_kv_cache():
    cpu, gpu = twins()
    prompt = batch(3)[:2, :5]
    cached = gpu.generate(cupy.asarray(prompt), 40, temperature=0.0)  # runs past block_size: the window slides
    full = gpu.generate(prompt, 40, temperature=0.0, use_cache=False)
    assert isinstance(cached.data, cupy.ndarray)
    np.testing.assert_array_equal(cupy.asnumpy(cached.data), cupy.asnumpy(full.data))
    np.testing.assert_array_equal(cupy.asnumpy(cached.data), cpu.generate(prompt, 40, temperature=0.0).data)
    ag.manual_seed(5)
    a = gpu.generate(prompt, 20, temperature=1.0, top_k=10, top_p=0.9)
    ag.manual_seed(5)
    b = gpu.generate(prompt, 20, temperature=1.0, top_k=10, top_p=0.9)
    np.testing.assert_array_equal(cupy.asnumpy(a.data), cupy.asnumpy(b.data))


def test_checkpoint_gpu_to_cpu_to_gpu(tmp_path):
    cpu, gpu = twins(np.float32)
    opt = gpu.configure_optimizers(weight_decay=0.1, learning_rate=1e-3, betas=(0.9, 0.95))
    _, loss = gpu(cupy.asarray(batch(0)), cupy.asarray(batch(1)))
    loss.backward()
    opt.step()
    nn.save({"model": gpu.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "ckpt.n2g")
    ckpt = nn.load(tmp_path / "ckpt.n2g")
    assert all(type(v) is np.ndarray for v in ckpt["model"].values())
    cpu.load_state_dict(ckpt["model"])
    back = GPT(CFG).to("cuda")
    back.load_state_dict(ckpt["model"])
    opt2 = back.configure_optimizers(weight_decay=0.1, learning_rate=1e-3, betas=(0.9, 0.95))
    opt2.load_state_dict(ckpt["optimizer"])
    x = batch(7)
    np.testing.assert_allclose(cupy.asnumpy(back(cupy.asarray(x))[0].data), cpu(x)[0].data, rtol=1e-4, atol=1e-5)


def test_cli_trains_and_samples_on_the_gpu(tmp_path):
    out = tmp_path / "run"
    train = [sys.executable, "-m", "numpy2gpt.gpt", "train", "--device", "cuda", "--out-dir", str(out),
             "--max-iters", "20", "--eval-interval", "10", "--eval-iters", "2", "--no-progress", "--no-plot",
             "--n-layer", "2", "--n-embd", "64", "--block-size", "32", "--batch-size", "8"]  # fmt: skip
    subprocess.run(train, check=True, timeout=300)
    sample = [sys.executable, "-m", "numpy2gpt.gpt", "sample", "--device", "cuda", "--out-dir", str(out),
              "--max-new-tokens", "30"]  # fmt: skip
    text = subprocess.run(sample, check=True, timeout=300, capture_output=True, text=True).stdout
    assert len(text) > 10
