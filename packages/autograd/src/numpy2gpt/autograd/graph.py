"""Pictures of the recorded graph: ``to_mermaid`` (renders on GitHub) and ``to_dot`` (Graphviz).

Tensors are boxes labelled with their name and shape (or just the shape) and generation; Functions are rounded
nodes labelled with their class and generation; arrows run from inputs through the creator to its outputs, the
direction of the forward pass. Backward walks them the other way, highest generation first.

Both return a ``GraphPicture``: the text itself (a ``str``, so it prints and pastes as before) that also draws
itself. In a notebook it shows as an SVG image rendered by Graphviz's ``dot`` program when it is installed, and
as a Mermaid diagram otherwise; ``.save("g.svg")`` or ``.save("g.png")`` writes a file.

``params=model`` (or ``dict(model.named_parameters())``) names the parameters in the picture and groups the nodes
by module (one box per layer, ``h.0``, with ``attn``, ``mlp``... inside), so a model's graph stays readable.

Constant 0-d operands (the ``2`` in ``x * 2``, the ``1`` in ``1 - y``) are not drawn as boxes of their own:
they are written into their Function's label (``Mul · 2``), which keeps pictures readable.

Draw before calling ``backward()`` (or pass ``retain_graph=True``): backward frees each Function's inputs
once it has used them, so afterwards only the last step is left to draw. The walk is a loop, not recursion,
so a 10,000-op chain draws fine.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from numpy2gpt.autograd.function import Function
from numpy2gpt.autograd.tensor import Tensor

Params = Any  # a Module (anything with named_parameters()), a dict {name: Tensor}, or (name, Tensor) pairs
_DIRECTIONS = ("TB", "TD", "BT", "LR", "RL")


# -- what to draw: the nodes, their labels, edges and module groups --------------------------------------------
def _is_constant_scalar(t: Tensor) -> bool:
    return t.creator is None and not t.requires_grad and t.ndim == 0


def _walk(root: Tensor) -> tuple[list[Tensor], list[Function]]:
    """Every tensor and Function reachable from ``root`` through creators, oldest generation first."""
    tensors: dict[int, Tensor] = {id(root): root}
    functions: dict[int, Function] = {}
    stack = [root]
    while stack:
        f = stack.pop().creator
        if f is None or id(f) in functions:
            continue
        functions[id(f)] = f
        for x in f.inputs or ():
            if id(x) not in tensors:
                tensors[id(x)] = x
                stack.append(x)
    # sorted() is stable: within a generation, tensors keep the order the walk met them
    ordered_f = sorted(functions.values(), key=lambda f: f.generation)
    ordered_t = sorted((t for t in tensors.values() if not _is_constant_scalar(t)), key=lambda t: t.generation)
    return ordered_t, ordered_f


def _edges(tensors: list[Tensor], functions: list[Function]) -> list[tuple[int, int]]:
    """(from, to) ids in forward order: for each Function, oldest first, its inputs then its outputs."""
    drawn = {id(t) for t in tensors}
    edges: dict[tuple[int, int], None] = {}
    for f in functions:
        for x in f.inputs or ():
            if id(x) in drawn:
                edges[(id(x), id(f))] = None
        for ref in f.outputs:
            y = ref()
            if y is not None and id(y) in drawn:
                edges[(id(f), id(y))] = None
    return list(edges)


def _shape(t: Tensor) -> str:
    return str(t.shape) if t.ndim else "scalar"  # "(3, 4)"


def _tensor_label(t: Tensor, name: str | None) -> list[str]:
    """``[x, (3,) · gen 0]`` for a named tensor, ``[(3,), gen 1]`` for an unnamed one."""
    if name is None:
        return [_shape(t), f"gen {t.generation}"]
    return [name, f"{_shape(t)} · gen {t.generation}"]


def _function_label(f: Function) -> list[str]:
    constants = [f"{x.data.item():g}" for x in f.inputs or () if _is_constant_scalar(x)]
    head = f.graph_label + (" · " + ", ".join(constants) if constants else "")
    return [head, f"gen {f.generation}"]


def _common_prefix(paths: set[str]) -> str:
    """The longest dotted module path shared by all of ``paths``: {"h.0.attn.c_attn", "h.0.ln_1"} -> "h.0"."""
    split = [p.split(".") if p else [] for p in paths]
    out = []
    for parts in zip(*split, strict=False):
        if len(set(parts)) != 1:
            break
        out.append(parts[0])
    return ".".join(out)


def _modules(functions: list[Function], param_module: dict[int, str]) -> dict[int, str]:
    """The module (dotted path, "" for none) each Function belongs to, guessed from the parameters around it.

    A Function that reads parameters (directly, or through reshaping ops on parameters only, such as
    ``weight.T``) belongs to their module. Any other one belongs to the common module of the nearest such
    Function before it on its main input (the input of highest generation) and after it on its first consumer
    (the lowest generation): the ops between ``attn.c_attn`` and ``attn.c_proj`` belong to ``attn``."""
    weight_path: dict[int, set[str]] = {k: {m} for k, m in param_module.items()}  # tensor id -> modules
    own: dict[int, set[str]] = {}
    up: dict[int, set[str]] = {}
    consumers: dict[int, list[Function]] = {}
    for f in functions:  # oldest first: a creator comes before its consumers
        inputs = [x for x in f.inputs or () if not _is_constant_scalar(x)]
        reads = [weight_path.get(id(x)) for x in inputs]
        own[id(f)] = set().union(*[r for r in reads if r])
        if inputs and all(reads):  # only parameters in, as many numbers out: still "the weight" (weight.T ...)
            sizes = {x.data.size for x in inputs}  # (an embedding lookup reads only its weight, but is not it)
            for ref in f.outputs:
                if (y := ref()) is not None and y.data.size in sizes:
                    weight_path[id(y)] = own[id(f)]
        computed = [x for x in inputs if x.creator is not None]
        main = max(computed, key=lambda x: x.generation, default=None)
        up[id(f)] = own[id(f)] or (up.get(id(main.creator), set()) if main is not None else set())
        for x in computed:
            consumers.setdefault(id(x.creator), []).append(f)
    modules: dict[int, str] = {}
    down: dict[int, set[str]] = {}
    for f in reversed(functions):  # newest first: consumers come before their creator
        after = min(consumers.get(id(f), []), key=lambda g: g.generation, default=None)
        down[id(f)] = own[id(f)] or (down.get(id(after), set()) if after is not None else set())
        if own[id(f)]:
            modules[id(f)] = _common_prefix(own[id(f)])
        else:
            modules[id(f)] = _common_prefix(up[id(f)] | down[id(f)]) if up[id(f)] and down[id(f)] else ""
    return modules


@dataclass
class _Layout:
    """Everything a picture shows, as plain strings: it keeps no tensor alive, so the graph still frees itself.

    Nodes are ``t0, t1, ...`` (tensors, oldest generation first) and ``f0, f1, ...`` (Functions)."""

    labels: dict[str, list[str]] = field(default_factory=dict)  # node -> label lines
    kinds: dict[str, str] = field(default_factory=dict)  # node -> "leaf", "tensor" or "fn"
    edges: list[tuple[str, str]] = field(default_factory=list)
    module: dict[str, str] = field(default_factory=dict)  # node -> dotted module path; empty: no groups

    def of_kind(self, kind: str) -> list[str]:
        return [node for node, k in self.kinds.items() if k == kind]

    def groups(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """Nodes per module, and the child modules of each module ("" is the root)."""
        members: dict[str, list[str]] = {}
        for node in sorted(self.kinds, key=lambda node: node[0] != "f"):  # Functions first: forward order
            members.setdefault(self.module.get(node, ""), []).append(node)
        paths: dict[str, None] = {"": None}  # every module and its parents, in the order first met
        for path in list(members):
            parts = path.split(".") if path else []
            paths |= {".".join(parts[: i + 1]): None for i in range(len(parts))}
        children: dict[str, list[str]] = {path: [] for path in paths}
        for path in paths:
            if path:
                children[path.rpartition(".")[0]].append(path)
        members = {path: members.get(path, []) for path in paths}
        return members, children


def _names(params: Params | None) -> dict[int, str]:
    """id(tensor) -> name, from a dict, (name, tensor) pairs, or anything with ``named_parameters()`` (a Module)."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        params = params.named_parameters()
    items = params.items() if isinstance(params, Mapping) else params
    return {id(t): name for name, t in items}


