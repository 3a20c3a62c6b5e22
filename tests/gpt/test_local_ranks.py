"""Data-parallel training on one machine without MPI (``--procs N``, local_ranks.py): the collectives over shared
memory and pipes, the fault paths (no rank left waiting, no process left behind), and ``train()`` on 2 processes
against 1.

Each test runs a script in a subprocess with a timeout, so a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from numpy2gpt.gpt import distributed, local_ranks
from numpy2gpt.gpt import train as t


def run_script(script: str, tmp_path: Path, timeout: float = 120, args: tuple[str, ...] = ()):
    """Run ``script`` (Python source, its work under ``if __name__ == "__main__"``: the spawned ranks import it)."""
    path = tmp_path / "local_script.py"
    path.write_text(textwrap.dedent(script))
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, timeout=timeout,
                         cwd=tmp_path, check=False)  # fmt: skip
    return out, time.perf_counter() - t0


def check(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 0, f"failed ({out.returncode}):\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out.stdout


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie (ended, not yet reaped) counts as gone
        return f.read().split()[2] != "Z"


COLLECTIVES = """
    import hashlib, os
    import numpy as np
    import numpy2gpt.autograd as ag
    from numpy2gpt.gpt import local_ranks
    from numpy2gpt.gpt.distributed import GradientAverager, current_world
    from numpy2gpt.gpt.model import GPT, GPTConfig

    CFG = dict(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=8)

    def body(w):
        assert current_world() is w and w.distributed and w.local_size == w.size == 3
        tree = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "meta": [1, "x", (2.5, None)],
                "empty": np.zeros((0, 4)), "big": np.arange(3_000_000, dtype=np.float64)}
        got = w.broadcast(tree if w.rank == 0 else None)
        np.testing.assert_array_equal(got["w"], tree["w"])
        np.testing.assert_array_equal(got["big"], tree["big"])
        assert got["w"].flags.writeable and got["meta"] == [1, "x", (2.5, None)] and got["empty"].shape == (0, 4)

        ag.manual_seed(100 + w.rank)  # each rank initialises differently; after the broadcast all hold rank 0's
        model = GPT(GPTConfig(**CFG))
        w.broadcast_parameters(model.parameters())
        ag.manual_seed(100)
        reference = GPT(GPTConfig(**CFG))
        for p, q in zip(model.parameters(), reference.parameters()):
            np.testing.assert_array_equal(p.data, q.data)

        xs = [np.random.default_rng(r).integers(0, 11, (2, 8)) for r in range(3)]
        _, loss = model(xs[w.rank], xs[w.rank])
        loss.backward()
        params = list(model.parameters())
        params[-1].grad = None  # no rank has a gradient for it: it must stay None
        (mean_loss,) = GradientAverager(w, params)(float(loss.item()))
        losses = [reference(x, x)[1] for x in xs]
        ((losses[0] + losses[1] + losses[2]) / 3).backward()
        np.testing.assert_allclose(mean_loss, sum(l.item() for l in losses) / 3, rtol=1e-6)
        assert params[-1].grad is None
        for p, q in zip(params[:-1], list(reference.parameters())[:-1]):
            np.testing.assert_allclose(p.grad.data, q.grad.data, rtol=1e-5, atol=1e-7)
        digest = hashlib.sha256(b"".join(p.grad.data.tobytes() for p in params[:-1])).hexdigest()
        digests = w.gather(digest)
        np.testing.assert_array_equal(w.sum([w.rank, 1.0]), [3.0, 3.0])

        # A sum_buffer is summed in parts (each rank adds up a third), the rest whole: the same bits either way
        def mine(r):
            return np.arange(10, dtype=np.float32) * np.float32((r + 1) / 7)

        buf = w.comm.sum_buffer(10, np.float32)
        buf[:] = mine(w.rank)
        total = w.comm.allreduce_sum(buf)
        assert not total.flags.writeable
        np.testing.assert_array_equal(buf, mine(w.rank))  # the rank's own numbers are left as they were
        expected = np.add.reduce(np.stack([mine(r) for r in range(3)]), axis=0)
        np.testing.assert_array_equal(total, expected)
        np.testing.assert_array_equal(w.comm.allreduce_sum(mine(w.rank)), expected)
        w.barrier()
        if w.rank == 0:
            assert len(set(digests)) == 1, "the ranks' sums differ in their bits"
            return "ok"
        assert digests is None

    if __name__ == "__main__":
        print("result", local_ranks.launch(3, body), flush=True)
        assert current_world().size == 1  # rank 0's process is a single one again afterwards
        assert not [n for n in os.listdir("/dev/shm") if n.startswith("numpy2gpt-ranks-")]
