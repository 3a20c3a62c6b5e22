"""prepare / load_meta / load_split / get_batch: nanoGPT's data pipeline on uint16 memmaps."""

import hashlib
import json

import numpy as np
import pytest

from numpy2gpt.autograd import manual_seed
from numpy2gpt.gpt.corpora import load_corpus, python_docs_text
from numpy2gpt.gpt.data import default_out_dir, get_batch, load_meta, load_split, prepare
from numpy2gpt.gpt.tokenizer import CharTokenizer, GPT2Tokenizer, load_tokenizer

SMALL = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 3


@pytest.fixture(scope="module")
def docs_dir(tmp_path_factory):
    return prepare(out_dir=tmp_path_factory.mktemp("data") / "python_docs_char")


@pytest.fixture
def small_file(tmp_path):
    path = tmp_path / "small.txt"
    path.write_text(SMALL, encoding="utf-8")
    return path


def test_prepare_python_docs(docs_dir):
    text = python_docs_text()
    assert len(text) > 300_000  # Python's bundled documentation is a few hundred KB of text
    meta = load_meta(docs_dir)
    assert meta["dataset"] == "python_docs" and meta["data_file"] is None
    assert meta["source"].startswith("Python's bundled documentation (pydoc_data.topics)")
    assert meta["tokenizer"]["kind"] == "char"
    assert meta["vocab_size"] == len(set(text)) and 60 < meta["vocab_size"] < 300
    assert meta["corpus_chars"] == len(text)
    assert meta["corpus_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert meta["train_tokens"] == int(len(text) * 0.9)
    assert meta["train_tokens"] + meta["val_tokens"] == len(text)
    assert (docs_dir / "train.bin").stat().st_size == 2 * meta["train_tokens"]
    assert (docs_dir / "val.bin").stat().st_size == 2 * meta["val_tokens"]
    tok = load_tokenizer(meta)
    train, val = load_split(docs_dir, "train"), load_split(docs_dir, "val")
    assert tok.decode(train) + tok.decode(val) == text  # first 90% then last 10%, nothing lost


def test_prepare_local_file_char_exact(tmp_path, small_file):
    out = prepare(data_file=small_file, out_dir=tmp_path / "out")
    meta = load_meta(out)
    assert meta["dataset"] == "file" and str(small_file) in meta["source"]
    assert meta["data_file"] == str(small_file.resolve())
    tok = CharTokenizer.from_text(SMALL)
    ids = np.array([tok.stoi[c] for c in SMALL], dtype=np.uint16)
    n_train = int(len(SMALL) * 0.9)
    # raw little-endian uint16, exactly the layout nanoGPT writes and np.memmap reads
    assert np.array_equal(np.fromfile(out / "train.bin", dtype="<u2"), ids[:n_train])
    assert np.array_equal(np.fromfile(out / "val.bin", dtype="<u2"), ids[n_train:])
    assert load_tokenizer(meta) == tok
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "train.bin", "val.bin"]  # no temporaries
    json.loads((out / "meta.json").read_text())  # plain JSON
    ref = tmp_path / "ref"
    ref.write_bytes(b"")
    for name in ("train.bin", "val.bin", "meta.json"):  # ordinary permissions (not a temp file's 0600)
        assert (out / name).stat().st_mode == ref.stat().st_mode


def test_prepare_gpt2_and_val_fraction(tmp_path, small_file):
    out = prepare(data_file=small_file, out_dir=tmp_path / "g", tokenizer="gpt2", val_fraction=0.25)
    meta = load_meta(out)
    assert meta["tokenizer"] == {"kind": "gpt2", "name": "gpt2"} and meta["vocab_size"] == 50257
    ids = GPT2Tokenizer().encode(SMALL)
    n_train = int(len(ids) * 0.75)
    assert meta["train_tokens"] == n_train and meta["val_tokens"] == len(ids) - n_train
    assert load_split(out, "train").tolist() + load_split(out, "val").tolist() == ids
    assert isinstance(load_tokenizer(meta), GPT2Tokenizer)