def _layout(root: Tensor, params: Params | None) -> _Layout:
    tensors, functions = _walk(root)
    ids = {id(o): f"t{i}" for i, o in enumerate(tensors)} | {id(o): f"f{i}" for i, o in enumerate(functions)}
    param_names = _names(params)
    param_module = {k: param_names[k].rpartition(".")[0] for k in ids if k in param_names}
    module: dict[int, str] = {}
    if param_module:  # group by module only when parameter names say what the modules are
        module = _modules(functions, param_module) | param_module
        for f in functions:
            for ref in f.outputs:
                if (y := ref()) is not None and id(y) in ids:
                    module[id(y)] = module[id(f)]
    layout = _Layout(edges=[(ids[a], ids[b]) for a, b in _edges(tensors, functions)])
    for t in tensors:
        name = param_names.get(id(t), t.name)
        if id(t) in param_module and param_module[id(t)]:
            name = name.rpartition(".")[2]  # "weight" inside the box labelled "c_attn"
        layout.labels[ids[id(t)]] = _tensor_label(t, name)
        layout.kinds[ids[id(t)]] = "leaf" if t.creator is None else "tensor"
    for f in functions:
        layout.labels[ids[id(f)]] = _function_label(f)
        layout.kinds[ids[id(f)]] = "fn"
    layout.module = {ids[k]: path for k, path in module.items() if k in ids}
    return layout


