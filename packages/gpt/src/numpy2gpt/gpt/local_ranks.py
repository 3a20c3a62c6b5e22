"""Data-parallel training on this machine without MPI: ``numpy2gpt train --procs N`` runs rank 0 in this process
and starts N - 1 more, each running the same training loop as mpiexec's ranks (distributed.py), the ranks talking
through shared memory and pipes instead of MPI.

Processes rather than threads: between two NumPy passes a thread needs the GIL, so threads that share a process
wait on each other, and OpenBLAS's idle workers spin on cores that other work needs. N processes with one BLAS
thread each keep N cores busy (benchmarks/data_parallel.py measures it).

This module holds:

    LocalComm   the operations a World needs (barrier, sum_buffer, allreduce_sum, bcast, bcast_buffer, gather,
                abort): sums through shared memory (a row per rank, each rank adding up 1/N of the
                numbers); objects, bytes and the barrier's
                tokens through one pipe between rank 0 and each other rank (waits block, never spin, and a rank
                that dies shows as the end of its pipe)
    launch()    start the ranks and run ``target(world)`` on each; if any rank fails, all of them end and rank 0
                raises ``RankFailedError`` naming it
    available_memory()  what the machine can still give (how many ranks fit: ``train.resolve_procs``)
"""

from __future__ import annotations

import mmap
import multiprocessing
import multiprocessing.connection
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from numpy2gpt.gpt.distributed import World, entered, report_failure

T = TypeVar("T")
FOLLOWED = 3  # the exit code of a rank that ended because another one failed (that one's code names the culprit)


class RankFailedError(RuntimeError):
    """Another rank of a local job failed (its own message and traceback are on stderr)."""


