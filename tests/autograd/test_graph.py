"""to_mermaid / to_dot draw the expected nodes and edges."""

from __future__ import annotations

import numpy as np

import numpy2gpt.autograd as ag
from numpy2gpt.autograd import Tensor


def _small_graph():
    x = Tensor(np.ones(3), requires_grad=True, name="x")
    w = Tensor(np.ones(3), requires_grad=True, name="w")
    y = (x * w + 1.0).sum()
    return x, w, y


def test_mermaid_nodes_and_edges():
    y = _small_graph()[-1]  # x and w stay alive as the Mul's inputs
    text = ag.to_mermaid(y)
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert '    t0["x<br/>gen 0"]' in lines and '    t1["w<br/>gen 0"]' in lines
    assert '    t2["(3,)<br/>gen 1"]' in lines  # x * w
    assert '    t3["(3,)<br/>gen 2"]' in lines  # + 1.0
    assert '    t4["scalar<br/>gen 3"]' in lines  # the loss
    assert '    f0(["Mul<br/>gen 0"])' in lines
    assert '    f1(["Add · 1<br/>gen 1"])' in lines  # the constant 1.0 is folded into its Function
    assert '    f2(["Sum<br/>gen 2"])' in lines
    edges = [line.strip() for line in lines if "-->" in line]
    assert edges == ["t0 --> f0", "t1 --> f0", "f0 --> t2", "t2 --> f1", "f1 --> t3", "t3 --> f2", "f2 --> t4"]
    assert "    class t0,t1 leaf" in lines and "    class t2,t3,t4 tensor" in lines and "    class f0,f1,f2 fn" in lines


def test_dot_nodes_and_edges():
    y = _small_graph()[-1]  # x and w stay alive as the Mul's inputs
    text = ag.to_dot(y, rankdir="TB")
    assert text.startswith("digraph G {") and text.endswith("}")
    assert "rankdir=TB;" in text
    assert 't0 [label="x\\ngen 0", shape=box' in text
    assert 'f1 [label="Add · 1\\ngen 1", shape=ellipse' in text
    edges = [line.strip() for line in text.splitlines() if "->" in line]
    assert edges == ["t0 -> f0;", "t1 -> f0;", "f0 -> t2;", "t2 -> f1;", "f1 -> t3;", "t3 -> f2;", "f2 -> t4;"]


def test_diamond_is_drawn_once_per_node():
    a = Tensor(np.ones(2), requires_grad=True, name="a")
    b = a.exp()
    c = a.tanh().sqrt().log()
    y = b * c
    text = ag.to_mermaid(y)
    assert text.count('["a<br/>gen 0"]') == 1
    assert text.count("-->") == 2 + 2 + 2 + 2 + 3  # exp, tanh, sqrt, log (1 in 1 out), mul (2 in 1 out)
    assert sum(1 for line in text.splitlines() if "([" in line) == 5


def test_leaf_and_after_backward():
    x = Tensor(np.ones(2), requires_grad=True, name="x")
    assert ag.to_mermaid(x).splitlines()[1] == '    t0["x<br/>gen 0"]'
    y = (x * x).sum()
    y.backward()  # frees the inputs: only the last Function and the loss are left to draw
    assert "-->" in ag.to_mermaid(y) and "x<br/>" not in ag.to_mermaid(y)


def test_pow_shows_its_exponent():
    x = Tensor(np.ones(2), requires_grad=True, name="x")
    assert '(["Pow · 3<br/>gen 0"])' in ag.to_mermaid(x**3)


def test_quotes_in_names_are_escaped():
    x = Tensor(np.ones(2), requires_grad=True, name='say "hi"')
    assert '["say #quot;hi#quot;<br/>gen 0"]' in ag.to_mermaid(x * x)
    assert 'label="say \\"hi\\"\\ngen 0"' in ag.to_dot(x * x)
