"""numpy2gpt.gpt.model: nanoGPT's parameters and init, the forward pass and its errors, learning, gradients,
model surgery and the optimizer groups. Generation and the KV cache are in test_generate.py."""

# ruff: noqa: N806 - nanoGPT's shape names (V, T, C, L, N)

from __future__ import annotations

import math

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.gpt.model import GPT, GPTConfig

TINY = dict(block_size=16, vocab_size=50, n_layer=2, n_head=2, n_embd=32, dropout=0.0, bias=True)


def tiny(seed: int = 0, **overrides) -> GPT:
    ag.manual_seed(seed)
    return GPT(GPTConfig(**{**TINY, **overrides}))


def expected_names(n_layer: int, bias: bool) -> list[str]:
    names = ["transformer.wte.weight", "transformer.wpe.weight"]
    suffixes = ["weight", "bias"] if bias else ["weight"]
    for i in range(n_layer):
        for module in ("ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj"):
            names += [f"transformer.h.{i}.{module}.{s}" for s in suffixes]
    names += [f"transformer.ln_f.{s}" for s in suffixes]
    return names


@pytest.mark.parametrize("bias", [True, False])
def test_parameter_names_shapes_and_count_are_nanogpts(bias):
    model = tiny(bias=bias)
    params = dict(model.named_parameters())
    assert list(params) == expected_names(2, bias)  # lm_head.weight is the tied wte weight: listed once
    assert model.lm_head.weight is model.transformer.wte.weight
    V, T, C, L = 50, 16, 32, 2
    assert params["transformer.h.0.attn.c_attn.weight"].shape == (3 * C, C)
    assert params["transformer.h.1.mlp.c_fc.weight"].shape == (4 * C, C)
    assert params["transformer.h.1.mlp.c_proj.weight"].shape == (C, 4 * C)
    per_layer = 12 * C * C + (13 * C if bias else 2 * C)  # 4 Linears (+ biases) and 2 LayerNorms
    total = V * C + T * C + L * per_layer + (2 * C if bias else C)
    assert sum(p.size for p in model.parameters()) == total
    assert model.num_params(non_embedding=False) == total
    assert model.num_params() == total - T * C  # position embeddings left out, as nanoGPT
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_init_statistics_follow_gpt2():
    ag.manual_seed(0)
    model = GPT(GPTConfig(block_size=64, vocab_size=256, n_layer=4, n_head=4, n_embd=128))
    scaled = 0.02 / math.sqrt(2 * 4)
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            assert abs(p.data.std() / scaled - 1) < 0.05, name
        elif name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            assert np.all(p.data == 1.0), name
        elif name.endswith("bias"):
            assert np.all(p.data == 0.0), name
        else:  # c_attn, c_fc, wte (= lm_head) and wpe weights
            assert abs(p.data.std() / 0.02 - 1) < 0.05, name
            assert abs(p.data.mean()) < 0.002, name


def test_same_seed_same_model_and_other_seed_other_model():
    a, b, c = tiny(seed=7), tiny(seed=7), tiny(seed=8)
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters(), strict=True):
        np.testing.assert_array_equal(pa.data, pb.data, err_msg=name)
        if pa.data.std() > 0:
            assert not np.array_equal(pa.data, pc.data), name


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_embd=30, n_head=4), "divisible by n_head"),
        (dict(n_layer=0), "n_layer must be a positive integer"),
        (dict(vocab_size=-3), "vocab_size must be a positive integer"),
        (dict(block_size=2.5), "block_size must be a positive integer"),
        (dict(dropout=1.0), "dropout"),
        (dict(gelu_approximate="fast"), "gelu_approximate"),
    ],
)
def test_config_is_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GPTConfig(**kwargs)


def test_config_defaults_are_the_shakespeare_char_cpu_model():
    c = GPTConfig()
    assert (c.block_size, c.vocab_size, c.n_layer, c.n_head, c.n_embd, c.dropout, c.bias) == (
        64, 65, 4, 4, 128, 0.0, True
    )  # fmt: skip


def test_forward_shapes_and_initial_loss_is_uniform_guess():
    model = tiny()
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 50, size=(4, 16))
    targets = rng.integers(0, 50, size=(4, 16))
    logits, loss = model(idx, targets)
    assert logits.shape == (4, 16, 50) and logits.dtype == np.float32
    assert loss.shape == () and loss.dtype == np.float32
    # small init: the logits are nearly flat, so the loss is about ln(V)
    assert abs(loss.item() - math.log(50)) < 0.05
    # the loss is the mean cross-entropy of the logits (checked in float64 NumPy)
    z = logits.data.astype(np.float64)
    logp = z - z.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    ref = -np.take_along_axis(logp, targets[..., None], -1).mean()
    assert abs(loss.item() - ref) < 1e-5
    # shorter sequences work too, and without targets there is no loss
    logits, loss = model(idx[:, :5])
    assert logits.shape == (4, 5, 50) and loss is None


