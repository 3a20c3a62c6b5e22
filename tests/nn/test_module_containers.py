"""Sequential, ModuleList, ModuleDict: list/dict behaviour, names, and the attributes kept in sync."""

from collections import OrderedDict

import numpy as np
import pytest

import numpy2gpt.nn as nn
from numpy2gpt.autograd import Tensor


class Scale(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = nn.Parameter(np.full(1, s, dtype=np.float32))

    def forward(self, x):
        return x * self.s


def names(m):
    return [n for n, _ in m.named_parameters()]


def test_sequential_chains_indexes_and_slices():
    a, b, c = Scale(2.0), Scale(3.0), Scale(5.0)
    seq = nn.Sequential(a, b, c)
    x = Tensor(np.ones(2, dtype=np.float32))
    np.testing.assert_array_equal(seq(x).data, [30.0, 30.0])
    assert len(seq) == 3 and list(seq) == [a, b, c]
    assert seq[0] is a and seq[-1] is c
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == [b, c] and names(sub) == ["1.s", "2.s"]  # keys kept
    with pytest.raises(IndexError, match="out of range"):
        seq[3]
    with pytest.raises(TypeError, match="integers or slices"):
        seq["0"]
    seq.append(Scale(7.0))
    assert names(seq) == ["0.s", "1.s", "2.s", "3.s"] and seq(x).data[0] == 210.0
    del seq[0]
    assert names(seq) == ["0.s", "1.s", "2.s"] and seq[0] is b and seq.__dict__["0"] is b
    assert "3" not in seq.__dict__
    seq.insert(0, a)
    assert list(seq)[:2] == [a, b] and names(seq) == ["0.s", "1.s", "2.s", "3.s"]
    seq[1] = c
    assert seq[1] is c


def test_sequential_from_ordered_dict_names_the_steps():
    seq = nn.Sequential(OrderedDict(first=Scale(1.0), second=Scale(2.0)))
    assert names(seq) == ["first.s", "second.s"] and seq.second is seq[1]
    assert repr(seq).startswith("Sequential(\n  (first): Scale()")


def test_empty_sequential_is_identity():
    x = Tensor(np.ones(2, dtype=np.float32))
    assert nn.Sequential()(x) is x


def test_module_list_operations():
    ml = nn.ModuleList([Scale(1.0), Scale(2.0)])
    third = Scale(3.0)
    ml.append(third)
    ml.extend([Scale(4.0)])
    ml += [Scale(5.0)]
    assert len(ml) == 5 and ml[2] is third and ml[-3] is third
    assert [m.s.data[0] for m in ml] == [1, 2, 3, 4, 5]
    ml.insert(1, Scale(1.5))
    assert [m.s.data[0] for m in ml] == [1, 1.5, 2, 3, 4, 5]
    assert names(ml) == [f"{i}.s" for i in range(6)]
    sub = ml[::2]
    assert isinstance(sub, nn.ModuleList) and [m.s.data[0] for m in sub] == [1, 2, 4] and names(sub)[-1] == "2.s"
    del ml[1:3]
    assert [m.s.data[0] for m in ml] == [1, 3, 4, 5] and names(ml) == [f"{i}.s" for i in range(4)]
    assert set(k for k in ml.__dict__ if k.isdigit()) == {"0", "1", "2", "3"}
    with pytest.raises(NotImplementedError, match="iterate"):
        ml(Tensor(np.ones(1)))
    with pytest.raises(TypeError, match="not a Module"):
        ml.append(3)


def test_module_list_inside_a_model_names_blocks_by_position():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.h = nn.ModuleList([Scale(float(i)) for i in range(3)])

        def forward(self, x):
            for block in self.h:
                x = block(x)
            return x

    m = Model()
    assert names(m) == ["h.0.s", "h.1.s", "h.2.s"]
    assert m(Tensor(np.ones(1, dtype=np.float32))).data[0] == 0.0


def test_module_dict_operations():
    md = nn.ModuleDict({"wte": Scale(1.0), "wpe": Scale(2.0)})
    md["ln_f"] = Scale(3.0)
    md.update([("extra", Scale(4.0))])
    assert list(md) == ["wte", "wpe", "ln_f", "extra"] and len(md) == 4
    assert md.wte is md["wte"] and "wpe" in md and "nope" not in md
    assert list(md.keys()) == list(md) and [m.s.data[0] for m in md.values()] == [1, 2, 3, 4]
    assert names(md) == ["wte.s", "wpe.s", "ln_f.s", "extra.s"]
    popped = md.pop("wpe")
    assert popped.s.data[0] == 2 and "wpe" not in md and not hasattr(md, "wpe")
    del md["extra"]
    assert list(dict(md.items())) == ["wte", "ln_f"]
    with pytest.raises(KeyError, match="no key 'zzz'"):
        md["zzz"]
    with pytest.raises(KeyError, match="already exists"):
        md["keys"] = Scale(0.0)  # would shadow a method
    md.clear()
    assert len(md) == 0 and names(md) == []


def test_container_names_match_torch():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    ours = nn.ModuleDict({"a": nn.Sequential(Scale(1.0), nn.ModuleList([Scale(2.0)])), "b": Scale(3.0)})

    class TScale(tnn.Module):
        def __init__(self):
            super().__init__()
            self.s = tnn.Parameter(torch.zeros(1))

    theirs = tnn.ModuleDict({"a": tnn.Sequential(TScale(), tnn.ModuleList([TScale()])), "b": TScale()})
    assert names(ours) == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
