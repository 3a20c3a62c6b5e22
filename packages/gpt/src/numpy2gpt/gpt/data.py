"""Data preparation and batching, as in nanoGPT's ``data/*/prepare.py`` and ``train.py:get_batch``.

``prepare`` turns a corpus into a folder holding

- ``train.bin``, ``val.bin``: the token ids as raw little-endian uint16 (``np.memmap``-able, byte-for-byte the
  layout nanoGPT writes), the first ``1 - val_fraction`` of the tokens for training and the rest for validation;
- ``meta.json``: format version, the tokenizer (``tokenizer.to_dict()``: for ``char`` the vocabulary itself),
  ``vocab_size``, where the text came from (``dataset``, ``source``, and ``data_file``: the absolute path of a
  local file, else null), the text's SHA-256, and the token count of each split.

``ensure_data`` prepares a corpus unless its folder already holds it, ``load_splits`` maps both splits read-only
(``load_split``: one), and ``get_batch`` draws ``batch_size`` random windows of ``block_size + 1``
tokens from it: ``x`` is each window without its last token and ``y`` without its first, so ``y[b, t]`` is the token
that follows ``x[b, :t+1]``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from numpy2gpt.gpt.corpora import Corpus, canonical_name, load_corpus
from numpy2gpt.gpt.tokenizer import MAX_UINT16_VOCAB, CharTokenizer, GPT2Tokenizer, tokenizer_from_name

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "default_out_dir",
    "describe_tokenizer",
    "ensure_data",
    "get_batch",
    "is_prepared",
    "load_meta",
    "load_split",
    "load_splits",
    "prepare",
]

FORMAT = "numpy2gpt-data"
FORMAT_VERSION = 1
SPLITS = ("train", "val")
_DTYPE = np.dtype("<u2")  # raw little-endian uint16, like nanoGPT's np.uint16 .bin files


def default_out_dir(
    dataset: str = "python_docs", data_file: str | os.PathLike[str] | None = None, tokenizer: str = "char"
) -> Path:
    """``data/<corpus>_<tokenizer>``, e.g. ``data/python_docs_char``, ``data/shakespeare_gpt2``."""
    if data_file is not None:
        base = Path(data_file).stem or "file"
    else:
        base = {"shakespeare_char": "shakespeare"}.get(dataset, dataset)
    return Path("data") / f"{base}_{tokenizer}"


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary file in the same folder and ``os.replace`` it into place."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")  # open(): usual permissions, unlike mkstemp
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def prepare(
    dataset: str = "python_docs",
    data_file: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    tokenizer: str | CharTokenizer | GPT2Tokenizer = "char",
    val_fraction: float = 0.1,
    block_size: int | None = None,
    *,
    url: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Tokenize a corpus and write ``train.bin``, ``val.bin`` and ``meta.json`` into ``out_dir``.

    Args:
        dataset: ``"python_docs"`` (default, no network) or ``"shakespeare_char"`` (downloaded once, verified and
            cached); ignored when ``data_file`` is given.
        data_file: a local UTF-8 text file to use instead of a built-in corpus.
        out_dir: the folder to write (created if needed); default :func:`default_out_dir`.
        tokenizer: ``"char"`` (vocabulary = the corpus's sorted characters), ``"gpt2"`` (GPT-2 BPE), or a
            tokenizer instance.
        val_fraction: the share of tokens, taken from the end of the corpus, kept for validation.
        block_size: when given, each split must hold at least ``block_size + 1`` tokens (one training window);
            otherwise at least 2.
        url, cache_dir: where to fetch and cache a downloaded corpus (see :mod:`numpy2gpt.gpt.corpora`).

    Returns the output folder. Files are written atomically; ``meta.json`` is written last, so a folder with a
    ``meta.json`` is complete.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be strictly between 0 and 1, got {val_fraction}")
    if block_size is not None and (not isinstance(block_size, int) or block_size < 1):
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    corpus: Corpus = load_corpus(dataset, data_file, url=url, cache_dir=cache_dir)
    if not corpus.text:
        raise ValueError(f"the corpus is empty: {corpus.source}")

    tok = tokenizer_from_name(tokenizer, corpus.text) if isinstance(tokenizer, str) else tokenizer
    if tok.vocab_size > MAX_UINT16_VOCAB:
        raise ValueError(
            f"vocab_size {tok.vocab_size} does not fit the uint16 token files (at most {MAX_UINT16_VOCAB} tokens)"
        )
    ids = tok.encode_array(corpus.text)
    n = len(ids)
    n_train = int(n * (1.0 - val_fraction))
    n_val = n - n_train
    need = (block_size + 1) if block_size is not None else 2
    if min(n_train, n_val) < need:
        why = f"block_size + 1 = {need}" if block_size is not None else f"{need}"
        raise ValueError(
            f"corpus too short: {n} tokens ({corpus.source}) split into {n_train} train and {n_val} val tokens "
            f"(val_fraction={val_fraction}), but each split needs at least {why} tokens; use a longer text"
            + (" or a smaller block_size" if block_size is not None else "")
        )

    out = Path(out_dir) if out_dir is not None else default_out_dir(dataset, data_file, tok.kind)
    out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "dtype": "uint16",
        "byteorder": "little",
        "tokenizer": tok.to_dict(),
        "vocab_size": tok.vocab_size,
        "dataset": corpus.name,
        "source": corpus.source,
        "data_file": corpus.path,
        "corpus_chars": len(corpus.text),
        "corpus_sha256": hashlib.sha256(corpus.text.encode("utf-8", "surrogatepass")).hexdigest(),
        "val_fraction": val_fraction,
        "train_tokens": n_train,
        "val_tokens": n_val,
    }
    # Retire the old meta.json first: between here and the end the folder reads as "not prepared".
    with contextlib.suppress(FileNotFoundError):
        (out / "meta.json").unlink()
    data = ids.astype(_DTYPE, copy=False)
    _write_atomic(out / "train.bin", data[:n_train].tobytes())
    _write_atomic(out / "val.bin", data[n_train:].tobytes())
    _write_atomic(out / "meta.json", (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return out


def load_meta(data_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``meta.json`` of a folder written by :func:`prepare`."""
    d = Path(data_dir)
    path = d / "meta.json"
    if not path.is_file():
        where = "does not exist" if not d.exists() else "has no meta.json"
        raise FileNotFoundError(
            f"data folder {str(d)!r} {where}: it was never prepared; run `numpy2gpt prepare` first "
            f"(or numpy2gpt.gpt.data.prepare(out_dir={str(d)!r}))"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{str(path)!r} is not valid JSON ({e}); run `numpy2gpt prepare` again") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} was not written by numpy2gpt prepare (no 'format': {FORMAT!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} has data format version {meta.get('version')!r}; this numpy2gpt reads version "
            f"{FORMAT_VERSION}; run `numpy2gpt prepare` again"
        )
    return meta