"""


def test_collectives_on_three_local_ranks(tmp_path):
    assert "result ok" in check(run_script(COLLECTIVES, tmp_path)[0])


FAULT = """
    import os, sys, time
    from numpy2gpt.gpt import local_ranks

    def body(w):
        print("pid", w.rank, os.getpid(), flush=True)
        w.barrier()  # every rank is up and has said its pid
        if w.rank == int(sys.argv[1]):
            time.sleep(1.0)
            raise ValueError("a bad batch on purpose")
        w.barrier()  # the others wait here for a rank that will never come
        time.sleep(60)
        print("not reached", flush=True)

    if __name__ == "__main__":
        try:
            local_ranks.launch(3, body)
        except Exception as e:
            print(f"rank 0 got {type(e).__name__}: {e}", flush=True)
            sys.exit(1)
"""


@pytest.mark.parametrize("failing", [2, 0])
def test_a_failing_rank_ends_the_job_fast_naming_it_and_leaves_no_process(tmp_path, failing):
    out, seconds = run_script(FAULT, tmp_path, timeout=60, args=(str(failing),))
    assert out.returncode == 1 and "not reached" not in out.stdout
    if failing:
        assert "numpy2gpt: rank 2 of 3 failed: ValueError: a bad batch on purpose" in out.stderr, out.stderr
        assert "rank 0 got RankFailedError: rank 2 (exit code 1) of 3 failed; its message is above" in out.stdout
    else:  # rank 0 ends the others and raises its own error, for its caller to report (the CLI's one line)
        assert "rank 0 got ValueError: a bad batch on purpose" in out.stdout and "Traceback" not in out.stderr
    assert seconds < 30, f"the job took {seconds:.0f} s to stop"
    pids = [int(line.split()[2]) for line in out.stdout.splitlines() if line.startswith("pid")]
    assert len(pids) == 3
    time.sleep(0.5)
    assert not [pid for pid in pids if alive(pid)]


def test_the_ranks_end_when_rank_0_is_killed(tmp_path):
    script = FAULT.replace("if w.rank == int(sys.argv[1]):", "if w.rank == 0:\n            os.kill(os.getpid(), 9)")
    out, _ = run_script(script, tmp_path, timeout=60, args=("0",))
    assert out.returncode == -9
    pids = [int(line.split()[2]) for line in out.stdout.splitlines() if line.startswith("pid")]
    deadline = time.time() + 10
    while [pid for pid in pids if alive(pid)] and time.time() < deadline:
        time.sleep(0.2)
    assert len(pids) == 3 and not [pid for pid in pids if alive(pid)]


# -- train() and `numpy2gpt train` on 2 processes ------------------------------------------------------------

TINY = dict(n_layer=1, n_head=2, n_embd=16, block_size=16, max_iters=6, eval_interval=3, eval_iters=2,
            log_interval=1, warmup_iters=2, lr_decay_iters=6, learning_rate=3e-3, progress=False, plot=False,
            sample_at_end=False)  # fmt: skip


def trace(out_dir: Path) -> list[float]:
    records = [json.loads(line) for line in (out_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]


@pytest.mark.slow
def test_two_processes_train_like_one_on_the_same_examples(tmp_path, word_corpus, monkeypatch):
    """batch_draw='global', one micro-batch of 8 rows: each process takes 4 of each batch's rows, and together they
    train on exactly one process's examples: the loss trace and weights agree to float32 rounding."""
    monkeypatch.setattr(t, "measure_matmul_peak", lambda *a, **k: 1e10)  # (rank 0 measures it; saves time)
    base = TINY | dict(data_file=str(word_corpus), batch_size=8, gradient_accumulation_steps=1, batch_draw="global")
    two = t.train(t.TrainConfig(**base, out_dir=str(tmp_path / "two"), procs=2))
    one = t.train(t.TrainConfig(**base, out_dir=str(tmp_path / "one")))
    steps1, steps2 = trace(tmp_path / "one"), trace(tmp_path / "two")
    assert len(steps1) == len(steps2) == TINY["max_iters"]
    np.testing.assert_allclose(steps2, steps1, rtol=2e-6)
    for (name, p), q in zip(one.model.named_parameters(), two.model.parameters(), strict=True):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-5, atol=2e-6, err_msg=name)
    assert steps1[-1] < steps1[0]  # it learned something: the comparison is of a real run


