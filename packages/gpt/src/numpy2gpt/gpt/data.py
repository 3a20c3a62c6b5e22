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
import itertools
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from numpy2gpt.autograd import get_array_module
from numpy2gpt.gpt.corpora import Corpus, canonical_name, load_corpus, text_sha256
from numpy2gpt.gpt.tokenizer import (
    DEFAULT_VOCAB_SIZE,
    MAX_UINT16_VOCAB,
    BPETokenizer,
    CharTokenizer,
    Tokenizer,
    inline_tokenizer_file,
    tokenizer_from_name,
    train_bpe,
)
from numpy2gpt.nn.serialization import atomic_write, remove_stale_temporaries

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "build_tokenizer",
    "corpus_chunks",
    "default_out_dir",
    "describe_tokenizer",
    "ensure_data",
    "get_batch",
    "is_prepared",
    "load_meta",
    "load_split",
    "load_splits",
    "prepare",
    "text_chunks",
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


CHUNK_CHARS = 1 << 20  # characters read at a time (1-4 MB of text): memory stays flat whatever the corpus size
BATCH_CHUNKS = 4  # chunks per encode_batch call (tiktoken and tokenizers encode a batch on several threads)


def text_chunks(pieces: Iterable[str]) -> Iterator[str]:
    """Re-cut a stream of text ``pieces`` at line breaks, so that tokenizing each chunk alone gives exactly the
    tokens of the whole text.

    A chunk ends just after a ``"\\n"`` that has a non-space character on each side (``"x\\ny"``): GPT-2's
    pre-tokenizer (used by tiktoken and by byte-level BPEs) never joins such a newline with its neighbours, whereas
    a cut inside a run of whitespace could change how the run is split. Text without such a line break is held until
    one comes (or the text ends)."""
    carry = ""
    for piece in pieces:
        buf = carry + piece
        cut = _last_safe_cut(buf)
        if cut:
            yield buf[:cut]
        carry = buf[cut:]
    if carry:
        yield carry


def _last_safe_cut(text: str) -> int:
    """The position just after the last ``"\\n"`` with a non-space character on each side, or 0 if none."""
    end = len(text) - 1
    while True:
        i = text.rfind("\n", 1, end)
        if i < 1:
            return 0
        if not text[i - 1].isspace() and not text[i + 1].isspace():
            return i + 1
        end = i


def _file_pieces(path: Path, chunk_chars: int) -> Iterator[str]:
    """A UTF-8 text file read ``chunk_chars`` characters at a time (newlines normalized to ``\\n``, as ``open()``)."""
    read = 0
    with open(path, encoding="utf-8") as f:
        while True:
            try:
                piece = f.read(chunk_chars)
            except UnicodeDecodeError as e:
                raise ValueError(
                    f"data file {str(path)!r} is not UTF-8 text (undecodable byte {e.object[e.start : e.start + 1]!r} "
                    f"after character {read:,}); convert it to UTF-8 first"
                ) from None
            if not piece:
                return
            read += len(piece)
            yield piece


def corpus_chunks(
    dataset: str = "python_docs",
    data_file: str | os.PathLike[str] | None = None,
    *,
    url: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    chunk_chars: int = CHUNK_CHARS,
) -> tuple[Corpus, Callable[[], Iterator[str]]]:
    """The corpus's description (with ``text=""`` for a file, which is never read whole) and a function that
    returns a fresh iterator over its text in :func:`text_chunks`."""
    if data_file is not None:
        p = Path(data_file).expanduser()
        if not p.exists():
            raise FileNotFoundError(f"data file {str(p)!r} does not exist")
        if not p.is_file():
            raise IsADirectoryError(f"data file {str(p)!r} is not a regular file")
        corpus = Corpus("file", "", f"local file {p.resolve()}", str(p.resolve()))
        return corpus, lambda: text_chunks(_file_pieces(p, chunk_chars))
    corpus = load_corpus(dataset, None, url=url, cache_dir=cache_dir)  # built-in corpora are small
    text = corpus.text
    return corpus, lambda: text_chunks(text[i : i + chunk_chars] for i in range(0, len(text), chunk_chars))


