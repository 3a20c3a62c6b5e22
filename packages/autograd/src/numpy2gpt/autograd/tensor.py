"""The Tensor: an ndarray that remembers where it came from.

A Tensor wraps ``data`` (an ndarray) and, when it was made by a recorded Function, points at that Function
as its ``creator``. Its ``generation`` is one more than its creator's, so that backward can visit Functions
newest first (see ``backward.py``). Tensors with no creator are *leaves*: the inputs and parameters whose
``.grad`` backward fills in.

    x (leaf, gen 0) --> [Mul, gen 0] --> y (gen 1) --> [Sum, gen 1] --> loss (gen 2)

The ops themselves live in ``ops/``; the operators and methods here only forward to them, so that
``a @ b + c`` and ``matmul(a, b) + c`` are the same thing.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from numpy2gpt.autograd.dtypes import as_array, is_floating

if TYPE_CHECKING:
    from numpy2gpt.autograd.device import Device
    from numpy2gpt.autograd.function import Function

Axis = int | Sequence[int] | None


class Tensor:
    """An n-dimensional array with a gradient and a place in the computation graph.

    Args:
        data: numbers: an array, a (nested) list, a Python or NumPy scalar. NumPy arrays keep their dtype
            (subclasses such as ``np.matrix`` become plain arrays, scalars writable 0-d arrays); Python floats
            and lists of floats become the default dtype (float32); Python ints become int64. Text, ``None``,
            dicts and other objects raise TypeError.
        requires_grad: record operations on this tensor so that ``backward`` can reach it. Only floating
            point tensors can require grad.
        dtype: convert ``data`` to this dtype first.
        name: a label used by ``repr`` and the graph pictures (``to_mermaid``, ``to_dot``).
    """

    __slots__ = ("__weakref__", "creator", "data", "generation", "grad", "name", "requires_grad")
    # NumPy must leave `ndarray + Tensor` to Tensor.__radd__ instead of broadcasting over the Tensor object.
    __array_ufunc__ = None

    data: np.ndarray
    grad: Tensor | None
    requires_grad: bool
    creator: Function | None
    generation: int
    name: str | None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None, name: str | None = None):
        if isinstance(data, Tensor):
            data = data.data
        self.data = as_array(data, dtype)
        self.grad = None
        self.creator = None
        self.generation = 0
        self.name = name
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, data: np.ndarray) -> Tensor:
        """A fresh tensor around an ndarray produced by an op (no conversion, no checks)."""
        t = object.__new__(cls)
        t.data = data
        t.grad = None
        t.requires_grad = False
        t.creator = None
        t.generation = 0
        t.name = None
        return t

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place; only floating point tensors can require grad."""
        if requires_grad and not is_floating(self.data.dtype):
            raise TypeError(
                f"only floating point tensors can require gradients, but this tensor has dtype "
                f"{self.data.dtype}; convert it first, e.g. Tensor(x, dtype=np.float32, requires_grad=True)"
            )
        self.requires_grad = bool(requires_grad)
        return self

    # -- array properties -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> Size:
        """The number of elements; ``size()`` is the shape and ``size(d)`` one dimension, as in PyTorch."""
        return Size(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        """True for tensors no recorded Function made (inputs, parameters, anything made under no_grad)."""
        return self.creator is None

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        """The slices along the first axis (each one a recorded ``x[i]``); a 0-d tensor cannot be iterated."""
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    def __repr__(self) -> str:
        host = self.data if type(self.data) is np.ndarray else self.cpu().data
        body = np.array2string(host, separator=", ", prefix="tensor(", precision=4)
        extras = [f"dtype={self.data.dtype}"] + ([f"device='{self.device}'"] if host is not self.data else [])
        if self.name is not None:
            extras.append(f"name={self.name!r}")
        if self.creator is not None:
            extras.append(f"creator={type(self.creator).__name__}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}, {', '.join(extras)})"

    def __hash__(self) -> int:  # __eq__ is elementwise, so identity hashing must be asked for
        return id(self)

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor with {self.data.size} elements is ambiguous")
        return bool(self.data)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        data = self.numpy()
        return data if dtype is None else data.astype(dtype)

    def numpy(self) -> np.ndarray:
        """The underlying ndarray (shared, not copied); a GPU tensor must be copied with ``cpu()`` first."""
        if type(self.data) is not np.ndarray and self.is_cuda:
            raise TypeError(f"can't convert a {self.device} tensor to NumPy: copy it to the host with .cpu() first")
        return self.data

    def item(self) -> float | int | bool:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def detach(self) -> Tensor:
        """A new leaf tensor sharing this one's data, cut from the graph."""
        return Tensor._wrap(self.data)

    def astype(self, dtype: Any) -> Tensor:
        """This tensor converted to ``dtype`` (recorded: the gradient is converted back)."""
        return _ops.cast(self, dtype)

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """This tensor on another device and/or in another dtype, as PyTorch: ``to("cuda")``, ``to("cpu")``,
        ``to(np.float64)``, ``to("cuda", np.float32)``, ``to(other)``; itself when nothing changes (recorded)."""
        from numpy2gpt.autograd.device import tensor_to

        return tensor_to(self, *args, **kwargs)

    def cuda(self, device: int | None = None) -> Tensor:
        """This tensor on a GPU (``to("cuda")``; needs CuPy)."""
        return self.to("cuda" if device is None else f"cuda:{device}")

    def cpu(self) -> Tensor:
        """This tensor on the CPU, as NumPy (``to("cpu")``)."""
        return self.to("cpu")

    @property
    def device(self) -> Device:
        """Where the data lives: ``device(type='cpu')`` for NumPy arrays, ``cuda:N`` for CuPy arrays."""
        from numpy2gpt.autograd.device import device_of

        return device_of(self.data)

    @property
    def is_cuda(self) -> bool:
        return type(self.data) is not np.ndarray and self.device.type == "cuda"

    def float(self) -> Tensor:
        return _ops.cast(self, np.float32)

    def double(self) -> Tensor:
        return _ops.cast(self, np.float64)

    # -- autograd ---------------------------------------------------------------------------------
    def backward(
        self,
        grad: Tensor | np.ndarray | None = None,
        retain_grad: bool = False,
        create_graph: bool = False,
        retain_graph: bool | None = None,
    ) -> None:
        """Compute the gradient of this tensor with respect to every leaf that requires grad.

        Gradients are *added* to the leaves' ``.grad`` (call ``zero_grad()`` between steps), as in
        PyTorch. See ``numpy2gpt.autograd.backward.backward`` for the arguments.
        """
        from numpy2gpt.autograd.backward import backward

        backward(self, grad, retain_grad=retain_grad, create_graph=create_graph, retain_graph=retain_graph)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``grad = None``)."""
        self.grad = None

    # -- operators --------------------------------------------------------------------------------
    def __add__(self, other: Any) -> Tensor:
        return _ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _ops.div(other, self)

    def __neg__(self) -> Tensor:
        return _ops.neg(self)

    def __pos__(self) -> Tensor:
        return self

    def __pow__(self, exponent: Any) -> Tensor:
        return _ops.pow(self, exponent)

    def __rpow__(self, base: Any) -> Tensor:
        return _ops.pow(base, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _ops.matmul(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.getitem(self, index)

    def __abs__(self) -> Tensor:
        return _ops.abs(self)

    # comparisons give boolean tensors that do not require grad
    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _ops.eq(self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return _ops.ne(self, other)

    def __lt__(self, other: Any) -> Tensor:
        return _ops.lt(self, other)

    def __le__(self, other: Any) -> Tensor:
        return _ops.le(self, other)

    def __gt__(self, other: Any) -> Tensor:
        return _ops.gt(self, other)

    def __ge__(self, other: Any) -> Tensor:
        return _ops.ge(self, other)

    # -- methods named as in PyTorch: each forwards to the function of the same name, same arguments --------
    def matmul(self, other: Any) -> Tensor:
        return _ops.matmul(self, other)

    def exp(self) -> Tensor:
        return _ops.exp(self)

    def log(self) -> Tensor:
        return _ops.log(self)

    def sqrt(self) -> Tensor:
        return _ops.sqrt(self)

    def sin(self) -> Tensor:
        return _ops.sin(self)

    def cos(self) -> Tensor:
        return _ops.cos(self)

    def tanh(self) -> Tensor:
        return _ops.tanh(self)

    def sigmoid(self) -> Tensor:
        return _ops.sigmoid(self)

    def abs(self) -> Tensor:
        return _ops.abs(self)

    def relu(self) -> Tensor:
        return _ops.relu(self)

    def softmax(self, dim: int | None = None, *, axis: int | None = None) -> Tensor:
        return _ops.softmax(self, dim, axis=axis)

    def log_softmax(self, dim: int | None = None, *, axis: int | None = None) -> Tensor:
        return _ops.log_softmax(self, dim, axis=axis)

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
        return _ops.clip(self, min, max)

    clamp = clip

    def maximum(self, other: Any) -> Tensor:
        return _ops.maximum(self, other)

    def minimum(self, other: Any) -> Tensor:
        return _ops.minimum(self, other)

    def masked_fill(self, mask: Any, value: float) -> Tensor:
        return _ops.masked_fill(self, mask, value)

    def where(self, condition: Any, other: Any) -> Tensor:
        """This tensor where ``condition`` holds, else ``other`` (``torch.Tensor.where``)."""
        return _ops.where(condition, self, other)

    def tril(self, diagonal: int = 0) -> Tensor:
        return _ops.tril(self, diagonal)

    def triu(self, diagonal: int = 0) -> Tensor:
        return _ops.triu(self, diagonal)

    def add(self, other: Any) -> Tensor:
        return _ops.add(self, other)

    def sub(self, other: Any) -> Tensor:
        return _ops.sub(self, other)

    def mul(self, other: Any) -> Tensor:
        return _ops.mul(self, other)

    def div(self, other: Any) -> Tensor:
        return _ops.div(self, other)

    def pow(self, exponent: Any) -> Tensor:
        return _ops.pow(self, exponent)

    def neg(self) -> Tensor:
        return _ops.neg(self)

    def sum(self, dim: Axis = None, keepdim: bool | None = None, **kw: Any) -> Tensor:
        """Sum over ``dim`` (or ``axis=``; ``keepdim``/``keepdims``): see ``numpy2gpt.autograd.sum``."""
        return _ops.sum(self, dim, keepdim, **kw)

    def mean(self, dim: Axis = None, keepdim: bool | None = None, **kw: Any) -> Tensor:
        return _ops.mean(self, dim, keepdim, **kw)

    def max(self, dim: Axis = None, keepdim: bool | None = None, **kw: Any) -> Tensor:
        """Largest values over ``dim`` (values only, as ``amax``)."""
        return _ops.max(self, dim, keepdim, **kw)

    def min(self, dim: Axis = None, keepdim: bool | None = None, **kw: Any) -> Tensor:
        return _ops.min(self, dim, keepdim, **kw)

    amax, amin = max, min  # noqa: A003 - torch's names for the same reductions

    def var(self, dim: Axis = None, keepdim: bool | None = None, correction: int | None = None, **kw: Any) -> Tensor:
        return _ops.var(self, dim, keepdim, correction, **kw)

    def std(self, dim: Axis = None, keepdim: bool | None = None, correction: int | None = None, **kw: Any) -> Tensor:
        return _ops.std(self, dim, keepdim, correction, **kw)

    def argmax(self, dim: int | None = None, keepdim: bool | None = None, **kw: Any) -> Tensor:
        """Indices of the maxima (an int64 tensor; not differentiable)."""
        return _ops.argmax(self, dim, keepdim, **kw)

    def argmin(self, dim: int | None = None, keepdim: bool | None = None, **kw: Any) -> Tensor:
        """Indices of the minima (an int64 tensor; not differentiable)."""
        return _ops.argmin(self, dim, keepdim, **kw)

    def numel(self) -> int:
        """The number of elements."""
        return self.data.size

    def dim(self) -> int:
        """The number of dimensions (``ndim``)."""
        return self.data.ndim

    def clone(self) -> Tensor:
        """A recorded copy with memory of its own (``torch.clone``)."""
        return _ops.clone(self)

    def contiguous(self) -> Tensor:
        """This tensor if its data is C-contiguous, else a recorded C-ordered copy."""
        return _ops.contiguous(self)

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        return _ops.reshape(self, *shape)

    def view(self, *shape: int | Sequence[int]) -> Tensor:
        """The same data with a new shape (``torch.view``): raises where that needs a copy; see ``reshape``."""
        return _ops.view(self, *shape)

    def flatten(self, start_dim: int | None = None, end_dim: int | None = None, **kw: Any) -> Tensor:
        return _ops.flatten(self, start_dim, end_dim, **kw)

    def transpose(self, *dims: int | Sequence[int], **kw: Any) -> Tensor:
        """``transpose()`` reverses the axes; ``transpose(a, b)`` swaps two axes, as in PyTorch."""
        return _ops.transpose(self, *dims, **kw)

    def permute(self, *dims: int | Sequence[int]) -> Tensor:
        return _ops.permute(self, *dims)

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        return _ops.swapaxes(self, axis1, axis2)

    swapdims = swapaxes

    def t(self) -> Tensor:
        """The transpose of a matrix (a vector is returned as it is)."""
        return _ops.t(self)

    @property
    def T(self) -> Tensor:  # noqa: N802 - named like ndarray.T
        return _ops.transpose(self)

    @property
    def mT(self) -> Tensor:  # noqa: N802 - named like torch's Tensor.mT
        """Transpose of the last two axes (a batch of matrices)."""
        return _ops.swapaxes(self, -1, -2)

    def broadcast_to(self, *shape: int | Sequence[int]) -> Tensor:
        return _ops.broadcast_to(self, *shape)

    def expand(self, *shape: int | Sequence[int]) -> Tensor:
        return _ops.expand(self, *shape)

    def sum_to(self, *shape: int | Sequence[int]) -> Tensor:
        return _ops.sum_to(self, *shape)

    def squeeze(self, dim: Axis = None, **kw: Any) -> Tensor:
        return _ops.squeeze(self, dim, **kw)

    def unsqueeze(self, dim: int | None = None, **kw: Any) -> Tensor:
        return _ops.unsqueeze(self, dim, **kw)

    def split(
        self, split_size_or_sections: int | Sequence[int], dim: int | None = None, **kw: Any
    ) -> tuple[Tensor, ...]:
        return _ops.split(self, split_size_or_sections, dim, **kw)

    def chunk(self, chunks: int, dim: int | None = None, **kw: Any) -> tuple[Tensor, ...]:
        return _ops.chunk(self, chunks, dim, **kw)

    def unbind(self, dim: int | None = None, **kw: Any) -> tuple[Tensor, ...]:
        return _ops.unbind(self, dim, **kw)


class Size(int):
    """A tensor's ``size``: the number of elements, as NumPy's ``a.size``, that called answers PyTorch's
    ``t.size()`` (the shape) and ``t.size(d)`` (one dimension, negative counting from the end)."""

    shape: tuple[int, ...]

    def __new__(cls, shape: tuple[int, ...]) -> Size:
        self = super().__new__(cls, int(np.prod(shape)))
        self.shape = shape
        return self

    def __call__(self, dim: int | None = None) -> tuple[int, ...] | int:
        if dim is None:
            return self.shape
        if not -len(self.shape) <= dim < len(self.shape):
            raise IndexError(f"size: dimension {dim} is out of range for a tensor of shape {self.shape}")
        return self.shape[dim]


# The ops import Tensor from this module, so they are bound here, after the class exists.
from numpy2gpt.autograd import ops as _ops  # noqa: E402
