"""GPT.generate and the KV cache: shapes, seeding, greedy/top-k/top-p/temperature sampling, stop tokens, and the
cached path giving exactly the tokens of nanoGPT's recompute-everything path, also after the context slides."""

from __future__ import annotations

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.gpt.kv_cache import KVCache, LayerKVCache
from numpy2gpt.gpt.model import GPT, GPTConfig
from numpy2gpt.gpt.sampling import sample_from_logits

TINY = dict(block_size=16, vocab_size=50, n_layer=2, n_head=2, n_embd=32, dropout=0.0, bias=True)


@pytest.fixture(scope="module")
def model() -> GPT:
    """A tiny GPT with larger-than-init weights, so that its next-token distributions are far from flat."""
    ag.manual_seed(0)
    m = GPT(GPTConfig(**TINY))
    rng = np.random.default_rng(0)
    for p in m.parameters():
        if p.ndim >= 2:
            p.data = (rng.standard_normal(p.shape) * 0.3).astype(np.float32)
    return m


def prompt(batch: int = 1, length: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 50, size=(batch, length))


def greedy_reference(model: GPT, idx: np.ndarray, n: int) -> np.ndarray:
    """Greedy decoding written out with the plain forward pass, cropping to block_size like nanoGPT."""
    idx = idx.copy()
    with ag.no_grad():
        for _ in range(n):
            logits, _ = model(idx[:, -model.config.block_size :])
            idx = np.concatenate([idx, logits.data[:, -1].argmax(-1)[:, None]], axis=1)
    return idx


def test_shapes_dtype_and_prompt_kept(model):
    p = prompt(batch=3, length=4)
    out = model.generate(p, max_new_tokens=7)
    assert isinstance(out, ag.Tensor) and out.shape == (3, 11) and out.dtype == np.int64
    np.testing.assert_array_equal(out.data[:, :4], p)
    assert out.data.min() >= 0 and out.data.max() < 50
    assert out.creator is None and not out.requires_grad
    np.testing.assert_array_equal(model.generate(p, max_new_tokens=0).data, p)


def test_same_seed_same_sample(model):
    p = prompt(batch=2)
    a = model.generate(p, 20, generator=np.random.default_rng(1)).data
    b = model.generate(p, 20, generator=np.random.default_rng(1)).data
    c = model.generate(p, 20, generator=np.random.default_rng(2)).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    ag.manual_seed(5)  # without a generator: the default generator, fixed by manual_seed
    d = model.generate(p, 20).data
    ag.manual_seed(5)
    e = model.generate(p, 20).data
    np.testing.assert_array_equal(d, e)


@pytest.mark.parametrize("use_cache", [True, False])
def test_temperature_zero_and_top_k_one_are_greedy(model, use_cache):
    p = prompt(batch=2)
    expected = greedy_reference(model, p, 12)
    np.testing.assert_array_equal(model.generate(p, 12, temperature=0.0, use_cache=use_cache).data, expected)
    topk1 = model.generate(p, 12, temperature=1.5, top_k=1, use_cache=use_cache, generator=np.random.default_rng(3))
    np.testing.assert_array_equal(topk1.data, expected)


@pytest.mark.parametrize("batch", [1, 2])
def test_cached_greedy_equals_uncached_well_past_block_size(model, batch):
    p = prompt(batch=batch, length=5, seed=batch)
    cached = model.generate(p, 40, temperature=0.0, use_cache=True).data  # 45 tokens, context 16
    uncached = model.generate(p, 40, temperature=0.0, use_cache=False).data
    np.testing.assert_array_equal(cached, uncached)
    np.testing.assert_array_equal(cached, greedy_reference(model, p, 40))


def test_cached_sampling_equals_uncached_sampling(model):
    p = prompt(batch=2, length=3)
    kw = dict(temperature=0.9, top_k=20, top_p=0.95)
    cached = model.generate(p, 30, use_cache=True, generator=np.random.default_rng(11), **kw).data
    uncached = model.generate(p, 30, use_cache=False, generator=np.random.default_rng(11), **kw).data
    np.testing.assert_array_equal(cached, uncached)


def test_prompt_longer_than_block_size_is_cropped(model):
    p = prompt(length=25)
    out = model.generate(p, 6, temperature=0.0).data
    np.testing.assert_array_equal(out[:, :25], p)
    np.testing.assert_array_equal(out, greedy_reference(model, p, 6))


