"""The GPT on random small configurations against PyTorch, and its KV cache against its own full forward.

benchmarks/torch_reference.py is nanoGPT's model in PyTorch with numpy2gpt's parameter names; its weights are
copied by name into numpy2gpt's GPT (fused and composed kernels alike), in float64 (float32 differs by design
in c_attn's key bias, whose true gradient is 0: tests/gpt/test_torch_parity.py explains). Logits, loss and
every parameter's gradient are compared for 1 to 2 layers, 1 to 3 heads, head sizes 1 to 3, tiny vocabularies
and any sequence length up to block_size. Then the KV cache: feeding the tokens in random chunks through
``forward_cached`` gives, after each chunk, the last logits of the full forward over the prefix.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hypothesis")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from numpy2gpt.gpt.model import GPT, GPTConfig  # noqa: E402
from tests.property.differential import assert_close  # noqa: E402
from tests.property.strategies import budget  # noqa: E402

REFERENCE = Path(__file__).resolve().parents[2] / "benchmarks" / "torch_reference.py"


def reference() -> Any:
    """benchmarks/torch_reference.py, imported by path (benchmarks/ is not a package)."""
    name = "numpy2gpt_torch_reference"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REFERENCE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@st.composite
def configs(draw: Any) -> dict[str, Any]:
    n_head = draw(st.integers(1, 3))
    return {"block_size": draw(st.integers(1, 6)), "vocab_size": draw(st.integers(1, 12)),
            "n_layer": draw(st.integers(1, 2)), "n_head": n_head, "n_embd": n_head * draw(st.integers(1, 3)),
            "dropout": 0.0, "bias": draw(st.booleans())}  # fmt: skip


def pair(cfg: dict[str, Any], fused: bool) -> tuple[Any, GPT]:
    ref = reference()
    torch.manual_seed(0)
    theirs = ref.GPT(ref.GPTConfig(**cfg)).to(torch.float64)
    ours = GPT(GPTConfig(**cfg, fused=fused))
    state = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    for name, p in ours.named_parameters():
        p.data = state[name].copy()
    return theirs, ours


@given(st.data())
@budget(30)
def test_gpt_against_pytorch(data: Any) -> None:
    cfg = data.draw(configs(), "config")
    theirs, ours = pair(cfg, data.draw(st.booleans(), "fused"))
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    shape = (data.draw(st.integers(1, 2), "batch"), data.draw(st.integers(1, cfg["block_size"]), "T"))
    idx, targets = rng.integers(0, cfg["vocab_size"], shape), rng.integers(0, cfg["vocab_size"], shape)
    logits, loss = ours(idx, targets)
    tlogits, tloss = theirs(torch.from_numpy(idx), torch.from_numpy(targets))
    assert_close(logits, tlogits, "logits", scale=100)
    assert_close(loss, tloss, "loss", scale=100)
    loss.backward()
    tloss.backward()
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, tparams[name].grad, f"{name}.grad", scale=1000)


@given(st.data())
@budget(30)
def test_kv_cache_equals_full_forward(data: Any) -> None:
    cfg = data.draw(configs(), "config")
    model = GPT(GPTConfig(**cfg, fused=data.draw(st.booleans(), "fused")))
    model.eval()
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    batch, total = data.draw(st.integers(1, 2), "batch"), data.draw(st.integers(1, cfg["block_size"]), "tokens")
    idx = rng.integers(0, cfg["vocab_size"], (batch, total))
    cache, start = model.make_kv_cache(batch), 0
    while start < total:
        end = data.draw(st.integers(start + 1, total), "chunk end")
        last = model.forward_cached(idx[:, start:end], cache)
        full, _ = model(idx[:, :end])
        assert_close(last, full.data[:, -1], f"logits after token {end}", scale=100)
        start = end
