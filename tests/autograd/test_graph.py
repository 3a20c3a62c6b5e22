"""to_mermaid / to_dot draw the expected nodes, edges and module groups, and the pictures render themselves."""

from __future__ import annotations

import shutil
import sys
import weakref

import numpy as np
import pytest

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
    assert lines[0] == "flowchart TB"  # top to bottom by default: long graphs stay readable
    assert '    t0["x<br/>(3,) · gen 0"]' in lines and '    t1["w<br/>(3,) · gen 0"]' in lines  # names and shapes
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
    text = ag.to_dot(y, rankdir="LR")
    assert text.startswith("digraph G {") and text.endswith("}")
    assert "rankdir=LR;" in text
    assert 't0 [label="x\\n(3,) · gen 0", shape=box' in text
    assert 'f1 [label="Add · 1\\ngen 1", shape=ellipse' in text
    edges = [line.strip() for line in text.splitlines() if "->" in line]
    assert edges == ["t0 -> f0;", "t1 -> f0;", "f0 -> t2;", "t2 -> f1;", "f1 -> t3;", "t3 -> f2;", "f2 -> t4;"]


def test_diamond_is_drawn_once_per_node():
    a = Tensor(np.ones(2), requires_grad=True, name="a")
    b = a.exp()
    c = a.tanh().sqrt().log()
    y = b * c
    text = ag.to_mermaid(y)
    assert text.count('["a<br/>(2,) · gen 0"]') == 1
    assert text.count("-->") == 2 + 2 + 2 + 2 + 3  # exp, tanh, sqrt, log (1 in 1 out), mul (2 in 1 out)
    assert sum(1 for line in text.splitlines() if "([" in line) == 5


def test_leaf_and_after_backward():
    x = Tensor(np.ones(2), requires_grad=True, name="x")
    assert ag.to_mermaid(x).splitlines()[1] == '    t0["x<br/>(2,) · gen 0"]'
    y = (x * x).sum()
    y.backward()  # frees the inputs: only the last Function and the loss are left to draw
    assert "-->" in ag.to_mermaid(y) and "x<br/>" not in ag.to_mermaid(y)


def test_pow_shows_its_exponent():
    x = Tensor(np.ones(2), requires_grad=True, name="x")
    assert '(["Pow · 3<br/>gen 0"])' in ag.to_mermaid(x**3)


def test_quotes_in_names_are_escaped():
    x = Tensor(np.ones(2), requires_grad=True, name='say "hi"')
    assert '["say #quot;hi#quot;<br/>(2,) · gen 0"]' in ag.to_mermaid(x * x)
    assert 'label="say \\"hi\\"\\n(2,) · gen 0"' in ag.to_dot(x * x)


def _block_params(rng: np.random.Generator) -> dict[str, Tensor]:
    """A transformer block's parameter names, nanoGPT's, on tiny shapes."""
    shapes = {"h.0.ln_1.weight": (4,), "h.0.attn.c_attn.weight": (4, 12), "h.0.attn.c_proj.weight": (4, 4)}
    shapes |= {"h.0.mlp.c_fc.weight": (4, 8), "h.0.mlp.c_proj.weight": (8, 4)}
    return {name: Tensor(rng.standard_normal(shape), requires_grad=True) for name, shape in shapes.items()}


def _block(x: Tensor, p: dict[str, Tensor]) -> Tensor:
    h = x * p["h.0.ln_1.weight"]
    qkv = h @ p["h.0.attn.c_attn.weight"]
    q, k, v = qkv[:, :4], qkv[:, 4:8], qkv[:, 8:]
    x = x + ((q @ k.T).exp() @ v) @ p["h.0.attn.c_proj.weight"]  # the ops between c_attn and c_proj: attn
    return x + (x @ p["h.0.mlp.c_fc.weight"]).tanh() @ p["h.0.mlp.c_proj.weight"]