def test_cached_step_logits_equal_the_full_forward(model):
    p = prompt(batch=2, length=9, seed=4)
    cache = model.make_kv_cache(batch_size=2)
    model.eval()
    first = model.forward_cached(p[:, :6], cache)
    assert cache.length == 6 and first.shape == (2, 50)
    with ag.no_grad():
        np.testing.assert_allclose(first.data, model(p[:, :6])[0].data[:, -1], rtol=1e-5, atol=1e-5)
        for t in range(6, 9):
            step = model.forward_cached(p[:, t : t + 1], cache)
            np.testing.assert_allclose(step.data, model(p[:, : t + 1])[0].data[:, -1], rtol=1e-5, atol=1e-5)
    assert cache.length == 9
    model.train()


def test_each_cached_step_runs_one_position_until_the_window_slides(model, monkeypatch):
    """The work per step: the prompt once, then one position per token while it fits in block_size (16), then
    the whole cropped context per token once the window slides (the exact rule; see GPT.generate)."""
    seen = []
    c_attn = model.transformer.h[0].attn.c_attn
    original = c_attn.forward
    monkeypatch.setattr(c_attn, "forward", lambda x: (seen.append(x.shape[1]), original(x))[1])
    model.generate(prompt(length=5), 14, temperature=0.0)
    assert seen == [5] + [1] * 11 + [16, 16]  # prompt 5 -> 16 tokens in 12 steps, then two slides


def test_stop_token_stops_and_pads(model):
    p = prompt(batch=1)
    free = model.generate(p, 20, temperature=0.0).data[0, 5:]
    stop = int(free[3])
    first = int(np.flatnonzero(free == stop)[0])
    out = model.generate(p, 20, temperature=0.0, stop_token=stop).data
    np.testing.assert_array_equal(out[0], np.concatenate([p[0], free[: first + 1]]))  # ends with the stop token
    # a batch runs until every row has stopped; a row that stopped earlier is padded with the stop token
    pair = np.concatenate([p, prompt(seed=9)])
    free2 = model.generate(pair, 20, temperature=0.0).data[:, 5:]
    hits = [np.flatnonzero(row == stop) for row in free2]
    assert hits[0][0] == first
    end = 1 + max(h[0] if h.size else 19 for h in hits)
    out2 = model.generate(pair, 20, temperature=0.0, stop_token=stop).data
    assert out2.shape == (2, 5 + end)
    for row, free_row, h in zip(out2[:, 5:], free2, hits, strict=True):
        stop_at = h[0] if h.size else end
        np.testing.assert_array_equal(row[: stop_at + 1], free_row[: min(stop_at + 1, end)])
        assert np.all(row[stop_at:] == stop) or not h.size


def test_generate_works_in_float64_and_leaves_the_prompt_alone(model):
    m64 = GPT(GPTConfig(**TINY))
    m64.load_state_dict(model.state_dict())
    m64.double()
    p = prompt(batch=2)
    before = p.copy()
    cached = m64.generate(p, 30, temperature=0.0).data
    np.testing.assert_array_equal(cached, m64.generate(p, 30, temperature=0.0, use_cache=False).data)
    np.testing.assert_array_equal(p, before)
    assert m64.make_kv_cache(2).layers[0].k.dtype == np.float64


@pytest.mark.parametrize("training", [True, False])
def test_generate_restores_the_training_flag_and_grad_mode(model, training):
    model.train(training)
    model.generate(prompt(), 3)
    assert all(m.training == training for m in model.modules())
    assert ag.is_grad_enabled()
    model.train()


