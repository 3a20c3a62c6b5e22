"""Errors name the op and the shapes (or the index, axis, dtype) that are wrong."""

from __future__ import annotations

import numpy as np
import pytest

import numpy2gpt.autograd as ag
from numpy2gpt.autograd import Tensor


def t(*shape):
    return Tensor(np.zeros(shape), requires_grad=True)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda: t(2, 3) @ t(4, 5), r"matmul: shapes \(2, 3\) and \(4, 5\) do not match.*\(3\).*\(4\)"),
        (lambda: t(3) @ t(4), r"matmul: shapes \(3,\) and \(4,\)"),
        (lambda: t(2, 2, 3) @ t(3, 3, 4), r"matmul: batch dimensions \(2,\) and \(3,\)"),
        (lambda: ag.matmul(t(), t(3)), r"matmul: both operands need at least 1 dimension"),
        (lambda: t(2, 3) + t(4), r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"),
        (lambda: t(2, 3) * t(3, 2), r"mul: shapes \(2, 3\) and \(3, 2\)"),
        (lambda: t(5) - t(2), r"sub: shapes \(5,\) and \(2,\)"),
        (lambda: t(5) / t(2), r"div: shapes"),
        (lambda: ag.maximum(t(2), t(3)), r"maximum: shapes \(2,\) and \(3,\)"),
        (lambda: ag.where(np.ones(4, bool), t(3), t(3)), r"where: condition \(4,\), x \(3,\) and y \(3,\)"),
        (lambda: t(2, 3).reshape(4, 2), r"reshape: cannot view shape \(2, 3\) \(6 elements\) as \(4, 2\)"),
        (lambda: t(2, 3).broadcast_to(4, 3), r"broadcast_to: cannot broadcast shape \(2, 3\) to \(4, 3\)"),
        (lambda: t(2, 3).expand(-1, 2, 3), r"expand: cannot expand shape \(2, 3\)"),
        (lambda: t(2, 3).sum_to(3, 3), r"sum_to: shape \(2, 3\) cannot be summed down to \(3, 3\)"),
        (lambda: t(2, 3).squeeze(2), r"squeeze: axis 2 is out of range for a tensor with 2 dimensions"),
        (lambda: t(2, 3).unsqueeze(3), r"unsqueeze: axis 3 is out of range for a tensor with 3 dimensions"),
        (lambda: t(2, 3).transpose(0, 2), r"swapaxes: axis 2 is out of range for a tensor with 2 dimensions"),
        (lambda: t(2, 3).permute(0, 0), r"permute: \(0, 0\) is not a permutation of the 2 axes of shape \(2, 3\)"),
        (lambda: t(2, 3).sum(2), r"axis 2 is out of range for a tensor with 2 dimensions"),
        (lambda: t(2, 3).mean((0, 0)), r"names the same axis twice"),
        (
            lambda: ag.concatenate([t(2, 3), t(2, 4)]),
            r"concatenate: shapes \[\(2, 3\), \(2, 4\)\] differ outside axis 0",
        ),
        (lambda: ag.concatenate([t(2), t(2)], axis=1), r"concatenate: axis 1 is out of range"),
        (lambda: ag.concatenate([]), r"concatenate: needs at least one tensor"),
        (lambda: ag.stack([t(2), t(3)]), r"stack: all tensors must have the same shape, got \[\(2,\), \(3,\)\]"),
        (lambda: t(5).split([2, 2]), r"split: sizes \[2, 2\] add up to 4, but axis 0 of \(5,\) has 5"),
        (lambda: t(5).split(0), r"split: the piece size must be positive"),
        (lambda: t(5).chunk(0), r"chunk: the number of chunks must be positive"),
        (lambda: t(3).clip(), r"clip: at least one of min and max"),
        (lambda: ag.tril(t(3)), r"tril: needs a matrix or a batch of matrices, got shape \(3,\)"),
    ],
)
def test_value_errors_name_op_and_shapes(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


@pytest.mark.parametrize(
    ("index", "pattern"),
    [
        (5, r"index 5 is invalid for a tensor of shape \(3, 4\)"),
        ((0, 9), r"index \(0, 9\) is invalid for a tensor of shape \(3, 4\)"),
        ([0, 7], r"index \[0, 7\] is invalid"),
        ((0, 0, 0), r"invalid for a tensor of shape \(3, 4\)"),
        (np.ones(5, bool), r"invalid for a tensor of shape \(3, 4\)"),
    ],
)
def test_bad_index_names_index_and_shape(index, pattern):
    with pytest.raises(IndexError, match=pattern):
        t(3, 4)[index]


def test_item_and_bool_of_non_scalars():
    with pytest.raises(ValueError, match=r"item\(\) needs a tensor with one element, this one has shape \(2,\)"):
        t(2).item()
    with pytest.raises(ValueError, match="ambiguous"):
        bool(t(2))
    with pytest.raises(TypeError, match="0-d"):
        len(t())
