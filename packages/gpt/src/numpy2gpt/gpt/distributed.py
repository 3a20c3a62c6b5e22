"""Data-parallel training over processes and machines: MPI (``mpiexec -n N numpy2gpt train``) or, on one
machine without MPI, processes this one starts (``numpy2gpt train --procs N``, local_ranks.py).

Every rank holds a full copy of the model; per optimizer step each rank runs its share of the micro-batches,
then the gradients are summed with ONE ``Allreduce`` over one flat contiguous buffer and divided by the number
of ranks, so that every rank applies the same AdamW step to the same weights::

    g = (1 / N) * sum_r g_r        g_r: the gradient of rank r's micro-batches, each loss divided by G / N

(with G micro-batches per step in all, the mean over the G micro-batch losses, exactly as one process computes
it, up to float32 rounding). The buffer also carries the step's loss and, per parameter, whether any rank has a
gradient for it (so a parameter no rank touched keeps ``grad = None``, as in one process).

This module holds:

    launched_world_size()  how many ranks mpiexec started, read from the environment (mpi4py is not imported)
    World                  rank, size, local rank and size (ranks sharing this machine), and the collectives:
                           broadcast of a nested dict of arrays, sums of small arrays, barrier, abort_on_error
    MPIComm                the operations a World needs from its ranks' communicator, over mpi4py
                           (local_ranks.LocalComm: the same over shared memory and pipes)
    init_world()           the World of this process: MPI's when launched with N > 1 ranks, else a single one
    GradientAverager       the flat-buffer gradient Allreduce, allocated once
    share_of_step()        how a step's micro-batches are shared: whole micro-batches per rank, or rows of each
    can_share()            whether they can be
    rank_batches()         this rank's micro-batches of a step: from its own stream, or its slice of the global draw
    seed_rank_stream(), stream_states()   each rank's random stream: seeding, checkpointing, resuming
    set_rank_threads()     BLAS threads per rank: by default the free cores a rank may use, shared among the ranks
                           using the same cores (one thread each for N ranks on N cores)

Without mpiexec (or with ``-n 1``) nothing is imported and every collective is a no-op: the ordinary
single-process path. mpi4py comes with ``pip install 'numpy2gpt-gpt[mpi]'``.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

# The variables an MPI launcher sets in every process it starts, holding the number of processes:
# Open MPI (mpiexec, mpirun), MPICH and Intel MPI (Hydra's PMI), MVAPICH2.
SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")
BCAST_CHUNK = 1 << 30  # bytes per Bcast call: stays below MPI's 2^31-element count limit
INSTALL_HINT = "pip install 'numpy2gpt-gpt[mpi]'"


class MPIUnavailableError(ImportError):
    """Launched by mpiexec with several ranks, but mpi4py cannot be imported."""


def launched_world_size(environ: dict[str, str] | None = None) -> int:
    """The number of ranks an MPI launcher started this process among (1 when not launched by one).

    Read from the launcher's environment variables, so it costs nothing and imports nothing."""
    env = os.environ if environ is None else environ
    for name in SIZE_VARIABLES:
        value = env.get(name, "")
        if value.strip().isdigit():
            return max(1, int(value))
    return 1


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of a data-parallel job.

    ``rank`` in ``[0, size)``; ``local_rank`` in ``[0, local_size)`` counts the ranks on this machine (they share
    its disk). ``share`` counts the ranks on this machine whose CPU affinity overlaps this rank's, itself included
    (1 when the launcher bound each rank to its own cores). ``comm`` is the ranks' communicator (``MPIComm`` or
    ``local_ranks.LocalComm``), or None for a single process, where every collective below returns its input (no
    copy, no import)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    share: int = 1
    comm: Any = None

    @property
    def is_main(self) -> bool:
        """True on rank 0: the rank that prints, plots and writes checkpoints and metrics."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1 and self.comm is not None

    def barrier(self) -> None:
        """Wait until every rank arrives here."""
        if self.distributed:
            self.comm.barrier()

    def sum(self, values: Any) -> np.ndarray:
        """The elementwise sum over ranks of a small float64 array (every rank gets it)."""
        out = np.array(values, dtype=np.float64)  # a copy: the caller's array is untouched
        if self.distributed:
            out[...] = self.comm.allreduce_sum(out)
        return out

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` (small, picklable), as a list on rank 0; None on the other ranks."""
        if not self.distributed:
            return [obj]
        return self.comm.gather(obj)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank: a nested structure (dicts, lists, numbers, strings, NumPy arrays).

        The structure goes as one small pickle; the arrays as raw bytes in one flat buffer, sent in 1 GiB pieces
        (a checkpoint of GPT-2 with its AdamW moments is 1.5 GB). Other ranks pass anything (e.g. None)."""
        if not self.distributed:
            return obj
        arrays: list[np.ndarray] = []
        skeleton = _strip_arrays(obj, arrays) if self.is_main else None
        specs = [(a.dtype.str, a.shape) for a in arrays]
        skeleton, specs = self.comm.bcast((skeleton, specs))
        nbytes = [int(np.dtype(d).itemsize * math.prod(s)) for d, s in specs]
        flat = np.empty(sum(nbytes), dtype=np.uint8)
        if self.is_main and arrays:
            np.concatenate([np.ascontiguousarray(a).reshape(-1).view(np.uint8) for a in arrays], out=flat)
        self.comm.bcast_buffer(flat)
        if self.is_main:
            return obj
        offsets = np.cumsum([0, *nbytes])
        received = [flat[offsets[i] : offsets[i + 1]].view(np.dtype(d)).reshape(s) for i, (d, s) in enumerate(specs)]
        return _fill_arrays(skeleton, received)

    def broadcast_parameters(self, params: Iterable[Any]) -> None:
        """Overwrite every rank's parameters (tensors with ``.data``) in place with rank 0's."""
        if not self.distributed:
            return
        params = list(params)
        values = self.broadcast([p.data for p in params] if self.is_main else None)
        if not self.is_main:
            for p, value in zip(params, values, strict=True):
                if p.data.shape != value.shape:
                    raise ValueError(f"rank {self.rank}: a parameter has shape {p.data.shape}, rank 0's {value.shape}")
                p.data[...] = value

    @contextlib.contextmanager
    def abort_on_error(self) -> Iterator[None]:
        """End the whole job when this rank fails, instead of leaving the others waiting forever in their next
        collective: ``comm.abort`` (MPI: a line naming the rank and the error after the traceback, then
        ``MPI_Abort``; local ranks: see ``local_ranks.LocalComm.abort``). A no-op for a single process."""
        try:
            yield
        except (Exception, KeyboardInterrupt) as e:
            if not self.distributed:
                raise
            self.comm.abort(self.rank, self.size, e)
            raise  # where abort returns: rank 0 of local ranks, whose caller reports the error


def report_failure(rank: int, size: int, error: BaseException) -> None:
    """The traceback (not for Ctrl-C) and one line naming the failed rank, on stderr, flushed."""
    if not isinstance(error, KeyboardInterrupt):
        traceback.print_exception(error, file=sys.stderr)
    what = "interrupted" if isinstance(error, KeyboardInterrupt) else f"{type(error).__name__}: {error}"
    print(f"numpy2gpt: rank {rank} of {size} failed: {what}; aborting the job", file=sys.stderr)
    sys.stderr.flush()
    sys.stdout.flush()


class MPIComm:
    """mpi4py's ``COMM_WORLD`` behind the operations a World uses (the same as ``local_ranks.LocalComm``)."""

    def __init__(self, comm: Any) -> None:
        self.comm = comm

    def barrier(self) -> None:
        self.comm.Barrier()

    def sum_buffer(self, n: int, dtype: Any) -> np.ndarray:
        """An array for ``allreduce_sum`` to sum (any array will do with MPI)."""
        return np.empty(n, dtype=dtype)

    def allreduce_sum(self, buf: np.ndarray) -> np.ndarray:
        """``buf`` (contiguous) becomes the elementwise sum of every rank's ``buf``, on every rank; returns it."""
        from mpi4py import MPI

        self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        return buf

    def bcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` (small, picklable) on every rank."""
        return self.comm.bcast(obj, root=0)

    def bcast_buffer(self, buf: np.ndarray) -> None:
        """Rank 0's bytes of the uint8 array ``buf`` into every rank's ``buf``, in 1 GiB pieces."""
        from mpi4py import MPI

        for start in range(0, buf.size, BCAST_CHUNK):
            self.comm.Bcast([buf[start : start + BCAST_CHUNK], MPI.BYTE], root=0)

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` as a list on rank 0; None elsewhere."""
        return self.comm.gather(obj, root=0)

    def abort(self, rank: int, size: int, error: BaseException) -> None:
        """Report this rank's failure, then ``MPI_Abort``: every rank ends within seconds."""
        report_failure(rank, size, error)
        self.comm.Abort(1)