class LocalComm:
    """The collectives between the processes of one local job (see the module docstring).

    Rank 0 holds a pipe to every other rank; rank r > 0 one pipe, to rank 0. Every rank calls the collectives in
    the same order (as with MPI), so the messages on each pipe never cross."""

    def __init__(self, rank: int, size: int, pipes: list[Any], workers: list[Any] | None = None):
        self.rank, self.size = rank, size
        self.pipes = pipes  # rank 0: pipes[r - 1] leads to rank r; rank r > 0: pipes[0] leads to rank 0
        self.workers = workers or []  # rank 0: the processes of ranks 1..N-1
        self.block: mmap.mmap | None = None  # allreduce_sum's block for arrays that are not a sum_buffer
        self.own_rows: dict[int, np.ndarray] = {}  # a sum_buffer's address -> the rows of its block

    # -- waiting, with the failure of another rank turned into one error --------------------------------------

    def _failed(self) -> RankFailedError:
        """The error of a rank whose pipe ended: on rank 0 it names the failed rank(s) and their exit codes."""
        deadline = time.monotonic() + 2.0  # a worker whose pipe just closed may still be on its way out
        for p in self.workers:
            p.join(max(0.0, deadline - time.monotonic()))
        codes = [(r + 1, p.exitcode) for r, p in enumerate(self.workers) if p.exitcode not in (None, 0, FOLLOWED)]
        which = ", ".join(f"rank {r} (exit code {c})" for r, c in codes) or "another rank"
        return RankFailedError(f"{which} of {self.size} failed; its message is above")

    def _recv(self, pipe: Any, into: np.ndarray | None = None) -> Any:
        try:
            return pipe.recv() if into is None else pipe.recv_bytes_into(into)
        except (EOFError, OSError):
            raise self._failed() from None

    def barrier(self) -> None:
        """Rank 0 waits for a token from every rank, then sends each one back."""
        if self.rank == 0:
            for pipe in self.pipes:
                self._recv(pipe)
            for pipe in self.pipes:
                pipe.send(None)
        else:
            self.pipes[0].send(None)
            self._recv(self.pipes[0])

    # -- the collectives ------------------------------------------------------------------------------------------

    def sum_buffer(self, n: int, dtype: Any) -> np.ndarray:
        """A 1-D array of ``n`` elements that ``allreduce_sum`` sums without copying it first (collective): this
        rank's row of a shared block of its own, made for it (``GradientAverager`` packs the gradients into it)."""
        rows = _rows(self._map((self.size + 1) * n * np.dtype(dtype).itemsize), self.size + 1, n, dtype)
        self.own_rows[rows[self.rank].ctypes.data] = rows
        return rows[self.rank]

    def allreduce_sum(self, buf: np.ndarray) -> np.ndarray:
        """The sum over the ranks of every rank's ``buf`` (contiguous), on every rank.

        A shared block holds one row per rank and, for a ``sum_buffer``, a row for the sum. A sum_buffer is its
        rank's row already; after a barrier rank r adds up part r of the rows, in rank order, into the sum's row
        (N ranks, N parts: each adds 1/N of the numbers); after a second barrier every rank may read the sum,
        which is returned (read-only, valid until this rank's next ``allreduce_sum``: no rank writes the sum's
        row before every rank has reached the first barrier of the next call). Any other ``buf`` is copied into
        its row of the general block, and after a barrier every rank adds up all the rows into its ``buf``, which
        is returned. Each number is added up in rank order either way, so every rank gets the same bits."""
        flat = buf.reshape(-1)  # a view: buf is contiguous
        rows = self.own_rows.get(flat.ctypes.data)
        if rows is None or rows.shape[1] != flat.size or rows.dtype != flat.dtype:
            if self.block is None or len(self.block) < self.size * flat.nbytes:
                self.block = self._map(self.size * flat.nbytes)
            rows = _rows(self.block, self.size, flat.size, flat.dtype)
            rows[self.rank] = flat
            self.barrier()
            np.add.reduce(rows, axis=0, out=flat)
            self.barrier()  # no rank writes its row again before every rank has read them all
            return buf
        self.barrier()
        lo, hi = flat.size * self.rank // self.size, flat.size * (self.rank + 1) // self.size
        np.add.reduce(rows[: self.size, lo:hi], axis=0, out=rows[self.size, lo:hi])
        self.barrier()
        total = rows[self.size].view()
        total.flags.writeable = False
        return total

    def _map(self, nbytes: int) -> mmap.mmap:
        """A new shared block of ``nbytes`` (collective): rank 0 makes a file (``_block_folder``), sends its path;
        every rank maps it; rank 0 then removes the name."""
        nbytes = max(nbytes, 1)  # (mmap refuses 0 bytes)
        if self.rank == 0:
            fd, path = tempfile.mkstemp(prefix="numpy2gpt-ranks-", dir=_block_folder(nbytes))
            os.ftruncate(fd, nbytes)
            block = mmap.mmap(fd, nbytes)
            os.close(fd)
            self.bcast(path)
            self.barrier()
            os.unlink(path)  # the mappings stay; nothing is left behind however the job ends
            return block
        path = self.bcast(None)
        with open(path, "r+b") as f:
            block = mmap.mmap(f.fileno(), nbytes)
        self.barrier()
        return block

    def bcast(self, obj: Any) -> Any:
        if self.rank == 0:
            for pipe in self.pipes:
                pipe.send(obj)
            return obj
        return self._recv(self.pipes[0])

    def bcast_buffer(self, buf: np.ndarray) -> None:
        if self.rank == 0:
            for pipe in self.pipes:
                pipe.send_bytes(buf)
        else:
            self._recv(self.pipes[0], into=buf)

    def gather(self, obj: Any) -> list[Any] | None:
        if self.rank == 0:
            return [obj, *(self._recv(pipe) for pipe in self.pipes)]
        self.pipes[0].send(obj)
        return None

    def abort(self, rank: int, size: int, error: BaseException) -> None:
        """Rank r > 0: report the error and end this process (rank 0 notices and ends the job). Rank 0: end the
        other ranks and return, so that the error reaches rank 0's caller (the CLI's one line, exit code 1)."""
        if self.rank > 0:  # (SystemExit: this process's exit handlers still run, see _rank_main)
            if isinstance(error, RankFailedError):  # another rank failed and has said why
                raise SystemExit(FOLLOWED)
            report_failure(rank, size, error)
            raise SystemExit(1)
        for p in self.workers:
            p.terminate()
        for p in self.workers:
            p.join(5)