CLI = """
    import sys
    from numpy2gpt.gpt import cli, train as t
    t.measure_matmul_peak = lambda *a, **k: 1e10
    if __name__ == "__main__":
        sys.exit(cli.main(sys.argv[1:]))
"""
FLAGS = ["train", "--batch-size", "4", "--max-iters", "6", "--eval-interval", "3", "--eval-iters", "2",
         "--log-interval", "1", "--warmup-iters", "2", "--lr-decay-iters", "6", "--n-layer", "1", "--n-head", "2",
         "--n-embd", "16", "--block-size", "16", "--no-progress", "--no-plot", "--num-sample-tokens", "20"]  # fmt: skip


@pytest.mark.slow
def test_numpy2gpt_train_procs_2_prints_and_writes_once(tmp_path, word_corpus):
    flags = [*FLAGS, "--data-file", str(word_corpus), "--out-dir", str(tmp_path / "run"), "--procs", "2"]
    stdout = check(run_script(CLI, tmp_path, args=tuple(flags))[0])
    assert stdout.count("iter 6: loss") == 1 and stdout.count("saved checkpoint") == 2, stdout
    assert stdout.count("sample:") == 1 and "data-parallel over 2 processes on this machine" in stdout
    assert "BLAS threads: 1" in stdout
    assert len(trace(tmp_path / "run")) == 6  # written once, not once per rank
    from numpy2gpt.gpt.checkpoint import load_checkpoint

    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["world_size"] == 2 and ckpt["iter_num"] == 6 and len(ckpt["rank_rng_states"]) == 2


def test_a_step_the_processes_cannot_share_is_one_line_before_any_start(tmp_path, word_corpus):
    flags = [*FLAGS, "--data-file", str(word_corpus), "--out-dir", str(tmp_path / "run"), "--procs", "2",
             "--batch-size", "3"]  # fmt: skip
    out, _ = run_script(CLI, tmp_path, args=tuple(flags))
    assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
    assert "2 ranks cannot share a step of gradient_accumulation_steps=1 x batch_size=3" in out.stderr


def test_a_worker_failing_in_numpy2gpt_train_is_its_message_then_one_line_from_rank_0(tmp_path, word_corpus):
    script = CLI.replace(
        "t.measure_matmul_peak = lambda *a, **k: 1e10",
        """t.measure_matmul_peak = lambda *a, **k: 1e10
    _step = t.optimizer_step
    def optimizer_step(model, optimizer, grad_clip, iter_num):
        from numpy2gpt.gpt.distributed import current_world
        if current_world().rank == 1 and iter_num == 2:
            raise ValueError("rank 1 breaks on purpose")
        _step(model, optimizer, grad_clip, iter_num)
    t.optimizer_step = optimizer_step""",
    )
    flags = [*FLAGS, "--data-file", str(word_corpus), "--out-dir", str(tmp_path / "run"), "--procs", "2"]
    out, seconds = run_script(script, tmp_path, args=tuple(flags))
    assert out.returncode == 1 and seconds < 60
    assert "numpy2gpt: rank 1 of 2 failed: ValueError: rank 1 breaks on purpose; aborting the job" in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last == "numpy2gpt train: error: rank 1 (exit code 1) of 2 failed; its message is above", out.stderr


