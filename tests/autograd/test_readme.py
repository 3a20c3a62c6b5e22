"""The package README's code runs as written, and its pictures are what the library draws today."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "packages" / "autograd" / "README.md"
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def _blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(README.read_text())]


def _python_blocks() -> list[tuple[int, str, str | None]]:
    """(block number, python code, the mermaid block right after it or None)."""
    blocks = _blocks()
    out = []
    for i, (lang, code) in enumerate(blocks):
        if lang == "python":
            nxt = blocks[i + 1] if i + 1 < len(blocks) else None
            out.append((i, code, nxt[1] if nxt and nxt[0] == "mermaid" else None))
    return out


def test_readme_has_the_sections_and_pictures():
    text = README.read_text()
    headings = ["## Install", "### 1. Creator", "### 2. Generation", "### 3. Memory", "### 4. Higher-order"]
    headings += ["## Writing your own Function", "### Fused ops: the contract", "## The ops", "### One naming rule"]
    headings += ["## gradcheck", "## no_grad", "## dtype rules"]
    for heading in headings:
        assert heading in text, heading
    assert "pip install numpy2gpt-autograd" in text
    assert "pip install hatch" in text and "hatch test" in text and "hatch run numpy2gpt train" in text
    assert sum(1 for lang, _ in _blocks() if lang == "mermaid") >= 3
    assert len(_python_blocks()) >= 8


PY_BLOCKS = _python_blocks()


@pytest.mark.parametrize(("number", "code", "mermaid"), PY_BLOCKS, ids=[f"block{b[0]}" for b in PY_BLOCKS])
def test_readme_python_block_runs(number, code, mermaid):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, f"README.md block {number}", "exec"), {"__name__": "__readme__"})
    if mermaid is not None:  # the picture pasted under the block is what the block draws now
        printed = out.getvalue()
        assert "flowchart" in printed
        assert printed[printed.index("flowchart") :].strip() == mermaid.strip()
