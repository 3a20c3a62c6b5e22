"""Fixtures shared by the gpt tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_process(monkeypatch):
    """``numpy2gpt train`` runs one process per core by default (--procs 0): the tests of the command run one,
    in this process (where their monkeypatches reach), unless they ask for more (test_local_ranks.py)."""
    monkeypatch.setenv("NUMPY2GPT_PROCS", "1")


@pytest.fixture(scope="session")
def word_corpus(tmp_path_factory):
    """2000 random words of 16 in sentences of 8: a corpus for the data-parallel tests' tiny runs (named apart
    from test_train.py's own module-level `corpus`)."""
    import numpy as np

    words = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "seven", "wizards",
             "quietly", "hex", "bold", "zebras"]  # fmt: skip
    drawn = np.random.default_rng(0).choice(words, size=2000)
    path = tmp_path_factory.mktemp("corpus") / "words.txt"
    path.write_text("\n".join(" ".join(drawn[i : i + 8]) + "." for i in range(0, len(drawn), 8)) + "\n")
    return path


@pytest.fixture
def text_file(tmp_path):
    """A small text file of 150 lines of shuffled Hamlet words (enough for a char model to learn from)."""
    words = "to be or not to be that is the question whether tis nobler in the mind to suffer".split(" ")  # noqa: SIM905
    lines = [" ".join(words[(i * 7) % len(words) :] + words[: (i * 7) % len(words)]) for i in range(150)]
    path = tmp_path / "small.txt"
    path.write_text("\n".join(lines) + "\n")
    return path
