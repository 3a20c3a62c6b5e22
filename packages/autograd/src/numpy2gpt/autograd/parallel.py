"""Elementwise work on every core: split a long array pass into blocks and run the blocks on a few threads.

Matrix products already use every core (the BLAS library behind NumPy is multi-threaded), but NumPy's ufuncs
(``np.exp``, ``+``, ``*=``, ...) run on one thread. PyTorch runs its elementwise kernels on all its threads, so an
op made of ufunc passes (GELU, softmax, LayerNorm) would be up to ``cores`` times slower than PyTorch's for that
reason alone. A ufunc releases the GIL while it loops over a large enough array, so plain Python threads that each
work on their own slice of the data do run in parallel:

    def kernel(start, stop):                       # writes only out[start:stop]
        np.exp(x[start:stop], out=out[start:stop])

    parallel_for(kernel, len(x), block=1 << 16)    # blocks of 65,536 elements, spread over the threads

Each thread takes a contiguous run of blocks, so a kernel that keeps per-block work buffers in the cache (see
GELU) still does. Work too small to be worth a thread switch runs on the calling thread alone.

The number of threads is ``get_num_threads()``: ``set_num_threads(n)`` if called, else the environment's
``NUMPY2GPT_NUM_THREADS``, ``OMP_NUM_THREADS`` or ``OPENBLAS_NUM_THREADS`` (the first set), else the number of
cores this process may use; so one setting pins both the BLAS library and these kernels, as
``torch.set_num_threads`` does for PyTorch.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

__all__ = ["get_num_threads", "parallel_for", "set_num_threads"]

_MIN_PER_THREAD = 1 << 15  # elements: below this a thread hand-off (~20 us) costs more than it saves

_num_threads: int | None = None
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = 0  # a forked child inherits the pool object but not its threads: it makes its own


def _default_threads() -> int:
    for var in ("NUMPY2GPT_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def get_num_threads() -> int:
    """How many threads ``parallel_for`` uses (1 means: everything on the calling thread)."""
    if _num_threads is None:
        set_num_threads(_default_threads())
    assert _num_threads is not None
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for the elementwise kernels (``torch.set_num_threads``'s counterpart)."""
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: need a positive integer, got {n!r}")
    _num_threads = n


def _get_pool(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size, _pool_pid
    if _pool is None or _pool_size < workers or _pool_pid != os.getpid():
        if _pool is not None and _pool_pid == os.getpid():
            _pool.shutdown(wait=True)
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="numpy2gpt")
        _pool_size, _pool_pid = workers, os.getpid()
    return _pool


def parallel_for(kernel: Callable[[int, int], None], n: int, block: int) -> None:
    """Call ``kernel(start, stop)`` for consecutive blocks of at most ``block`` indices covering ``range(n)``.

    The blocks are split into contiguous runs, one per thread; the calling thread works on the first run and
    returns when every run is done. ``kernel`` must only write to its own ``[start, stop)`` part of the output.
    An exception in any run is raised here.
    """
    if n <= 0:
        return
    blocks = [(start, min(n, start + block)) for start in range(0, n, block)]
    threads = min(get_num_threads(), len(blocks), max(1, n // _MIN_PER_THREAD))
    if threads == 1:
        for start, stop in blocks:
            kernel(start, stop)
        return

    def run(part: list[tuple[int, int]]) -> None:
        for start, stop in part:
            kernel(start, stop)

    per, extra = divmod(len(blocks), threads)
    parts, i = [], 0
    for t in range(threads):
        size = per + (1 if t < extra else 0)
        parts.append(blocks[i : i + size])
        i += size
    futures = [_get_pool(threads - 1).submit(run, part) for part in parts[1:]]
    try:
        run(parts[0])
    finally:
        for f in futures:
            f.result()  # wait for all of them (and re-raise a worker's exception) before the caller reads
