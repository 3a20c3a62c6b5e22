"""Module: registration, names (as torch prints them), tied parameters, modes, state_dict and its errors, repr."""

import copy

import numpy as np
import pytest

import numpy2gpt.nn as nn
from numpy2gpt.autograd import Tensor


class Affine(nn.Module):
    """A layer made of raw Parameters only, so these tests need nothing but Module."""

    def __init__(self, n_in, n_out, bias=True):
        super().__init__()
        self.weight = nn.Parameter(np.arange(n_out * n_in, dtype=np.float32).reshape(n_out, n_in) / 10)
        if bias:
            self.bias = nn.Parameter(np.zeros(n_out, dtype=np.float32))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias

    def extra_repr(self):
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}"


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln = Affine(3, 3)
        self.mlp = nn.Sequential(Affine(3, 4), Affine(4, 3, bias=False))
        self.register_buffer("mask", np.tril(np.ones((2, 2), dtype=bool)))
        self.register_buffer("cache", np.zeros(3, dtype=np.float32), persistent=False)


class Net(nn.Module):
    """nanoGPT's shape in miniature: a ModuleDict of embedding, a ModuleList of blocks, a tied head."""

    def __init__(self, n_layer=2):
        super().__init__()
        self.transformer = nn.ModuleDict(
            dict(wte=Affine(3, 5, bias=False), h=nn.ModuleList([Block() for _ in range(n_layer)]))
        )
        self.lm_head = Affine(3, 5, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied
        self.scale = nn.Parameter(np.ones(1, dtype=np.float32))


def test_assignment_registers_parameters_modules_buffers_and_plain_attributes():
    m = Affine(2, 3)
    assert list(m._parameters) == ["weight", "bias"]
    m.note = "plain"
    m.const = Tensor(np.ones(2))  # a plain Tensor is not a parameter
    assert "note" not in m._parameters and "const" not in m._parameters and m.note == "plain"
    child = Affine(3, 1)
    m.child = child
    assert m._modules == {"child": child} and m.child is child
    m.register_buffer("running", np.zeros(3, dtype=np.float32))
    assert isinstance(m.running, Tensor) and m._buffers["running"] is m.running
    m.running = np.ones(3, dtype=np.float32)  # assigning to a buffer name updates the buffer
    assert isinstance(m._buffers["running"], Tensor) and m._buffers["running"].data.sum() == 3
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias", "child.weight", "child.bias"]


def test_assigning_none_and_deleting():
    m = Affine(2, 3)
    m.bias = None
    assert m.bias is None and "bias" in m._parameters
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    assert list(m.state_dict()) == ["weight"]
    m.bias = nn.Parameter(np.zeros(3, dtype=np.float32))
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    del m.weight
    assert "weight" not in m._parameters and not hasattr(m, "weight")
    m.sub = Affine(1, 1)
    del m.sub
    assert "sub" not in m._modules and not hasattr(m, "sub")
    with pytest.raises(AttributeError):
        del m.nothing_here


def test_assignment_type_errors_and_reassignment_as_another_kind():
    m = Affine(2, 3)
    with pytest.raises(TypeError, match="cannot assign 'ndarray' as parameter 'weight'"):
        m.weight = np.zeros((3, 2))
    m.child = Affine(1, 1)
    with pytest.raises(TypeError, match="as child module 'child'"):
        m.child = 3
    m.child = nn.Parameter(np.zeros(1, dtype=np.float32))  # a module slot becomes a parameter
    assert "child" not in m._modules and "child" in m._parameters
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("weight", np.zeros(1))
    with pytest.raises(KeyError, match="contain"):
        m.register_parameter("a.b", None)
    with pytest.raises(TypeError, match="buffer"):
        m.register_buffer("buf", [1, 2])


def test_assigning_before_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2, dtype=np.float32))

    with pytest.raises(AttributeError, match=r"before Module\.__init__"):
        Bad()


def test_registered_values_are_plain_attributes():
    """forward() reads parameters through an ordinary instance-dict lookup, not __getattr__."""
    m = Affine(2, 3)
    assert m.__dict__["weight"] is m._parameters["weight"]
    assert not hasattr(type(m), "__getattr__") or type(m).__getattr__ is object.__getattr__