def _clusters(layout: _Layout, open_group: Any, close_group: str, node_lines: dict[str, str]) -> list[str]:
    """Node lines nested in one group per module. A module with nothing of its own and one child module is
    folded into that child's label (``transformer.h.0``), so the boxes nest only where it says something."""
    members, children = layout.groups()
    lines: list[str] = []
    stack: list[tuple[str, str, int, bool]] = [("", "", 1, False)]  # (path, label so far, depth, close marker)
    counter = 0
    while stack:
        path, label, depth, close = stack.pop()
        if close:
            lines.append("    " * depth + close_group)
            continue
        label = f"{label}.{path.rpartition('.')[2]}" if label else path.rpartition(".")[2]
        boxed = path == "" or members[path] or len(children[path]) != 1
        if boxed and path:
            lines.append("    " * depth + open_group(f"c{counter}", label, depth))
            counter += 1
            stack.append((path, "", depth, True))
        inner = depth + (1 if boxed and path else 0)
        lines.extend("    " * inner + node_lines[node] for node in members[path])
        for child in reversed(children[path]):
            stack.append((child, "" if boxed else label, inner, False))
    return lines


# -- the two text formats --------------------------------------------------------------------------------------
def _mermaid(layout: _Layout, direction: str) -> str:
    def text(lines: list[str]) -> str:
        return "<br/>".join(lines).replace('"', "#quot;")

    nodes = {}
    for node, kind in layout.kinds.items():
        nodes[node] = (
            f'{node}(["{text(layout.labels[node])}"])' if kind == "fn" else f'{node}["{text(layout.labels[node])}"]'
        )
    lines = [f"flowchart {direction}"]
    if layout.module:
        lines += _clusters(layout, lambda key, label, depth: f'subgraph {key} ["{text([label])}"]', "end", nodes)
    else:
        lines += ["    " + nodes[node] for node in layout.kinds]
    lines += [f"    {a} --> {b}" for a, b in layout.edges]
    lines.append("    classDef leaf fill:#d9ead3,stroke:#6aa84f")
    lines.append("    classDef tensor fill:#dde8f7,stroke:#3d85c6")
    lines.append("    classDef fn fill:#fde7c8,stroke:#c77d1a")
    for kind in ("leaf", "tensor", "fn"):
        if members := layout.of_kind(kind):
            lines.append(f"    class {','.join(members)} {kind}")
    return "\n".join(lines)


def _dot(layout: _Layout, rankdir: str) -> str:
    def text(lines: list[str]) -> str:
        return "\\n".join(line.replace('"', '\\"') for line in lines)

    nodes = {}
    for node, kind in layout.kinds.items():
        shape, color = ("ellipse", "#fde7c8") if kind == "fn" else ("box", "#d9ead3" if kind == "leaf" else "#dde8f7")
        nodes[node] = f'{node} [label="{text(layout.labels[node])}", shape={shape}, style=filled, fillcolor="{color}"];'

    def cluster(key: str, label: str, depth: int) -> str:
        fill = "#f4f4f4" if depth % 2 else "#e8e8e8"
        return f'subgraph cluster_{key} {{ label="{text([label])}"; style="rounded,filled"; fillcolor="{fill}";'

    lines = ["digraph G {", f"  rankdir={'TB' if rankdir == 'TD' else rankdir};", '  node [fontname="Helvetica"];']
    if layout.module:
        lines.append('  graph [fontname="Helvetica", labeljust=l];')
        lines += _clusters(layout, cluster, "}", nodes)
    else:
        lines += ["  " + nodes[node] for node in layout.kinds]
    lines += [f"  {a} -> {b};" for a, b in layout.edges]
    lines.append("}")
    return "\n".join(lines)


# -- the picture object ----------------------------------------------------------------------------------------
def _dot_program() -> str | None:
    return shutil.which("dot")


