"""nn.save / nn.load: exact round trips of nested checkpoints, atomic writes, and refusal of bad files."""

import hashlib
import io
import os
import zipfile

import numpy as np
import pytest

import numpy2gpt.nn as nn
from numpy2gpt.autograd import Tensor, get_rng_state, manual_seed, randn, set_rng_state
from numpy2gpt.nn import serialization
from numpy2gpt.nn.serialization import CheckpointError


def checkpoint():
    rng = np.random.default_rng(0)
    return {
        "model": {
            "transformer.wte.weight": rng.standard_normal((5, 3)).astype(np.float32),
            "lm_head.bias": np.arange(5, dtype=np.float64),
            "mask": np.tril(np.ones((3, 3), dtype=bool)),
            "fortran": np.asfortranarray(rng.standard_normal((3, 4)).astype(np.float32)),
            "strided": np.arange(20, dtype=np.int32)[::3],
            "half": np.linspace(-1, 1, 7).astype(np.float16),
            "empty": np.zeros((0, 4), dtype=np.float32),
            "scalar_array": np.array(2.5, dtype=np.float32),
            "big_endian": np.arange(3, dtype=">i4"),
        },
        "optimizer": {
            "state": {0: {"step": 3, "exp_avg": np.ones(2, np.float32)}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0]}],
        },
        "config": {"n_layer": 2, "name": "tiny-ß", "bias": True, "dropout": 0.0, "none": None, "big": 2**100},
        "specials": [float("inf"), float("-inf"), np.float32(0.1), np.int64(7)],
        "iter_num": 500,
        "best_val_loss": 1.2345678901234567,
    }


def assert_same(a, b):
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert type(k) is type(next(kk for kk in b if kk == k))
            assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a == b
    else:
        assert a == b


def test_round_trip_exact(tmp_path):
    obj = checkpoint()
    path = tmp_path / "ckpt.n2g"
    nn.save(obj, path)
    back = nn.load(path)
    assert_same(obj, back)
    assert back["model"]["transformer.wte.weight"].flags.writeable  # loaded arrays can be trained on
    nan = nn.load(_saved(tmp_path, {"x": float("nan")}))["x"]
    assert nan != nan


def _saved(tmp_path, obj, name="x.n2g"):
    path = tmp_path / name
    nn.save(obj, path)
    return path


def test_tensors_save_as_arrays_and_rng_state_round_trips(tmp_path):
    manual_seed(3)
    state = get_rng_state()
    first = randn(4).data
    back = nn.load(_saved(tmp_path, {"w": nn.Parameter(np.ones(2, np.float32)), "t": Tensor([1.0]), "rng": state}))
    assert isinstance(back["w"], np.ndarray) and back["w"].dtype == np.float32
    set_rng_state(back["rng"])
    np.testing.assert_array_equal(randn(4).data, first)


def test_unsupported_values_are_refused_with_the_path(tmp_path):
    with pytest.raises(TypeError, match=r"obj\['a'\]\[1\] of type set"):
        nn.save({"a": [1, {2}]}, tmp_path / "x")
    with pytest.raises(TypeError, match="state_dict"):
        nn.save(nn.Module(), tmp_path / "x")
    with pytest.raises(TypeError, match="dtype object"):
        nn.save({"a": np.array([object()])}, tmp_path / "x")
    with pytest.raises(TypeError, match="dict keys"):
        nn.save({(1, 2): 3}, tmp_path / "x")
    assert not any(tmp_path.iterdir())  # nothing written, no temporary left behind


def test_save_is_atomic_when_the_writer_fails(tmp_path, monkeypatch):
    path = _saved(tmp_path, {"v": np.zeros(1000, np.float32)}, "ckpt.n2g")
    original = path.read_bytes()

    def failing_write(f, hasher, array):
        f.write(b"\x01" * 100)  # half of an array reaches the disk, then the disk fills up
        raise OSError("No space left on device")

    monkeypatch.setattr(serialization, "_write_array", failing_write)
    with pytest.raises(OSError, match="No space"):
        nn.save({"v": np.ones(1000, np.float32)}, path)
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.n2g"]  # the temporary file was removed
    np.testing.assert_array_equal(nn.load(path)["v"], 0)


