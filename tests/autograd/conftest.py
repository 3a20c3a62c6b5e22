"""The table of op cases shared by the gradcheck, dtype and PyTorch-parity tests.

Each ``Case`` says how to build its float64 inputs, how to compute the op with numpy2gpt (``ours``) and the
same thing with PyTorch (``theirs``, on torch tensors). Any test that asks for an ``op_case`` argument is
run once per case (see ``pytest_generate_tests``), so adding a row here tests a new op three ways.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import numpy2gpt.autograd as ag


@dataclass
class Case:
    name: str
    make: Callable[[np.random.Generator], list[np.ndarray]]  # float64 inputs (each one is differentiated)
    ours: Callable[..., Any]  # numpy2gpt Tensors in -> Tensor or tuple of Tensors
    theirs: Callable[..., Any]  # torch tensors in -> torch tensor or tuple
    gradcheck: dict[str, Any] = field(default_factory=dict)  # extra gradcheck arguments (eps, atol)
    second_order: bool = True  # False where the first derivative jumps at the inputs (ties)


CASES: list[Case] = []


def case(name: str, make: Callable, ours: Callable, theirs: Callable, **kw: Any) -> None:
    CASES.append(Case(name, make, ours, theirs, **kw))


def normal(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.standard_normal(shape)


def positive(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def away_from_zero(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    """|x| in [0.3, 1.5] with random signs: for abs, div by a signed number, ..."""
    return lambda rng: rng.uniform(0.3, 1.5, shape) * rng.choice([-1.0, 1.0], shape)


def inputs(*makers: Callable) -> Callable[[np.random.Generator], list[np.ndarray]]:
    return lambda rng: [m(rng) for m in makers]


def tdim(axis: Any, ndim: int) -> Any:
    """numpy2gpt's axis argument as torch's dim (None -> every dim)."""
    return tuple(range(ndim)) if axis is None else axis


# -- arithmetic with every broadcasting case, both operand orders -------------------------------------------
BROADCAST_PAIRS = [((3, 4), (3, 4)), ((3, 1, 4), (4,)), ((4,), (3, 1, 4)), ((2, 3), (1,)), ((1,), (2, 3)),
                   ((2, 3), ()), ((), (2, 3)), ((), ())]  # fmt: skip
for sa, sb in BROADCAST_PAIRS:
    tag = f"{sa}-{sb}".replace(" ", "")
    case(f"add{tag}", inputs(normal(*sa), normal(*sb)), lambda a, b: a + b, lambda a, b: a + b)
    case(f"sub{tag}", inputs(normal(*sa), normal(*sb)), lambda a, b: a - b, lambda a, b: a - b)
    case(f"mul{tag}", inputs(normal(*sa), normal(*sb)), lambda a, b: a * b, lambda a, b: a * b)
    case(f"div{tag}", inputs(normal(*sa), away_from_zero(*sb)), lambda a, b: a / b, lambda a, b: a / b)
    case(f"pow{tag}", inputs(positive(*sa), normal(*sb)), lambda a, b: a**b, lambda a, b: a**b)
    case(f"maximum{tag}", inputs(normal(*sa), normal(*sb)), ag.maximum, lambda a, b: a.maximum(b))
    case(f"minimum{tag}", inputs(normal(*sa), normal(*sb)), ag.minimum, lambda a, b: a.minimum(b))
    case(f"functional_add{tag}", inputs(normal(*sa), normal(*sb)), ag.add, lambda a, b: a + b)

# Python scalars, NumPy float64 scalars and reflected operators
SCALARS = {"py": 2.0, "int": 2, "np64": np.float64(2.0)}
for tag, c in SCALARS.items():
    case(f"x+{tag}", inputs(normal(2, 3)), lambda x, c=c: x + c, lambda x, c=c: x + float(c))
    case(f"{tag}+x", inputs(normal(2, 3)), lambda x, c=c: c + x, lambda x, c=c: float(c) + x)
    case(f"x-{tag}", inputs(normal(2, 3)), lambda x, c=c: x - c, lambda x, c=c: x - float(c))
    case(f"{tag}-x", inputs(normal(2, 3)), lambda x, c=c: c - x, lambda x, c=c: float(c) - x)
    case(f"x*{tag}", inputs(normal(2, 3)), lambda x, c=c: x * c, lambda x, c=c: x * float(c))
    case(f"{tag}*x", inputs(normal(2, 3)), lambda x, c=c: c * x, lambda x, c=c: float(c) * x)
    case(f"x/{tag}", inputs(normal(2, 3)), lambda x, c=c: x / c, lambda x, c=c: x / float(c))
    case(f"{tag}/x", inputs(away_from_zero(2, 3)), lambda x, c=c: c / x, lambda x, c=c: float(c) / x)
    case(f"x**{tag}", inputs(normal(2, 3)), lambda x, c=c: x**c, lambda x, c=c: x ** float(c))
    case(f"{tag}**x", inputs(normal(2, 3)), lambda x, c=c: c**x, lambda x, c=c: float(c) ** x)
    case(f"maximum(x,{tag})", inputs(normal(2, 3)), lambda x, c=c: ag.maximum(x, c / 4),
         lambda x, c=c: x.clamp(min=c / 4))  # fmt: skip
for p in (3, 0.5, -1.5, 1, 0):
    case(f"x**{p}", inputs(positive(2, 3)), lambda x, p=p: x**p, lambda x, p=p: x**p)
case("x**np.float32(3)", inputs(normal(2, 3)), lambda x: x ** np.float32(3), lambda x: x**3.0)
case("x**0-d tensor", inputs(positive(2, 3), normal()), lambda x, p: x**p, lambda x, p: x**p)
case("ndarray+x", inputs(normal(2, 3)), lambda x: np.full((2, 3), 0.5) + x, lambda x: 0.5 + x)
case("x*np64array", inputs(normal(2, 3)), lambda x: x * np.arange(3.0), lambda x: x * x.new_tensor(np.arange(3.0)))
case("neg", inputs(normal(2, 3)), lambda x: -x, lambda x: -x)
case("functional_neg", inputs(normal(2, 3)), ag.neg, lambda x: -x)

# -- elementwise ------------------------------------------------------------------------------------------
case("exp", inputs(normal(2, 3)), lambda x: x.exp(), lambda x: x.exp())
case("log", inputs(positive(2, 3)), lambda x: x.log(), lambda x: x.log())
case("sqrt", inputs(positive(2, 3)), lambda x: x.sqrt(), lambda x: x.sqrt())
case("tanh", inputs(normal(2, 3)), lambda x: x.tanh(), lambda x: x.tanh())
case("sigmoid", inputs(normal(2, 3)), lambda x: x.sigmoid(), lambda x: x.sigmoid())
case("sigmoid-large", lambda rng: [rng.uniform(-40, 40, (6,))], ag.sigmoid, lambda x: x.sigmoid())
case("abs", inputs(away_from_zero(2, 3)), lambda x: x.abs(), lambda x: x.abs())
case("abs-0d", inputs(away_from_zero()), abs, lambda x: x.abs())
case("exp-0d", inputs(normal()), ag.exp, lambda x: x.exp())
case("sin", inputs(normal(2, 3)), lambda x: x.sin(), lambda x: x.sin())
case("cos", inputs(normal(2, 3)), ag.cos, lambda x: x.cos())
case("relu", inputs(away_from_zero(2, 3)), lambda x: x.relu(), lambda x: x.relu())
case("functional_relu", inputs(away_from_zero(4)), ag.relu, lambda x: x.relu())
for dim in (-1, 0, 1):
    case(f"softmax[dim={dim}]", inputs(normal(2, 3, 4)), lambda x, d=dim: ag.softmax(x, d),
         lambda x, d=dim: x.softmax(d))  # fmt: skip
    case(f"log_softmax[dim={dim}]", inputs(normal(2, 3, 4)), lambda x, d=dim: x.log_softmax(dim=d),
         lambda x, d=dim: x.log_softmax(d))  # fmt: skip
case("softmax[axis=1]", inputs(normal(3, 5)), lambda x: x.softmax(axis=1), lambda x: x.softmax(1))
case("log_softmax[axis=0]", inputs(normal(3, 5)), lambda x: ag.log_softmax(x, axis=0), lambda x: x.log_softmax(0))
case("softmax-0d", inputs(normal()), ag.softmax, lambda x: x.softmax(-1))
case("log_softmax-0d", inputs(normal()), lambda x: x.log_softmax(0), lambda x: x.log_softmax(0))
case("softmax-large", lambda rng: [rng.uniform(-300, 300, (3, 4))], ag.softmax, lambda x: x.softmax(-1))
case("log_softmax-large", lambda rng: [rng.uniform(-300, 300, (3, 4))], ag.log_softmax, lambda x: x.log_softmax(-1))
CLIP_INPUT = lambda rng: np.array([[-1.3, -0.7, -0.2], [0.1, 0.6, 1.7]])  # noqa: E731 - none on a bound
case("clip", inputs(CLIP_INPUT), lambda x: x.clip(-0.5, 0.5), lambda x: x.clamp(-0.5, 0.5))
case("clip-min", inputs(CLIP_INPUT), lambda x: x.clip(min=0.0), lambda x: x.clamp(min=0.0))
case("clip-max", inputs(CLIP_INPUT), lambda x: ag.clip(x, max=0.3), lambda x: x.clamp(max=0.3))
case("clip-np64", inputs(CLIP_INPUT), lambda x: x.clip(np.float64(-0.5), np.float64(0.5)), lambda x: x.clamp(-0.5, 0.5))
TIES = lambda rng: [np.array([[1.0, -2.0, 0.5], [3.0, 0.25, -1.0]]), np.array([[1.0, 2.0, 0.5], [-3.0, 0.25, 4.0]])]  # noqa: E731
case("maximum-ties", TIES, ag.maximum, lambda a, b: a.maximum(b), second_order=False)
case("minimum-ties", TIES, ag.minimum, lambda a, b: a.minimum(b), second_order=False)
case("maximum-self", inputs(normal(2, 3)), lambda x: ag.maximum(x, x), lambda x: x.maximum(x), second_order=False)
case("maximum(x, np64)", inputs(normal(2, 3)), lambda x: x.maximum(np.float64(0.1)), lambda x: x.clamp(min=0.1))
case("minimum(np64, x)", inputs(normal(2, 3)), lambda x: ag.minimum(np.float64(0.1), x), lambda x: x.clamp(max=0.1))

# -- reductions over every axis form ----------------------------------------------------------------------
AXES = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2)]
for axis in AXES:
    for keep in (False, True):
        tag = f"axis={axis},keepdims={keep}".replace(" ", "")
        d = tdim(axis, 3)
        case(f"sum[{tag}]", inputs(normal(2, 3, 4)), lambda x, a=axis, k=keep: x.sum(a, k),
             lambda x, d=d, k=keep: x.sum(d, keepdim=k))  # fmt: skip
        case(f"mean[{tag}]", inputs(normal(2, 3, 4)), lambda x, a=axis, k=keep: x.mean(a, k),
             lambda x, d=d, k=keep: x.mean(d, keepdim=k))  # fmt: skip
        case(f"max[{tag}]", inputs(normal(2, 3, 4)), lambda x, a=axis, k=keep: x.max(a, k),
             lambda x, d=d, k=keep: x.amax(d, keepdim=k))  # fmt: skip
        case(f"min[{tag}]", inputs(normal(2, 3, 4)), lambda x, a=axis, k=keep: ag.min(x, a, k),
             lambda x, d=d, k=keep: x.amin(d, keepdim=k))  # fmt: skip
        case(f"var[{tag}]", inputs(normal(2, 3, 4)), lambda x, a=axis, k=keep: x.var(a, k),
             lambda x, d=d, k=keep: x.var(d, keepdim=k))  # fmt: skip
        case(f"std[{tag}]", inputs(normal(2, 3, 4)), lambda x, a=axis, k=keep: x.std(a, k),
             lambda x, d=d, k=keep: x.std(d, keepdim=k))  # fmt: skip
for c in (0, 1, 2):
    case(f"var-correction={c}", inputs(normal(3, 5)), lambda x, c=c: x.var(1, correction=c),
         lambda x, c=c: x.var(1, correction=c))  # fmt: skip
    case(f"std-correction={c}", inputs(normal(3, 5)), lambda x, c=c: ag.std(x, (0, 1), True, c),
         lambda x, c=c: x.std((0, 1), keepdim=True, correction=c))  # fmt: skip
case("sum-0d", inputs(normal()), lambda x: x.sum(), lambda x: x.sum())
case("mean-0d-axis0", inputs(normal()), lambda x: x.mean(0), lambda x: x.mean(0))
# two-way ties: the central difference there is exactly 1/2, the share each tied element gets
MAX_TIES = lambda rng: [np.array([[1.0, 3.0, 3.0, -1.0], [2.0, -2.0, 2.0, 0.5]])]  # noqa: E731
case("max-ties-row", MAX_TIES, lambda x: x.max(1), lambda x: x.amax(1), second_order=False)
case("min-ties-row", lambda rng: [-MAX_TIES(rng)[0]], lambda x: x.min(-1, True), lambda x: x.amin(-1, True),
     second_order=False)  # fmt: skip
case("max-ties-all", lambda rng: [np.array([[1.0, 3.0], [3.0, 2.0]])], lambda x: x.max(), lambda x: x.amax(),
     second_order=False)  # fmt: skip

# -- matmul: vectors, matrices, batches with broadcast batch dims ------------------------------------------
MATMUL_SHAPES = [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 3, 4), (4, 5)),
                 ((3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 5)), ((2, 3, 4), (4,)),
                 ((2, 3, 4), (2, 4, 5))]  # fmt: skip
for sa, sb in MATMUL_SHAPES:
    tag = f"{sa}@{sb}".replace(" ", "")
    case(f"matmul{tag}", inputs(normal(*sa), normal(*sb)), lambda a, b: a @ b, lambda a, b: a @ b)
case("functional_matmul", inputs(normal(3, 4), normal(4, 2)), ag.matmul, lambda a, b: a @ b)
case("x@ndarray", inputs(normal(3, 4)), lambda a: a @ np.ones((4, 2)), lambda a: a @ a.new_ones((4, 2)))
case("ndarray@x", inputs(normal(4, 2)), lambda b: np.ones((3, 4)) @ b, lambda b: b.new_ones((3, 4)) @ b)

# -- indexing -------------------------------------------------------------------------------------------------
MASK = np.array([[True, False, True, False], [False, False, True, True], [True, True, True, False]])
INDEXES: dict[str, tuple[Any, Any]] = {
    "int": (1, 1),
    "neg-int": (-1, -1),
    "slice": (slice(1, 3), slice(1, 3)),
    "step-slice": ((slice(None), slice(None, None, 2)), (slice(None), slice(None, None, 2))),
    "repeated-rows": ([0, 0, 2, 0], [0, 0, 2, 0]),
    "repeated-cols": ((slice(None), [3, 1, 3]), (slice(None), [3, 1, 3])),
    "pairs-with-repeats": (([1, 0, 1], [2, 2, 2]), ([1, 0, 1], [2, 2, 2])),
    "neg-and-pos-same-row": ([2, -1], [2, -1]),
    "int-array-2d": (np.array([[0, 2], [2, 2]]), "intarray"),
    "bool-mask": (MASK, "mask"),
    "bool-row-mask": (np.array([True, False, True]), "rowmask"),
    "none": ((None, slice(None), 1), (None, slice(None), 1)),
    "ellipsis-none": ((Ellipsis, None), (Ellipsis, None)),
    "int-ellipsis": ((1, Ellipsis), (1, Ellipsis)),
    "scalar-element": ((2, 3), (2, 3)),
}


def _torch_index(x: Any, idx: Any) -> Any:
    import torch

    if isinstance(idx, str):
        arrays = {"mask": MASK, "rowmask": np.array([True, False, True]), "intarray": np.array([[0, 2], [2, 2]])}
        return torch.from_numpy(arrays[idx])
    return idx


for tag, (ours_idx, torch_idx) in INDEXES.items():
    case(f"getitem[{tag}]", inputs(normal(3, 4)), lambda x, i=ours_idx: x[i],
         lambda x, i=torch_idx: x[_torch_index(x, i)])  # fmt: skip
case("getitem-tensor-index", inputs(normal(3, 4)), lambda x: x[ag.Tensor(np.array([2, 2, 0]))],
     lambda x: x[[2, 2, 0]])  # fmt: skip
case("getitem-tensor-mask", inputs(normal(3, 4)), lambda x: x[x.detach() > 0], lambda x: x[x.detach() > 0])

# -- selection: where, masked_fill, tril/triu --------------------------------------------------------------
COND = np.array([[True, False, True, False], [False, True, True, False], [True, True, False, False]])
case("where", inputs(normal(3, 4), normal(3, 4)), lambda a, b: ag.where(COND, a, b),
     lambda a, b: a.where(a.new_tensor(COND).bool(), b))  # fmt: skip
case("where-broadcast", inputs(normal(3, 1), normal(4)), lambda a, b: ag.where(COND, a, b),
     lambda a, b: __import__("torch").where(a.new_tensor(COND).bool(), a, b))  # fmt: skip
case("where-scalar", inputs(normal(3, 4)), lambda a: ag.where(COND, a, np.float64(0.5)),
     lambda a: __import__("torch").where(a.new_tensor(COND).bool(), a, 0.5))  # fmt: skip
case("where-tensor-cond", inputs(normal(3, 4), normal(3, 4)), lambda a, b: ag.where(a.detach() > b.detach(), a, b),
     lambda a, b: __import__("torch").where(a.detach() > b.detach(), a, b))  # fmt: skip
case("masked_fill", inputs(normal(3, 4)), lambda x: x.masked_fill(COND, -5.0),
     lambda x: x.masked_fill(x.new_tensor(COND).bool(), -5.0))  # fmt: skip
case("masked_fill-broadcast-mask", inputs(normal(2, 3, 4)), lambda x: ag.masked_fill(x, COND, np.float64(2.0)),
     lambda x: x.masked_fill(x.new_tensor(COND).bool(), 2.0))  # fmt: skip
case("masked_fill-neg-inf-then-exp", inputs(normal(3, 4)), lambda x: x.masked_fill(COND, -np.inf).exp(),
     lambda x: x.masked_fill(x.new_tensor(COND).bool(), -np.inf).exp())  # fmt: skip
for k in (0, 1, -1):
    case(f"tril[k={k}]", inputs(normal(3, 4)), lambda x, k=k: ag.tril(x, k), lambda x, k=k: x.tril(k))
    case(f"triu[k={k}]", inputs(normal(2, 4, 3)), lambda x, k=k: ag.triu(x, k), lambda x, k=k: x.triu(k))

# -- joining and splitting --------------------------------------------------------------------------------------
case("concatenate-axis0", inputs(normal(2, 3), normal(1, 3), normal(3, 3)), lambda *xs: ag.concatenate(xs, 0),
     lambda *xs: __import__("torch").cat(xs, 0))  # fmt: skip
case("concatenate-axis-1", inputs(normal(2, 3, 1), normal(2, 3, 2)), lambda *xs: ag.cat(xs, -1),
     lambda *xs: __import__("torch").cat(xs, -1))  # fmt: skip
case("concatenate-with-ndarray", inputs(normal(2, 3)), lambda x: ag.concatenate([x, np.ones((1, 3))], 0),
     lambda x: __import__("torch").cat([x, x.new_ones((1, 3))], 0))  # fmt: skip
case("stack-axis0", inputs(normal(2, 3), normal(2, 3)), lambda *xs: ag.stack(xs),
     lambda *xs: __import__("torch").stack(xs))  # fmt: skip
case("stack-axis-1", inputs(normal(2, 3), normal(2, 3), normal(2, 3)), lambda *xs: ag.stack(xs, -1),
     lambda *xs: __import__("torch").stack(xs, -1))  # fmt: skip
case("split-int", inputs(normal(5, 3)), lambda x: x.split(2), lambda x: x.split(2))
case("split-sections", inputs(normal(2, 6)), lambda x: ag.split(x, [1, 3, 2], axis=1), lambda x: x.split([1, 3, 2], 1))
case("split-unused-piece", inputs(normal(4, 3)), lambda x: x.split(2)[1] * 2.0, lambda x: x.split(2)[1] * 2.0)
case("split-pieces-reused", inputs(normal(4, 3)), lambda x: (lambda a, b: a * b + a)(*x.split(2)),
     lambda x: (lambda a, b: a * b + a)(*x.split(2)))  # fmt: skip
case("chunk", inputs(normal(2, 7)), lambda x: x.chunk(3, axis=-1), lambda x: x.chunk(3, -1))
case("chunk-first-only", inputs(normal(6, 2)), lambda x: ag.chunk(x, 3)[0].exp(), lambda x: x.chunk(3)[0].exp())
case("unbind", inputs(normal(3, 2)), lambda x: ag.unbind(x, 1), lambda x: x.unbind(1))

# -- shape ops ------------------------------------------------------------------------------------------------
case("transpose()", inputs(normal(2, 3, 4)), lambda x: x.transpose(), lambda x: x.permute(2, 1, 0))
case("transpose(a,b)", inputs(normal(2, 3, 4)), lambda x: x.transpose(0, 2), lambda x: x.transpose(0, 2))
case("permute", inputs(normal(2, 3, 4)), lambda x: x.permute(1, 2, 0), lambda x: x.permute(1, 2, 0))
case("permute-tuple", inputs(normal(2, 3, 4)), lambda x: ag.permute(x, (2, 0, 1)), lambda x: x.permute(2, 0, 1))
case("swapaxes", inputs(normal(2, 3, 4)), lambda x: x.swapaxes(-1, 0), lambda x: x.swapaxes(-1, 0))
case(".T", inputs(normal(3, 4)), lambda x: x.T, lambda x: x.T)
case(".mT", inputs(normal(2, 3, 4)), lambda x: x.mT, lambda x: x.mT)
case("broadcast_to", inputs(normal(3, 1)), lambda x: x.broadcast_to(2, 3, 4), lambda x: x.broadcast_to((2, 3, 4)))
case("expand", inputs(normal(3, 1)), lambda x: x.expand(2, -1, 4), lambda x: x.expand(2, -1, 4))
case("sum_to", inputs(normal(2, 3, 4)), lambda x: x.sum_to(3, 1), lambda x: x.sum(0).sum(-1, keepdim=True))
case("sum_to-scalar", inputs(normal(2, 3)), lambda x: ag.sum_to(x, ()), lambda x: x.sum())
case("squeeze-all", inputs(normal(1, 3, 1)), lambda x: x.squeeze(), lambda x: x.squeeze())
case("squeeze-axis", inputs(normal(1, 3, 1)), lambda x: x.squeeze(-1), lambda x: x.squeeze(-1))
case("unsqueeze0", inputs(normal(2, 3)), lambda x: x.unsqueeze(0), lambda x: x.unsqueeze(0))
case("unsqueeze-1", inputs(normal(2, 3)), lambda x: x.unsqueeze(-1), lambda x: x.unsqueeze(-1))
case("reshape", inputs(normal(2, 3, 4)), lambda x: x.reshape(4, -1), lambda x: x.reshape(4, -1))
case("reshape-tuple", inputs(normal(2, 3)), lambda x: x.reshape((3, 2)), lambda x: x.reshape((3, 2)))
case("view", inputs(normal(6)), lambda x: x.view(2, 3), lambda x: x.view(2, 3))
case("flatten", inputs(normal(2, 3, 4)), lambda x: x.flatten(), lambda x: x.flatten())
case("flatten-1-2", inputs(normal(2, 3, 4)), lambda x: x.flatten(1), lambda x: x.flatten(1))
case("clone", inputs(normal(2, 3)), lambda x: x.clone() * x, lambda x: x.clone() * x)
case("contiguous", inputs(normal(2, 3)), lambda x: x.t().contiguous(), lambda x: x.t().contiguous())
case("view-dim", inputs(normal(2, 3, 4)), lambda x: x.view(6, 4), lambda x: x.view(6, 4))
case("t", inputs(normal(2, 3)), lambda x: ag.t(x), lambda x: x.t())
case("swapdims", inputs(normal(2, 3, 4)), lambda x: x.swapdims(0, -1), lambda x: x.swapdims(0, -1))
case("amax[dim=1]", inputs(normal(2, 3, 4)), lambda x: x.amax(dim=1), lambda x: x.amax(dim=1))
case("transpose-function", inputs(normal(2, 3, 4)), lambda x: ag.transpose(x, 1, 2), lambda x: x.transpose(1, 2))
case("flatten-0-1", inputs(normal(2, 3, 4)), lambda x: ag.flatten(x, 0, 1), lambda x: x.flatten(0, 1))

# -- dtype conversion -------------------------------------------------------------------------------------------
# through float32 and back: linear, so a wide eps measures the slope without float32 rounding noise
case("cast-via-f32", inputs(normal(2, 3)), lambda x: x.astype(np.float32).astype(x.dtype) * 3.0,
     lambda x: x.float().double() * 3.0, gradcheck={"eps": 1e-2, "atol": 1e-4})  # fmt: skip
case("cast-same", inputs(normal(2, 3)), lambda x: ag.cast(x, x.dtype) * 2.0, lambda x: x * 2.0)

# -- composites, where the engine has to add several contributions -------------------------------------------
case("x*x+x", inputs(normal(3)), lambda x: x * x + x, lambda x: x * x + x)
case("softmax-by-hand", inputs(normal(2, 5)),
     lambda x: (lambda e: e / e.sum(-1, keepdims=True))((x - x.max(-1, True)).exp()),
     lambda x: (lambda e: e / e.sum(-1, keepdim=True))((x - x.amax(-1, True)).exp()))  # fmt: skip
case("layernorm-by-hand", inputs(normal(2, 6)),
     lambda x: (x - x.mean(-1, True)) / (x.var(-1, True, correction=0) + 1e-5).sqrt(),
     lambda x: (x - x.mean(-1, True)) / (x.var(-1, keepdim=True, correction=0) + 1e-5).sqrt())  # fmt: skip


_names = [c.name for c in CASES]
assert len(set(_names)) == len(_names), [n for n in _names if _names.count(n) > 1]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "op_case" in metafunc.fixturenames:
        metafunc.parametrize("op_case", CASES, ids=[c.name for c in CASES])
    if "op_case_2nd" in metafunc.fixturenames:
        chosen = [c for c in CASES if c.second_order]
        metafunc.parametrize("op_case_2nd", chosen, ids=[c.name for c in chosen])


def case_inputs(c: Case, seed: int = 0) -> list[np.ndarray]:
    return [np.asarray(a, dtype=np.float64) for a in c.make(np.random.default_rng(seed))]


@pytest.fixture
def make_inputs() -> Callable[..., list[np.ndarray]]:
    return case_inputs


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Every test starts with grad mode on and float32 as the default dtype, whatever the last one did."""
    yield
    ag.set_grad_enabled(True)
    ag.set_default_dtype(np.float32)
