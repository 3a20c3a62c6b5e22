"""The layers: init as torch, outputs and gradients against torch (float32 and float64), gradcheck of every
parameter and input in float64, dtypes, modes, reprs and error messages."""

import math

import numpy as np
import pytest

import numpy2gpt.nn as nn
from numpy2gpt.autograd import Tensor, gradcheck, manual_seed, no_grad


@pytest.fixture(autouse=True)
def _seed():
    manual_seed(0)


def call_with(module, params, *args):
    """``module(*args)`` with some parameters replaced by the given tensors for this one call (like
    ``torch.func.functional_call``), so gradcheck can differentiate with respect to them."""
    saved = []
    for name, tensor in params.items():
        path, _, attr = name.rpartition(".")
        owner = module.get_submodule(path)
        saved.append((owner, attr, owner.__dict__[attr]))
        object.__setattr__(owner, attr, tensor)  # forward reads the instance attribute
    try:
        return module(*args)
    finally:
        for owner, attr, old in saved:
            object.__setattr__(owner, attr, old)


def check_module_gradients(module, *inputs):
    """gradcheck (float64, central differences) of module's output with respect to inputs and parameters."""
    names = [n for n, _ in module.named_parameters()]
    n_in = len(inputs)

    def fn(*args):
        return call_with(module, dict(zip(names, args[n_in:], strict=True)), *args[:n_in])

    assert gradcheck(fn, *inputs, *[p.data for p in module.parameters()])


def to_torch(torch, module_ours, module_theirs):
    """Copy our parameters into the torch module (by name)."""
    theirs = dict(module_theirs.named_parameters())
    assert sorted(theirs) == sorted(n for n, _ in module_ours.named_parameters())
    with torch.no_grad():
        for name, p in module_ours.named_parameters():
            theirs[name].copy_(torch.from_numpy(p.data.copy()))


def compare_with_torch(torch, ours, theirs, x, dtype, rtol, atol):
    """Forward and backward (with a random upstream gradient) through both; outputs and all grads agree."""
    ours.to(dtype)
    theirs.to(getattr(torch, np.dtype(dtype).name))
    to_torch(torch, ours, theirs)
    x = x.astype(dtype) if x.dtype.kind == "f" else x
    xo = Tensor(x, requires_grad=x.dtype.kind == "f")
    xt = torch.tensor(x, requires_grad=x.dtype.kind == "f")
    yo, yt = ours(xo), theirs(xt)
    assert yo.dtype == dtype
    np.testing.assert_allclose(yo.data, yt.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(1).standard_normal(yo.shape).astype(dtype)
    yo.backward(g)
    yt.backward(torch.from_numpy(g))
    if x.dtype.kind == "f":
        assert xo.grad.dtype == dtype
        np.testing.assert_allclose(xo.grad.data, xt.grad.numpy(), rtol=rtol, atol=atol)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad.dtype == dtype, name
        np.testing.assert_allclose(p.grad.data, theirs_params[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name)


TOLERANCES = [(np.float32, 1e-5, 1e-5), (np.float64, 1e-12, 1e-12)]


# -- Linear -----------------------------------------------------------------------------------------------------
def test_linear_shapes_init_and_repr():
    layer = nn.Linear(300, 200)
    assert layer.weight.shape == (200, 300) and layer.bias.shape == (200,)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    bound = 1 / math.sqrt(300)  # kaiming_uniform_(a=sqrt(5)) == U(-1/sqrt(in), 1/sqrt(in))
    for p in (layer.weight, layer.bias):
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.95 * bound
    assert layer.weight.data.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert repr(layer) == "Linear(in_features=300, out_features=200, bias=True)"
    no_bias = nn.Linear(3, 2, bias=False)
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]
    assert repr(no_bias) == "Linear(in_features=3, out_features=2, bias=False)"
    y = layer(Tensor(np.ones((4, 5, 300), dtype=np.float32)))
    assert y.shape == (4, 5, 200) and y.dtype == np.float32
    assert nn.Linear(2, 2, dtype=np.float64).weight.dtype == np.float64


def test_linear_init_is_seeded():
    manual_seed(42)
    a = nn.Linear(4, 3)
    manual_seed(42)
    b = nn.Linear(4, 3)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)


@pytest.mark.parametrize(("dtype", "rtol", "atol"), TOLERANCES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(dtype, rtol, atol, bias):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 5))
    compare_with_torch(torch, nn.Linear(5, 4, bias=bias), torch.nn.Linear(5, 4, bias=bias), x, dtype, rtol, atol)


def test_linear_gradcheck():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    check_module_gradients(nn.Linear(4, 3).double(), x)
    check_module_gradients(nn.Linear(4, 2, bias=False).double(), x[0])


