"""Every differentiable op, one family per file, each Function with its forward and backward side by side."""

from numpy2gpt.autograd.ops.arithmetic import add, div, mul, neg, pow, sub  # noqa: A004
from numpy2gpt.autograd.ops.cast import cast, clone, contiguous
from numpy2gpt.autograd.ops.compare import eq, ge, gt, le, lt, ne
from numpy2gpt.autograd.ops.elementwise import (
    abs,  # noqa: A004
    clamp,
    clip,
    cos,
    exp,
    log,
    maximum,
    minimum,
    relu,
    sigmoid,
    sin,
    sqrt,
    tanh,
)
from numpy2gpt.autograd.ops.indexing import getitem, masked_fill, tril, triu, where
from numpy2gpt.autograd.ops.join import cat, chunk, concatenate, split, stack, unbind
from numpy2gpt.autograd.ops.matmul import matmul
from numpy2gpt.autograd.ops.reduction import amax, amin, argmax, argmin, max, mean, min, std, sum, var  # noqa: A004
from numpy2gpt.autograd.ops.shape import (
    broadcast_to,
    expand,
    flatten,
    permute,
    reshape,
    squeeze,
    sum_to,
    sum_to_array,
    swapaxes,
    swapdims,
    t,
    transpose,
    unsqueeze,
    view,
)
from numpy2gpt.autograd.ops.softmax import log_softmax, log_softmax_array, softmax, softmax_array

__all__ = [
    "abs", "add", "amax", "amin", "argmax", "argmin", "broadcast_to", "cast", "cat", "chunk", "clamp", "clip",
    "clone", "concatenate", "contiguous", "cos", "div", "eq", "exp", "expand", "flatten", "ge", "getitem", "gt",
    "le", "log", "log_softmax", "log_softmax_array", "lt", "masked_fill", "matmul", "max", "maximum", "mean", "min",
    "minimum", "mul", "ne", "neg", "permute", "pow", "relu", "reshape", "sigmoid", "sin", "softmax",
    "softmax_array", "split", "sqrt", "squeeze", "stack", "std", "sub", "sum", "sum_to", "sum_to_array",
    "swapaxes", "swapdims", "t", "tanh", "transpose", "tril", "triu", "unbind", "unsqueeze", "var", "view", "where",
]  # fmt: skip