def test_ctrl_c_ends_every_process_and_says_so(tmp_path, word_corpus):
    flags = [*FLAGS, "--data-file", str(word_corpus), "--out-dir", str(tmp_path / "run"), "--procs", "2",
             "--max-iters", "100000", "--lr-decay-iters", "100000", "--eval-interval", "100000"]  # fmt: skip
    path = tmp_path / "local_script.py"
    path.write_text(textwrap.dedent(CLI))
    proc = subprocess.Popen([sys.executable, str(path), *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)  # fmt: skip
    for line in proc.stdout:
        if line.startswith("iter 1:"):
            break
    children = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130 and stderr.strip().splitlines() == [
        "numpy2gpt train: interrupted (no checkpoint was saved)"
    ], stderr
    time.sleep(0.5)
    assert children and not [pid for pid in children if alive(pid)]


def test_procs_settings_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="procs must be >= 0"):
        t.TrainConfig(procs=-1)
    with pytest.raises(ValueError, match="procs must be 1 \\(or 0\\) with device 'cuda'"):
        t.TrainConfig(procs=2, device="cuda")
    assert distributed.share_of_step(2, 1, 12) == (1, 6)


def test_procs_0_is_the_usable_cores_that_can_share_the_step(monkeypatch):
    monkeypatch.setattr(local_ranks, "available_memory", lambda: 2**40)
    monkeypatch.setattr(t, "usable_cpus", lambda: 4)
    assert t.resolve_procs(t.TrainConfig(procs=0, batch_size=12)) == 4
    assert t.resolve_procs(t.TrainConfig(procs=0, batch_size=6)) == 3  # 6 rows share over 3, not 4
    assert t.resolve_procs(t.TrainConfig(procs=0, batch_size=5)) == 1
    assert t.resolve_procs(t.TrainConfig(procs=0, batch_size=5, gradient_accumulation_steps=4)) == 4
    assert t.resolve_procs(t.TrainConfig(procs=0, batch_size=12, device="cuda")) == 1
    assert t.resolve_procs(t.TrainConfig(procs=3, batch_size=12)) == 3  # explicit: as asked
    monkeypatch.setattr(t, "usable_cpus", lambda: 64)
    assert t.resolve_procs(t.TrainConfig(procs=0, batch_size=64)) == t.MAX_AUTO_PROCS
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")  # under mpiexec its ranks are the processes
    assert t.resolve_procs(t.TrainConfig(procs=0, batch_size=12)) == 1
    with pytest.raises(ValueError, match="procs is 2 under mpiexec: use one or the other"):
        t.resolve_procs(t.TrainConfig(procs=2, batch_size=12))


