"""save and load: checkpoints of nested dicts/lists of arrays and plain values in one checksummed file, and
``atomic_write``, the one all-or-nothing file write the project uses.

One idea: a checkpoint is a JSON description plus raw array bytes, and loading builds only plain types from
them, never running code from the file (no pickle). What can be saved, the byte layout and what ``load``
refuses: the nn README ("Checkpoint files").
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import struct
from collections.abc import Iterator
from typing import Any, BinaryIO

import numpy as np

from numpy2gpt.autograd import Tensor, get_array_module
from numpy2gpt.autograd.device import to_host

__all__ = ["CheckpointError", "atomic_write", "load", "remove_stale_temporaries", "save"]

MAGIC = b"\x89N2G\r\n\x1a\n"
VERSION = 1
FORMAT = "numpy2gpt-checkpoint"
_PREFIX = struct.Struct("<8sIQQ")  # magic, version, header length, payload length
_ALIGN = 64
_DIGEST = 32
_KINDS = "biufc"  # bool, signed, unsigned, float, complex: plain numbers only, never objects


class CheckpointError(ValueError):
    """A file that ``load`` refuses: not a checkpoint, truncated, corrupted, or from a newer version."""


def _align(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


# -- encoding: object tree -> JSON tree + list of arrays ----------------------------------------------
def _encode(obj: Any, arrays: list[np.ndarray], memo: dict[int, int], where: str) -> Any:
    """``obj`` as a JSON tree; arrays go to ``arrays`` (``memo``: id of an array already there -> its index)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        if math.isfinite(obj):
            return float(obj)
        return {"float": "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")}
    if isinstance(obj, Tensor):
        obj = obj.data
    if get_array_module(obj) is not np:  # a GPU array: files hold host arrays, so a GPU run loads on a CPU
        if id(obj) not in memo:
            memo[id(obj)] = len(arrays)
            arrays.append(to_host(obj))
        return {"array": memo[id(obj)]}
    if isinstance(obj, (np.ndarray, np.generic)):
        array = np.asarray(obj)
        if array.dtype.kind not in _KINDS or array.dtype.fields is not None:
            raise TypeError(f"cannot save {where}: arrays of dtype {array.dtype} are not supported (numbers only)")
        if isinstance(obj, np.ndarray):
            # The same array under two names (a tied weight in a state dict) is stored once.
            if id(obj) not in memo:
                memo[id(obj)] = len(arrays)
                arrays.append(obj)
            return {"array": memo[id(obj)]}
        arrays.append(array)
        return {"scalar": len(arrays) - 1}
    if isinstance(obj, dict):
        pairs = []
        for key, value in obj.items():
            if isinstance(key, np.integer):
                key = int(key)
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(f"cannot save {where}: dict keys must be str or int, got {type(key).__name__}")
            pairs.append([key, _encode(value, arrays, memo, f"{where}[{key!r}]")])
        return {"dict": pairs}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, arrays, memo, f"{where}[{i}]") for i, v in enumerate(obj)]
        return {"list" if isinstance(obj, list) else "tuple": items}
    hint = " (save its state_dict(): nn.save(model.state_dict(), path))" if hasattr(obj, "state_dict") else ""
    raise TypeError(
        f"cannot save {where} of type {type(obj).__name__}{hint}; nn.save stores dicts, lists, tuples, "
        f"ndarrays, Tensors, NumPy scalars, None, bool, int, float and str"
    )


