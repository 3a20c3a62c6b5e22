"""Every differentiable op, one family per file, each Function with its forward and backward side by side."""

from numpy2gpt.autograd.ops.arithmetic import add, div, mul, neg, pow, sub  # noqa: A004
from numpy2gpt.autograd.ops.cast import cast
from numpy2gpt.autograd.ops.compare import eq, ge, gt, le, lt, ne
from numpy2gpt.autograd.ops.elementwise import abs, clamp, clip, exp, log, maximum, minimum, sigmoid, sqrt, tanh  # noqa: A004
from numpy2gpt.autograd.ops.indexing import getitem, masked_fill, tril, triu, where
from numpy2gpt.autograd.ops.join import cat, chunk, concatenate, split, stack, unbind
from numpy2gpt.autograd.ops.matmul import matmul
from numpy2gpt.autograd.ops.reduction import max, mean, min, std, sum, var  # noqa: A004
from numpy2gpt.autograd.ops.shape import (
    broadcast_to,
    expand,
    flatten,
    permute,
    reshape,
    squeeze,
    sum_to,
    swapaxes,
    transpose,
    unsqueeze,
)

__all__ = [
    "abs", "add", "broadcast_to", "cast", "cat", "chunk", "clamp", "clip", "concatenate", "div", "eq", "exp",
    "expand", "flatten", "ge", "getitem", "gt", "le", "log", "lt", "masked_fill", "matmul", "max", "maximum",
    "mean", "min", "minimum", "mul", "ne", "neg", "permute", "pow", "reshape", "sigmoid", "split", "sqrt",
    "squeeze", "stack", "std", "sub", "sum", "sum_to", "swapaxes", "tanh", "transpose", "tril", "triu",
    "unbind", "unsqueeze", "var", "where",
]  # fmt: skip