# -- Embedding --------------------------------------------------------------------------------------------------
def test_embedding_init_shapes_repr_and_errors():
    emb = nn.Embedding(1000, 64)
    assert emb.weight.shape == (1000, 64) and emb.weight.dtype == np.float32
    assert emb.weight.data.std() == pytest.approx(1.0, rel=0.02)  # N(0, 1) like torch
    assert abs(float(emb.weight.data.mean())) < 0.02
    assert repr(emb) == "Embedding(1000, 64)"
    idx = np.array([[1, 2, 3], [3, 2, 999]])
    y = emb(idx)
    assert y.shape == (2, 3, 64) and y.dtype == np.float32
    np.testing.assert_array_equal(y.data[1, 2], emb.weight.data[999])
    with pytest.raises(IndexError, match="1000"):
        emb(np.array([0, 1000]))
    with pytest.raises(IndexError, match="-1"):
        emb(np.array([-1]))


@pytest.mark.parametrize(("dtype", "rtol", "atol"), TOLERANCES)
def test_embedding_matches_torch(dtype, rtol, atol):
    torch = pytest.importorskip("torch")
    idx = np.array([[0, 3, 3, 1], [4, 3, 0, 0]])  # repeated ids: their gradients add up
    compare_with_torch(torch, nn.Embedding(6, 5), torch.nn.Embedding(6, 5), idx, dtype, rtol, atol)


def test_embedding_gradcheck():
    check_module_gradients(nn.Embedding(5, 3).double(), np.array([[0, 4, 4], [2, 0, 1]]))


# -- LayerNorm --------------------------------------------------------------------------------------------------
def test_layer_norm_init_options_and_repr():
    ln = nn.LayerNorm(8)
    assert (ln.weight.data == 1).all() and (ln.bias.data == 0).all() and ln.weight.dtype == np.float32
    assert repr(ln) == "LayerNorm((8,), eps=1e-05, elementwise_affine=True, bias=True)"
    no_bias = nn.LayerNorm(8, bias=False)
    assert no_bias.bias is None and [n for n, _ in no_bias.named_parameters()] == ["weight"]
    plain = nn.LayerNorm((2, 4), elementwise_affine=False)
    assert list(plain.parameters()) == []
    x = np.random.default_rng(0).standard_normal((3, 2, 4)).astype(np.float32) * 5 + 2
    y = plain(Tensor(x)).data
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.reshape(3, -1).mean(-1), 0, atol=1e-6)
    np.testing.assert_allclose(y.reshape(3, -1).std(-1), 1, rtol=1e-4)


@pytest.mark.parametrize(("dtype", "rtol", "atol"), [(np.float32, 1e-5, 2e-5), (np.float64, 1e-12, 1e-12)])
@pytest.mark.parametrize(("shape", "kwargs"), [(6, {}), (6, {"bias": False}), ((3, 6), {"eps": 1e-3})])
def test_layer_norm_matches_torch(dtype, rtol, atol, shape, kwargs):
    torch = pytest.importorskip("torch")
    ours, theirs = nn.LayerNorm(shape, **kwargs), torch.nn.LayerNorm(shape, **kwargs)
    for p in ours.parameters():  # move away from the ones/zeros init so the gradients are general
        p.data[...] = np.random.default_rng(3).standard_normal(p.shape)
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 6)) * 3 + 1
    compare_with_torch(torch, ours, theirs, x, dtype, rtol, atol)


def test_layer_norm_gradcheck():
    ln = nn.LayerNorm(5).double()
    for p in ln.parameters():
        p.data[...] = np.random.default_rng(3).standard_normal(p.shape)
    check_module_gradients(ln, np.random.default_rng(0).standard_normal((2, 3, 5)))
    check_module_gradients(nn.LayerNorm(4, bias=False).double(), np.random.default_rng(1).standard_normal((3, 4)))


# -- Dropout ----------------------------------------------------------------------------------------------------
def test_dropout_training_statistics_and_gradient():
    drop = nn.Dropout(0.25)
    assert repr(drop) == "Dropout(p=0.25, inplace=False)"
    x = Tensor(np.ones((200, 500), dtype=np.float32), requires_grad=True)
    y = drop(x)
    assert y.dtype == np.float32
    kept = y.data != 0
    assert kept.mean() == pytest.approx(0.75, abs=0.01)
    np.testing.assert_allclose(y.data[kept], 1 / 0.75, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)  # d(sum)/dx = mask / (1 - p)


def test_dropout_eval_identity_seeding_and_edges():
    x = Tensor(np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32))
    drop = nn.Dropout(0.5)
    drop.eval()
    np.testing.assert_array_equal(drop(x).data, x.data)
    drop.train()
    manual_seed(5)
    a = drop(x).data
    manual_seed(5)
    np.testing.assert_array_equal(drop(x).data, a)
    np.testing.assert_array_equal(nn.Dropout(0.0)(x).data, x.data)
    assert not nn.Dropout(1.0)(x).data.any()
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_dropout_follows_the_model_mode():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.9))
    x = Tensor(np.ones((16, 4), dtype=np.float32))
    model.eval()
    with no_grad():
        np.testing.assert_array_equal(model(x).data, model[0](x).data)
    model.train()
    assert (model(x).data == 0).mean() > 0.5