def test_prepare_with_tokenizer_instance_and_reprepare(tmp_path, small_file):
    out = tmp_path / "o"
    prepare(data_file=small_file, out_dir=out, val_fraction=0.5)
    tok = CharTokenizer.from_text(SMALL + "XYZ")  # a wider vocabulary than the corpus needs
    prepare(data_file=small_file, out_dir=out, tokenizer=tok)  # overwrites the earlier preparation
    meta = load_meta(out)
    assert meta["vocab_size"] == tok.vocab_size and meta["val_fraction"] == 0.1
    assert len(load_split(out, "train")) == int(len(SMALL) * 0.9)


def test_default_out_dir(tmp_path, small_file, monkeypatch):
    assert str(default_out_dir()) == "data/python_docs_char"
    assert str(default_out_dir("shakespeare_char", tokenizer="gpt2")) == "data/shakespeare_gpt2"
    assert str(default_out_dir(data_file=small_file)) == "data/small_char"
    monkeypatch.chdir(tmp_path)
    out = prepare(data_file=small_file)
    assert out == default_out_dir(data_file=small_file) and (tmp_path / out / "meta.json").is_file()


def test_load_split_is_read_only_uint16_memmap(docs_dir):
    train = load_split(docs_dir, "train")
    assert isinstance(train, np.memmap) and train.dtype == np.uint16 and train.ndim == 1
    with pytest.raises(ValueError):
        train[0] = 1
    assert int(train.max()) < load_meta(docs_dir)["vocab_size"]


def test_get_batch_shapes_shift_and_offsets(docs_dir):
    data = load_split(docs_dir, "train")
    batch, block = 8, 32
    x, y = get_batch(data, batch, block, np.random.default_rng(123))
    assert x.shape == y.shape == (batch, block) and x.dtype == y.dtype == np.int64
    assert x.flags.c_contiguous and y.flags.c_contiguous
    assert np.array_equal(x[:, 1:], y[:, :-1])  # y is x shifted by one
    # the windows are exactly nanoGPT's: offsets drawn from [0, len - T) with the generator passed in
    ix = np.random.default_rng(123).integers(0, len(data) - block, size=batch)
    for b, i in enumerate(ix):
        assert np.array_equal(x[b], data[i : i + block]) and np.array_equal(y[b], data[i + 1 : i + 1 + block])


def test_get_batch_reproducible():
    data = np.arange(1000, dtype=np.uint16)
    a = get_batch(data, 4, 16, np.random.default_rng(7))
    b = get_batch(data, 4, 16, np.random.default_rng(7))
    c = get_batch(data, 4, 16, np.random.default_rng(8))
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
    manual_seed(3)  # default: numpy2gpt's global generator
    d = get_batch(data, 4, 16)
    manual_seed(3)
    e = get_batch(data, 4, 16)
    assert np.array_equal(d[0], e[0]) and np.array_equal(d[1], e[1])
    assert np.array_equal(d[0] + 1, d[1])  # on arange data each window is consecutive


def test_get_batch_smallest_split_and_every_offset():
    data = np.arange(5, dtype=np.uint16)
    x, y = get_batch(data, 3, 4, np.random.default_rng(0))  # only one window fits: offset 0
    assert x.tolist() == [[0, 1, 2, 3]] * 3 and y.tolist() == [[1, 2, 3, 4]] * 3
    x, _ = get_batch(np.arange(10, dtype=np.uint16), 2000, 3, np.random.default_rng(0))
    assert sorted(set(x[:, 0].tolist())) == list(range(7))  # offsets 0..len-T-1, the last window included


