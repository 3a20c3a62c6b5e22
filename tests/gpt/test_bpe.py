"""The byte-level BPE trained on a corpus (Hugging Face ``tokenizers``), and StreamDecoder for every tokenizer."""

from __future__ import annotations

import json

import numpy as np
import pytest

from numpy2gpt.gpt.tokenizer import CharTokenizer, GPT2Tokenizer, StreamDecoder, byte_level_alphabet, load_tokenizer

pytest.importorskip("tokenizers")
from numpy2gpt.gpt.tokenizer import BPETokenizer, inline_tokenizer_file, train_bpe

CORPUS = ["the quick brown fox jumps over the lazy dog\n" * 3, "le renard brun saute par-dessus le chien\n" * 3]


@pytest.fixture(scope="module")
def bpe():
    return train_bpe(CORPUS * 20, vocab_size=300)


def test_roundtrip_and_unknown_text_never_fails(bpe):
    assert 257 <= bpe.vocab_size <= 300
    for text in ["the quick fox", "日本語のテキスト 😀 ünïcödé\t\r\n", "", "<|endoftext|>x", "\x00\x7f\xff"]:
        ids = bpe.encode(text)
        assert all(0 <= i < bpe.vocab_size for i in ids)
        assert bpe.decode(ids) == text
        assert bpe.encode_array(text).dtype == np.uint16
    assert len(bpe.encode("the quick brown fox")) < len("the quick brown fox")  # merges were learned
    assert bpe.encode("<|endoftext|>") == [bpe.tokenizer.token_to_id("<|endoftext|>")]
    assert [a.tolist() for a in bpe.encode_batch(["the fox", "le chien"])] == [bpe.encode("the fox"),
                                                                                bpe.encode("le chien")]  # fmt: skip


def test_metadata_roundtrip_through_a_folder(bpe, tmp_path):
    d = bpe.to_dict()
    assert d["kind"] == "bpe" and d["file"] == "tokenizer.json" and "json" not in d
    (tmp_path / "tokenizer.json").write_text(bpe.to_json())
    assert load_tokenizer({"tokenizer": d}, tmp_path) == bpe
    inlined = inline_tokenizer_file(d, tmp_path)
    assert load_tokenizer({"tokenizer": inlined}) == bpe  # a checkpoint needs no folder
    assert json.loads(inlined["json"])["model"]["type"] == "BPE"
    with pytest.raises(ValueError, match="has no content"):
        load_tokenizer(d)


def test_missing_or_changed_tokenizer_file(bpe, tmp_path):
    d = bpe.to_dict()
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json is missing: it holds the BPE vocabulary"):
        inline_tokenizer_file(d, tmp_path)
    with pytest.raises(FileNotFoundError, match=r"tokenizer file .*nope\.json does not exist"):
        BPETokenizer.from_file(tmp_path / "nope.json")
    (tmp_path / "tokenizer.json").write_text(bpe.to_json().replace('"the"', '"tha"', 1) + " ")
    with pytest.raises(ValueError, match="has changed since the data was prepared"):
        inline_tokenizer_file(d, tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"not a valid tokenizer\.json"):
        BPETokenizer.from_file(tmp_path / "bad.json")


def test_vocab_size_checked():
    with pytest.raises(ValueError, match="vocab_size must be between 257"):
        train_bpe(CORPUS, vocab_size=100)
    with pytest.raises(ValueError, match="65536"):
        train_bpe(CORPUS, vocab_size=70000)
    with pytest.raises(TypeError, match="vocab_size must be an int"):
        train_bpe(CORPUS, vocab_size=300.0)


def test_byte_level_alphabet_is_gpt2s():
    alphabet = byte_level_alphabet()
    assert len(set(alphabet.values())) == 256 and alphabet[ord("!")] == "!" and alphabet[ord(" ")] == "Ġ"
    assert alphabet[ord("\n")] == "Ċ"


@pytest.mark.parametrize("kind", ["char", "gpt2", "bpe"])
def test_stream_decoder_equals_whole_decode(kind, bpe):
    text = "héllo wörld, 日本 😀😀 the fox\n" * 3
    tok = {"char": lambda: CharTokenizer.from_text(text), "gpt2": GPT2Tokenizer, "bpe": lambda: bpe}[kind]()
    ids = tok.encode(text)
    decoder = StreamDecoder(tok)
    pieces = [decoder.push(i) for i in ids] + [decoder.flush()]
    assert "".join(pieces) == tok.decode(ids) == text
    assert all("\ufffd" not in p for p in pieces)  # never half a character
    if kind != "char":
        emoji = tok.encode("😀")
        assert len(emoji) > 1  # split across tokens: held back until complete
        decoder = StreamDecoder(tok)
        assert [decoder.push(i) for i in emoji[:-1]] == [""] * (len(emoji) - 1)
        assert decoder.flush() == "\ufffd"  # an incomplete character at the end