def test_names_order_and_tied_parameters_listed_once():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == [
        "scale",
        "transformer.wte.weight",
        "transformer.h.0.ln.weight",
        "transformer.h.0.ln.bias",
        "transformer.h.0.mlp.0.weight",
        "transformer.h.0.mlp.0.bias",
        "transformer.h.0.mlp.1.weight",
        "transformer.h.1.ln.weight",
        "transformer.h.1.ln.bias",
        "transformer.h.1.mlp.0.weight",
        "transformer.h.1.mlp.0.bias",
        "transformer.h.1.mlp.1.weight",
    ]
    assert len(list(net.parameters())) == len(names)
    assert net.num_parameters() == 1 + 15 + 2 * (9 + 3 + 12 + 4 + 12)
    assert len([n for n, _ in net.named_parameters(remove_duplicate=False)]) == len(names) + 1
    # the state dict lists the tied weight under both names (each name loads on its own, as in torch)
    sd = net.state_dict()
    assert "lm_head.weight" in sd and sd["lm_head.weight"] is sd["transformer.wte.weight"]
    assert list(sd)[:4] == ["scale", "transformer.wte.weight", "transformer.h.0.mask", "transformer.h.0.ln.weight"]
    assert "transformer.h.0.mask" in sd and "transformer.h.0.cache" not in sd  # non-persistent buffer
    assert [n for n, _ in net.named_buffers()] == [
        "transformer.h.0.mask",
        "transformer.h.0.cache",
        "transformer.h.1.mask",
        "transformer.h.1.cache",
    ]


def test_names_match_torch():
    torch = pytest.importorskip("torch")
    tnn = torch.nn

    class TAffine(tnn.Module):
        def __init__(self, n_in, n_out, bias=True):
            super().__init__()
            self.weight = tnn.Parameter(torch.zeros(n_out, n_in))
            self.bias = tnn.Parameter(torch.zeros(n_out)) if bias else None

    class TBlock(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ln = TAffine(3, 3)
            self.mlp = tnn.Sequential(TAffine(3, 4), TAffine(4, 3, bias=False))
            self.register_buffer("mask", torch.ones(2, 2, dtype=torch.bool))
            self.register_buffer("cache", torch.zeros(3), persistent=False)

    class TNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = tnn.ModuleDict(
                dict(wte=TAffine(3, 5, bias=False), h=tnn.ModuleList([TBlock() for _ in range(2)]))
            )
            self.lm_head = TAffine(3, 5, bias=False)
            self.lm_head.weight = self.transformer.wte.weight
            self.scale = tnn.Parameter(torch.ones(1))

    ours, theirs = Net(), TNet()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]


def test_modules_children_and_shared_submodules():
    shared = Affine(2, 2)
    seq = nn.Sequential(shared, Affine(2, 2), shared)
    assert [n for n, _ in seq.named_modules()] == ["", "0", "1"]  # the shared module once, as torch
    assert len(list(seq.children())) == 2
    assert len(list(seq.parameters())) == 4
    assert len(seq.state_dict()) == 6  # but the state dict has every path


def test_train_eval_recursive():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.transformer.h[1].train()
    assert net.transformer.h[1].mlp[0].training and not net.transformer.h[0].training
    net.train()
    assert all(m.training for m in net.modules())
    with pytest.raises(ValueError, match="bool"):
        net.train("yes")


def test_zero_grad_sets_none_and_apply_visits_children_first():
    m = Affine(2, 3)
    y = m(Tensor(np.ones((4, 2), dtype=np.float32))).sum()
    y.backward()
    assert m.weight.grad is not None and m.weight.grad.dtype == np.float32
    m.zero_grad(set_to_none=False)
    assert m.weight.grad is not None and not m.weight.grad.data.any()
    m.zero_grad()
    assert m.weight.grad is None and m.bias.grad is None
    read_only = np.broadcast_to(np.float32(1.0), m.weight.shape)  # e.g. left by a broadcasting backward
    m.weight.grad = Tensor(read_only)
    m.zero_grad(set_to_none=False)  # gets a fresh zero array, as Optimizer.zero_grad does
    assert m.weight.grad.dtype == np.float32 and not m.weight.grad.data.any() and (read_only == 1).all()

    seen = []
    net = nn.Sequential(Affine(1, 1), nn.Sequential(Affine(1, 1)))
    assert net.apply(lambda mod: seen.append(type(mod).__name__)) is net
    assert seen == ["Affine", "Affine", "Sequential", "Sequential"]


