"""numpy2gpt.gpt.distributed in one process: launcher detection, the single-process path (no-op collectives,
nothing imported), the missing-mpi4py message, the thread policy. The multi-rank behaviour is tested under
mpiexec in test_distributed_mpi.py.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.gpt import distributed as dist
from numpy2gpt.gpt.model import GPT, GPTConfig


@pytest.mark.parametrize(
    ("env", "size"),
    [
        ({}, 1),
        ({"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "2"}, 4),  # Open MPI
        ({"PMI_SIZE": "3", "PMI_RANK": "0"}, 3),  # MPICH / Intel MPI (Hydra)
        ({"MV2_COMM_WORLD_SIZE": "2"}, 2),  # MVAPICH2
        ({"OMPI_COMM_WORLD_SIZE": "1"}, 1),  # mpiexec -n 1: the ordinary path
        ({"PMI_SIZE": "garbage"}, 1),
    ],
)
def test_launched_world_size_reads_the_launchers_environment(env, size):
    assert dist.launched_world_size(env) == size


def test_without_mpiexec_the_world_is_one_process_and_mpi4py_is_not_imported():
    code = (
        "import os, sys\n"
        "for k in [k for k in os.environ if k.startswith(('OMPI_', 'PMI_', 'PMIX_', 'MV2_'))]: del os.environ[k]\n"
        "from numpy2gpt.gpt import distributed as d\n"
        "w = d.init_world()\n"
        "assert w is d.SINGLE and w.rank == 0 and w.size == 1 and not w.distributed, w\n"
        "assert 'mpi4py' not in sys.modules, 'mpi4py imported without mpiexec'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_under_mpiexec_without_mpi4py_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # `from mpi4py import MPI` now raises ImportError
    with pytest.raises(dist.MPIUnavailableError, match=r"2 ranks, but mpi4py is not installed.*numpy2gpt-gpt\[mpi\]"):
        dist.init_world({"OMPI_COMM_WORLD_SIZE": "2"})


def test_single_process_collectives_return_their_input():
    w = dist.SINGLE
    obj = {"a": np.arange(3)}
    assert w.broadcast(obj) is obj
    assert w.gather(5) == [5]
    np.testing.assert_array_equal(w.sum([1.5, 2.0]), [1.5, 2.0])
    w.barrier()
    with w.abort_on_error(), pytest.raises(ValueError, match="plain"):  # no abort: the error propagates
        raise ValueError("plain")


def test_single_process_gradient_averager_leaves_the_gradients_alone():
    ag.manual_seed(0)
    model = GPT(GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=8))
    x = np.arange(16).reshape(2, 8) % 11
    _, loss = model(x, x)
    loss.backward()
    before = {n: p.grad for n, p in model.named_parameters()}
    copies = {n: g.data.copy() for n, g in before.items()}
    average = dist.GradientAverager(dist.SINGLE, model.parameters())
    assert average(2.5) == (2.5,)
    assert not average.buffers  # no buffer is allocated for one process
    for n, p in model.named_parameters():
        assert p.grad is before[n]
        np.testing.assert_array_equal(p.grad.data, copies[n])
    with pytest.raises(ValueError, match="expected 1 extra"):
        average()


def test_rank_threads_policy(monkeypatch):
    monkeypatch.delenv(dist.THREADS_ENV, raising=False)
    shared = dist.World(rank=1, size=2, local_rank=1, local_size=2, cores=1)
    assert dist.rank_threads(dist.SINGLE) is None  # one process: the library's own setting
    assert dist.rank_threads(shared) == 1  # 2 ranks on 2 cores: one thread each
    assert dist.rank_threads(dist.World(rank=0, size=2, local_size=2, cores=8)) == 8
    assert dist.rank_threads(dist.World(rank=0, size=4, local_size=1, cores=8)) is None  # alone on its machine
    assert dist.rank_threads(shared, environ={dist.THREADS_ENV: "3"}) == 3  # the variable overrides
    assert dist.rank_threads(shared, requested=2, environ={dist.THREADS_ENV: "3"}) == 2  # the flag wins
    with pytest.raises(ValueError, match=dist.THREADS_ENV):
        dist.rank_threads(shared, environ={dist.THREADS_ENV: "zero"})


def test_limit_threads_limits_blas_and_restores_it():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [p["num_threads"] for p in threadpoolctl.threadpool_info()]
    assert before, "NumPy's BLAS is not visible to threadpoolctl"
    with dist.limit_threads(1):
        assert all(p["num_threads"] == 1 for p in threadpoolctl.threadpool_info())
    assert [p["num_threads"] for p in threadpoolctl.threadpool_info()] == before
    with dist.limit_threads(None):  # unchanged
        assert [p["num_threads"] for p in threadpoolctl.threadpool_info()] == before