def load_split(data_dir: str | os.PathLike[str], split: Literal["train", "val"] = "train") -> np.memmap:
    """The token ids of one split as a read-only uint16 ``np.memmap`` (checked against ``meta.json``)."""
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    meta = load_meta(data_dir)
    path = Path(data_dir) / f"{split}.bin"
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} is missing; run `numpy2gpt prepare` again")
    expected = int(meta[f"{split}_tokens"])
    size = path.stat().st_size
    if size != expected * _DTYPE.itemsize:
        raise ValueError(
            f"{str(path)!r} holds {size} bytes but meta.json says {expected} uint16 tokens "
            f"({expected * _DTYPE.itemsize} bytes); the folder is inconsistent, run `numpy2gpt prepare` again"
        )
    if expected == 0:
        raise ValueError(f"{str(path)!r} is empty; run `numpy2gpt prepare` again with a longer corpus")
    return np.memmap(path, dtype=_DTYPE, mode="r")


def load_splits(data_dir: str | os.PathLike[str], block_size: int) -> dict[str, np.memmap]:
    """Both splits of a prepared folder, ``{"train": ..., "val": ...}``, each checked to hold at least one window
    of ``block_size + 1`` tokens."""
    splits = {split: load_split(data_dir, split) for split in SPLITS}
    for split, tokens in splits.items():
        if len(tokens) <= block_size:
            raise ValueError(
                f"the {split} split of {data_dir} has {len(tokens)} tokens, fewer than block_size+1 = "
                f"{block_size + 1}: use a longer text or a smaller --block-size"
            )
    return splits


