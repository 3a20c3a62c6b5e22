"""``prepare`` streams: chunks cut at safe line breaks give exactly the tokens of the whole text, for every
tokenizer; a trained BPE is stored beside the data; a failed prepare leaves a prepared folder as it was."""

from __future__ import annotations

import json

import numpy as np
import pytest

from numpy2gpt.gpt.data import load_meta, load_split, prepare, text_chunks
from numpy2gpt.gpt.tokenizer import GPT2Tokenizer, load_tokenizer

TRICKY = (
    "First line\n\nsecond  line \n third\r\n\tfourth<|endoftext|>\n\n\nx y\n"
    "  indented\n\u00a0nbsp\nunicode: h\u00e9llo w\u00f6rld \U0001f600\n"
    "numbers 12345 678\nend.\n"
)


def tricky_text(n: int = 40) -> str:
    rng = np.random.default_rng(0)
    parts = [TRICKY[: rng.integers(1, len(TRICKY))] + str(i) for i in range(n)]
    return "\n".join(parts) + "\n"


def test_chunks_rejoin_and_end_at_safe_line_breaks():
    text = tricky_text()
    pieces = [text[i : i + 37] for i in range(0, len(text), 37)]
    chunks = list(text_chunks(pieces))
    assert "".join(chunks) == text and len(chunks) > 5
    for c in chunks[:-1]:
        assert c.endswith("\n") and not c[-2].isspace()
    assert all(not c[0].isspace() for c in chunks[1:])
    assert list(text_chunks(["a  ", "  \n  ", " b"])) == ["a    \n   b"]  # no safe cut: held until the end


@pytest.mark.parametrize("kind", ["char", "gpt2", "bpe"])
def test_streamed_prepare_equals_whole_text_encoding(tmp_path, kind):
    if kind == "bpe":
        pytest.importorskip("tokenizers")
    text = tricky_text()
    path = tmp_path / "corpus.txt"
    path.write_bytes(text.encode("utf-8"))  # with its \r\n: read back as \n, as open() does
    out = prepare(data_file=path, out_dir=tmp_path / "d", tokenizer=kind, chunk_chars=61, vocab_size=300)
    meta = load_meta(out)
    tok = load_tokenizer(meta)
    normalized = text.replace("\r\n", "\n")
    ids = np.concatenate([load_split(out, "train"), load_split(out, "val")])
    assert ids.tolist() == tok.encode(normalized)
    assert meta["corpus_chars"] == len(normalized)
    assert meta["train_tokens"] + meta["val_tokens"] == len(ids)
    if kind == "gpt2":
        assert isinstance(tok, GPT2Tokenizer) and 50256 in ids.tolist()  # <|endoftext|> is its token
    assert not list(out.glob(".*.tmp"))


def test_bpe_is_stored_with_the_data_and_a_missing_file_is_one_clear_error(tmp_path):
    pytest.importorskip("tokenizers")
    path = tmp_path / "corpus.txt"
    path.write_text(tricky_text())
    out = prepare(data_file=path, out_dir=tmp_path / "d", tokenizer="bpe", vocab_size=280)
    raw = json.loads((out / "meta.json").read_text())
    assert raw["tokenizer"]["file"] == "tokenizer.json" and "json" not in raw["tokenizer"]
    assert raw["vocab_size"] == load_tokenizer(load_meta(out)).vocab_size <= 280
    assert "json" in load_meta(out)["tokenizer"]  # what a checkpoint stores: no folder needed to sample
    # the same vocabulary for another corpus (fine-tuning data, an eval set)
    other = prepare(dataset="python_docs", out_dir=tmp_path / "o", tokenizer="bpe",
                    tokenizer_file=out / "tokenizer.json")  # fmt: skip
    assert load_meta(other)["tokenizer"]["sha256"] == raw["tokenizer"]["sha256"]
    (out / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.json is missing: it holds the BPE vocabulary"):
        load_meta(out)
    with pytest.raises(FileNotFoundError, match=r"tokenizer file .*tokenizer\.json does not exist"):
        prepare(dataset="python_docs", out_dir=tmp_path / "x", tokenizer="bpe", tokenizer_file=out / "tokenizer.json")
    with pytest.raises(ValueError, match="use it with tokenizer 'bpe'"):
        prepare(dataset="python_docs", out_dir=tmp_path / "x", tokenizer="gpt2", tokenizer_file=path)


def test_a_failed_prepare_keeps_the_prepared_folder(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(tricky_text())
    out = prepare(data_file=path, out_dir=tmp_path / "d")
    before = load_meta(out)
    path.write_text("too short")
    with pytest.raises(ValueError, match="corpus too short"):
        prepare(data_file=path, out_dir=out)
    assert load_meta(out) == before and len(load_split(out, "train")) == before["train_tokens"]
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "train.bin", "val.bin"]
