"""The array-module seam, checked on a CPU: a GPT whose parameters are ``fakecupy`` device arrays (NumPy memory
with CuPy's strictness, registered as the "cuda" device) trains, clips, steps AdamW, samples with the KV cache and
round-trips a checkpoint without any array leaving the "device" mid-step; its numbers equal the CPU model's."""

from __future__ import annotations

import subprocess
import sys

import fakecupy
import numpy as np
import pytest

import numpy2gpt.nn.functional as F  # noqa: N812
from numpy2gpt import autograd as ag
from numpy2gpt import nn
from numpy2gpt.autograd import Tensor
from numpy2gpt.autograd.backend import DeviceUnavailableError, get_array_module
from numpy2gpt.autograd.device import Device, as_device, to_device
from numpy2gpt.gpt.model import GPT, GPTConfig

CFG = GPTConfig(block_size=16, vocab_size=32, n_layer=2, n_head=2, n_embd=16, dropout=0.0, bias=True)


@pytest.fixture
def cuda():
    with fakecupy.as_cuda() as module:
        yield module


def is_device(a) -> bool:
    return isinstance(a, fakecupy.ndarray)


def twin_models(config: GPTConfig = CFG) -> tuple[GPT, GPT]:
    ag.manual_seed(0)
    cpu = GPT(config)
    dev = GPT(config)
    dev.load_state_dict(cpu.state_dict())
    return cpu, dev.to("cuda")


def batch(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, CFG.vocab_size, (4, CFG.block_size))


def step(model: GPT, opt: nn.optim.Optimizer, x, y) -> float:
    _, loss = model(x, y)
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    opt.step()
    return float(loss.item())


@pytest.mark.parametrize("fused", [True, False])
def test_training_steps_stay_on_the_device_and_match_the_cpu(cuda, fused):
    cpu, dev = twin_models(GPTConfig(**{**CFG.__dict__, "fused": fused}))
    opts = [m.configure_optimizers(weight_decay=0.1, learning_rate=1e-2, betas=(0.9, 0.95)) for m in (cpu, dev)]
    for i in range(3):
        x, y = batch(i), batch(i + 100)
        with fakecupy.watch_tensors() as leaks:
            loss_dev = step(dev, opts[1], cuda.asarray(x), cuda.asarray(y))
        assert leaks == [], f"arrays left the device during a step: {leaks[:5]}"
        assert loss_dev == pytest.approx(step(cpu, opts[0], x, y), rel=1e-5)
    for (name, p), q in zip(dev.named_parameters(), cpu.parameters(), strict=True):
        assert is_device(p.data) and p.device == "cuda:0", name
        np.testing.assert_allclose(cuda.asnumpy(p.data), q.data, rtol=1e-4, atol=1e-5, err_msg=name)
    for state in opts[1].state.values():
        assert is_device(state["exp_avg"]) and is_device(state["exp_avg_sq"])


def test_dropout_masks_are_drawn_on_the_device(cuda):
    _, dev = twin_models(GPTConfig(**{**CFG.__dict__, "dropout": 0.2}))
    with fakecupy.watch_tensors() as leaks:
        _, loss = dev(cuda.asarray(batch(0)), cuda.asarray(batch(1)))
        loss.backward()
    assert leaks == []
    ag.manual_seed(3)
    a = float(dev(cuda.asarray(batch(0)), cuda.asarray(batch(1)))[1].item())
    ag.manual_seed(3)
    b = float(dev(cuda.asarray(batch(0)), cuda.asarray(batch(1)))[1].item())
    assert a == b  # manual_seed fixes the device's draws too


def test_sampling_with_the_kv_cache_on_the_device(cuda):
    cpu, dev = twin_models()
    prompt = np.zeros((2, 3), dtype=np.int64)
    with fakecupy.watch_tensors() as leaks:
        greedy_cached = dev.generate(cuda.asarray(prompt), 20, temperature=0.0)
        greedy_full = dev.generate(prompt, 20, temperature=0.0, use_cache=False)
        sampled = dev.generate(prompt, 20, temperature=1.0, top_k=5, top_p=0.9)
    assert leaks == []
    assert is_device(greedy_cached.data) and is_device(sampled.data)
    np.testing.assert_array_equal(cuda.asnumpy(greedy_cached.data), cuda.asnumpy(greedy_full.data))
    np.testing.assert_array_equal(cuda.asnumpy(greedy_cached.data), cpu.generate(prompt, 20, temperature=0.0).data)
    assert sampled.shape == (2, 23) and int(sampled.data.max()) < CFG.vocab_size


