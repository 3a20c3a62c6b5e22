"""The learner's path: every notebook in notebooks/ runs top to bottom in a fresh kernel without an error (each one
asserts what it shows, so a change that breaks its story fails here), and the saved copies carry their outputs,
plots and graph pictures included, so they read well on a code host without running anything.

Needs the notebook tools (nbclient, nbformat, ipykernel, matplotlib), which the test environment has and the
packages never depend on. ``python notebooks/run_all.py`` refreshes the saved outputs.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook tests need nbformat, nbclient and ipykernel")
pytest.importorskip("nbclient", reason="the notebook tests need nbformat, nbclient and ipykernel")
pytest.importorskip("ipykernel", reason="the notebook tests need nbformat, nbclient and ipykernel")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PICTURES = {"image/png", "image/svg+xml"}


def _run_all():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "notebooks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_path_is_numbered_01_to_08():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, 9)]
    assert [p.name for p in _run_all().notebooks()] == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_saved_notebook_shows_its_outputs(path):
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {path.name[:2]} · ")
    for i, cell in enumerate(code):
        assert cell.execution_count == i + 1, f"{path.name}: saved without running top to bottom (cell {i})"
        assert not [o for o in cell.outputs if o.output_type == "error"], f"{path.name}: a saved error (cell {i})"
    mimes = {mime for cell in code for o in cell.outputs for mime in o.get("data", {})}
    assert mimes & PICTURES, f"{path.name}: no plot or graph picture in the saved outputs"
    if any("to_dot(" in cell.source for cell in code):
        assert "image/svg+xml" in mimes, f"{path.name}: graph pictures not saved as SVG (refresh with Graphviz)"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path):
    start = time.perf_counter()
    nb = _run_all().execute(path, cwd=tmp_path)  # raises CellExecutionError, with the cell and traceback
    seconds = time.perf_counter() - start
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # the plots and pictures came out (graph pictures as Mermaid Markdown where Graphviz is not installed)
    mermaid = [o for o in outputs if o.get("data", {}).get("text/markdown", "").startswith("```mermaid")]
    assert {mime for o in outputs for mime in o.get("data", {})} & PICTURES or mermaid
    print(f"{path.name}: {seconds:.1f} s")
