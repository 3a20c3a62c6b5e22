"""Your own vocabulary: a byte-level BPE trained on the corpus with Hugging Face's ``tokenizers`` library.

GPT-2's recipe on your text: the text's UTF-8 bytes are the 256 starting tokens (so any text, in any language or
script, encodes: nothing is ever unknown), GPT-2's pre-tokenization regex splits it into words, and the trainer adds
the most frequent adjacent pair as a new token until the vocabulary holds ``vocab_size`` tokens
(``<|endoftext|>`` is one of them, as in GPT-2).

``prepare(tokenizer="bpe", vocab_size=N)`` trains it and writes it next to the token files as ``tokenizer.json``
(Hugging Face's format: ``tokenizers.Tokenizer.from_file`` and transformers' ``PreTrainedTokenizerFast`` read it).
``meta.json`` names that file with its SHA-256; :func:`inline_tokenizer_file` (called by ``load_meta``) puts its
content into the metadata, so a checkpoint carries its tokenizer and samples without the data folder.

Needs the ``tokenizers`` package: ``pip install 'numpy2gpt-gpt[bpe]'``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BPE_FILE", "DEFAULT_VOCAB_SIZE", "BPETokenizer", "inline_tokenizer_file", "train_bpe"]

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
        from numpy2gpt.gpt.tokenizer import as_id_array

        return self._tok.decode(as_id_array(ids, self.vocab_size).tolist(), skip_special_tokens=False)

    def token_bytes(self, token: int) -> bytes:
        """The bytes one token stands for (for decoding a stream of tokens a token at a time)."""
        from numpy2gpt.gpt.tokenizer import byte_level_alphabet

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