def test_causality_future_tokens_do_not_change_past_logits():
    model = tiny()
    idx = np.random.default_rng(1).integers(0, 50, size=(2, 12))
    other = idx.copy()
    other[:, 7:] = (other[:, 7:] + 1) % 50
    a, _ = model(idx)
    b, _ = model(other)
    np.testing.assert_allclose(a.data[:, :7], b.data[:, :7], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a.data[:, 7:], b.data[:, 7:])


def test_targets_minus_one_are_ignored():
    model = tiny()
    rng = np.random.default_rng(2)
    idx = rng.integers(0, 50, size=(2, 8))
    targets = rng.integers(0, 50, size=(2, 8))
    masked = targets.copy()
    masked[0, 3:] = -1
    logits, loss = model(idx, masked)
    z = logits.data.astype(np.float64)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    keep = masked != -1
    ref = -logp[keep, targets[keep]].mean()
    assert abs(loss.item() - ref) < 1e-5


def test_forward_errors_name_the_problem():
    model = tiny()
    with pytest.raises(ValueError, match=r"17 tokens.*block_size\) holds only 16.*idx\[:, -16:\]"):
        model(np.zeros((1, 17), dtype=np.int64))
    with pytest.raises(IndexError, match=r"token ids \[-1, 50, 99\] are outside the vocabulary \[0, 50\)"):
        model(np.array([[1, 50, 2, -1, 99]]))
    with pytest.raises(TypeError, match="integer token ids, got dtype float32"):
        model(np.zeros((1, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"shape \(batch, time\), got shape \(4,\)"):
        model(np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match="targets must have the shape of idx"):
        model(np.zeros((2, 4), dtype=np.int64), np.zeros((2, 3), dtype=np.int64))
    # a Tensor of ids works like an array
    logits, _ = model(ag.Tensor(np.array([[1, 2, 3]])))
    assert logits.shape == (1, 3, 50)


def test_dropout_is_random_in_training_and_off_in_eval():
    model = tiny(dropout=0.2)
    idx = np.random.default_rng(3).integers(0, 50, size=(2, 8))
    a, _ = model(idx)
    b, _ = model(idx)
    assert not np.allclose(a.data, b.data)
    model.eval()
    c, _ = model(idx)
    d, _ = model(idx)
    np.testing.assert_array_equal(c.data, d.data)


def test_overfits_one_batch():
    ag.manual_seed(0)
    model = GPT(GPTConfig(block_size=16, vocab_size=50, n_layer=2, n_head=2, n_embd=32))
    rng = np.random.default_rng(4)
    idx = rng.integers(0, 50, size=(4, 16))
    targets = rng.integers(0, 50, size=(4, 16))  # random targets: only memorisation brings the loss down
    opt = model.configure_optimizers(weight_decay=0.0, learning_rate=1e-2, betas=(0.9, 0.99))
    losses = []
    for _ in range(150):
        _, loss = model(idx, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if losses[-1] < 0.05:
            break
    assert losses[0] > 3.5
    assert losses[-1] < 0.05, f"after {len(losses)} steps the loss is still {losses[-1]:.3f}"


def test_gradcheck_through_the_whole_model_float64():
    ag.manual_seed(0)
    model = GPT(GPTConfig(block_size=4, vocab_size=7, n_layer=2, n_head=2, n_embd=8)).double()
    idx = np.array([[1, 5, 2, 6], [0, 3, 3, 4]])
    targets = np.array([[5, 2, 6, 0], [3, 3, 4, -1]])
    h0 = model.transformer.h[0]
    # wte is used twice (input embedding and tied output layer); c_attn.bias covers q, k and v
    modules = [model.transformer.wte, model.transformer.wpe, h0.attn.c_attn, h0.ln_1, model.transformer.h[1].mlp.c_proj]
    attrs = ["weight", "weight", "bias", "weight", "bias"]
    originals = [getattr(m, a) for m, a in zip(modules, attrs, strict=True)]

    def loss_fn(*tensors):
        # put the checked tensors in place of the parameters (bypassing Module.__setattr__, which only takes
        # Parameters) so that the loss is a function of exactly these tensors
        for m, a, t in zip(modules, attrs, tensors, strict=True):
            object.__setattr__(m, a, t)
        object.__setattr__(model.lm_head, "weight", tensors[0])
        try:
            return model(idx, targets)[1]
        finally:
            for m, a, p in zip(modules, attrs, originals, strict=True):
                object.__setattr__(m, a, p)
            object.__setattr__(model.lm_head, "weight", originals[0])

    assert ag.gradcheck(loss_fn, *[p.data.copy() for p in originals], eps=1e-6, atol=1e-7, rtol=1e-4)


def test_backward_fills_every_parameter_and_the_tied_weight_gets_both_uses():
    model = tiny()
    idx = np.random.default_rng(5).integers(0, 50, size=(2, 8))
    _, loss = model(idx, idx)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and p.grad.dtype == np.float32, name
    # rows of wte for tokens that never appear in the input still get gradient from the output layer
    unused = np.setdiff1d(np.arange(50), idx)
    assert np.abs(model.transformer.wte.weight.grad.data[unused]).sum() > 0


def test_crop_block_size_keeps_the_first_positions():
    model = tiny()
    idx = np.random.default_rng(6).integers(0, 50, size=(2, 8))
    before, _ = model(idx)
    wpe = model.transformer.wpe.weight
    model.crop_block_size(8)
    assert model.config.block_size == 8
    assert model.transformer.wpe.weight is wpe and wpe.shape == (8, 32)
    assert [n for n, _ in model.named_parameters()] == expected_names(2, True)
    after, _ = model(idx)
    np.testing.assert_array_equal(before.data, after.data)
    with pytest.raises(ValueError, match="holds only 8"):
        model(np.zeros((1, 9), dtype=np.int64))
    with pytest.raises(ValueError, match=r"block_size must be in \[1, 8\]"):
        model.crop_block_size(9)
    assert len(model.generate(idx[:1, :3], 10, temperature=0.0)[0]) == 13  # generation slides within 8


def test_configure_optimizers_decays_only_matrices():
    model = tiny()
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=3e-4, betas=(0.9, 0.95))
    decay, no_decay = opt.param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = sorted(names[id(p)] for p in decay["params"])
    expected = ["transformer.wpe.weight", "transformer.wte.weight"] + [
        f"transformer.h.{i}.{m}.weight"
        for i in range(2)
        for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
    ]
    assert decayed == sorted(expected)
    assert len(no_decay["params"]) == 2 * 8 + 2  # per layer: 2 LayerNorms x (weight, bias) + 4 biases; ln_f x 2
    assert all(p.ndim == 1 for p in no_decay["params"])
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert decay["lr"] == no_decay["lr"] == 3e-4
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_flops_estimate_is_nanogpts():
    model = tiny()
    N = model.num_params()
    per_token = 6 * N + 12 * 2 * 2 * 16 * 16  # 6N + 12 L H Q T
    assert model.estimate_flops_per_token() == per_token
    assert model.estimate_flops_per_iter(fwdbwd_per_iter=8) == per_token * 16 * 8
    assert model.estimate_flops_per_second(8, dt=0.5) == per_token * 16 * 8 * 2
    assert model.estimate_mfu(8, dt=0.5, peak_flops=per_token * 16 * 8 * 4) == 0.5


def test_no_import_circles_in_gpt():
    """Every import between gpt's modules (function-local ones too) points one way: the graph has no cycle."""
    import ast
    from pathlib import Path

    import numpy2gpt.gpt

    folder = Path(numpy2gpt.gpt.__file__).parent
    graph = {}
    for path in folder.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            deps |= {n.split(".")[2] for n in names if n.startswith("numpy2gpt.gpt.") and n.count(".") == 2}
        graph[path.stem] = deps - {path.stem, "__init__"}

    def cycle_from(start, node, seen):
        for dep in graph.get(node, ()):
            if dep == start:
                return [*seen, dep]
            if dep not in seen:
                found = cycle_from(start, dep, [*seen, dep])
                if found:
                    return found
        return None

    cycles = [c for m in sorted(graph) if (c := cycle_from(m, m, [m]))]
    assert cycles == [], f"import circles: {cycles}"


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_the_composed_path_gives_the_fused_paths_logits_loss_and_gradients(approximate, monkeypatch):
    """GPTConfig(fused=False) runs layer norm, attention, GELU, cross-entropy and the head split as Tensor ops
    (nn.functional.composed): in float64 the logits, the loss and every gradient equal the fused path's."""
    import dataclasses

    import numpy2gpt.nn.functional as F  # noqa: N812

    ag.manual_seed(0)
    config = GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=8, bias=True,
                       gelu_approximate=approximate)  # fmt: skip
    fused = GPT(config).double()
    composed = GPT(dataclasses.replace(config, fused=False)).double()
    composed.load_state_dict(fused.state_dict())
    rng = np.random.default_rng(1)
    idx, targets = rng.integers(0, 11, size=(3, 8)), rng.integers(0, 11, size=(3, 8))
    targets[0, :3] = -1  # ignored positions
    logits_f, loss_f = fused(idx, targets)
    loss_f.backward()
    for name in ("layer_norm", "gelu", "scaled_dot_product_attention", "cross_entropy"):
        monkeypatch.setattr(F, name, None)  # the composed path must not touch a fused kernel
    logits_c, loss_c = composed(idx, targets)
    loss_c.backward()
    assert logits_c.dtype == np.float64
    np.testing.assert_allclose(logits_c.data, logits_f.data, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(loss_c.item(), loss_f.item(), rtol=1e-13)
    grads_f = dict(fused.named_parameters())
    for name, p in composed.named_parameters():
        np.testing.assert_allclose(p.grad, grads_f[name].grad, rtol=1e-10, atol=1e-13, err_msg=name)


def test_the_composed_path_generates_the_same_tokens():
    import dataclasses

    ag.manual_seed(3)
    config = GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=8)
    fused = GPT(config).double()
    composed = GPT(dataclasses.replace(config, fused=False)).double()
    composed.load_state_dict(fused.state_dict())
    prompt = np.array([[1, 2, 3]])
    expected = fused.generate(prompt, 12, temperature=0.0).data  # slides past block_size: cache and refill
    assert np.array_equal(composed.generate(prompt, 12, temperature=0.0).data, expected)
