"""The text corpora that ``numpy2gpt prepare`` can tokenize.

- ``"python_docs"`` (the default): Python's bundled documentation (``pydoc_data.topics``), about 465 KB of English
  prose and code examples that ship with every CPython, so it needs no network. The topics are joined in sorted
  key order, so the text is the same on every run (it can differ between Python versions; ``prepare`` records
  the version and the text's SHA-256).
- ``"shakespeare_char"`` (alias ``"shakespeare"``): Andrej Karpathy's tiny Shakespeare (1.1 MB, the corpus of
  nanoGPT's ``shakespeare_char``), fetched on first use from its canonical address, checked against its SHA-256
  and cached (see :mod:`numpy2gpt.gpt.download`). ``NUMPY2GPT_SHAKESPEARE_URL`` (or ``url=``) points elsewhere,
  e.g. at a mirror; the hash check still applies.
- any local UTF-8 text file (``data_file=``).
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from numpy2gpt.gpt.download import cached_download

__all__ = [
    "CORPORA",
    "SHAKESPEARE_SHA256",
    "SHAKESPEARE_URL",
    "SHAKESPEARE_URL_ENV",
    "Corpus",
    "canonical_name",
    "load_corpus",
    "python_docs_text",
    "read_text_file",
    "shakespeare_text",
    "text_sha256",
]

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SHAKESPEARE_URL_ENV = "NUMPY2GPT_SHAKESPEARE_URL"
SHAKESPEARE_MAX_BYTES = 4 << 20  # the file is 1.1 MB: a server sending more is refused at once

CORPORA = ("python_docs", "shakespeare_char")
_ALIASES = {"shakespeare": "shakespeare_char"}


@dataclass(frozen=True)
class Corpus:
    """A corpus's text and where it came from."""

    name: str  # "python_docs", "shakespeare_char" or "file"
    text: str
    source: str  # a human-readable description, stored in meta.json
    path: str | None = None  # the absolute path of a local file (None for a built-in corpus)


def canonical_name(dataset: str) -> str:
    """The canonical name of a built-in corpus (``shakespeare`` -> ``shakespeare_char``)."""
    return _ALIASES.get(dataset, dataset)


def python_docs_text() -> str:
    """Python's bundled documentation: the values of ``pydoc_data.topics.topics`` joined in sorted key order."""
    from pydoc_data.topics import topics

    return "".join(topics[key] for key in sorted(topics))


def read_text_file(path: str | os.PathLike[str]) -> str:
    """A local text file's contents, decoded as UTF-8 (newlines normalized to ``\\n``, as ``open()`` does)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"data file {str(p)!r} does not exist")
    if not p.is_file():
        raise IsADirectoryError(f"data file {str(p)!r} is not a regular file")
    try:
        with open(p, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise ValueError(
            f"data file {str(p)!r} is not UTF-8 text (undecodable byte at offset {e.start}); convert it to UTF-8 first"
        ) from e


def text_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a text file's contents as ``read_text_file`` returns them, UTF-8 encoded (the ``corpus_sha256``
    that ``prepare`` records), read in chunks so a large file needs little memory."""
    h = hashlib.sha256()
    with open(Path(path).expanduser(), encoding="utf-8") as f:
        for chunk in iter(lambda: f.read(1 << 20), ""):
            h.update(chunk.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def _shakespeare_url(url: str | None) -> str:
    """Where tiny Shakespeare comes from: ``url``, else ``$NUMPY2GPT_SHAKESPEARE_URL``, else the canonical address."""
    return url or os.environ.get(SHAKESPEARE_URL_ENV) or SHAKESPEARE_URL


def shakespeare_text(
    url: str | None = None, cache_dir: str | os.PathLike[str] | None = None, timeout: float = 30.0
) -> str:
    """Tiny Shakespeare, downloaded once (from ``url``, ``$NUMPY2GPT_SHAKESPEARE_URL`` or the canonical address),
    verified against :data:`SHAKESPEARE_SHA256` and cached."""
    path = cached_download(
        _shakespeare_url(url), SHAKESPEARE_SHA256, cache_dir=cache_dir, filename="tinyshakespeare.txt",
        timeout=timeout, max_bytes=SHAKESPEARE_MAX_BYTES,
    )  # fmt: skip
    return read_text_file(path)


def load_corpus(
    dataset: str = "python_docs",
    data_file: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Corpus:
    """The corpus to train on: ``data_file`` when given (a local text file), else the built-in ``dataset``."""
    if data_file is not None:
        p = Path(data_file).expanduser()
        return Corpus("file", read_text_file(p), f"local file {p.resolve()}", str(p.resolve()))
    name = canonical_name(dataset)
    if name == "python_docs":
        version = ".".join(map(str, sys.version_info[:3]))
        return Corpus(name, python_docs_text(), f"Python's bundled documentation (pydoc_data.topics), Python {version}")
    if name == "shakespeare_char":
        source_url = _shakespeare_url(url)  # the address recorded in meta.json is the one fetched
        text = shakespeare_text(url=source_url, cache_dir=cache_dir)
        return Corpus(name, text, f"tiny Shakespeare ({source_url}, sha256 {SHAKESPEARE_SHA256})")
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {list(CORPORA)} or a local file via data_file")