def test_params_are_named_and_grouped_by_module():
    p = _block_params(np.random.default_rng(0))
    y = _block(Tensor(np.ones((3, 4)), name="x"), p)
    text = ag.to_mermaid(y, params=p)
    subgraphs = [line.strip() for line in text.splitlines() if line.strip().startswith("subgraph")]
    # "h" holds nothing but h.0, so the two fold into one box; attn and mlp nest inside it
    assert [s.split('"')[1] for s in subgraphs] == ["h.0", "ln_1", "attn", "c_attn", "c_proj", "mlp", "c_fc", "c_proj"]
    assert text.count("end") == len(subgraphs)
    assert '["weight<br/>(4, 12) · gen 0"]' in text  # a parameter: its name inside its module's box, its shape
    assert '["x<br/>(3, 4) · gen 0"]' in text  # an input outside every box
    dot = ag.to_dot(y, params=p.items())  # named_parameters() style pairs work too
    assert dot.count("subgraph cluster_") == len(subgraphs)
    assert 'label="weight\\n(8, 4) · gen 0"' in dot


def test_ops_between_two_modules_belong_to_their_common_module():
    p = _block_params(np.random.default_rng(0))
    y = _block(Tensor(np.ones((3, 4)), name="x"), p)
    lines = ag.to_dot(y, params=p).splitlines()
    start = next(i for i, line in enumerate(lines) if 'label="attn"' in line)
    depth, body = 0, []
    for line in lines[start:]:
        depth += line.count("{") - line.count("}")
        body.append(line)
        if depth == 0:
            break
    attn = "\n".join(body)
    assert 'label="Exp\\n' in attn and 'label="MatMul\\n' in attn  # softmax-ish and weights x values
    assert 'label="Tanh\\n' not in attn  # the MLP's activation is not attention's


def test_picture_is_its_text():
    y = _small_graph()[-1]
    picture = ag.to_mermaid(y)
    assert isinstance(picture, str) and str(picture) == picture.mermaid_source
    assert str(ag.to_dot(y)) == ag.to_dot(y).dot_source
    assert picture.dot_source == str(ag.to_dot(y))  # either text from either picture
    assert f"{picture}".startswith("flowchart TB")


def test_picture_does_not_keep_the_graph_alive():
    x = Tensor(np.ones(3), requires_grad=True, name="x")
    y = (x.exp() * 2.0).sum()
    probe = weakref.ref(y.creator.inputs[0])
    picture = ag.to_dot(y)
    del y
    assert probe() is None and "Exp" in picture.mermaid_source