def _char_vocabulary(chunks: Iterable[str], source: str) -> CharTokenizer:
    """The CharTokenizer of every character in ``chunks`` (one pass; a bitmap over the code points)."""
    seen = np.zeros(0x110000, dtype=bool)
    for chunk in chunks:
        try:
            codepoints = np.frombuffer(chunk.encode("utf-32-le"), dtype="<u4")
            seen[np.unique(codepoints)] = True
        except UnicodeEncodeError:  # lone surrogates
            seen[[ord(c) for c in set(chunk)]] = True
    if not seen.any():
        raise ValueError(f"the corpus is empty: {source}")
    return CharTokenizer([chr(c) for c in np.flatnonzero(seen)])


def build_tokenizer(
    tokenizer: str | Tokenizer,
    chunks: Callable[[], Iterator[str]],
    source: str,
    vocab_size: int | None = None,
    tokenizer_file: str | os.PathLike[str] | None = None,
) -> Tokenizer:
    """The tokenizer to prepare with: an instance as given; ``"char"``: the corpus's characters; ``"gpt2"``;
    ``"bpe"``: a byte-level BPE of ``vocab_size`` tokens trained on the corpus, or the one in ``tokenizer_file``
    (a ``tokenizer.json``). Each reads the corpus through ``chunks()`` (char and bpe: one pass)."""
    if not isinstance(tokenizer, str):
        return tokenizer
    if tokenizer_file is not None and tokenizer != "bpe":
        raise ValueError(f"a tokenizer file is a trained BPE: use it with tokenizer 'bpe', not {tokenizer!r}")
    if tokenizer == "char":
        return _char_vocabulary(chunks(), source)
    if tokenizer == "bpe":
        if tokenizer_file is not None:
            return BPETokenizer.from_file(tokenizer_file)
        return train_bpe(chunks(), vocab_size or DEFAULT_VOCAB_SIZE)
    return tokenizer_from_name(tokenizer)  # gpt2, or the error naming the choices


def encode_to_file(tok: Tokenizer, chunks: Iterable[str], path: Path) -> tuple[int, int, str]:
    """Tokenize ``chunks`` (:data:`BATCH_CHUNKS` at a time, with the tokenizer's ``encode_batch``) and append the
    ids to ``path`` as little-endian uint16 as they come. Returns (tokens, characters, SHA-256 of the text)."""
    encode_batch = getattr(tok, "encode_batch", None) or (lambda texts: [tok.encode_array(t) for t in texts])
    sha = hashlib.sha256()
    n_tokens = n_chars = 0
    with open(path, "xb") as f:
        batch: list[str] = []
        for chunk in itertools.chain(chunks, [None]):
            if chunk is not None:
                batch.append(chunk)
                sha.update(chunk.encode("utf-8", "surrogatepass"))
                n_chars += len(chunk)
            if batch and (chunk is None or len(batch) == BATCH_CHUNKS):
                for ids in encode_batch(batch):
                    f.write(np.asarray(ids).astype(_DTYPE, copy=False).tobytes())
                    n_tokens += len(ids)
                batch = []
    return n_tokens, n_chars, sha.hexdigest()


def _split_tokens(tokens: Path, n_train: int, train: Path, val: Path) -> None:
    """``tokens`` (a file of uint16 ids) -> ``val``: the ids from ``n_train`` on (copied in blocks), ``train``: the
    first ``n_train`` (the file itself, truncated and renamed)."""
    with open(tokens, "rb") as src, atomic_write(val) as dst:
        src.seek(n_train * _DTYPE.itemsize)
        shutil.copyfileobj(src, dst, 1 << 24)
    os.truncate(tokens, n_train * _DTYPE.itemsize)
    os.replace(tokens, train)


