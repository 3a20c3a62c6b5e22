"""Thread policy: how many BLAS threads to run, chosen from the cores this process can actually get.

NumPy's matrix products run on OpenBLAS's (or MKL's) thread pool, one thread per core of the machine by default.
On a machine where other processes are busy, or where this process may only use some cores (``taskset``, a
container's cpuset or CPU quota, an MPI rank bound to its core), those threads wait for cores that others hold,
and OpenBLAS's idle workers spin while they wait: a step can take 2-3x its quiet time. Fewer threads do better
there. Nothing happens on import; an entry point opts in::

    from numpy2gpt.nn.threads import set_num_threads
    policy = set_num_threads()          # auto: the free cores this process may use
    policy = set_num_threads(1)         # exactly one thread
    print(policy)                       # "BLAS threads: 1 (auto: 2 cores usable, 1.0 busy with other work) ..."

The rule (``choose_threads``): a positive ``n`` wins; else ``NUMPY2GPT_NUM_THREADS`` (a positive integer, or
``auto``); else *auto*::

    usable = the CPUs in os.sched_getaffinity, capped by the cgroup CPU quota (cpu.max), divided among `share`
             processes (e.g. MPI ranks on this machine)
    busy   = how many of those CPUs other processes keep busy right now: 1 - idle fraction of each CPU over
             ``sample_s`` seconds (/proc/stat), summed; elsewhere the 1-minute load average
    threads = max(1, round((usable - busy) / share))

Call it at start-up (before this process is busy itself: its own work would count as busy); during a run,
``AdaptiveThreads`` re-measures without sleeping (busy CPUs minus this process's own CPU time). Setting the count
needs ``threadpoolctl`` (an optional dependency here: without it the policy is computed but not applied, and
``ThreadPolicy.applied`` is False with the reason in ``note``). OpenBLAS's spin time (``OPENBLAS_THREAD_TIMEOUT``)
is read only when NumPy is first imported, so it can be set in the environment of a process to be started, not
from here.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

ENV_VAR = "NUMPY2GPT_NUM_THREADS"

__all__ = [
    "ENV_VAR",
    "AdaptiveThreads",
    "ThreadPolicy",
    "busy_cpus",
    "choose_threads",
    "set_num_threads",
    "usable_cpus",
]


@dataclass
class ThreadPolicy:
    """What ``set_num_threads`` chose and why.

    Attributes:
        threads: the BLAS thread count chosen.
        source: ``"argument"``, ``ENV_VAR`` or ``"auto"``.
        usable: CPUs this process may use (affinity, cgroup quota), before sharing.
        busy: CPUs found busy with other work when the policy was chosen (auto only; else 0).
        applied: True if the BLAS libraries were told (threadpoolctl present and found a library).
        note: why not applied, if not.
        libraries: threadpoolctl's view after applying: one dict per library (``internal_api``, ``num_threads``,
            ``architecture``, ...).
    """

    threads: int
    source: str
    usable: int
    busy: float = 0.0
    applied: bool = False
    note: str = ""
    libraries: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        why = f"{self.source}: {self.usable} cores usable"
        if self.source == "auto":
            why += f", {self.busy:.1f} busy with other work"
        libs = ", ".join(f"{lib.get('internal_api')} {lib.get('num_threads')}" for lib in self.libraries)
        done = f"set ({libs})" if self.applied else f"not applied: {self.note}"
        return f"BLAS threads: {self.threads} ({why}); {done}"


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask (taskset, cpusets, MPI binding), capped by a cgroup v2
    CPU quota (``cpu.max``, e.g. ``docker --cpus``), rounded up; at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def _cpu_times() -> dict[str, tuple[int, int]]:
    """Per CPU (``"cpu0"``, ...): (idle + iowait jiffies, total jiffies) from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name.startswith("cpu") and name != "cpu":
                ticks = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
                out[name] = (ticks[3] + ticks[4], sum(ticks))
    return out


