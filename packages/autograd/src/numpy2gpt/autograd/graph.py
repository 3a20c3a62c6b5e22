"""Pictures of the recorded graph: ``to_mermaid`` (renders on GitHub) and ``to_dot`` (Graphviz).

Tensors are boxes labelled with their name (or shape) and generation; Functions are rounded nodes labelled
with their class and generation; arrows run from inputs through the creator to its outputs, the direction
of the forward pass. Backward walks them the other way, highest generation first. Draw before calling
``backward()`` (or pass ``retain_graph=True``): backward frees each Function's inputs once it has used them.
"""

from __future__ import annotations

from numpy2gpt.autograd.function import Function
from numpy2gpt.autograd.tensor import Tensor


def _walk(root: Tensor) -> tuple[list[Tensor], list[Function], list[tuple[object, object]]]:
    """Every tensor and Function reachable from ``root`` through creators, and the edges between them."""
    tensors: dict[int, Tensor] = {id(root): root}
    functions: dict[int, Function] = {}
    edges: list[tuple[object, object]] = []
    stack = [root]
    while stack:
        t = stack.pop()
        f = t.creator
        if f is None:
            continue
        edges.append((f, t))
        if id(f) in functions:
            continue
        functions[id(f)] = f
        for x in f.inputs or ():
            edges.append((x, f))
            if id(x) not in tensors:
                tensors[id(x)] = x
                stack.append(x)
    ordered_t = sorted(tensors.values(), key=lambda t: t.generation)
    ordered_f = sorted(functions.values(), key=lambda f: f.generation)
    return ordered_t, ordered_f, edges


def _tensor_label(t: Tensor) -> str:
    name = t.name if t.name is not None else "×".join(map(str, t.shape)) or "scalar"
    return f"{name}\\ngen {t.generation}"


def to_mermaid(root: Tensor, direction: str = "LR") -> str:
    """The graph behind ``root`` as a Mermaid flowchart (paste into Markdown inside a ```mermaid block)."""
    tensors, functions, edges = _walk(root)
    ids = {id(o): f"t{i}" for i, o in enumerate(tensors)} | {id(o): f"f{i}" for i, o in enumerate(functions)}
    lines = [f"flowchart {direction}"]
    for t in tensors:
        lines.append(f'    {ids[id(t)]}["{_tensor_label(t).replace(chr(92) + "n", "<br/>")}"]')
    for f in functions:
        lines.append(f'    {ids[id(f)]}(["{f.name}<br/>gen {f.generation}"])')
    for a, b in dict.fromkeys((id(a), id(b)) for a, b in edges):
        lines.append(f"    {ids[a]} --> {ids[b]}")
    lines.append("    classDef fn fill:#fde7c8,stroke:#c77d1a")
    if functions:
        lines.append(f"    class {','.join(ids[id(f)] for f in functions)} fn")
    return "\n".join(lines)


def to_dot(root: Tensor, rankdir: str = "LR") -> str:
    """The graph behind ``root`` in Graphviz DOT (render with ``dot -Tpng``)."""
    tensors, functions, edges = _walk(root)
    ids = {id(o): f"t{i}" for i, o in enumerate(tensors)} | {id(o): f"f{i}" for i, o in enumerate(functions)}
    lines = ["digraph G {", f"  rankdir={rankdir};", '  node [fontname="Helvetica"];']
    for t in tensors:
        color = "#d9ead3" if t.creator is None else "#dde8f7"
        lines.append(f'  {ids[id(t)]} [label="{_tensor_label(t)}", shape=box, style=filled, fillcolor="{color}"];')
    for f in functions:
        lines.append(
            f'  {ids[id(f)]} [label="{f.name}\\ngen {f.generation}", shape=ellipse, style=filled, fillcolor="#fde7c8"];'
        )
    for a, b in dict.fromkeys((id(a), id(b)) for a, b in edges):
        lines.append(f"  {ids[a]} -> {ids[b]};")
    lines.append("}")
    return "\n".join(lines)
