"""Fixtures shared by the gpt tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_process(monkeypatch):
    """``numpy2gpt train`` runs one process per core by default (--procs 0): the tests of the command run one,
    in this process (where their monkeypatches reach), unless they ask for more (test_local_ranks.py)."""
    monkeypatch.setenv("NUMPY2GPT_PROCS", "1")


@pytest.fixture
def text_file(tmp_path):
    """A small text file of 150 lines of shuffled Hamlet words (enough for a char model to learn from)."""
    words = "to be or not to be that is the question whether tis nobler in the mind to suffer".split(" ")  # noqa: SIM905
    lines = [" ".join(words[(i * 7) % len(words) :] + words[: (i * 7) % len(words)]) for i in range(150)]
    path = tmp_path / "small.txt"
    path.write_text("\n".join(lines) + "\n")
    return path
