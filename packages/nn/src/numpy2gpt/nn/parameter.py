"""Parameter: a Tensor that a Module registers as one of its learnable weights.

A Parameter is nothing more than a ``Tensor`` with ``requires_grad=True`` whose *type* tells a Module,
when it is assigned as an attribute (``self.weight = Parameter(...)``), to list it in ``parameters()`` and
``state_dict()``. A plain Tensor assigned the same way stays a plain attribute (useful for constants).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numpy2gpt.autograd import Tensor, get_default_dtype


class Parameter(Tensor):
    """A learnable tensor: ``requires_grad=True`` and registered by the Module it is assigned to.

    Args:
        data: an ndarray (kept as is, sharing memory, so its dtype is kept), a Tensor (its array is shared),
            or anything ``np.asarray`` takes (Python floats become the default dtype, float32).
            ``None`` gives an empty float32 parameter.
        requires_grad: set False for a frozen weight that should still be saved in the ``state_dict``.
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = np.empty(0, dtype=get_default_dtype())
        super().__init__(data, requires_grad=requires_grad)  # a Tensor's array is shared, an ndarray kept as is

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