def test_call_runs_forward_and_module_without_forward_fails_clearly():
    m = Affine(2, 3)
    x = Tensor(np.ones((1, 2), dtype=np.float32))
    np.testing.assert_array_equal(m(x).data, m.forward(x).data)
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(x)


def test_get_submodule_and_parameter():
    net = Net()
    assert net.get_submodule("transformer.h.1.mlp.0") is net.transformer.h[1].mlp[0]
    assert net.get_parameter("transformer.h.0.ln.bias") is net.transformer.h[0].ln.bias
    with pytest.raises(AttributeError, match="no submodule 'x'"):
        net.get_submodule("transformer.x")


def test_requires_grad_and_num_parameters_trainable():
    m = Affine(2, 3)
    m.requires_grad_(False)
    assert not m.weight.requires_grad and m.num_parameters(only_trainable=True) == 0
    assert m.num_parameters() == 9


def test_to_double_keeps_parameter_objects():
    m = Net()
    before = {n: p for n, p in m.named_parameters()}
    m.double()
    for n, p in m.named_parameters():
        assert p is before[n] and p.dtype == np.float64
    assert m.transformer.h[0].mask.dtype == np.bool_  # non-float buffers untouched
    assert m.lm_head.weight is m.transformer.wte.weight


def test_state_dict_round_trip_in_place_keeps_parameter_objects(tmp_path):
    a, b = Net(), Net()
    for p in a.parameters():
        p.data[...] = np.random.default_rng(0).standard_normal(p.shape)
    params_before = {n: p for n, p in b.named_parameters()}
    arrays_before = {n: p.data for n, p in b.named_parameters()}
    nn.save(a.state_dict(), tmp_path / "net.ckpt")
    result = b.load_state_dict(nn.load(tmp_path / "net.ckpt"))
    assert result.missing_keys == [] and result.unexpected_keys == []
    for n, p in b.named_parameters():
        assert p is params_before[n] and p.data is arrays_before[n]  # same objects, new values
        np.testing.assert_array_equal(p.data, a.get_parameter(n).data)
    assert b.lm_head.weight is b.transformer.wte.weight


def test_load_converts_dtype_to_the_parameters():
    m = Affine(2, 3)
    sd = {k: v.astype(np.float64) + 1 for k, v in m.state_dict().items()}
    m.load_state_dict(sd)
    assert m.weight.dtype == np.float32 and m.bias.dtype == np.float32
    np.testing.assert_allclose(m.bias.data, 1.0)


def test_strict_load_errors_list_missing_unexpected_and_shapes():
    m = Net()
    sd = {k: v.copy() for k, v in m.state_dict().items()}
    del sd["transformer.h.1.ln.bias"]
    sd["transformer.h.9.ln.bias"] = np.zeros(3, dtype=np.float32)
    sd["scale"] = np.zeros(2, dtype=np.float32)
    sd["transformer.h.0.ln.weight"] = np.full((3, 3), 7, dtype=np.float32)  # right shape: must not be written
    with pytest.raises(RuntimeError) as info:
        m.load_state_dict(sd)
    msg = str(info.value)
    assert "Error(s) in loading state_dict for Net" in msg
    assert 'Missing key(s) in state_dict: "transformer.h.1.ln.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "transformer.h.9.ln.bias"' in msg
    assert (
        "size mismatch for scale: copying a param with shape (2,) from checkpoint, the shape in current model is (1,)"
        in msg
    )
    assert not (m.transformer.h[0].ln.weight.data == 7).any()  # nothing written by a failed load

    del sd["scale"]
    result = m.load_state_dict(sd, strict=False)  # non-strict: report, load the rest
    assert result.missing_keys == ["scale", "transformer.h.1.ln.bias"]
    assert result.unexpected_keys == ["transformer.h.9.ln.bias"]
    assert (m.transformer.h[0].ln.weight.data == 7).all()

    sd["scale"] = np.zeros(5)
    with pytest.raises(RuntimeError, match="size mismatch for scale"):
        m.load_state_dict(sd, strict=False)  # shapes are checked even when not strict
    with pytest.raises(RuntimeError, match=r"dtype mismatch for transformer\.h\.0\.mask"):
        sd["scale"] = np.zeros(1)
        sd["transformer.h.0.mask"] = np.zeros((2, 2), dtype=np.float32)
        m.load_state_dict(sd, strict=False)


