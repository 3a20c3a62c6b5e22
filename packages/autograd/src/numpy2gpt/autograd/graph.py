"""Pictures of the recorded graph: ``to_mermaid`` (renders on GitHub) and ``to_dot`` (Graphviz).

Tensors are boxes labelled with their name (or shape) and generation; Functions are rounded nodes labelled
with their class and generation; arrows run from inputs through the creator to its outputs, the direction
of the forward pass. Backward walks them the other way, highest generation first.

Constant 0-d operands (the ``2`` in ``x * 2``, the ``1`` in ``1 - y``) are not drawn as boxes of their own:
they are written into their Function's label (``Mul · 2``), which keeps pictures readable.

Draw before calling ``backward()`` (or pass ``retain_graph=True``): backward frees each Function's inputs
once it has used them, so afterwards only the last step is left to draw. The walk is a loop, not recursion,
so a 10,000-op chain draws fine.
"""

from __future__ import annotations

from numpy2gpt.autograd.function import Function
from numpy2gpt.autograd.tensor import Tensor


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


def _tensor_label(t: Tensor, sep: str) -> str:
    name = t.name if t.name is not None else str(t.shape) if t.ndim else "scalar"  # "(3, 4)"
    return f"{name}{sep}gen {t.generation}"


def _function_label(f: Function, sep: str) -> str:
    constants = [f"{x.data.item():g}" for x in f.inputs or () if _is_constant_scalar(x)]
    head = f.graph_label + (" · " + ", ".join(constants) if constants else "")
    return f"{head}{sep}gen {f.generation}"


def _ids(tensors: list[Tensor], functions: list[Function]) -> dict[int, str]:
    return {id(o): f"t{i}" for i, o in enumerate(tensors)} | {id(o): f"f{i}" for i, o in enumerate(functions)}


def to_mermaid(root: Tensor, direction: str = "LR") -> str:
    """The graph behind ``root`` as a Mermaid flowchart (paste into Markdown inside a ```mermaid block).

    Leaves are green boxes, computed tensors blue boxes, Functions orange rounded nodes."""
    tensors, functions = _walk(root)
    ids = _ids(tensors, functions)

    def text(label: str) -> str:
        return label.replace('"', "#quot;")

    lines = [f"flowchart {direction}"]
    for t in tensors:
        lines.append(f'    {ids[id(t)]}["{text(_tensor_label(t, "<br/>"))}"]')
    for f in functions:
        lines.append(f'    {ids[id(f)]}(["{text(_function_label(f, "<br/>"))}"])')
    for a, b in _edges(tensors, functions):
        lines.append(f"    {ids[a]} --> {ids[b]}")
    lines.append("    classDef leaf fill:#d9ead3,stroke:#6aa84f")
    lines.append("    classDef tensor fill:#dde8f7,stroke:#3d85c6")
    lines.append("    classDef fn fill:#fde7c8,stroke:#c77d1a")
    leaves = [ids[id(t)] for t in tensors if t.creator is None]
    computed = [ids[id(t)] for t in tensors if t.creator is not None]
    if leaves:
        lines.append(f"    class {','.join(leaves)} leaf")
    if computed:
        lines.append(f"    class {','.join(computed)} tensor")
    if functions:
        lines.append(f"    class {','.join(ids[id(f)] for f in functions)} fn")
    return "\n".join(lines)


def to_dot(root: Tensor, rankdir: str = "LR") -> str:
    """The graph behind ``root`` in Graphviz DOT (render with ``dot -Tpng``)."""
    tensors, functions = _walk(root)
    ids = _ids(tensors, functions)
    lines = ["digraph G {", f"  rankdir={rankdir};", '  node [fontname="Helvetica"];']
    for t in tensors:
        color = "#d9ead3" if t.creator is None else "#dde8f7"
        label = _tensor_label(t, "\\n").replace('"', '\\"')
        lines.append(f'  {ids[id(t)]} [label="{label}", shape=box, style=filled, fillcolor="{color}"];')
    for f in functions:
        label = _function_label(f, "\\n").replace('"', '\\"')
        lines.append(f'  {ids[id(f)]} [label="{label}", shape=ellipse, style=filled, fillcolor="#fde7c8"];')
    for a, b in _edges(tensors, functions):
        lines.append(f"  {ids[a]} -> {ids[b]};")
    lines.append("}")
    return "\n".join(lines)