def test_without_dot_it_displays_as_mermaid(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    picture = ag.to_dot(_small_graph()[-1])
    bundle = picture._repr_mimebundle_()
    assert set(bundle) == {"text/markdown", "text/plain"}
    assert bundle["text/markdown"].startswith("```mermaid\nflowchart TB\n") and bundle["text/plain"] == str(picture)
    assert picture._repr_svg_() is None
    for name in ("g.png", "g.svg"):
        with pytest.raises(RuntimeError, match=r"needs Graphviz's `dot` program, which is not on PATH") as info:
            picture.save(tmp_path / name)
        assert "\n" not in str(info.value)
    assert picture.save(tmp_path / "g.dot").read_text().startswith("digraph G {")
    assert picture.save(tmp_path / "g.mmd").read_text().startswith("flowchart TB")
    assert picture.save(tmp_path / "g.md").read_text().startswith("```mermaid\n")


FAKE_DOT = """import sys
source = sys.stdin.read()
if "-Tpng" in sys.argv:
    sys.stdout.buffer.write(b"PNG:" + source.encode())
else:
    sys.stdout.write('<?xml version="1.0"?>\\n<svg><!-- ' + source + ' --></svg>\\n')
"""


def _fake_dot(monkeypatch, tmp_path, body: str) -> None:
    script = tmp_path / "dot"
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(0o755)
    monkeypatch.setattr(shutil, "which", lambda name: str(script) if name == "dot" else None)


def test_with_dot_it_displays_as_svg(monkeypatch, tmp_path):
    _fake_dot(monkeypatch, tmp_path, FAKE_DOT)
    picture = ag.to_mermaid(_small_graph()[-1])
    bundle = picture._repr_mimebundle_()
    assert set(bundle) == {"image/svg+xml", "text/plain"}
    svg = bundle["image/svg+xml"]
    assert svg.startswith("<svg>") and "digraph G {" in svg  # the DOT text went through dot, the prolog is cut
    assert picture._repr_markdown_() is None
    assert (tmp_path / "out").mkdir() is None
    assert picture.save(tmp_path / "out" / "g.svg").read_text() == svg
    assert picture.save(tmp_path / "out" / "g.png").read_bytes().startswith(b"PNG:digraph G {")
    with pytest.raises(ValueError, match=r"cannot save a graph picture as 'g.pdf': use .svg, .png"):
        picture.save(tmp_path / "g.pdf")


def test_dot_failure_is_one_line(monkeypatch, tmp_path):
    _fake_dot(
        monkeypatch, tmp_path, "import sys\nsys.stderr.write('Error: syntax error in line 1\\nmore\\n')\nsys.exit(1)\n"
    )
    with pytest.raises(RuntimeError, match=r"^Graphviz's dot failed \(exit 1\): Error: syntax error in line 1$"):
        ag.to_dot(_small_graph()[-1]).svg()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_real_dot_draws_svg_and_png(tmp_path):
    p = _block_params(np.random.default_rng(0))
    picture = ag.to_dot(_block(Tensor(np.ones((3, 4)), name="x"), p), params=p)
    svg = picture._repr_svg_()
    assert svg.startswith("<svg") and "c_attn" in svg and "(4, 12) · gen 0" in svg
    assert picture.save(tmp_path / "g.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_bad_direction_is_named():
    with pytest.raises(ValueError, match="graph direction must be one of TB, TD, BT, LR, RL, got 'down'"):
        ag.to_mermaid(_small_graph()[-1], direction="down")


def test_a_lookup_into_a_parameter_is_not_the_parameter():
    # An embedding lookup reads only its weight, but its output is data, not "the weight": the ops after it
    # must not be pulled into the embedding's box (they were, before sizes were compared).
    p = {"emb.weight": Tensor(np.ones((10, 4)), requires_grad=True), "fc.weight": Tensor(np.ones((4, 4)))}
    p["fc.weight"].requires_grad = True
    y = (p["emb.weight"][np.array([1, 2, 3])].tanh() @ p["fc.weight"].T).sum()
    lines = ag.to_mermaid(y, params=p).splitlines()
    tanh = next(line for line in lines if "Tanh" in line)
    assert tanh.startswith("    f") and not tanh.startswith("     ")  # top level, in no subgraph
    transpose = next(line for line in lines if "Transpose" in line)
    assert transpose.startswith("        ")  # weight.T belongs to fc


@pytest.mark.parametrize("with_dot", [True, False])
def test_ipython_shows_one_rich_format(monkeypatch, tmp_path, with_dot):
    interactiveshell = pytest.importorskip("IPython.core.interactiveshell", reason="needs IPython (notebook tests)")
    if with_dot:
        _fake_dot(monkeypatch, tmp_path, FAKE_DOT)
    else:
        monkeypatch.setattr(shutil, "which", lambda name: None)
    formatter = interactiveshell.InteractiveShell.instance().display_formatter
    data, _ = formatter.format(ag.to_dot(_small_graph()[-1]))
    assert set(data) == ({"image/svg+xml", "text/plain"} if with_dot else {"text/markdown", "text/plain"})


def test_params_can_be_anything_with_named_parameters():
    p = _block_params(np.random.default_rng(0))

    class Block:  # what a Module offers
        def named_parameters(self):
            return iter(p.items())

    y = _block(Tensor(np.ones((3, 4)), name="x"), p)
    assert str(ag.to_dot(y, params=Block())) == str(ag.to_dot(y, params=p))
