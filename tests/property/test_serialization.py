"""Checkpoints round-trip whatever ``nn.save`` accepts: ``load(save(tree))`` equals ``tree`` exactly.

Random nested dicts (str and int keys), lists and tuples of None, bools, ints (also beyond 64 bits), floats
(±0.0, ±inf, NaN), unicode strings, NumPy scalars, and arrays of every plain dtype (bool, int8..int64,
uint8..uint64, float16..float64, complex64/128, big-endian ones too) of 0 to 4 dimensions with size-0 axes in
every memory layout. Values must come back bit for bit (NaN as NaN, -0.0 with its sign), with their dtypes
(byte order aside), shapes, and container types.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("hypothesis")

from hypothesis import given
from hypothesis import strategies as st

import numpy2gpt.nn as nn
from tests.property.strategies import LAYOUTS, budget, relayout, shapes

DTYPES = ["?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8", "c8", "c16", ">f4", ">i8", "<f8"]


@st.composite
def saved_arrays(draw: Any) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(shapes(max_dims=4, max_side=3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype.kind == "b":
        a = rng.random(shape) > 0.5
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, shape, endpoint=True, dtype=dtype.newbyteorder("="))
    else:
        a = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)
        if dtype.kind == "c":
            a = a + 1j * rng.standard_normal(shape)
        if a.size and draw(st.booleans()):
            a.flat[0] = draw(st.sampled_from([np.nan, np.inf, -np.inf, -0.0]))
    return relayout(np.asarray(a).astype(dtype), draw(st.sampled_from(LAYOUTS)))


leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.text(max_size=5),
    st.sampled_from([0.0, -0.0, 1.5, np.inf, -np.inf, np.nan, 1e-310, 1e308]),
    st.sampled_from([np.float32(1.5), np.int64(-3), np.bool_(True), np.float16(np.inf), np.uint8(255)]),
    saved_arrays(),
)  # fmt: skip
trees = st.recursive(
    leaves,
    lambda children: st.one_of(st.lists(children, max_size=3), st.lists(children, max_size=3).map(tuple),
                               st.dictionaries(st.text(max_size=4) | st.integers(-5, 5), children, max_size=3)),
    max_leaves=8,
)  # fmt: skip


def assert_same(loaded: Any, saved: Any, where: str = "tree") -> None:
    if isinstance(saved, (np.ndarray, np.generic)):
        assert type(loaded) is type(saved) or isinstance(saved, np.ndarray), f"{where}: {type(loaded)}"
        got, want = np.asarray(loaded), np.asarray(saved)
        assert got.shape == want.shape, f"{where}: shape {got.shape}, saved {want.shape}"
        assert got.dtype.newbyteorder("=") == want.dtype.newbyteorder("="), f"{where}: dtype {got.dtype}"
        assert got.astype(want.dtype.newbyteorder("=")).tobytes() == np.ascontiguousarray(want).astype(
            want.dtype.newbyteorder("=")).tobytes(), f"{where}: values differ"  # fmt: skip
        return
    assert type(loaded) is type(saved), f"{where}: {type(loaded).__name__}, saved {type(saved).__name__}"
    if isinstance(saved, dict):
        assert list(loaded) == list(saved), f"{where}: keys {list(loaded)}, saved {list(saved)}"
        for key in saved:
            assert_same(loaded[key], saved[key], f"{where}[{key!r}]")
    elif isinstance(saved, (list, tuple)):
        assert len(loaded) == len(saved), f"{where}: {len(loaded)} items, saved {len(saved)}"
        for i, (a, b) in enumerate(zip(loaded, saved, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(saved, float):
        assert np.float64(loaded).tobytes() == np.float64(saved).tobytes(), f"{where}: {loaded!r}, saved {saved!r}"
    else:
        assert loaded == saved, f"{where}: {loaded!r}, saved {saved!r}"


@given(tree=trees)
@budget(150)
def test_round_trip(tree: Any, tmp_path: Path) -> None:
    path = tmp_path / "tree.ckpt"
    nn.save(tree, path)
    assert_same(nn.load(path), tree)