# -- activations ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("dtype", "rtol", "atol"), TOLERANCES)
@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "relu", "tanh", "leaky_relu", "leaky_relu_slope", "silu"])
def test_activations_match_torch(dtype, rtol, atol, name):
    torch = pytest.importorskip("torch")
    ours, theirs = {
        "gelu": (nn.GELU(), torch.nn.GELU()),
        "gelu_tanh": (nn.GELU(approximate="tanh"), torch.nn.GELU(approximate="tanh")),
        "relu": (nn.ReLU(), torch.nn.ReLU()),
        "tanh": (nn.Tanh(), torch.nn.Tanh()),
        "leaky_relu": (nn.LeakyReLU(), torch.nn.LeakyReLU()),
        "leaky_relu_slope": (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
        "silu": (nn.SiLU(), torch.nn.SiLU()),
    }[name]
    assert repr(ours) == repr(theirs)
    x = np.random.default_rng(0).standard_normal((3, 7)) * 3
    compare_with_torch(torch, ours, theirs, x, dtype, rtol, atol)


@pytest.mark.parametrize(
    "module", [nn.GELU(), nn.GELU("tanh"), nn.ReLU(), nn.Tanh(), nn.LeakyReLU(0.1), nn.SiLU()], ids=repr
)
def test_activations_gradcheck(module):
    x = np.random.default_rng(0).standard_normal((3, 5)) * 2
    x[np.abs(x) < 1e-3] = 0.5  # keep ReLU's kink away from the finite differences
    check_module_gradients(module, x)


@pytest.mark.parametrize(("dtype", "rtol", "atol"), TOLERANCES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_module_matches_torch(dtype, rtol, atol, reduction):
    torch = pytest.importorskip("torch")
    ours, theirs = nn.MSELoss(reduction), torch.nn.MSELoss(reduction=reduction)
    assert repr(ours) == repr(theirs) == "MSELoss()"
    r = np.random.default_rng(0)
    x, t = r.standard_normal((4, 5)).astype(dtype), r.standard_normal((4, 5)).astype(dtype)
    xo, xt = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yo, yt = ours(xo, t), theirs(xt, torch.from_numpy(t))
    assert yo.dtype == dtype
    np.testing.assert_allclose(yo.data, yt.detach().numpy(), rtol=rtol, atol=atol)
    yo.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(xo.grad.data, xt.grad.numpy(), rtol=rtol, atol=atol)
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss("avg")


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")


# -- bad input ----------------------------------------------------------------------------------------------------
def test_layers_name_bad_sizes_and_inputs():
    with pytest.raises(ValueError, match="non-negative sizes"):
        nn.Linear(-1, 2)
    with pytest.raises(ValueError, match="non-negative sizes"):
        nn.Embedding(3, -2)
    with pytest.raises(ValueError, match=r"\(4, 5\).*\(2, 3\)"):  # x's last axis is not in_features
        nn.Linear(3, 2)(Tensor(np.ones((4, 5), dtype=np.float32)))
    with pytest.raises(ValueError, match=r"\(4,\).*\(2, 5\)"):  # normalized_shape is not x's trailing shape
        nn.LayerNorm(4)(Tensor(np.ones((2, 5), dtype=np.float32)))
    with pytest.raises(TypeError, match="integers"):
        nn.Embedding(5, 3)(np.array([0.5]))


# -- a small model, end to end ----------------------------------------------------------------------------------
def test_small_model_matches_torch_repr_names_and_gradients():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(
        nn.Embedding(10, 8), nn.LayerNorm(8), nn.Linear(8, 16), nn.GELU("tanh"), nn.Dropout(0.1), nn.Linear(16, 10)
    )
    theirs = torch.nn.Sequential(
        torch.nn.Embedding(10, 8), torch.nn.LayerNorm(8), torch.nn.Linear(8, 16), torch.nn.GELU("tanh"),
        torch.nn.Dropout(0.1), torch.nn.Linear(16, 10),
    )  # fmt: skip
    assert repr(ours) == repr(theirs)
    for shape, kwargs in [(8, {}), (8, {"bias": False}), ((2, 3), {"elementwise_affine": False, "eps": 1e-3})]:
        assert repr(nn.LayerNorm(shape, **kwargs)) == repr(torch.nn.LayerNorm(shape, **kwargs))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.eval()
    theirs.eval()
    idx = np.array([[1, 2, 3, 9], [0, 0, 5, 2]])
    compare_with_torch(torch, ours, theirs, idx, np.float64, 1e-12, 1e-12)
    # our state dict loads into torch by name, and torch's into ours
    theirs.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()})
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
