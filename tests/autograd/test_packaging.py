"""The published package: build the wheel, install it into a fresh virtual environment, check that it brings
numpy and nothing else, and run the README's first example there (not against this checkout)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "packages" / "autograd"


def _run(*cmd: str | Path, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_wheel_installs_alone_with_numpy_and_runs_the_readme_example(tmp_path):
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", PACKAGE, "-w", wheels)
    (wheel,) = wheels.glob("numpy2gpt_autograd-*.whl")

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    python = venv / ("Scripts" if os.name == "nt" else "bin") / "python"
    _run(python, "-m", "pip", "install", "-q", wheel)

    installed = {p["name"].lower() for p in json.loads(_run(python, "-m", "pip", "list", "--format=json"))}
    assert installed - {"pip", "setuptools"} == {"numpy2gpt-autograd", "numpy"}, installed

    readme = (PACKAGE / "README.md").read_text()
    example = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    script = tmp_path / "example.py"
    script.write_text(example)
    out = _run(python, "-I", script, cwd=tmp_path)  # -I: isolated, so only the venv's packages are seen
    assert "tensor(" in out
    location = _run(python, "-I", "-c", "import numpy2gpt.autograd as ag; print(ag.__file__)", cwd=tmp_path)
    assert str(venv) in location and str(ROOT / "packages") not in location
