"""numpy2gpt.autograd: reverse-mode automatic differentiation on NumPy arrays.

The whole idea in three sentences. A ``Tensor`` wraps an ndarray; a ``Function`` computes new tensors from
old ones and records itself as their ``creator``, holding its inputs strongly and its outputs only weakly.
Each tensor and Function carries a ``generation`` (its depth in the graph), and ``backward()`` visits the
Functions from the highest generation down, so each tensor's gradient is complete before its creator uses
it. Because nothing points forward in time, dropping the loss frees the whole graph immediately.
"""

# tensor.py first: it binds the ops module at its end, and the ops import Function and Tensor back.
from numpy2gpt.autograd.tensor import Tensor  # isort: skip
from numpy2gpt.autograd import allocator  # no side effect: entry points call allocator.keep_freed_memory()
from numpy2gpt.autograd.backend import get_array_module
from numpy2gpt.autograd.backward import backward, grad
from numpy2gpt.autograd.creation import (
    arange,
    as_tensor,
    default_generator,
    full,
    full_like,
    get_rng_state,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randn,
    randn_like,
    set_rng_state,
    tensor,
    zeros,
    zeros_like,
)
from numpy2gpt.autograd.dtypes import get_default_dtype, set_default_dtype
from numpy2gpt.autograd.function import Function
from numpy2gpt.autograd.grad_mode import enable_grad, grad_mode, is_grad_enabled, no_grad, set_grad_enabled
from numpy2gpt.autograd.gradcheck import GradcheckError, gradcheck
from numpy2gpt.autograd.graph import to_dot, to_mermaid
from numpy2gpt.autograd.ops import *  # noqa: F403 - every op, listed in ops/__init__.py
from numpy2gpt.autograd.ops import __all__ as _ops_all

__version__ = "0.1.0"

__all__ = [
    "Function", "GradcheckError", "Tensor", "allocator", "arange", "as_tensor", "backward", "default_generator",
    "enable_grad", "full", "full_like", "get_array_module", "get_default_dtype", "get_rng_state", "grad",
    "grad_mode", "gradcheck", "is_grad_enabled", "manual_seed", "no_grad", "ones", "ones_like", "rand",
    "rand_like", "randn", "randn_like", "set_default_dtype", "set_grad_enabled", "set_rng_state", "tensor",
    "to_dot", "to_mermaid", "zeros", "zeros_like", *_ops_all,
]  # fmt: skip