def prepare(
    dataset: str = "python_docs",
    data_file: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    tokenizer: str | Tokenizer = "char",
    val_fraction: float = 0.1,
    block_size: int | None = None,
    *,
    vocab_size: int | None = None,
    tokenizer_file: str | os.PathLike[str] | None = None,
    url: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    chunk_chars: int = CHUNK_CHARS,
) -> Path:
    """Tokenize a corpus and write ``train.bin``, ``val.bin`` and ``meta.json`` into ``out_dir``, streaming: the
    text is read and tokenized in chunks cut at line breaks (:func:`text_chunks`) and the ids are written as they
    come, so memory stays flat (well under 1 GiB) whatever the size of the file.

    Args:
        dataset: ``"python_docs"`` (default, no network) or ``"shakespeare_char"`` (downloaded once, verified and
            cached); ignored when ``data_file`` is given.
        data_file: a local UTF-8 text file to use instead of a built-in corpus.
        out_dir: the folder to write (created if needed); default :func:`default_out_dir`.
        tokenizer: ``"char"`` (vocabulary = the corpus's sorted characters), ``"gpt2"`` (GPT-2 BPE), ``"bpe"`` (a
            byte-level BPE trained on the corpus, written to ``out_dir/tokenizer.json``), or a tokenizer instance.
        val_fraction: the share of tokens, taken from the end of the corpus, kept for validation.
        block_size: when given, each split must hold at least ``block_size + 1`` tokens (one training window);
            otherwise at least 2.
        vocab_size: with ``"bpe"``: the vocabulary to train (default 4096).
        tokenizer_file: with ``"bpe"``: use this ``tokenizer.json`` instead of training one (e.g. another run's).
        url, cache_dir: where to fetch and cache a downloaded corpus (see :mod:`numpy2gpt.gpt.corpora`).
        chunk_chars: characters read at a time.

    Returns the output folder. Files are written atomically; ``meta.json`` is written last, so a folder with a
    ``meta.json`` is complete.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be strictly between 0 and 1, got {val_fraction}")
    if block_size is not None and (not isinstance(block_size, int) or block_size < 1):
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    corpus, chunks = corpus_chunks(dataset, data_file, url=url, cache_dir=cache_dir, chunk_chars=chunk_chars)
    tok = build_tokenizer(tokenizer, chunks, corpus.source, vocab_size, tokenizer_file)
    if tok.vocab_size > MAX_UINT16_VOCAB:
        raise ValueError(
            f"vocab_size {tok.vocab_size} does not fit the uint16 token files (at most {MAX_UINT16_VOCAB} tokens)"
        )
    out = Path(out_dir) if out_dir is not None else default_out_dir(dataset, data_file, tok.kind)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    tokens = out / f".tokens.{uuid.uuid4().hex[:12]}.tmp"
    try:
        n, n_chars, sha256 = encode_to_file(tok, chunks(), tokens)
        if n_chars == 0:
            raise ValueError(f"the corpus is empty: {corpus.source}")
        n_train = _split_sizes(n, val_fraction, block_size, corpus.source)
        # Retire the old meta.json first: from here to the end the folder reads as "not prepared".
        with contextlib.suppress(FileNotFoundError):
            (out / "meta.json").unlink()
        _split_tokens(tokens, n_train, out / "train.bin", out / "val.bin")
    except BaseException:
        if created:  # a failed prepare leaves no empty folder behind
            with contextlib.suppress(OSError):
                os.unlink(tokens)
                out.rmdir()
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tokens)
    if hasattr(tok, "to_json"):  # a trained BPE: its vocabulary lives beside the data (meta.json names it)
        with atomic_write(out / tok.to_dict()["file"]) as f:
            f.write(tok.to_json().encode("utf-8"))
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
        "corpus_chars": n_chars,
        "corpus_sha256": sha256,
        "val_fraction": val_fraction,
        "train_tokens": n_train,
        "val_tokens": n - n_train,
    }
    with atomic_write(out / "meta.json") as f:  # last: a folder with a meta.json is complete
        f.write((json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return out


def _split_sizes(n: int, val_fraction: float, block_size: int | None, source: str) -> int:
    """The train split's share of ``n`` tokens (the rest is val); an error naming the corpus when a split would hold
    fewer than ``block_size + 1`` tokens (one training window), or 2 without a block size."""
    n_train = int(n * (1.0 - val_fraction))
    n_val = n - n_train
    need = (block_size + 1) if block_size is not None else 2
    if min(n_train, n_val) < need:
        why = f"block_size + 1 = {need}" if block_size is not None else f"{need}"
        raise ValueError(
            f"corpus too short: {n} tokens ({source}) split into {n_train} train and {n_val} val tokens "
            f"(val_fraction={val_fraction}), but each split needs at least {why} tokens; use a longer text"
            + (" or a smaller block_size" if block_size is not None else "")
        )
    return n_train


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
    check_meta(meta, path)
    if isinstance(meta.get("tokenizer"), dict) and meta["tokenizer"].get("kind") == "bpe":
        meta["tokenizer"] = inline_tokenizer_file(meta["tokenizer"], d)  # checkpoints carry the vocabulary
    return meta


def check_meta(meta: dict[str, Any], path: Path) -> None:
    """Refuse a ``meta.json`` whose settings do not fit together (an edited or damaged file) before anything is
    sized from them: the tokenizer description, ``vocab_size`` (it must fit the uint16 token files and be the
    tokenizer's own size) and the token counts."""
    tok, vocab = meta.get("tokenizer"), meta.get("vocab_size")
    again = "the file was edited or damaged; run `numpy2gpt prepare` again"
    if not isinstance(tok, dict) or not isinstance(tok.get("kind"), str):
        raise ValueError(f"{str(path)!r} has no valid 'tokenizer' entry: {again}")
    if isinstance(vocab, bool) or not isinstance(vocab, int) or not 1 <= vocab <= MAX_UINT16_VOCAB:
        raise ValueError(f"{str(path)!r} has vocab_size {vocab!r}, not an integer in [1, {MAX_UINT16_VOCAB}]: {again}")
    own = {"char": len(tok.get("chars") or ""), "gpt2": 50257}.get(tok["kind"])  # (GPT2Tokenizer.vocab_size)
    if own is not None and own != vocab:
        raise ValueError(
            f"{str(path)!r} has vocab_size {vocab}, but its {tok['kind']} tokenizer has {own} tokens: {again}"
        )
    for key in ("train_tokens", "val_tokens"):
        if isinstance(meta.get(key), bool) or not isinstance(meta.get(key), int) or meta[key] < 0:
            raise ValueError(f"{str(path)!r} has {key} {meta.get(key)!r}, not a token count: {again}")


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
    of ``block_size + 1`` tokens, all of them ids of the vocabulary in ``meta.json``."""
    vocab_size = load_meta(data_dir)["vocab_size"]
    splits = {split: load_split(data_dir, split) for split in SPLITS}
    for split, tokens in splits.items():
        if len(tokens) <= block_size:
            raise ValueError(
                f"the {split} split of {data_dir} has {len(tokens)} tokens, fewer than block_size+1 = "
                f"{block_size + 1}: use a longer text or a smaller --block-size"
            )
        if int(tokens.max()) >= vocab_size:
            raise ValueError(
                f"{Path(data_dir) / f'{split}.bin'} holds token id {int(tokens.max())}, outside the vocabulary of "
                f"{vocab_size} tokens in meta.json: it is not the file that was prepared; run `numpy2gpt prepare` again"
            )
    return splits


def is_prepared(data_dir: Path, dataset: str, data_file: str | None, tokenizer: str) -> bool:
    """Whether ``data_dir`` already holds ``data_file`` (else the built-in ``dataset``) tokenized with
    ``tokenizer``; for a file: the same path and the same text (its SHA-256, so a file replaced with its old
    timestamp, ``cp -p``, is prepared again)."""
    try:
        meta = load_meta(data_dir)
    except (OSError, ValueError):
        return False
    if meta.get("tokenizer", {}).get("kind") != tokenizer:
        return False
    if data_file:
        path = Path(data_file)
        if meta.get("data_file") != str(path.expanduser().resolve()) or not path.is_file():
            return False  # another file, or none
        try:
            return text_sha256(path) == meta.get("corpus_sha256")
        except (OSError, UnicodeDecodeError):
            return False  # prepare says what is wrong with the file
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
    vocab_size: int | None = None,
) -> Path:
    """``data_dir``, preparing the corpus into it first unless it already holds it (:func:`is_prepared`).

    With ``given`` (a folder the user named, made by ``numpy2gpt prepare --out DIR``) the folder is used as
    prepared, and a folder that was never prepared is an error: a mistyped path must not quietly train on the
    default corpus."""
    if given:
        load_meta(data_dir)  # FileNotFoundError: "... it was never prepared; run numpy2gpt prepare"
        return Path(data_dir)
    remove_stale_temporaries(data_dir)  # what a killed prepare left behind
    if not is_prepared(data_dir, dataset, data_file, tokenizer):
        log(f"preparing {data_file or dataset} with the {tokenizer} tokenizer in {data_dir}")
        prepare(dataset=dataset, data_file=data_file or None, out_dir=data_dir, tokenizer=tokenizer,
                block_size=block_size, vocab_size=vocab_size)  # fmt: skip
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
    ix = rng.integers(0, n - block_size, size=int(batch_size))  # drawn on the host: the same offsets everywhere
    xp = get_array_module(data)  # tokens already on a GPU (CuPy): the windows are gathered there
    offsets = ix[:, None] + np.arange(block_size + 1)
    windows = data[offsets if xp is np else xp.asarray(offsets)].astype(np.int64, copy=False)  # (B, T+1)
    x = xp.ascontiguousarray(windows[:, :-1])
    y = xp.ascontiguousarray(windows[:, 1:])
    return x, y