def _rows(block: mmap.mmap, count: int, n: int, dtype: Any) -> np.ndarray:
    """The first ``count`` rows of ``n`` elements of ``dtype`` in a shared block, as one (count, n) array."""
    return np.frombuffer(block, dtype=dtype, count=count * n).reshape(count, n)


def _block_folder(nbytes: int) -> str | None:
    """Where the shared block's file goes: /dev/shm (memory) when it has room (a container's is often 64 MB), else
    the system's temporary folder (None): a file there is cached in memory too, only written back sometimes."""
    try:
        shm = os.statvfs("/dev/shm")
    except OSError:
        return None
    return "/dev/shm" if shm.f_bavail * shm.f_frsize >= 2 * nbytes else None


def available_memory() -> int | None:
    """Bytes this machine can still give to new processes: ``MemAvailable`` (/proc/meminfo), within what a cgroup v2
    memory limit leaves (``memory.max`` - ``memory.current``, e.g. ``docker --memory``); None off Linux."""
    sizes = []
    try:
        with open("/proc/meminfo") as f:
            sizes += [int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")]
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f, open("/sys/fs/cgroup/memory.current") as g:
            limit = f.read().strip()
            if limit != "max":
                sizes.append(max(0, int(limit) - int(g.read())))
    except (OSError, ValueError):
        pass
    return min(sizes) if sizes else None


def launch(size: int, target: Callable[[World], T]) -> T:
    """Run ``target(world)`` on ``size`` ranks of this machine: rank 0 in this process, ranks 1..size-1 in new
    processes (multiprocessing's "spawn": fresh interpreters, no state shared by accident); returns rank 0's
    result. ``target`` must be picklable (a module-level function or a ``functools.partial`` of one)."""
    ctx = multiprocessing.get_context("spawn")
    pipes = [ctx.Pipe() for _ in range(size - 1)]
    workers = [
        ctx.Process(target=_rank_main, args=(r, size, child, target), name=f"numpy2gpt-rank-{r}", daemon=True)
        for r, (_, child) in enumerate(pipes, start=1)
    ]
    for p in workers:
        p.start()
    for _, child in pipes:
        child.close()  # only the worker holds its end: a worker that dies shows as EOF on rank 0's end
    comm = LocalComm(0, size, [mine for mine, _ in pipes], workers)
    world = World(0, size, 0, size, size, comm)
    with entered(world), world.abort_on_error():
        result = target(world)
    for p in workers:
        p.join()
    return result


def _rank_main(rank: int, size: int, pipe: Any, target: Callable[[World], Any]) -> None:
    """A worker process: rank ``rank`` of ``size``. Ctrl-C is rank 0's to handle: it ends the workers with SIGTERM,
    which here raises SystemExit, so that the process's exit handlers run (multiprocessing's resource tracker then
    has nothing left to warn about). A worker whose rank 0 is gone (killed) ends too."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_followed)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()
    world = World(rank, size, rank, size, size, LocalComm(rank, size, [pipe]))
    with entered(world), world.abort_on_error():
        target(world)


def _exit_followed(signum: int, frame: Any) -> None:
    raise SystemExit(FOLLOWED)


def _exit_with(sentinel: int) -> None:
    """(A thread:) when ``sentinel`` (rank 0's process) ends, end this process as rank 0 would: with SIGTERM."""
    multiprocessing.connection.wait([sentinel])
    os.kill(os.getpid(), signal.SIGTERM)


__all__ = ["LocalComm", "RankFailedError", "available_memory", "launch"]
