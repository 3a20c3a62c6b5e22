"""Keep freed arrays' memory inside the process, so a training loop stops paying page faults every step.

A training step allocates the same large arrays every time (activations, their gradients, temporaries) and frees
them all by the end of the step. With glibc's default malloc, an allocation above the *mmap threshold* (128 KiB at
start, adjusted upwards at run time up to 32 MiB) gets fresh pages from the kernel with ``mmap`` and is handed back
with ``munmap`` when freed, and a freed stretch at the top of the heap above the *trim threshold* is handed back too.
The next step asks again, and the kernel zero-fills and maps every page anew on first touch: a page fault per
4 KiB page (thousands to tens of thousands per step). Measured on a 2-core machine with a hand-written NumPy GPT
step: nanoGPT's CPU configuration went from ~4,000 to ~200 faults a step, and the 6-layer 384-wide "baby" model from
~28,000 faults and 1.76 s a step to ~2,000 faults and 0.85 s. PyTorch avoids the same cost with its own caching
allocator; this is the NumPy equivalent, done by telling malloc to keep what it is given back:

* ``M_MMAP_THRESHOLD`` = 1 GiB: arrays up to 1 GiB come from the heap, whose freed chunks are reused by the next
  allocation of a similar size instead of being unmapped (setting it also turns off the dynamic adjustment).
* ``M_TRIM_THRESHOLD`` = 2 GiB: free memory at the top of the heap is not returned to the OS after every step.

The cost: memory freed at the end of a step stays counted in the process's resident size until it is reused (the
*peak* is unchanged: it is the step's own working set). Call ``release_memory()`` to hand the free part back
(``malloc_trim``), e.g. after training and before something else needs the memory.

Nothing happens on import: a library must not change a process-wide setting behind its user's back. Entry
points opt in with one call, ``keep_freed_memory()`` (the ``numpy2gpt`` CLI and ``train()`` do); calling it again
does nothing more. It is a no-op (returns False) where the C library is not glibc (macOS, Windows, musl), and
when the environment variable ``NUMPY2GPT_KEEP_FREED_MEMORY=0`` is set. ``keep_freed_memory(False)`` restores
glibc's defaults.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["is_applied", "keep_freed_memory", "release_memory"]

# mallopt parameter numbers from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_MMAP_THRESHOLD = 1 << 30  # 1 GiB
_MMAP_THRESHOLD_FALLBACK = 32 << 20  # the most some glibc versions accept (HEAP_MAX_SIZE / 2 on 64-bit)
_TRIM_THRESHOLD = (1 << 31) - 1  # mallopt takes a C int
_DEFAULT_MMAP_THRESHOLD = 128 * 1024
_DEFAULT_TRIM_THRESHOLD = 128 * 1024

_applied = False


def _glibc() -> ctypes.CDLL | None:
    """The process's glibc, or None where the C library is something else."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the C library already loaded into this process
    except OSError:  # pragma: no cover - every Linux Python has one
        return None
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None  # musl and friends: no mallopt to speak of
    return libc


def keep_freed_memory(enable: bool = True) -> bool:
    """Tell glibc's malloc to keep freed memory for reuse (``enable=True``) or restore its defaults (``False``).

    Returns True if the setting is in effect (``enable``) or was undone (``not enable``); always False off
    glibc, and ``keep_freed_memory(True)`` is False without touching malloc when the environment variable
    ``NUMPY2GPT_KEEP_FREED_MEMORY`` is 0/false/no/off. Calling it twice does the work once.
    """
    global _applied
    libc = _glibc()
    if libc is None or (enable and _opted_out()):
        return False
    if enable == _applied:
        return True  # already in that state
    if enable:
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) or libc.mallopt(
            _M_MMAP_THRESHOLD, _MMAP_THRESHOLD_FALLBACK
        )
        ok = bool(ok) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    else:
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, _DEFAULT_MMAP_THRESHOLD)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
        )
    _applied = enable and ok
    return ok


def _opted_out() -> bool:
    return os.environ.get("NUMPY2GPT_KEEP_FREED_MEMORY", "1").strip().lower() in ("0", "false", "no", "off")


def release_memory() -> bool:
    """Return the heap's free memory to the OS now (glibc's ``malloc_trim(0)``); False where there is no glibc."""
    libc = _glibc()
    if libc is None or not hasattr(libc, "malloc_trim"):
        return False
    return bool(libc.malloc_trim(0))


def is_applied() -> bool:
    """True while ``keep_freed_memory()`` is in effect in this process."""
    return _applied
