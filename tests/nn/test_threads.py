"""The thread policy (numpy2gpt.nn.threads): the choice (argument, environment variable, free cores), counting
usable and busy CPUs, applying it through threadpoolctl, and nothing on import."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from numpy2gpt.nn import threads
from numpy2gpt.nn.threads import ENV_VAR, AdaptiveThreads, busy_cpus, choose_threads, set_num_threads, usable_cpus


def auto(cores, busy, **kwargs):
    return choose_threads(environ={}, usable=lambda: cores, busy=lambda: busy, **kwargs)


def test_an_explicit_count_wins_then_the_environment_variable():
    policy = choose_threads(3, environ={ENV_VAR: "5"}, usable=lambda: 2, busy=lambda: 2.0)
    assert (policy.threads, policy.source) == (3, "argument")
    policy = choose_threads(None, environ={ENV_VAR: " 5 "}, usable=lambda: 2, busy=lambda: 2.0)
    assert (policy.threads, policy.source) == (5, ENV_VAR)
    policy = choose_threads(0, environ={ENV_VAR: "auto"}, usable=lambda: 4, busy=lambda: 1.0)
    assert (policy.threads, policy.source, policy.busy) == (3, "auto", 1.0)


@pytest.mark.parametrize(
    ("cores", "busy", "share", "expected"),
    [(2, 0.0, 1, 2), (2, 0.3, 1, 2), (2, 0.9, 1, 1), (2, 2.0, 1, 1), (2, 5.0, 1, 1), (8, 2.0, 1, 6), (8, 0.0, 4, 2),
     (8, 4.0, 2, 2), (1, 0.0, 1, 1), (2, 0.0, 4, 1)],
)  # fmt: skip
def test_auto_takes_the_free_cores_shared_among_processes(cores, busy, share, expected):
    policy = auto(cores, busy, share=share)
    assert policy.threads == expected
    assert f"{cores} cores usable" in str(policy)


def test_bad_requests_are_one_clear_line():
    with pytest.raises(ValueError, match=f"{ENV_VAR} must be a positive integer or 'auto', got 'two'"):
        choose_threads(environ={ENV_VAR: "two"})
    with pytest.raises(ValueError, match=ENV_VAR):
        choose_threads(environ={ENV_VAR: "0"})
    with pytest.raises(ValueError, match="must be positive"):
        choose_threads(-1, environ={})
    with pytest.raises(ValueError, match="share must be at least 1"):
        choose_threads(environ={}, share=0)


def test_usable_cpus_follow_the_affinity_mask():
    n = usable_cpus()
    assert 1 <= n <= (os.cpu_count() or 1)
    if hasattr(os, "sched_getaffinity"):
        assert n <= len(os.sched_getaffinity(0))


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="busy CPUs are read from Linux's /proc/stat")
def test_busy_cpus_sees_a_busy_process():
    idle_reading = busy_cpus(0.05)
    assert 0.0 <= idle_reading <= usable_cpus() + 1e-9
    spin = "import time\nend = time.time() + 3\nwhile time.time() < end: pass\n"  # stops by itself
    child = subprocess.Popen([sys.executable, "-c", spin])
    try:
        time.sleep(0.3)
        assert busy_cpus(0.3) >= 0.6
    finally:
        child.kill()
        child.wait()


def test_set_num_threads_applies_it_through_threadpoolctl():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import numpy  # noqa: F401  (loads OpenBLAS)

    with threadpoolctl.threadpool_limits(limits=None):  # restores this process's setting on exit
        policy = set_num_threads(1)
        assert policy.applied and policy.threads == 1 and policy.source == "argument"
        blas = [lib for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
        assert blas and all(lib["num_threads"] == 1 for lib in blas)
        assert "BLAS threads: 1" in str(policy) and "set (" in str(policy)


def test_without_threadpoolctl_the_policy_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails
    policy = set_num_threads(2)
    assert not policy.applied and policy.threads == 2
    assert "threadpoolctl is not installed" in str(policy)


def test_nothing_happens_on_import():
    pytest.importorskip("threadpoolctl")
    code = (
        "import threadpoolctl, numpy\n"
        "before = [lib['num_threads'] for lib in threadpoolctl.threadpool_info()]\n"
        "import numpy2gpt.nn, numpy2gpt.nn.threads\n"
        "assert [lib['num_threads'] for lib in threadpoolctl.threadpool_info()] == before, before\n"
    )
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env["OPENBLAS_NUM_THREADS"] = "2"
    env[ENV_VAR] = "1"  # read only when an entry point asks
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_adaptive_threads_follow_what_other_processes_use(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import numpy  # noqa: F401  (loads OpenBLAS)

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    n = len(cpus)

    def reading(wall, own_cpu_s, idle_ticks):
        """(wall s, this process's CPU s, /proc/stat): every CPU at 100 ticks a second, ``idle_ticks`` of them idle."""
        return wall, own_cpu_s, {f"cpu{i}": (idle_ticks, round(100 * wall)) for i in cpus}

    readings = iter([
        reading(0.0, 0.0, 0),
        reading(0.2, 0.2, 0),  # too soon after the last check: nothing measured
        reading(1.0, 1.0, 0),  # 1 s, every CPU busy, 1 CPU of it ours: the others used n - 1
        reading(2.0, 2.0, round(100 * (1 - 1 / n))),  # next second: 1 CPU busy in all, ours
    ])  # fmt: skip
    with threadpoolctl.threadpool_limits(limits=None):  # restores this process's setting on exit
        adaptive = AdaptiveThreads(environ={})
        adaptive.policy = threads.ThreadPolicy(threads=n, source="auto", usable=n)
        monkeypatch.setattr(adaptive, "_reading", lambda: next(readings))
        adaptive._mark = adaptive._reading()
        assert adaptive.check() is None
        changed = adaptive.check()
        assert (changed is None and n == 1) or (changed.threads == 1 and changed.busy == pytest.approx(n - 1))
        blas = [lib for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
        assert blas and all(lib["num_threads"] == 1 for lib in blas)
        back = adaptive.check()
        assert (back is None and n == 1) or (back.threads == n and back.busy == pytest.approx(0.0, abs=1e-9))


def test_adaptive_threads_leave_an_explicit_count_alone():
    pytest.importorskip("threadpoolctl")
    import threadpoolctl

    with threadpoolctl.threadpool_limits(limits=None):
        adaptive = AdaptiveThreads(1, min_interval_s=0.0)
        assert adaptive.policy.source == "argument" and adaptive.check() is None