def test_checkpoint_device_to_cpu_to_device(cuda, tmp_path):
    cpu, dev = twin_models()
    opt = dev.configure_optimizers(weight_decay=0.1, learning_rate=1e-2, betas=(0.9, 0.95))
    step(dev, opt, cuda.asarray(batch(0)), cuda.asarray(batch(1)))
    nn.save({"model": dev.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "ckpt.n2g")
    ckpt = nn.load(tmp_path / "ckpt.n2g")
    assert all(type(v) is np.ndarray for v in ckpt["model"].values())  # files hold host arrays
    assert type(ckpt["optimizer"]["state"][0]["exp_avg"]) is np.ndarray
    cpu.load_state_dict(ckpt["model"])
    back = GPT(CFG).to("cuda")
    back.load_state_dict(ckpt["model"])
    opt2 = back.configure_optimizers(weight_decay=0.1, learning_rate=1e-2, betas=(0.9, 0.95))
    opt2.load_state_dict(ckpt["optimizer"])
    assert all(is_device(p.data) for p in back.parameters())
    assert is_device(opt2.state[next(back.parameters())]["exp_avg"])
    x = batch(5)
    np.testing.assert_allclose(cuda.asnumpy(back(cuda.asarray(x))[0].data), cpu(x)[0].data, rtol=1e-6)


def test_the_optimizer_follows_its_parameters(cuda):
    cpu, _ = twin_models()
    opt = cpu.configure_optimizers(weight_decay=0.1, learning_rate=1e-2, betas=(0.9, 0.95))
    step(cpu, opt, batch(0), batch(1))  # state made on the CPU
    cpu.to("cuda")
    step(cpu, opt, cuda.asarray(batch(0)), cuda.asarray(batch(1)))
    assert all(is_device(s["exp_avg"]) for s in opt.state.values())
    cpu.to("cpu")
    step(cpu, opt, batch(0), batch(1))
    assert all(type(s["exp_avg"]) is np.ndarray for s in opt.state.values())


def test_tensor_to_cuda_cpu_and_gradients_come_back(cuda):
    x = Tensor(np.arange(6.0, dtype=np.float32).reshape(2, 3), requires_grad=True)
    assert x.device == "cpu" and x.device == Device("cpu") and not x.is_cuda
    y = x.to("cuda")
    assert is_device(y.data) and y.device == "cuda:0" and y.is_cuda and y.cuda() is y
    assert y.to("cuda:0") is y and x.to("cpu") is x
    (y * y).sum().backward()
    assert type(x.grad.data) is np.ndarray
    np.testing.assert_array_equal(x.grad.data, 2 * x.data)
    z = y.to("cpu", np.float64)
    assert type(z.data) is np.ndarray and z.dtype == np.float64
    assert x.to(np.float64).dtype == np.float64 and x.to(y).is_cuda  # a dtype, a tensor
    with pytest.raises(TypeError, match=r"\.cpu\(\)"):
        y.numpy()
    assert "device='cuda:0'" in repr(y)


def test_constants_and_new_tensors_join_the_device(cuda):
    x = Tensor(np.ones(3, dtype=np.float32)).cuda()
    for y in (x * 2.0, 1.0 - x, x / np.float32(3), ag.where(x > 0, x, 0.0), x.clip(0, 0.5), x.softmax(-1)):
        assert is_device(y.data)
    z = Tensor(np.ones((4, 3), dtype=np.float32)).cuda().requires_grad_()  # a leaf on the device
    with fakecupy.watch_tensors() as leaks:  # host ids and targets meeting a device table and logits move over
        F.cross_entropy(z, np.array([0, 1, 2, 0])).backward()
        F.embedding(np.array([[0, 2]]), z).sum().backward()
    assert leaks == [] and is_device(z.grad.data)


def test_init_draws_on_the_device(cuda):
    w = Tensor(np.zeros((64, 32), dtype=np.float32)).cuda()
    with fakecupy.watch_tensors() as leaks:
        for fill in (nn.init.normal_, nn.init.uniform_, nn.init.xavier_uniform_, nn.init.trunc_normal_):
            fill(w)
            assert is_device(w.data) and float(abs(w.data).sum()) > 0
    assert leaks == []


def test_creation_on_a_device(cuda):
    for t in (ag.zeros(2, 3, device="cuda"), ag.ones(4, device="cuda:0"), ag.full((2,), 7.0, device="cuda"),
              ag.arange(5, device="cuda"), ag.randn(3, 4, device="cuda"), ag.rand(3, device="cuda")):  # fmt: skip
        assert is_device(t.data) and t.device == "cuda:0"
    x = ag.randn(2, 2, device="cuda")
    for t in (ag.zeros_like(x), ag.ones_like(x), ag.full_like(x, 3.0), ag.randn_like(x), ag.rand_like(x)):
        assert is_device(t.data)  # *_like: where x is
    assert type(ag.zeros_like(x, device="cpu").data) is np.ndarray and type(ag.zeros(2).data) is np.ndarray
    ag.manual_seed(4)
    a = ag.randn(5, device="cuda")
    ag.manual_seed(4)
    np.testing.assert_array_equal(cuda.asnumpy(a.data), cuda.asnumpy(ag.randn(5, device="cuda").data))


def test_get_batch_gathers_where_the_tokens_are(cuda):
    from numpy2gpt.gpt.data import get_batch

    tokens = np.arange(500, dtype=np.uint16) % 37
    x, y = get_batch(tokens, 4, 16, rng=np.random.default_rng(3))
    xd, yd = get_batch(cuda.asarray(tokens), 4, 16, rng=np.random.default_rng(3))
    assert type(x) is np.ndarray and is_device(xd) and is_device(yd) and xd.dtype == np.int64
    np.testing.assert_array_equal(cuda.asnumpy(xd), x)
    np.testing.assert_array_equal(cuda.asnumpy(yd), y)


def test_device_names():
    assert as_device("cuda") == Device("cuda", 0) == "cuda:0" and str(as_device("cuda:1")) == "cuda:1"
    assert as_device("CPU") == "cpu"
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        as_device("tpu")
    a = np.ones(2)
    assert to_device(a, "cpu") is a and get_array_module(a) is np


def test_cuda_without_cupy_is_one_clear_line():
    try:
        import cupy  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("CuPy is installed here: the missing-CuPy message cannot be shown")
    with pytest.raises(DeviceUnavailableError, match=r"needs CuPy.*pip install 'numpy2gpt-autograd\[cuda12\]'"):
        Tensor(np.ones(2)).cuda()
    with pytest.raises(DeviceUnavailableError, match="needs CuPy"):
        GPT(CFG).to("cuda")


def test_cli_device_cuda_without_cupy_is_one_line(tmp_path, capsys):
    pytest.importorskip("numpy2gpt.gpt.cli")
    try:
        import cupy  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("CuPy is installed here: the missing-CuPy message cannot be shown")
    from numpy2gpt.gpt import cli

    assert cli.main(["train", "--device", "cuda", "--out-dir", str(tmp_path), "--max-iters", "1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "needs CuPy" in err and err.startswith("numpy2gpt train: error:")
    assert cli.main(["sample", "--device", "cuda", "--out-dir", str(tmp_path)]) == 1
    assert "needs CuPy" in capsys.readouterr().err


def test_cli_trains_samples_and_evaluates_on_the_device(cuda, tmp_path, capsys):
    from numpy2gpt.gpt import cli

    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 200, encoding="utf-8")
    out = str(tmp_path / "run")
    small = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4"]
    argv = ["train", "--device", "cuda", "--data-file", str(text), "--out-dir", out, "--max-iters", "6",
            "--eval-interval", "3", "--eval-iters", "2", "--no-progress", "--no-plot", "--dropout", "0.1",
            "--num-sample-tokens", "10", *small]  # fmt: skip
    moved = []
    real_to = GPT.to
    GPT.to = lambda self, *a, **k: moved.append(str(a[0])) or real_to(self, *a, **k)
    try:
        assert cli.main(argv) == 0
        assert cli.main(["sample", "--device", "cuda", "--out-dir", out, "--max-new-tokens", "20"]) == 0
        assert cli.main(["eval", "--device", "cuda", "--out-dir", out]) == 0
    finally:
        GPT.to = real_to
    assert moved == ["cuda:0"] * 3  # each command ran its model on the device (steps themselves: tests above)
    ckpt = nn.load(tmp_path / "run" / "ckpt.n2g")
    assert all(type(v) is np.ndarray for v in ckpt["model"].values())
    assert cli.main(["sample", "--out-dir", out, "--max-new-tokens", "5"]) == 0  # the GPU run samples on a CPU


def test_cpu_training_never_imports_cupy():
    code = (
        "import sys, numpy as np\n"
        "import numpy2gpt.autograd, numpy2gpt.nn, numpy2gpt.gpt, numpy2gpt.gpt.cli, numpy2gpt.gpt.train\n"
        "from numpy2gpt.gpt.model import GPT, GPTConfig\n"
        "m = GPT(GPTConfig(block_size=8, vocab_size=16, n_layer=1, n_head=2, n_embd=8, dropout=0.1))\n"
        "opt = m.configure_optimizers(weight_decay=0.1, learning_rate=1e-3, betas=(0.9, 0.95))\n"
        "x = np.zeros((2, 8), dtype=np.int64)\n"
        "_, loss = m(x, x); loss.backward(); opt.step(); m.generate(x[:, :2], 3)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('cupy', 'cupyx', 'torch'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
