"""Random stacks of nn layers against torch.nn: the same Sequential built in both libraries (Embedding or not
first, then Linear with or without bias, LayerNorm with or without affine/bias, activations, Dropout in eval
mode), PyTorch's state dict loaded by name into numpy2gpt's, then outputs and every parameter's gradient
compared, in float32 and float64; parameter names, shapes and the state dict's keys must be PyTorch's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("hypothesis")

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import numpy2gpt.nn as nn  # noqa: E402
from numpy2gpt.autograd import Tensor  # noqa: E402
from tests.property.differential import assert_close  # noqa: E402
from tests.property.strategies import FLOATS, arrays, budget, shapes  # noqa: E402

TNN = torch.nn
ACTIVATIONS = {
    "ReLU": (nn.ReLU, TNN.ReLU),
    "GELU": (nn.GELU, TNN.GELU),
    "GELU-tanh": (lambda: nn.GELU("tanh"), lambda: TNN.GELU("tanh")),
    "Tanh": (nn.Tanh, TNN.Tanh),
    "SiLU": (nn.SiLU, TNN.SiLU),
    "LeakyReLU": (lambda: nn.LeakyReLU(0.2), lambda: TNN.LeakyReLU(0.2)),
    "Dropout": (lambda: nn.Dropout(0.5), lambda: TNN.Dropout(0.5)),
}


@st.composite
def stacks(draw: Any) -> tuple[list[tuple[Any, ...]], int, int | None]:
    """Layer specs, the input width, and the vocabulary size when an Embedding comes first."""
    vocab = draw(st.none() | st.integers(1, 6))
    width = in_width = draw(st.integers(1, 5))
    layers: list[tuple[Any, ...]] = [("Embedding", vocab, width)] if vocab else []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["Linear", "LayerNorm", "activation"]))
        if kind == "Linear":
            out = draw(st.integers(1, 5))
            layers.append(("Linear", width, out, draw(st.booleans())))
            width = out
        elif kind == "LayerNorm":
            layers.append(("LayerNorm", width, draw(st.booleans()), draw(st.booleans())))
        else:
            layers.append(("activation", draw(st.sampled_from(sorted(ACTIVATIONS)))))
    return layers, in_width, vocab


def build(spec: list[tuple[Any, ...]], dtype: Any, ours: bool) -> Any:
    mods = []
    for layer in spec:
        if layer[0] == "Embedding":
            mods.append(nn.Embedding(*layer[1:], dtype=dtype) if ours else TNN.Embedding(*layer[1:]))
        elif layer[0] == "Linear":
            n_in, n_out, bias = layer[1:]
            mods.append(nn.Linear(n_in, n_out, bias, dtype=dtype) if ours else TNN.Linear(n_in, n_out, bias))
        elif layer[0] == "LayerNorm":
            _, n, affine, bias = layer
            mods.append(nn.LayerNorm(n, elementwise_affine=affine, bias=bias, dtype=dtype) if ours
                        else TNN.LayerNorm(n, elementwise_affine=affine, bias=bias))  # fmt: skip
        else:
            mods.append(ACTIVATIONS[layer[1]][0 if ours else 1]())
    model = nn.Sequential(*mods) if ours else TNN.Sequential(*mods)
    return model if ours else model.to(torch.float64 if dtype == np.float64 else torch.float32)


@given(st.data())
@budget(80)
def test_sequential_stack(data: Any) -> None:
    spec, width, vocab = data.draw(stacks(), "layers")
    dtype = data.draw(st.sampled_from(FLOATS), "dtype")
    torch.manual_seed(0)
    theirs, ours = build(spec, dtype, False), build(spec, dtype, True)
    theirs.eval()
    ours.eval()
    their_state = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    assert sorted(ours.state_dict()) == sorted(their_state), "state dict keys"
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()], "parameter names"
    ours.load_state_dict(their_state)
    lead = data.draw(shapes(max_dims=2, max_side=3), "leading shape")
    if vocab:
        ids = np.random.default_rng(data.draw(st.integers(0, 99))).integers(0, vocab, lead)
        x, xt = ids, torch.from_numpy(ids)
    else:
        a = data.draw(arrays((*lead, width), dtype), "x")
        x, xt = Tensor(a), torch.tensor(np.array(a))
    y, yt = ours(x), theirs(xt)
    assert_close(y, yt, "output", scale=20)
    if not list(theirs.parameters()):  # activations only: nothing to differentiate
        return
    g = np.random.default_rng(1).standard_normal(tuple(yt.shape)).astype(dtype)
    (y * Tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    for (name, p), (_, tp) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        zero = np.zeros(p.shape, p.dtype)
        assert_close(zero if p.grad is None else p.grad, zero if tp.grad is None else tp.grad, name, scale=20)