def _write_array(f: BinaryIO, hasher: Any, array: np.ndarray) -> None:
    """Write one array's bytes in C order (and feed them to the checksum)."""
    raw = memoryview(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
    hasher.update(raw)
    f.write(raw)


def _write(f: BinaryIO, tree: Any, arrays: list[np.ndarray]) -> None:
    specs, offset = [], 0
    for array in arrays:
        offset = _align(offset)
        specs.append({"dtype": array.dtype.str, "shape": list(array.shape), "offset": offset})
        offset += array.nbytes
    payload_len = offset
    header = json.dumps(
        {"format": FORMAT, "version": VERSION, "arrays": specs, "tree": tree},
        ensure_ascii=False,
        allow_nan=False,
        separators=(",", ":"),
    ).encode("utf-8")
    head = _PREFIX.pack(MAGIC, VERSION, len(header), payload_len) + header
    head += b"\0" * (_align(len(head)) - len(head))

    hasher = hashlib.sha256()
    hasher.update(head)
    f.write(head)
    written = 0
    for array, spec in zip(arrays, specs, strict=True):
        pad = b"\0" * (spec["offset"] - written)
        hasher.update(pad)
        f.write(pad)
        _write_array(f, hasher, array)
        written = spec["offset"] + array.nbytes
    f.write(hasher.digest())


def save(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` (nested dicts/lists/tuples of arrays and plain values) to ``path``, atomically.

    Example: ``nn.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "iter": 500}, "ckpt.n2g")``.
    """
    arrays: list[np.ndarray] = []
    tree = _encode(obj, arrays, {}, "obj")
    with atomic_write(path) as f:
        _write(f, tree, arrays)


_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")  # atomic_write's temporary files: .NAME.<12 hex>.tmp


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Write ``path`` all or nothing: ``with atomic_write(path) as f: f.write(...)``.

    ``f`` is a new file ``.NAME.<12 hex>.tmp`` in the same folder. When the block ends without an error it is
    flushed, fsynced and renamed over ``path`` (``os.replace`` is atomic), and the rename is made durable; when
    the block raises, the temporary file is removed and ``path`` is untouched. A process killed mid-write leaves
    the temporary file behind: ``remove_stale_temporaries`` clears them."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as f:  # open(): the usual permissions, unlike mkstemp's 0600
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError, AttributeError):  # POSIX; there is no directory handle to sync on Windows
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[str]:
    """Delete the temporary files that interrupted ``atomic_write`` calls left in ``folder``; returns their names.
    Call it where no other process is writing into ``folder``."""
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(folder):
            if _TEMPORARY.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(entry.name)
    return removed


# -- decoding -----------------------------------------------------------------------------------------
def _decode(node: Any, arrays: list[np.ndarray], path: str) -> Any:
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, dict) and len(node) == 1:
        ((tag, value),) = node.items()
        if tag == "dict" and isinstance(value, list):
            out = {}
            for pair in value:
                if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (str, int))):
                    raise CheckpointError(f"{path}: malformed dict entry in the header")
                out[pair[0]] = _decode(pair[1], arrays, path)
            return out
        if tag in ("list", "tuple") and isinstance(value, list):
            items = [_decode(v, arrays, path) for v in value]
            return items if tag == "list" else tuple(items)
        if tag in ("array", "scalar") and isinstance(value, int) and 0 <= value < len(arrays):
            return arrays[value] if tag == "array" else arrays[value][()]
        if tag == "float" and value in ("nan", "inf", "-inf"):
            return float(value)
    raise CheckpointError(f"{path}: malformed header (unexpected node {str(node)[:80]!r})")


def load(path: str | os.PathLike[str]) -> Any:
    """Read back what ``save`` wrote. Arrays come back as writable ndarrays, Tensors as their arrays.

    Raises CheckpointError (a ValueError) if the file is not a numpy2gpt checkpoint, is truncated, has trailing
    bytes, fails its SHA-256 check, or was written by a newer format version.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        buf = bytearray(size)
        got = f.readinto(buf)
    if got != size:
        raise CheckpointError(f"{path}: could not read the whole file ({got} of {size} bytes)")
    if buf[: min(size, len(MAGIC))] != MAGIC[: min(size, len(MAGIC))] or size == 0:
        raise CheckpointError(
            f"{path} is not a numpy2gpt checkpoint (its first bytes {bytes(buf[:8])!r} are not the magic "
            f"{MAGIC!r}); nn.load reads only files written by nn.save"
        )
    if size < _PREFIX.size:
        raise CheckpointError(f"{path}: truncated checkpoint ({size} bytes, shorter than the fixed header)")
    _, version, header_len, payload_len = _PREFIX.unpack_from(buf)
    if version > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} is newer than this numpy2gpt-nn reads ({VERSION})"
        )
    data_start = _align(_PREFIX.size + header_len)
    expected = data_start + payload_len + _DIGEST
    if size < expected:
        raise CheckpointError(f"{path}: truncated checkpoint ({size} bytes, the header announces {expected})")
    if size > expected:
        raise CheckpointError(f"{path}: corrupted checkpoint ({size - expected} unexpected bytes at the end)")
    view = memoryview(buf)
    if hashlib.sha256(view[: size - _DIGEST]).digest() != bytes(view[size - _DIGEST :]):
        raise CheckpointError(f"{path}: checksum mismatch, the checkpoint is corrupted")

    try:
        header = json.loads(bytes(view[_PREFIX.size : _PREFIX.size + header_len]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: unreadable header ({e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT or "tree" not in header:
        raise CheckpointError(f"{path}: the header does not describe a {FORMAT}")
    arrays: list[np.ndarray] = []
    for spec in header.get("arrays", []):
        try:
            dtype = np.dtype(spec["dtype"])
            shape = tuple(int(s) for s in spec["shape"])
            offset = int(spec["offset"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{path}: malformed array entry {spec!r} ({e})") from None
        if dtype.kind not in _KINDS or dtype.fields is not None or any(s < 0 for s in shape):
            raise CheckpointError(f"{path}: unsupported array entry {spec!r}")
        count = math.prod(shape)
        if offset < 0 or offset + count * dtype.itemsize > payload_len:
            raise CheckpointError(f"{path}: array entry {spec!r} points outside the payload")
        if count:
            array = np.frombuffer(buf, dtype=dtype, count=count, offset=data_start + offset)
        else:
            array = np.empty(0, dtype=dtype)
        arrays.append(array.reshape(shape))
    return _decode(header["tree"], arrays, path)