def _busy_between(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> float:
    """CPUs kept busy between two /proc/stat readings: the sum over this process's CPUs of 1 - their idle share."""
    try:
        allowed = {f"cpu{i}" for i in os.sched_getaffinity(0)}
    except (AttributeError, OSError):
        allowed = set(after)
    busy = 0.0
    for name in allowed & before.keys() & after.keys():
        idle = after[name][0] - before[name][0]
        total = after[name][1] - before[name][1]
        if total > 0:
            busy += 1.0 - min(1.0, idle / total)
    return busy


def busy_cpus(sample_s: float = 0.1) -> float:
    """How many of this process's CPUs other processes keep busy now: sum over them of 1 - their idle fraction during
    ``sample_s`` seconds (this process sleeps meanwhile). Without /proc/stat: the 1-minute load average, capped."""
    try:
        before = _cpu_times()
        time.sleep(sample_s)
        return _busy_between(before, _cpu_times())
    except (OSError, ValueError, IndexError):
        try:
            return min(float(os.getloadavg()[0]), float(usable_cpus()))
        except (AttributeError, OSError):
            return 0.0


def _from_env(environ: Mapping[str, str]) -> int | None:
    """The thread count ``ENV_VAR`` asks for (None: unset, empty or ``auto``); one clear line if it is bad."""
    value = environ.get(ENV_VAR, "").strip().lower()
    if value in ("", "auto"):
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{ENV_VAR} must be a positive integer or 'auto', got {environ[ENV_VAR]!r}")
    return int(value)


def choose_threads(
    n: int | None = None,
    *,
    share: int = 1,
    environ: Mapping[str, str] | None = None,
    usable: Callable[[], int] = usable_cpus,
    busy: Callable[[], float] = busy_cpus,
) -> ThreadPolicy:
    """Choose the BLAS thread count without applying it (see the module docstring for the rule).

    Args:
        n: an explicit count (a ``--threads`` flag); None or 0: the environment variable, then auto.
        share: how many processes on this machine share the usable CPUs (MPI ranks per node): each gets its part.
        environ: the environment to read ``ENV_VAR`` from (default ``os.environ``).
        usable, busy: how to count usable and busy CPUs (replaceable in tests).
    """
    if n is not None and n < 0:
        raise ValueError(f"the number of threads must be positive (or 0/None for automatic), got {n}")
    if share < 1:
        raise ValueError(f"share must be at least 1 process, got {share}")
    cpus = usable()
    if n:
        return ThreadPolicy(threads=int(n), source="argument", usable=cpus)
    from_env = _from_env(os.environ if environ is None else environ)
    if from_env is not None:
        return ThreadPolicy(threads=from_env, source=ENV_VAR, usable=cpus)
    others = busy()
    threads = max(1, round((cpus - others) / share))
    return ThreadPolicy(threads=threads, source="auto", usable=cpus, busy=others)


def set_num_threads(n: int | None = None, *, share: int = 1, environ: Mapping[str, str] | None = None) -> ThreadPolicy:
    """Choose the BLAS thread count (``choose_threads``) and apply it to every BLAS/OpenMP library loaded in this
    process through threadpoolctl, for the rest of the process; returns the policy (print it).

    Args:
        n: an explicit count; None or 0: ``NUMPY2GPT_NUM_THREADS``, else automatic.
        share: processes on this machine sharing its CPUs (MPI ranks per node).
        environ: where to read ``NUMPY2GPT_NUM_THREADS`` (default ``os.environ``).
    """
    return _apply(choose_threads(n, share=share, environ=environ))


def _apply(policy: ThreadPolicy) -> ThreadPolicy:
    """Set ``policy.threads`` in every loaded BLAS/OpenMP library (threadpoolctl); record what happened."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        policy.note = "threadpoolctl is not installed (pip install threadpoolctl); BLAS keeps its own thread count"
        return policy
    threadpool_limits(limits=policy.threads)
    policy.libraries = [dict(lib) for lib in threadpool_info()]
    policy.applied = bool(policy.libraries)
    if not policy.applied:
        policy.note = "threadpoolctl found no BLAS or OpenMP library loaded"
    return policy


class AdaptiveThreads:
    """The thread policy kept up to date during a run: other processes that start (or stop) after start-up change
    the count at the next ``check()``, without sleeping to measure.

    ``check()`` compares the CPUs kept busy since the last check (/proc/stat) with this process's own CPU time over
    the same wall time (``os.times``, its spinning BLAS workers included): the difference is what other processes
    used, and the count becomes ``round((usable - others) / share)``, at least 1. Call it every so often (each
    evaluation, or every few seconds of training); it returns the new policy when the count changed, else None.
    An explicit count (argument or ``NUMPY2GPT_NUM_THREADS``) is never changed.

    Args:
        n, share, environ: as ``set_num_threads`` (which the constructor calls).
        min_interval_s: checks closer together than this do nothing (too few clock ticks to measure).
    """

    def __init__(
        self,
        n: int | None = None,
        *,
        share: int = 1,
        environ: Mapping[str, str] | None = None,
        min_interval_s: float = 0.5,
    ) -> None:
        self.policy = set_num_threads(n, share=share, environ=environ)
        self.share, self.min_interval_s = share, min_interval_s
        self._mark = self._reading()

    @staticmethod
    def _reading() -> tuple[float, float, dict[str, tuple[int, int]] | None]:
        """(wall time, this process's CPU seconds, per-CPU /proc/stat ticks or None where there is none)."""
        own = os.times()
        try:
            ticks = _cpu_times()
        except (OSError, ValueError, IndexError):
            ticks = None
        return time.monotonic(), own.user + own.system, ticks

    def others(self, before: tuple, after: tuple) -> float:
        """CPUs that other processes kept busy between two readings."""
        wall = after[0] - before[0]
        if before[2] is None or after[2] is None or wall <= 0:
            return 0.0
        return max(0.0, _busy_between(before[2], after[2]) - (after[1] - before[1]) / wall)

    def check(self) -> ThreadPolicy | None:
        """Re-measure and re-apply if the count changed; the new policy, or None."""
        if self.policy.source != "auto":
            return None
        now = self._reading()
        if now[0] - self._mark[0] < self.min_interval_s:
            return None
        others, self._mark = self.others(self._mark, now), now
        threads = max(1, round((self.policy.usable - others) / self.share))
        if threads == self.policy.threads:
            return None
        self.policy = _apply(ThreadPolicy(threads=threads, source="auto", usable=self.policy.usable, busy=others))
        return self.policy