SINGLE = World()
_current = SINGLE  # what init_world found (MPI's COMM_WORLD is one per process too)


def _strip_arrays(obj: Any, arrays: list[np.ndarray]) -> Any:
    """``obj`` with each ndarray replaced by a placeholder holding its index in ``arrays`` (appended to)."""
    if isinstance(obj, np.ndarray):
        arrays.append(obj)
        return _ArrayRef(len(arrays) - 1)
    if isinstance(obj, dict):
        return {k: _strip_arrays(v, arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_strip_arrays(v, arrays) for v in obj)
    pickle.dumps(obj)  # fails here, on rank 0, naming the type, rather than inside the collective
    return obj


def _fill_arrays(obj: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(obj, _ArrayRef):
        return arrays[obj.index].copy()  # its own writable memory, not a view of the receive buffer
    if isinstance(obj, dict):
        return {k: _fill_arrays(v, arrays) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_fill_arrays(v, arrays) for v in obj)
    return obj


@dataclass(frozen=True)
class _ArrayRef:
    index: int


def init_world(environ: dict[str, str] | None = None) -> World:
    """The World of this process.

    Launched by mpiexec with N > 1 ranks: imports mpi4py (which initialises MPI) and returns rank, size, and
    the ranks sharing this machine (``COMM_TYPE_SHARED``). Otherwise the single-process World, importing
    nothing. Under mpiexec without mpi4py: ``MPIUnavailableError`` saying what to install."""
    global _current
    if launched_world_size(environ) <= 1:
        return SINGLE
    if _current.distributed:
        return _current
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise MPIUnavailableError(
            f"launched by mpiexec with {launched_world_size(environ)} ranks, but mpi4py is not installed "
            f"({e}): {INSTALL_HINT}"
        ) from None
    comm = MPI.COMM_WORLD
    if comm.Get_size() == 1:
        return SINGLE
    local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    try:
        mine = _affinity()
        share = sum(1 for cpus in local.allgather(mine) if cpus & mine)  # this rank included
        world = World(comm.Get_rank(), comm.Get_size(), local.Get_rank(), local.Get_size(), share, MPIComm(comm))
    finally:
        local.Free()
    _current = world
    return world


@contextlib.contextmanager
def entered(world: World) -> Iterator[World]:
    """Make ``world`` this process's current one (``current_world``) inside the block: how the ranks that
    local_ranks.py starts, which do not come from ``init_world``, tell a log line whether it runs on rank 0."""
    global _current
    before, _current = _current, world
    try:
        yield world
    finally:
        _current = before


def current_world() -> World:
    """The World that ``init_world`` returned last in this process (the single one before any call): lets code
    far from the training loop (a log line) know whether it runs on rank 0, without initialising anything."""
    return _current


def _affinity() -> set[int]:
    """The CPUs this process may run on (all of them where the OS cannot say)."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


BATCH_DRAWS = ("rank", "global")


def can_share(size: int, steps: int, batch_size: int) -> bool:
    """Whether ``size`` ranks can share a step equally (``share_of_step``'s rule)."""
    return steps % size == 0 or batch_size % size == 0


def share_of_step(size: int, steps: int, batch_size: int) -> tuple[int, int]:
    """How ``size`` ranks share a step of ``steps`` micro-batches of ``batch_size`` rows: (micro-batches per rank,
    rows per micro-batch). Whole micro-batches when ``steps`` is a multiple of ``size`` (nanoGPT's rule with DDP),
    else the rows of every micro-batch when ``batch_size`` is (nanoGPT's CPU config, one micro-batch of 12, on 2
    ranks: 6 rows each); the mean of the ranks' mean losses is then one process's loss. Else one line saying what
    would fit."""
    if steps % size == 0:
        return steps // size, batch_size
    if can_share(size, steps, batch_size):
        return steps, batch_size // size
    fit = -(-steps // size) * size
    raise ValueError(
        f"{size} ranks cannot share a step of gradient_accumulation_steps={steps} x batch_size={batch_size}: one "
        f"of them must be a multiple of {size} (each rank takes an equal share of the micro-batches, or of each "
        f"micro-batch's rows); e.g. --gradient-accumulation-steps {fit} and --batch-size divided by {fit // steps} "
        "for the same global batch"
    )


def rank_batches(
    world: World, draw: Callable[[int], Any], steps: int, batch_size: int, mode: str = "rank"
) -> Iterator[Any]:
    """This rank's share (``share_of_step``) of one optimizer step's ``steps`` micro-batches of ``batch_size`` rows,
    each made by ``draw(rows)`` (a tuple of arrays with ``rows`` rows, e.g. ``(x, y)``).

    ``mode`` ``"rank"`` (nanoGPT's): draw this rank's share from its own random stream. ``"global"``: draw all
    ``steps`` full batches, in one process's order, from a stream every rank holds in the same state, and keep
    this rank's contiguous slice (of the micro-batches, or of each one's rows): together the ranks train on exactly
    the examples one process would. The global draws happen up front (before any dropout mask is drawn, so the
    ranks' streams stay in step); a single process draws lazily, one batch before each forward, as always."""
    if mode not in BATCH_DRAWS:
        raise ValueError(f"batch_draw must be one of {BATCH_DRAWS}, got {mode!r}")
    per_rank, rows = share_of_step(world.size, steps, batch_size)
    if mode == "global" and world.size > 1:
        drawn = [draw(batch_size) for _ in range(steps)]
        if per_rank < steps:
            yield from drawn[world.rank * per_rank : (world.rank + 1) * per_rank]
        else:
            yield from (tuple(a[world.rank * rows : (world.rank + 1) * rows] for a in batch) for batch in drawn)
        return
    for _ in range(per_rank):
        yield draw(rows)


def seed_rank_stream(world: World, mode: str, seed: int, checkpoint: dict[str, Any] | None, iter_num: int = 0) -> str:
    """Put this rank's random stream (numpy2gpt's default generator: batches, dropout) where the run needs it,
    after the model was initialised (identically on every rank) and, when resuming, the checkpoint's
    ``rng_state`` (rank 0's) restored. Returns a note for the log ("" if there is nothing to say).

    Fresh run, mode "rank": rank r > 0 reseeds with ``seed + r`` (nanoGPT's ``seed_offset``); rank 0 keeps the
    stream of a single process. Mode "global": every rank keeps the same stream. Resuming, mode "rank": rank r
    takes the state it saved (``rank_rng_states``), so the same number of ranks continues bit for bit; a rank the
    checkpoint has no state for (more ranks than saved it) starts a new stream seeded by (seed, iter_num, rank):
    a correct continuation, though not the run the saved number of ranks would have made."""
    from numpy2gpt.autograd import manual_seed, set_rng_state

    if mode not in BATCH_DRAWS:
        raise ValueError(f"batch_draw must be one of {BATCH_DRAWS}, got {mode!r}")
    if checkpoint is None:
        if mode == "rank" and world.rank > 0:
            manual_seed(seed + world.rank)
        return ""
    if mode == "global" or world.size == 1:
        return ""  # restore() set rank 0's saved state, the one stream of this run
    states = checkpoint.get("rank_rng_states") or [checkpoint["rng_state"]]
    if world.rank < len(states):
        set_rng_state(states[world.rank])
    else:
        manual_seed(int(np.random.SeedSequence([seed, iter_num, world.rank]).generate_state(1)[0]))
    if len(states) == world.size:
        return ""
    return (
        f"the checkpoint holds the batch streams of {len(states)} rank(s), this run has {world.size}: ranks "
        f"{len(states)}.. start new streams (a correct continuation, not bit-identical to resuming on "
        f"{len(states)} rank(s))"
    )


def stream_states(world: World, mode: str) -> dict[str, Any]:
    """What a checkpoint records about the ranks (collective: every rank calls it; rank 0 gets the entries):
    ``world_size``, ``batch_draw`` and, in mode "rank" with several ranks, ``rank_rng_states`` (each rank's
    random stream, for a bit-exact resume on the same number of ranks)."""
    from numpy2gpt.autograd import get_rng_state

    states = world.gather(get_rng_state()) if mode == "rank" and world.size > 1 else None
    out: dict[str, Any] = {"world_size": world.size, "batch_draw": mode}
    if states is not None:
        out["rank_rng_states"] = states
    return out


class GradientAverager:
    """Averages the gradients of ``params`` over the ranks with one Allreduce per step.

    The flat buffer (one per parameter dtype; float32 models have one, from ``comm.sum_buffer``) is allocated once
    and holds, in order, every parameter's gradient, then one flag per parameter (1 if this rank has a gradient
    for it), then ``n_extra`` scalars that are averaged with the gradients (the step's loss). ``4 x n_params``
    bytes go each way per step for a float32 model."""

    def __init__(self, world: World, params: Iterable[Any], n_extra: int = 1) -> None:
        self.world = world
        self.params = [p for p in params if p.requires_grad]
        self.n_extra = n_extra
        self.groups: dict[np.dtype, list[int]] = {}  # dtype -> indices into self.params
        for i, p in enumerate(self.params):
            self.groups.setdefault(p.data.dtype, []).append(i)
        self.n_grads = {dtype: sum(self.params[i].data.size for i in idx) for dtype, idx in self.groups.items()}
        self.buffers: dict[np.dtype, np.ndarray] = {}
        if world.distributed:
            for k, (dtype, idx) in enumerate(self.groups.items()):
                extra = len(idx) + (n_extra if k == 0 else 0)  # the scalars travel in the first buffer
                self.buffers[dtype] = world.comm.sum_buffer(self.n_grads[dtype] + extra, dtype)

    def __call__(self, *extra: float) -> tuple[float, ...]:
        """Replace each gradient by its mean over the ranks; return the means of ``extra`` (the loss, ...).

        A parameter without a gradient counts as zero; it keeps ``grad = None`` only if no rank has one."""
        if len(extra) != self.n_extra:
            raise ValueError(f"expected {self.n_extra} extra scalars to average, got {len(extra)}")
        if not self.world.distributed:
            return tuple(float(e) for e in extra)
        from numpy2gpt.autograd import Tensor

        means: tuple[float, ...] = ()
        scale = 1.0 / self.world.size
        for k, (dtype, idx) in enumerate(self.groups.items()):
            buf = self.buffers[dtype]
            self._pack(buf, idx)
            if k == 0:
                buf[buf.size - self.n_extra :] = extra
            total = self.world.comm.allreduce_sum(buf)
            flags = total[self.n_grads[dtype] :][: len(idx)]
            for i, view, flag in zip(idx, self._views(total, idx), flags, strict=True):
                p = self.params[i]
                if flag == 0:
                    p.grad = None  # no rank had a gradient: the optimizer skips it, as in one process
                elif p.grad is None:
                    p.grad = Tensor(view * scale)
                else:
                    np.multiply(view, scale, out=p.grad.data)
            if k == 0:
                means = tuple(float(v) * scale for v in total[total.size - self.n_extra :])
        return means

    def _views(self, buf: np.ndarray, idx: list[int]) -> list[np.ndarray]:
        """Each parameter's gradient in ``buf``, shaped as the parameter."""
        views, start = [], 0
        for i in idx:
            p = self.params[i]
            views.append(buf[start : start + p.data.size].reshape(p.data.shape))
            start += p.data.size
        return views

    def _pack(self, buf: np.ndarray, idx: list[int]) -> None:
        """Copy the gradients (zeros where None) and the has-gradient flags into ``buf``."""
        flags = buf[self.n_grads[buf.dtype] :]
        for j, (i, view) in enumerate(zip(idx, self._views(buf, idx), strict=True)):
            p = self.params[i]
            if p.grad is None:
                view.fill(0)
            else:
                np.copyto(view, p.grad.data)
            flags[j] = p.grad is not None


def set_rank_threads(world: World, requested: int = 0) -> Any:
    """Set this rank's BLAS threads with ``numpy2gpt.nn.threads.set_num_threads`` and return its ThreadPolicy
    (print it). A single process is a world of one and gets the same policy.

    ``requested`` > 0 (``--rank-threads``) wins, then ``NUMPY2GPT_NUM_THREADS``, else automatic: the free cores
    this rank may run on, divided among the ranks on this machine that share them (``world.share``). N ranks on
    N cores thus run one thread each, instead of N x N threads fighting for N cores (and OpenBLAS's idle workers
    spinning on cores the other ranks need); one process beside busy ones runs on the cores left free."""
    if requested < 0:
        raise ValueError(f"rank_threads must be >= 0 (0: automatic), got {requested}")
    from numpy2gpt.nn.threads import set_num_threads

    return set_num_threads(requested or None, share=world.share)


__all__ = [
    "BATCH_DRAWS",
    "SINGLE",
    "GradientAverager",
    "MPIComm",
    "MPIUnavailableError",
    "World",
    "can_share",
    "current_world",
    "entered",
    "init_world",
    "launched_world_size",
    "rank_batches",
    "report_failure",
    "seed_rank_stream",
    "set_rank_threads",
    "share_of_step",
    "stream_states",
]