def _run_dot(source: str, fmt: str) -> bytes:
    """Graphviz's ``dot -T<fmt>`` on ``source``; one clear line when dot is missing or fails."""
    program = _dot_program()
    if program is None:
        raise RuntimeError(
            f"drawing a graph as {fmt.upper()} needs Graphviz's `dot` program, which is not on PATH: install "
            "Graphviz (apt-get install graphviz, brew install graphviz), or save the text as .dot or .mmd"
        )
    done = subprocess.run([program, f"-T{fmt}"], input=source.encode(), capture_output=True, timeout=120)
    if done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"Graphviz's dot failed (exit {done.returncode}): {error[0] if error else 'no message'}")
    return done.stdout


class GraphPicture(str):
    """A graph's picture: the text (DOT or Mermaid, as asked) that also renders itself.

    It is a ``str``, so ``print``, ``in`` and ``splitlines`` work on the text. In Jupyter it displays as an SVG
    image when Graphviz's ``dot`` is on PATH, else as a Mermaid diagram (Markdown). ``dot_source`` and
    ``mermaid_source`` give either text, ``svg()`` the image, ``save(path)`` writes .svg, .png, .dot/.gv or
    .mmd/.md by the file's suffix.
    """

    _layout: _Layout
    _direction: str
    _svg: str | None

    def __new__(cls, text: str, layout: _Layout | None = None, direction: str = "TB") -> GraphPicture:
        picture = super().__new__(cls, text)
        picture._layout = layout if layout is not None else _Layout()
        picture._direction = direction
        picture._svg = None
        return picture

    @property
    def dot_source(self) -> str:
        return _dot(self._layout, self._direction)

    @property
    def mermaid_source(self) -> str:
        return _mermaid(self._layout, self._direction)

    def svg(self) -> str:
        """The picture as SVG text, drawn by Graphviz's ``dot`` (an error naming it when it is missing)."""
        if self._svg is None:
            out = _run_dot(self.dot_source, "svg").decode()
            self._svg = out[out.find("<svg") :]  # without the XML prolog, to embed in HTML and notebooks
        return self._svg

    def save(self, path: str | Path) -> Path:
        """Write the picture to ``path``: .svg or .png (both need Graphviz's dot), .dot/.gv or .mmd/.md (text)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".svg":
            path.write_text(self.svg())
        elif suffix == ".png":
            path.write_bytes(_run_dot(self.dot_source, "png"))
        elif suffix in (".dot", ".gv"):
            path.write_text(self.dot_source + "\n")
        elif suffix in (".mmd", ".md"):
            source = self.mermaid_source
            path.write_text(f"```mermaid\n{source}\n```\n" if suffix == ".md" else source + "\n")
        else:
            raise ValueError(f"cannot save a graph picture as {path.name!r}: use .svg, .png, .dot, .gv, .mmd or .md")
        return path

    def _repr_svg_(self) -> str | None:
        return self.svg() if _dot_program() is not None else None

    def _repr_markdown_(self) -> str | None:
        return None if _dot_program() is not None else f"```mermaid\n{self.mermaid_source}\n```"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        svg = self._repr_svg_()
        rich = {"image/svg+xml": svg} if svg is not None else {"text/markdown": self._repr_markdown_()}
        return {**rich, "text/plain": str(self)}


def _check_direction(direction: str) -> str:
    if direction not in _DIRECTIONS:
        raise ValueError(f"graph direction must be one of {', '.join(_DIRECTIONS)}, got {direction!r}")
    return direction


def to_mermaid(root: Tensor, direction: str = "TB", params: Params | None = None) -> GraphPicture:
    """The graph behind ``root`` as a Mermaid flowchart (paste into Markdown inside a ```mermaid block).

    Leaves are green boxes, computed tensors blue boxes, Functions orange rounded nodes. ``params`` (a Module, a
    dict or ``model.named_parameters()``) names the parameters and groups the nodes by module, one subgraph each."""
    layout = _layout(root, params)
    direction = _check_direction(direction)
    return GraphPicture(_mermaid(layout, direction), layout, direction)


def to_dot(root: Tensor, rankdir: str = "TB", params: Params | None = None) -> GraphPicture:
    """The graph behind ``root`` in Graphviz DOT (render with ``dot -Tsvg``, or just display it in a notebook).

    ``params`` (a Module, a dict or ``model.named_parameters()``) names the parameters and draws one box per
    module."""
    layout = _layout(root, params)
    rankdir = _check_direction(rankdir)
    return GraphPicture(_dot(layout, rankdir), layout, rankdir)
