"""Re-run the notebooks in place, so their saved outputs (text, plots, graph pictures) show today's library.

    python notebooks/run_all.py             # every notebook, in order
    python notebooks/run_all.py 03 06       # only those whose name contains "03" or "06"

Each notebook runs top to bottom in a fresh kernel (the current Python's ``python3`` kernel), from the
notebooks/ folder; any error stops with the failing cell's traceback and leaves that file unchanged. Needs
the notebook tools, which the packages themselves never depend on: ``pip install nbclient nbformat ipykernel
matplotlib`` (the test environment has them). Graph pictures come out as SVG when Graphviz's ``dot`` is on
PATH, as Mermaid text otherwise: refresh on a machine with Graphviz installed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CELL_TIMEOUT_S = 600


def notebooks(patterns: list[str] | None = None) -> list[Path]:
    """The numbered notebooks (01_... to 08_...), in order; only those matching one of ``patterns`` if given."""
    found = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))
    return [p for p in found if not patterns or any(s in p.name for s in patterns)]


def execute(path: Path, cwd: Path | None = None):  # -> nbformat.NotebookNode
    """Run the notebook at ``path`` in a fresh kernel (working directory ``cwd``, default its folder) and
    return it with its new outputs; raises ``nbclient.exceptions.CellExecutionError`` on the first error."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)  # no timestamps: a refresh changes only what the notebook shows
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(cwd or path.parent)}},
    )
    client.execute()
    return nb


def main(argv: list[str]) -> int:
    import nbformat

    total = 0.0
    for path in notebooks(argv):
        start = time.perf_counter()
        nb = execute(path)
        seconds = time.perf_counter() - start
        total += seconds
        nbformat.write(nb, path)
        print(f"{path.name:40s} {seconds:6.1f} s")
    print(f"{'total':40s} {total:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