def test_save_overwrites_and_uses_fsync_and_replace(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    path = _saved(tmp_path, {"v": 1})
    nn.save({"v": 2}, path)
    assert nn.load(path) == {"v": 2}
    assert calls[:2] == ["fsync", "replace"]


def test_truncated_files_are_refused(tmp_path):
    path = _saved(tmp_path, checkpoint())
    data = path.read_bytes()
    for cut in (len(data) - 1, len(data) - 40, len(data) // 2, 30, 20, 5):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated"):
            nn.load(path)


def test_corrupted_payload_is_refused(tmp_path):
    path = _saved(tmp_path, checkpoint())
    data = bytearray(path.read_bytes())
    data[len(data) - 100] ^= 0x01  # one bit in the last array
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        nn.load(path)
    path.write_bytes(bytes(data) + b"extra")
    with pytest.raises(CheckpointError, match="unexpected bytes"):
        nn.load(path)


def test_foreign_files_are_refused(tmp_path):
    npz = tmp_path / "weights.npz"
    np.savez(npz, a=np.ones(3))
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a checkpoint\n")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # torch.save's layout is a zip archive too
        z.writestr("archive/data.pkl", b"\x80\x02")
    torch_like = tmp_path / "model.pt"
    torch_like.write_bytes(buf.getvalue())
    for path in (npz, text, empty, torch_like):
        with pytest.raises(CheckpointError, match="not a numpy2gpt checkpoint"):
            nn.load(path)
    assert issubclass(CheckpointError, ValueError)


def rehash(b):
    """The file's bytes with a valid SHA-256 again: only the checks after the checksum can refuse it."""
    b[-32:] = hashlib.sha256(bytes(b[:-32])).digest()
    return bytes(b)


def test_newer_version_is_refused(tmp_path):
    path = _saved(tmp_path, {"a": np.ones(2)})
    data = bytearray(path.read_bytes())
    data[8] = 99  # format version 99
    path.write_bytes(rehash(data))
    with pytest.raises(CheckpointError, match="version 99 is newer"):
        nn.load(path)


def test_module_state_dict_round_trip_through_files(tmp_path):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(np.zeros((2, 3), np.float32))
            self.register_buffer("steps", np.zeros((), np.int64))

    a, b = M(), M()
    a.w.data[...] = np.arange(6).reshape(2, 3)
    a.steps.data[...] = 11
    w = b.w
    b.load_state_dict(nn.load(_saved(tmp_path, a.state_dict())))
    assert b.w is w and (b.w.data == a.w.data).all() and int(b.steps.data) == 11


def test_an_array_under_two_names_is_stored_once(tmp_path):
    """A tied weight appears under both names in a state dict; the file holds its bytes once."""
    w = np.ones((256, 256), dtype=np.float32)
    tied = _saved(tmp_path, {"transformer.wte.weight": w, "lm_head.weight": w}, "tied.n2g")
    apart = _saved(tmp_path, {"transformer.wte.weight": w, "lm_head.weight": w.copy()}, "apart.n2g")
    assert tied.stat().st_size < w.nbytes + 1024 < apart.stat().st_size
    back = nn.load(tied)
    assert back["lm_head.weight"] is back["transformer.wte.weight"]
    np.testing.assert_array_equal(back["lm_head.weight"], w)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b'{"format"', b'["format"', "unreadable header"),  # not JSON
        (b'"numpy2gpt-checkpoint"', b'"numpy2gpt-elsewhere!"', "does not describe a numpy2gpt-checkpoint"),
        (b'{"array":0}', b'{"arrax":0}', "malformed header"),  # a node of no known kind
        (b'[["a",', b"[[1.5,", "malformed dict entry"),  # a dict key that is neither str nor int
        (b'"offset":0', b'"offset":9', "outside the payload"),  # an array that would read past the data
        (b'"<f8"', b'"|O8"', "unsupported array entry"),  # an object dtype would mean unpickling
    ],
)
def test_a_checksummed_file_with_a_foreign_or_malformed_header_is_refused(tmp_path, old, new, message):
    """The checksum only proves the bytes are intact: a header that is not ours must still be refused by name."""
    path = _saved(tmp_path, {"a": np.ones(2)})
    data = path.read_bytes()
    assert data.count(old) == 1 and len(old) == len(new)
    path.write_bytes(rehash(bytearray(data.replace(old, new))))
    with pytest.raises(CheckpointError, match=message):
        nn.load(path)
