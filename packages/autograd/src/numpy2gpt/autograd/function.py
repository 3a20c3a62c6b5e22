"""Function: one differentiable operation, and the node that records it in the graph.

A Function subclass says two things, side by side:

* ``forward(*arrays) -> array or tuple of arrays``: the computation, on plain ndarrays.
* ``backward(*grad_outputs) -> gradient or tuple of gradients``: given dL/d(output) for each output (as
  Tensors, ``None`` for an output nobody used), return dL/d(input) for each input, each with its input's
  shape (``None`` for an input that needs none). Written with Tensor ops, backward is itself differentiable:
  with ``create_graph=True`` it is recorded, which is how higher-order derivatives work.

The contract a fused op relies on: ``self.needs_input_grad`` (one bool per input; all False under
``no_grad()``) is set *before* ``forward`` runs, so forward saves what backward needs only when a backward
can happen; and backward may return plain ndarrays, which the engine wraps. Such a Function sets
``differentiable_backward = False`` (or returns Tensors when grad mode is on, as ``Softmax`` does), since an
array carries no graph to differentiate again.

Calling a Function (``Exp()(x)``) runs forward and, while grad mode is on and some input requires grad,
records the graph (three ideas):

* **creator**: every output points at the Function that made it, and the Function keeps its ``inputs``.
  Following ``creator`` then ``inputs`` from the loss walks the whole graph backwards.
* **generation**: a Function's generation is the largest generation among its inputs, and each output's is
  one more. Backward visits Functions from the highest generation down, so a tensor used by several
  Functions has received every contribution to its gradient before its own creator runs.
* **weak outputs**: a Function holds its outputs only through ``weakref``. Output -> creator -> inputs are
  strong references pointing backwards in time, and nothing points forwards, so the graph has no reference
  cycle: when the last tensor of a graph is dropped, CPython frees the whole graph at once, with no garbage
  collector pass.

Inputs may be Tensors or anything ``np.asarray`` takes (arrays, scalars, lists); those become leaf Tensors
that need no gradient, and a floating one takes the dtype of the first floating Tensor input, so that
``MyOp()(float32_tensor, np.float64(0.5))`` does not silently compute in float64. A Function instance
records one call: make a new one per call (``MyOp(eps)(x)``).

With ``create_graph=True``, backward through a Function with ``differentiable_backward = False``, or one whose
backward returned an ndarray, raises instead of returning a silently wrong higher derivative.
"""

from __future__ import annotations

import weakref
from typing import Any, ClassVar

import numpy as np

from numpy2gpt.autograd.backend import get_array_module
from numpy2gpt.autograd.grad_mode import _state as _grad_state
from numpy2gpt.autograd.tensor import Tensor

Gradient = Tensor | np.ndarray | None


class Function:
    """Base class of every differentiable operation. Subclass it and define ``forward`` and ``backward``.

    ``needs_input_grad`` (one bool per input) is set on every call, before ``forward``. After a recorded call:
    ``inputs`` (list of Tensors, set to ``None`` once backward has used it unless ``retain_graph=True``),
    ``outputs`` (list of weak references) and ``generation`` (int).
    """

    differentiable_backward: ClassVar[bool] = True

    inputs: list[Tensor] | None
    outputs: list[weakref.ref[Tensor]]
    generation: int
    needs_input_grad: tuple[bool, ...]

    def __call__(self, *inputs: Any) -> Any:
        xs = list(inputs)
        for x in xs:
            if not isinstance(x, Tensor):
                xs = _as_tensors(xs)
                break
        # Known before forward runs, so that forward saves only what a recorded backward will need.
        if _grad_state.enabled:
            self.needs_input_grad = needs_input_grad = tuple([x.requires_grad for x in xs])
        else:
            self.needs_input_grad = needs_input_grad = (False,) * len(xs)
        ys = self.forward(*[x.data for x in xs])
        single = not isinstance(ys, tuple)
        outputs = [Tensor._wrap(y if type(y) is np.ndarray else _result_array(y)) for y in ((ys,) if single else ys)]

        if True in needs_input_grad:  # record the graph only when it can matter
            self.generation = generation = max([x.generation for x in xs])
            self.inputs = xs
            for y in outputs:
                if y.data.dtype.kind == "f":  # integer and boolean outputs (indices, masks) carry no gradient
                    y.requires_grad = True
                    y.creator = self
                    y.generation = generation + 1
            self.outputs = [weakref.ref(y) for y in outputs]
        return outputs[0] if single else tuple(outputs)

    def forward(self, *xs: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        raise NotImplementedError(f"{type(self).__name__} must define forward(*arrays)")

    def backward(self, *gys: Tensor | None) -> Gradient | tuple[Gradient, ...]:
        raise NotImplementedError(f"{type(self).__name__} must define backward(*grad_outputs)")

    @property
    def name(self) -> str:
        """The op's name in error messages: the class name."""
        return type(self).__name__

    @property
    def graph_label(self) -> str:
        """The op's label in graph pictures: the name, plus any constant worth showing (``Pow · 3``)."""
        return self.name

    def __repr__(self) -> str:
        return f"<{self.name} generation={getattr(self, 'generation', None)}>"


def _result_array(y: Any) -> Any:
    """A forward's result as an array: NumPy scalars (what NumPy reductions return) become 0-d arrays; GPU
    arrays (CuPy's reductions already give 0-d arrays) stay on their device."""
    return y if get_array_module(y) is not np else np.asarray(y)


def _as_tensors(inputs: list[Any]) -> list[Tensor]:
    """Non-Tensor inputs as Tensors; floating constants take the first floating Tensor input's dtype."""
    dtype = next((x.data.dtype for x in inputs if isinstance(x, Tensor) and x.data.dtype.kind == "f"), None)
    xp = get_array_module(*[x.data for x in inputs if isinstance(x, Tensor)])
    out = []
    for x in inputs:
        if not isinstance(x, Tensor):
            x = Tensor(x)
            if dtype is not None and x.data.dtype.kind == "f" and x.data.dtype != dtype:
                x = Tensor._wrap(x.data.astype(dtype))
            if xp is not np and type(x.data) is np.ndarray:  # a constant joins the GPU tensors it meets
                x = Tensor._wrap(xp.asarray(x.data))
        out.append(x)
    return out