def test_get_batch_errors():
    data = np.arange(10, dtype=np.uint16)
    with pytest.raises(ValueError, match=r"the split has 10 tokens, but block_size=10 needs at least 11"):
        get_batch(data, 2, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        get_batch(data, 0, 4)
    with pytest.raises(ValueError, match="block_size must be a positive int"):
        get_batch(data, 2, 2.5)
    with pytest.raises(ValueError, match="1-D"):
        get_batch(data.reshape(2, 5), 2, 2)


def test_prepare_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.txt.*does not exist"):
        prepare(data_file=tmp_path / "nope.txt", out_dir=tmp_path / "o")
    with pytest.raises(IsADirectoryError, match="not a regular file"):
        prepare(data_file=tmp_path, out_dir=tmp_path / "o")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"corpus is empty.*empty\.txt"):
        prepare(data_file=empty, out_dir=tmp_path / "o")
    short = tmp_path / "short.txt"
    short.write_text("abcdefghij")  # 10 tokens: 9 train, 1 val
    with pytest.raises(ValueError, match=r"corpus too short: 10 tokens.*9 train and 1 val.*at least 2 tokens"):
        prepare(data_file=short, out_dir=tmp_path / "o")
    short.write_text("x" * 200)  # 180 train, 20 val
    with pytest.raises(ValueError, match=r"200 tokens.*180 train and 20 val.*block_size \+ 1 = 33.*smaller block_size"):
        prepare(data_file=short, out_dir=tmp_path / "o", block_size=32)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café".encode("latin-1") * 10)
    with pytest.raises(ValueError, match="not UTF-8"):
        prepare(data_file=latin1, out_dir=tmp_path / "o")
    with pytest.raises(ValueError, match="unknown dataset 'wiki'"):
        prepare("wiki", out_dir=tmp_path / "o")
    with pytest.raises(ValueError, match="unknown tokenizer 'wordpiece'"):
        prepare(out_dir=tmp_path / "o", tokenizer="wordpiece")
    with pytest.raises(ValueError, match="val_fraction"):
        prepare(out_dir=tmp_path / "o", val_fraction=1.0)
    with pytest.raises(ValueError, match="block_size"):
        prepare(out_dir=tmp_path / "o", block_size=0)
    assert not (tmp_path / "o").exists()  # nothing written by a failed prepare
    with pytest.raises(ValueError, match="character"):  # a fixed vocabulary that lacks the corpus's characters
        prepare(data_file=short, out_dir=tmp_path / "o", tokenizer=CharTokenizer("ab"))


def test_load_errors(tmp_path, small_file):
    with pytest.raises(FileNotFoundError, match=r"does not exist: it was never prepared; run `numpy2gpt prepare`"):
        load_meta(tmp_path / "never")
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(FileNotFoundError, match=r"has no meta.json.*numpy2gpt prepare"):
        load_split(tmp_path / "emptydir", "train")
    out = prepare(data_file=small_file, out_dir=tmp_path / "p")
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        load_split(out, "test")
    data = (out / "val.bin").read_bytes()
    (out / "val.bin").write_bytes(data[:-2])  # one token short
    with pytest.raises(ValueError, match=r"holds \d+ bytes but meta.json says \d+ uint16 tokens"):
        load_split(out, "val")
    (out / "val.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"val\.bin.*missing"):
        load_split(out, "val")
    meta = json.loads((out / "meta.json").read_text())
    (out / "val.bin").write_bytes(b"")  # a hand-edited folder whose split is empty (prepare never writes one)
    (out / "meta.json").write_text(json.dumps({**meta, "val_tokens": 0}))
    with pytest.raises(ValueError, match=r"val\.bin.*is empty"):
        load_split(out, "val")
    (out / "meta.json").write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(ValueError, match="version 99"):
        load_meta(out)
    (out / "meta.json").write_text(json.dumps({"vocab_size": 3}))
    with pytest.raises(ValueError, match="not written by numpy2gpt prepare"):
        load_meta(out)
    (out / "meta.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_meta(out)


def test_load_corpus_prefers_data_file(small_file):
    c = load_corpus("python_docs", small_file)
    assert c.name == "file" and c.text == SMALL
    assert load_corpus().text == python_docs_text()