def is_prepared(data_dir: Path, dataset: str, data_file: str | None, tokenizer: str) -> bool:
    """Whether ``data_dir`` already holds ``data_file`` (else the built-in ``dataset``) tokenized with
    ``tokenizer``; for a file: the same path, not modified since it was prepared."""
    try:
        meta = load_meta(data_dir)
    except (OSError, ValueError):
        return False
    if meta.get("tokenizer", {}).get("kind") != tokenizer:
        return False
    if data_file:
        path = Path(data_file)
        return (
            meta.get("data_file") == str(path.expanduser().resolve())  # the file it was prepared from
            and path.is_file()
            and path.stat().st_mtime_ns <= (data_dir / "meta.json").stat().st_mtime_ns
        )
    return meta.get("dataset") == canonical_name(dataset)


def ensure_data(
    data_dir: Path,
    dataset: str,
    data_file: str | None,
    tokenizer: str,
    block_size: int,
    *,
    given: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """``data_dir``, preparing the corpus into it first unless it already holds it (:func:`is_prepared`).

    With ``given`` (a folder the user named, made by ``numpy2gpt prepare --out DIR``) the folder is used as
    prepared, and a folder that was never prepared is an error: a mistyped path must not quietly train on the
    default corpus."""
    if given:
        load_meta(data_dir)  # FileNotFoundError: "... it was never prepared; run numpy2gpt prepare"
        return Path(data_dir)
    if not is_prepared(data_dir, dataset, data_file, tokenizer):
        log(f"preparing {data_file or dataset} with the {tokenizer} tokenizer in {data_dir}")
        prepare(dataset=dataset, data_file=data_file or None, out_dir=data_dir, tokenizer=tokenizer,
                block_size=block_size)  # fmt: skip
    return Path(data_dir)


def describe_tokenizer(meta: dict[str, Any]) -> str:
    """A short description of a tokenizer meta for error messages: its kind and, for characters, the set."""
    tok = meta.get("tokenizer") or {}
    if tok.get("kind") == "char":
        return f"{len(tok.get('chars', ''))} characters {tok.get('chars', '')!r}"[:120]
    return str(tok.get("name") or tok.get("kind"))


def get_batch(
    data: np.ndarray,
    batch_size: int,
    block_size: int,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` random windows of a token array, as nanoGPT's ``get_batch``.

    Offsets ``i`` are drawn uniformly from ``[0, len(data) - block_size)`` with ``rng`` (default: numpy2gpt's
    global generator, reseeded by ``numpy2gpt.autograd.manual_seed``); ``x[b] = data[i_b : i_b + block_size]`` and
    ``y[b] = data[i_b + 1 : i_b + 1 + block_size]``. Returns two int64 arrays of shape ``(batch_size, block_size)``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    if data.ndim != 1:
        raise ValueError(f"data must be a 1-D array of token ids, got shape {data.shape}")
    n = len(data)
    if n < block_size + 1:
        raise ValueError(
            f"the split has {n} tokens, but block_size={block_size} needs at least {block_size + 1} "
            f"(block_size + 1); use a smaller block_size or a longer corpus"
        )
    if rng is None:
        from numpy2gpt.autograd import default_generator

        rng = default_generator()
    ix = rng.integers(0, n - block_size, size=int(batch_size))
    windows = np.asarray(data[ix[:, None] + np.arange(block_size + 1)], dtype=np.int64)  # (B, T+1)
    x = np.ascontiguousarray(windows[:, :-1])
    y = np.ascontiguousarray(windows[:, 1:])
    return x, y
