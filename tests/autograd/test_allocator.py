"""numpy2gpt.autograd.allocator: glibc's malloc keeps freed arrays for reuse, so repeated steps stop page-faulting."""

from __future__ import annotations

import resource

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


def test_applied_at_import_and_no_faults_on_reuse():
    libc = allocator._glibc()
    if libc is None:  # not glibc: the module must be a harmless no-op
        assert allocator.keep_freed_memory() is False
        assert allocator.is_applied() is False
        assert allocator.release_memory() is False
        return
    assert allocator.is_applied(), "numpy2gpt.autograd should apply the setting when imported"
    # a 40 MiB array freed and allocated again reuses the same pages: essentially no faults
    # (by default glibc would munmap and mmap it, faulting its 10,240 pages - or 20 huge pages - back in each round)
    assert _faults_per_round() < 8


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