def test_procs_0_starts_no_more_processes_than_fit_in_free_memory(monkeypatch, capsys):
    monkeypatch.setattr(t, "usable_cpus", lambda: 8)
    # GPT-2 124M: ~124 M parameters x 16 bytes (weights, gradients, AdamW moments) + 200 MB a process = 2.2 GB
    gpt2 = t.TrainConfig(procs=0, batch_size=8, init_from="gpt2")
    per_process = 16 * t.parameter_estimate(12, 768, 50257, 1024) + t.PROCESS_MEMORY
    assert 2.1e9 < per_process < 2.3e9
    for free_gb, expected in ((64, 8), (16, 3), (8, 1), (1, 1)):  # processes within half of the free memory
        monkeypatch.setattr(local_ranks, "available_memory", lambda free_gb=free_gb: free_gb * 2**30)
        assert t.resolve_procs(gpt2) == expected, free_gb
    assert "procs 0: 1 process, not 8: each holds the model's weights" in capsys.readouterr().out
    assert t.resolve_procs(t.TrainConfig(procs=0, batch_size=8)) == 2  # the default model: 213 MB a process
    assert t.resolve_procs(t.TrainConfig(procs=4, batch_size=8, init_from="gpt2")) == 4  # explicit: as asked
    monkeypatch.setattr(local_ranks, "available_memory", lambda: None)  # unknown (not Linux): the cores decide
    assert t.resolve_procs(gpt2) == 8


def test_available_memory_is_what_meminfo_and_a_cgroup_limit_leave():
    free = local_ranks.available_memory()
    with open("/proc/meminfo") as f:
        meminfo = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    assert free is not None and 0 < free <= meminfo["MemAvailable"] * 1.1  # (it moves between the two reads)


@pytest.mark.slow
def test_the_command_runs_one_process_per_free_core_by_default(tmp_path, word_corpus, monkeypatch):
    monkeypatch.delenv("NUMPY2GPT_PROCS")
    script = CLI.replace(
        "t.measure_matmul_peak = lambda *a, **k: 1e10",
        """t.measure_matmul_peak = lambda *a, **k: 1e10
    t.usable_cpus = lambda: 2""",
    )
    flags = [*FLAGS, "--data-file", str(word_corpus), "--out-dir", str(tmp_path / "run")]
    stdout = check(run_script(script, tmp_path, args=tuple(flags))[0])
    assert "processes: 2 (procs 0: one per core)" in stdout and stdout.count("iter 6: loss") == 1
    monkeypatch.setenv("NUMPY2GPT_PROCS", "two")
    out, _ = run_script(script, tmp_path, args=tuple(flags))
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "numpy2gpt train: error: NUMPY2GPT_PROCS must be a non-negative integer (0: one process per core), got 'two'"
    )


def test_the_shared_block_goes_to_dev_shm_only_when_it_has_room(monkeypatch):
    class Fs:
        f_frsize = 4096
        f_bavail = 1000  # 4 MB free

    monkeypatch.setattr(os, "statvfs", lambda path: Fs())
    assert local_ranks._block_folder(1_000_000) == "/dev/shm"
    assert local_ranks._block_folder(3_000_000) is None  # the temporary folder: a 64 MB /dev/shm must not SIGBUS


@pytest.mark.slow
def test_resume_on_two_processes_is_bit_exact(tmp_path, word_corpus, monkeypatch):
    """6 steps on 2 processes (nanoGPT's batch draw: a stream per rank) equal 3 steps, then 3 more resumed from
    the checkpoint, bit for bit: the checkpoint holds both ranks' streams, and the resumed run writes where it
    was resumed from."""
    from numpy2gpt.gpt.checkpoint import load_checkpoint

    monkeypatch.setattr(t, "measure_matmul_peak", lambda *a, **k: 1e10)
    base = TINY | dict(data_file=str(word_corpus), batch_size=4, procs=2)
    whole = t.train(t.TrainConfig(**base, out_dir=str(tmp_path / "whole")))
    t.train(t.TrainConfig(**(base | dict(max_iters=3)), out_dir=str(tmp_path / "split")))
    split = t.train(t.TrainConfig(**base, out_dir=str(tmp_path / "split"), init_from="resume"))
    for (name, p), q in zip(whole.model.named_parameters(), split.model.parameters(), strict=True):
        assert (p.data == q.data).all(), f"{name} differs after resuming on 2 processes"
    assert trace(tmp_path / "whole") == trace(tmp_path / "split")  # the same losses, bit for bit
    assert load_checkpoint(tmp_path / "split")["iter_num"] == 6
