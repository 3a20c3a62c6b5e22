"""How another project depends on numpy2gpt-nn: build the two wheels, install them into a fresh virtual
environment (numpy comes from the package index), and train a small model there.

This is the contract the nn README promises: ``dependencies = ["numpy2gpt-nn>=0.1,<0.2"]`` brings in
numpy2gpt-autograd and numpy and nothing else, and ``import numpy2gpt.nn as nn`` works from the installed
wheels alone (the namespace package ``numpy2gpt`` is assembled from both).
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import numpy as np
    import numpy2gpt
    import numpy2gpt.nn as nn
    import numpy2gpt.nn.functional as F
    from numpy2gpt.autograd import Tensor, manual_seed
    from numpy2gpt.nn import optim

    # the code comes from the venv's site-packages, not from the source tree
    assert all("site-packages" in p for p in numpy2gpt.__path__), list(numpy2gpt.__path__)

    class Regressor(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 1))

        def forward(self, x):
            return self.net(x)

    manual_seed(0)
    model = Regressor()
    opt = optim.Adam(model.parameters(), lr=0.02)
    x = np.linspace(-2, 2, 64, dtype=np.float32)[:, None]
    y = np.sin(x)
    losses = []
    for step in range(300):
        loss = ((model(Tensor(x)) - Tensor(y)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.01 * losses[0], (losses[0], losses[-1])
    nn.save(model.state_dict(), "model.ckpt")
    clone = Regressor()
    clone.load_state_dict(nn.load("model.ckpt"))
    np.testing.assert_array_equal(clone(Tensor(x)).data, model(Tensor(x)).data)
    print("trained", losses[0], "->", losses[-1])
    """
)


def run(cmd, cwd, **kw):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, **kw)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.slow
def test_wheels_install_into_a_fresh_venv_and_train(tmp_path):
    wheels = tmp_path / "wheels"
    # Without build isolation when hatchling is at hand (fast and offline); otherwise pip fetches it.
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("hatchling") else []
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(wheels),
         str(ROOT / "packages" / "autograd"), str(ROOT / "packages" / "nn")],
        cwd=tmp_path,
    )  # fmt: skip
    built = sorted(p.name for p in wheels.glob("*.whl"))
    assert [name.split("-")[0] for name in built] == ["numpy2gpt_autograd", "numpy2gpt_nn"], built

    # Install by the requirement the README tells a dependent project to declare, resolved against our wheels only
    # (--no-index: a same-named package on an index cannot stand in); numpy, the one outside dependency, first.
    requirement = "numpy2gpt-nn>=0.1,<0.2"
    assert f'dependencies = ["{requirement}"]' in (ROOT / "packages" / "nn" / "README.md").read_text(encoding="utf-8")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    python = str(venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    run([*pip, "numpy>=1.26"], cwd=tmp_path)
    run([*pip, "--no-index", "--find-links", str(wheels), requirement], cwd=tmp_path)

    installed = {
        d["name"].lower() for d in json.loads(run([python, "-m", "pip", "list", "--format=json"], cwd=tmp_path))
    }
    assert installed - {"pip", "setuptools"} == {"numpy", "numpy2gpt-autograd", "numpy2gpt-nn"}, installed

    work = tmp_path / "project"
    work.mkdir()
    (work / "train.py").write_text(SCRIPT)
    out = run([python, "train.py"], cwd=work)
    assert out.startswith("trained"), out
    assert (work / "model.ckpt").exists()
