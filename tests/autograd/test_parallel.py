"""numpy2gpt.autograd.parallel: blocks of elementwise work spread over threads give the serial result."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from numpy2gpt.autograd import parallel


@pytest.fixture
def threads():
    old = parallel.get_num_threads()
    yield parallel.set_num_threads
    parallel.set_num_threads(old)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("n", [0, 1, 1000, 65_536, 300_001])
def test_parallel_for_covers_every_index_once(threads, n_threads, n):
    threads(n_threads)
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    out = np.full(n, np.nan, dtype=np.float32)
    seen = np.zeros(n, dtype=np.int64)

    def kernel(start, stop):
        np.exp(x[start:stop], out=out[start:stop])
        seen[start:stop] += 1

    parallel.parallel_for(kernel, n, block=10_000)
    np.testing.assert_array_equal(out, np.exp(x))
    assert (seen == 1).all()


def test_uses_several_threads_for_large_work(threads):
    threads(2)
    names = set()
    lock = threading.Lock()

    def kernel(start, stop):
        with lock:
            names.add(threading.current_thread().name)

    parallel.parallel_for(kernel, 1 << 20, block=1 << 16)
    assert len(names) == 2
    names.clear()
    parallel.parallel_for(kernel, 1000, block=100)  # too small to be worth a second thread
    assert names == {threading.current_thread().name}


def test_exceptions_propagate(threads):
    threads(2)

    def kernel(start, stop):
        if start >= 1 << 19:
            raise ValueError("boom in a worker")

    with pytest.raises(ValueError, match="boom in a worker"):
        parallel.parallel_for(kernel, 1 << 20, block=1 << 16)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_nonsense(bad):
    with pytest.raises(ValueError, match="positive integer"):
        parallel.set_num_threads(bad)


def test_default_follows_the_environment(monkeypatch):
    monkeypatch.setenv("NUMPY2GPT_NUM_THREADS", "3")
    assert parallel._default_threads() == 3
    monkeypatch.delenv("NUMPY2GPT_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert parallel._default_threads() == 1


def test_works_in_a_forked_child(threads):
    import multiprocessing as mp
    import sys

    if sys.platform != "linux":
        return
    threads(2)
    parallel.parallel_for(lambda a, b: None, 1 << 20, block=1 << 16)  # the parent's pool exists
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply(_child_sum, (1 << 20,)) == float(1 << 20)


def _child_sum(n: int) -> float:
    parallel.set_num_threads(2)
    out = np.zeros(n, dtype=np.float64)

    def kernel(start, stop):
        out[start:stop] = 1.0

    parallel.parallel_for(kernel, n, block=1 << 16)
    return float(out.sum())