def test_load_state_dict_and_to_refuse_what_they_cannot_use():
    m = Affine(2, 3)
    with pytest.raises(TypeError, match="expected a dict"):
        m.load_state_dict(list(m.state_dict().items()))
    with pytest.raises(TypeError, match="floating"):
        m.to(np.int32)
    assert m.weight.dtype == np.float32


def test_load_state_dict_accepts_tensors_and_read_only_targets():
    m = Affine(2, 3)
    m.weight.data.flags.writeable = False
    m.load_state_dict({"weight": Tensor(np.ones((3, 2), dtype=np.float32)), "bias": np.ones(3, dtype=np.float32)})
    assert m.weight.data.sum() == 6 and m.weight.data.flags.writeable


def test_repr_tree_like_torch():
    m = nn.Sequential(Affine(2, 3), nn.ModuleList([Affine(3, 3) for _ in range(3)] + [Affine(3, 1)]))
    assert repr(m) == (
        "Sequential(\n"
        "  (0): Affine(2, 3)\n"
        "  (1): ModuleList(\n"
        "    (0-2): 3 x Affine(3, 3)\n"
        "    (3): Affine(3, 1)\n"
        "  )\n"
        ")"
    )
    assert repr(nn.Module()) == "Module()"
    p = nn.Parameter([1.0, 2.0])
    assert repr(p).startswith("Parameter containing:\ntensor([1., 2.]") and "requires_grad=True" in repr(p)


def test_repr_matches_torch_layout():
    torch = pytest.importorskip("torch")

    class Leaf(nn.Module):
        def extra_repr(self):
            return "k=1"

    class TLeaf(torch.nn.Module):
        def extra_repr(self):
            return "k=1"

    TLeaf.__name__ = "Leaf"

    ours = nn.Sequential(Leaf(), nn.ModuleDict({"a": Leaf(), "b": nn.ModuleList([Leaf(), Leaf(), nn.Module()])}))
    theirs = torch.nn.Sequential(
        TLeaf(), torch.nn.ModuleDict({"a": TLeaf(), "b": torch.nn.ModuleList([TLeaf(), TLeaf(), torch.nn.Module()])})
    )
    assert repr(ours) == repr(theirs)


def test_parameter_defaults():
    p = nn.Parameter([1.0, 2.0])
    assert isinstance(p, Tensor) and p.requires_grad and p.dtype == np.float32 and p.is_leaf
    assert nn.Parameter(np.zeros(2)).dtype == np.float64  # an explicit array keeps its dtype
    assert nn.Parameter().shape == (0,)
    a = np.zeros(3, dtype=np.float32)
    assert nn.Parameter(a).data is a  # shares, like torch
    assert not nn.Parameter(a, requires_grad=False).requires_grad
    with pytest.raises(TypeError, match="floating"):
        nn.Parameter(np.arange(3))
    # ops on a Parameter give plain Tensors
    assert type(p * 2) is Tensor


def test_deepcopy_keeps_ties():
    net = Net()
    clone = copy.deepcopy(net)
    assert clone.lm_head.weight is clone.transformer.wte.weight
    assert clone.lm_head.weight is not net.lm_head.weight
    assert [n for n, _ in clone.named_parameters()] == [n for n, _ in net.named_parameters()]


def test_parameter_reads_are_as_fast_as_plain_attributes():
    """Module must not slow down `self.weight` (forward reads it constantly). Reading ``self.__dict__`` in
    __setattr__ once made CPython move instances to a slower layout: 19 ns per read instead of 7."""
    import timeit

    class Plain:
        pass

    m, plain = Affine(2, 3), Plain()
    m.child = Affine(3, 3)
    plain.weight = m.weight

    def best(stmt, obj):
        return min(timeit.repeat(stmt, globals={"obj": obj}, number=20_000, repeat=7))

    assert best("obj.weight", m) < 1.8 * best("obj.weight", plain)