def test_generate_rejects_bad_arguments(model):
    p = prompt()
    with pytest.raises(ValueError, match="temperature"):
        model.generate(p, 3, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k"):
        model.generate(p, 3, top_k=0)
    with pytest.raises(ValueError, match="top_p"):
        model.generate(p, 3, top_p=1.5)
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(p, -1)
    with pytest.raises(IndexError, match=r"\[77\]"):
        model.generate(np.array([[1, 77]]), 3)


def frequencies(logits: np.ndarray, n: int = 40000, **kw) -> np.ndarray:
    rows = np.repeat(logits[None], n, axis=0)
    ids = sample_from_logits(rows, generator=np.random.default_rng(0), **kw)
    return np.bincount(ids, minlength=logits.size) / n


def test_sampling_follows_softmax_with_temperature():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float32))
    np.testing.assert_allclose(frequencies(logits), [0.5, 0.3, 0.15, 0.05], atol=0.01)
    hot = np.exp(np.log([0.5, 0.3, 0.15, 0.05]) / 2.0)
    np.testing.assert_allclose(frequencies(logits, temperature=2.0), hot / hot.sum(), atol=0.01)
    assert np.array_equal(sample_from_logits(np.stack([logits, logits[::-1]]), temperature=0.0), [0, 3])


def test_top_k_and_top_p_filter():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    np.testing.assert_allclose(frequencies(logits, top_k=2), [0.625, 0.375, 0, 0], atol=0.01)
    # top_p keeps the smallest set of most likely tokens whose probability reaches top_p
    np.testing.assert_allclose(frequencies(logits, top_p=0.5), [1, 0, 0, 0])
    np.testing.assert_allclose(frequencies(logits, top_p=0.6), [0.625, 0.375, 0, 0], atol=0.01)
    np.testing.assert_allclose(frequencies(logits, top_p=0.9), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0], atol=0.01)
    np.testing.assert_allclose(frequencies(logits, top_p=1.0), [0.5, 0.3, 0.15, 0.05], atol=0.01)
    # both at once: top_k first, then top_p of what is left (0.625, 0.375 -> 0.6 keeps the first only)
    np.testing.assert_allclose(frequencies(logits, top_k=2, top_p=0.6), [1, 0, 0, 0])


def test_kv_cache_buffers_are_preallocated_and_refuse_overflow():
    cache = KVCache(n_layer=2, batch_size=1, n_head=2, max_len=4, head_dim=3, dtype=np.float32)
    layer = cache.layers[0]
    k_buf = layer.k
    k, _ = layer.append(np.ones((1, 2, 3, 3), np.float32), np.zeros((1, 2, 3, 3), np.float32))
    assert k.shape == (1, 2, 3, 3) and np.shares_memory(k, k_buf) and layer.k is k_buf
    assert cache.length == 3
    with pytest.raises(ValueError, match="KV cache is full"):
        layer.append(np.ones((1, 2, 2, 3), np.float32), np.ones((1, 2, 2, 3), np.float32))
    cache.reset()
    assert cache.length == 0 and layer.k is k_buf


def test_the_cache_refuses_to_run_with_grad_enabled(model):
    x = ag.randn(1, 2, 32)
    with pytest.raises(RuntimeError, match="no_grad"):
        model.transformer.h[0](x, LayerKVCache(1, 2, 16, 16, np.float32))


def test_forward_cached_refuses_more_tokens_than_the_cache_holds(model):
    cache = model.make_kv_cache(1)
    model.eval()
    model.forward_cached(prompt(length=12), cache)
    with pytest.raises(ValueError, match="12 are already cached"):
        model.forward_cached(prompt(length=5), cache)
    model.train()


def test_forward_cached_refuses_dropout_in_training_mode():
    ag.manual_seed(0)
    m = GPT(GPTConfig(**{**TINY, "dropout": 0.1}))
    with pytest.raises(RuntimeError, match=r"model.eval\(\)"):
        m.forward_cached(prompt(), m.make_kv_cache(1))
    m.eval()
    assert m.forward_cached(prompt(), m.make_kv_cache(1)).shape == (1, 50)


def test_generate_stream_yields_generates_tokens_and_leaves_the_caller_alone(model):
    p = prompt(batch=2)
    expected = model.generate(p, 25, temperature=0.8, generator=np.random.default_rng(4)).data[:, 5:]
    model.train()
    stream = model.generate_stream(p, 25, temperature=0.8, generator=np.random.default_rng(4))
    steps = []
    for ids in stream:
        # between steps the caller's world is as it was: grad mode on, the model in training mode
        assert ag.is_grad_enabled() and model.training
        steps.append(ids)
    np.testing.assert_array_equal(np.stack(steps, axis=1), expected)
    with pytest.raises(ValueError, match="top_p"):  # arguments are checked at the call, not at the first step
        model.generate_stream(p, 3, top_p=0.0)
