"""numpy2gpt.autograd.allocator: once an entry point asks,
glibc's malloc keeps freed arrays for reuse, so repeated steps stop page-faulting."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import numpy as np

from numpy2gpt.autograd import allocator


def _faults_per_round(rounds: int = 10, nbytes: int = 40 << 20) -> float:
    """Minor page faults per allocate-touch-free round of an array of ``nbytes`` (after one warm-up round)."""

    def one_round() -> None:
        a = np.ones(nbytes // 4, dtype=np.float32)  # touches every page
        del a

    one_round()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        one_round()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / rounds


def _run(code: str, **env: str) -> str:
    """Run ``code`` in a fresh interpreter (so this process's allocator state does not matter); its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_import_has_no_side_effect():
    """Issue 10 item 4: importing the library leaves malloc alone; entry points opt in."""
    out = _run("import numpy2gpt.autograd as ag; print(ag.allocator.is_applied())")
    assert out == "False"


def test_keep_freed_memory_applies_once_and_stops_faults_on_reuse():
    libc = allocator._glibc()
    if libc is None:  # not glibc: the module must be a harmless no-op
        assert allocator.keep_freed_memory() is False
        assert allocator.is_applied() is False
        assert allocator.release_memory() is False
        return
    assert allocator.keep_freed_memory() is True
    assert allocator.keep_freed_memory() is True  # idempotent
    assert allocator.is_applied()
    # a 40 MiB array freed and allocated again reuses the same pages: essentially no faults
    # (by default glibc would munmap and mmap it, faulting its 10,240 pages - or 20 huge pages - back in each round)
    assert _faults_per_round() < 8


def test_environment_variable_opts_out():
    code = "from numpy2gpt.autograd import allocator as a; print(a.keep_freed_memory(), a.is_applied())"
    assert _run(code, NUMPY2GPT_KEEP_FREED_MEMORY="0") == "False False"
    if allocator._glibc() is not None:
        assert _run(code, NUMPY2GPT_KEEP_FREED_MEMORY="1") == "True True"


def test_can_be_turned_off_and_on_again():
    if allocator._glibc() is None:
        return
    try:
        assert allocator.keep_freed_memory(False) is True
        assert not allocator.is_applied()
        assert allocator.keep_freed_memory(True) is True
        assert allocator.is_applied()
        assert _faults_per_round() < 8
    finally:
        allocator.keep_freed_memory(True)


def test_release_memory_returns_a_bool():
    assert isinstance(allocator.release_memory(), bool)
