"""The Optimizer base class: parameter groups, per-parameter state, ``zero_grad``, ``step``, state dicts.

An optimizer holds a list of *parameter groups*. Each group is a dict with the tensors under ``"params"``
and that group's hyperparameters (``"lr"``, ``"weight_decay"``, ...), so that, as in nanoGPT, the 2-D weights
can decay while the biases and LayerNorm gains do not::

    optim.AdamW([{"params": matrices, "weight_decay": 0.1},
                 {"params": vectors, "weight_decay": 0.0}], lr=6e-4, betas=(0.9, 0.95))

Hyperparameters missing from a group are filled from the constructor's arguments (``defaults``); the
learning rate can be changed at any time by assigning ``group["lr"]`` (that is all an lr scheduler does).

``state[p]`` holds what the update rule remembers about parameter ``p`` between steps (Adam's moments, SGD's
momentum buffer). ``state_dict()`` saves it the way PyTorch does, keyed by the parameter's position
(0, 1, 2, ... counting through the groups in order), so that it can be loaded into a fresh optimizer built over
a fresh copy of the model: resuming a run from a checkpoint then continues bit for bit.

A subclass supplies ``_validate_group`` (check one group's hyperparameters) and ``_update`` (the update
rule for one parameter, in place on its ndarray). The updates run on raw arrays with ``out=`` arguments and
reuse scratch buffers (``_scratch``) shared by all parameters, so a step allocates nothing after the first.
For an elementwise rule (SGD, Adam, AdamW) the parameters and their state live in flat buffers and ``_update``
runs over cache-sized chunks of them, a few calls per step instead of one set per parameter, with the same bits
(``flat.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import numpy as np

from numpy2gpt.autograd import Tensor, enable_grad, get_array_module
from numpy2gpt.autograd.device import device_of, to_device
from numpy2gpt.nn.optim.flat import CHUNK, FlatLayout, can_flatten, state_arrays
from numpy2gpt.nn.utils import _zero_grads

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


class Optimizer:
    """Base class of the optimizers (``SGD``, ``Adam``, ``AdamW``).

    Args:
        params: an iterable of tensors to optimize (leaves with ``requires_grad=True``, e.g.
            ``model.parameters()``), or a list of dicts, each with ``"params"`` and any per-group
            hyperparameters.
        defaults: the hyperparameters a group gets when it does not name them.

    A subclass whose ``_update`` treats every element alike (no shapes, no reductions) sets ``elementwise = True``:
    its parameters and state then live in flat buffers and the rule runs over chunks of them (see ``flat.py``).
    """

    elementwise: ClassVar[bool] = False

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        if isinstance(params, (Tensor, dict)):
            kind = "Tensor" if isinstance(params, Tensor) else "dict"
            raise TypeError(
                f"params should be an iterable of Tensors or of dicts, but got a single {kind}; "
                f"wrap it in a list: [{kind.lower()}]"
            )
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        self._scratch_buffers: dict[tuple[Any, np.dtype], np.ndarray] = {}
        self._layout: FlatLayout | None = None  # where the parameters live in flat buffers (see flat.py)
        self._layout_refused: tuple[int, ...] | None = None  # the arrays last found unfit for flat buffers
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {key}: {value}" for key, value in sorted(group.items()) if key != "params")
        return "\n".join([*lines, ")"])

    # -- parameter groups ---------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters (a dict with ``"params"`` and optional hyperparameters).

        Useful to start training layers that were frozen: ``opt.add_param_group({"params": head.parameters()})``.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"a parameter group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("a parameter group needs a 'params' entry (a list of tensors)")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("parameters must be given in an ordered collection (a list), not a set")
        params = list(params)
        if not params:
            raise ValueError("a parameter group got an empty parameter list")
        seen: set[int] = set()
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"an optimizer can only optimize Tensors, but parameter {i} is a {type(p).__name__}")
            if not p.requires_grad:
                raise ValueError(
                    f"parameter {i} (shape {p.shape}) does not require grad: only leaves with requires_grad=True "
                    "can be optimized (freeze a parameter by leaving it out of the optimizer)"
                )
            if not p.is_leaf:
                raise ValueError(f"can't optimize a non-leaf tensor: parameter {i} (shape {p.shape}) has a creator")
            if id(p) in seen:
                raise ValueError(f"parameter {i} (shape {p.shape}) appears twice in the same parameter group")
            seen.add(id(p))
        for other in self.param_groups:
            if any(id(p) in seen for p in other["params"]):
                raise ValueError("some parameters appear in more than one parameter group")
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._validate_group(group)
        self.param_groups.append(group)

    def _validate_group(self, group: dict[str, Any]) -> None:
        """Raise a clear error if one of the group's hyperparameters is out of range (subclasses)."""

    # -- the step -----------------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``grad = None`` (the default, as PyTorch), or fill them with zeros."""
        _zero_grads((p for group in self.param_groups for p in group["params"]), set_to_none)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient (parameters whose ``grad`` is None are skipped).

        Args:
            closure: optionally, a function that zeroes the gradients, recomputes the loss, calls
                ``backward`` and returns the loss (as PyTorch's ``step(closure)``); it runs first.

        Returns:
            The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    _check_grad(p)
        layout = self._flat_layout()
        for group in self.param_groups:
            if layout is None:
                for p in group["params"]:
                    if p.grad is not None:
                        state = self.state.setdefault(p, {})
                        _follow_device(p.data, state)
                        self._update(p.data, p.grad.data, group, state)
            else:
                for run in self._runs(group, layout):
                    self._update_run(run, group, layout)
        return loss

    # -- the step over flat buffers (see flat.py) -----------------------------------------------------
    def _flat_layout(self) -> FlatLayout | None:
        """The flat layout of all parameters, (re)built when they changed; None where the per-parameter loop runs
        (a rule that is not elementwise, arrays that are not plain NumPy arrays, or parameters sharing memory)."""
        if not self.elementwise:
            return None
        params = [p for group in self.param_groups for p in group["params"]]
        layout = self._layout
        if layout is not None and layout.current(params, self.state):
            return layout
        key = tuple(id(p.data) for p in params)
        if key == self._layout_refused:
            return None
        if not can_flatten(params):
            self._layout, self._layout_refused = None, key
            return None
        self._layout, self._layout_refused = FlatLayout(params, self.state), None
        return self._layout

    def _runs(self, group: dict[str, Any], layout: FlatLayout) -> list[list[tuple[Tensor, np.ndarray]]]:
        """The group's parameters with a gradient, as runs of (parameter, gradient) that lie back to back in the
        buffers and whose states agree on everything but the arrays (e.g. Adam's step count): one update each."""
        runs: list[list[tuple[Tensor, np.ndarray]]] = []
        last, last_key = None, None
        for p in group["params"]:
            if p.grad is None:
                last = None
                continue
            state = self.state.get(p, {})
            key = tuple((k, v) for k, v in state.items() if not isinstance(v, np.ndarray)), tuple(state_arrays(state))
            if last is not None and key == last_key and layout.follows(last, p):
                runs[-1].append((p, p.grad.data))
            else:
                runs.append([(p, p.grad.data)])
            last, last_key = p, key
        return runs

    def _update_run(self, run: list[tuple[Tensor, np.ndarray]], group: dict[str, Any], layout: FlatLayout) -> None:
        """Apply ``_update`` chunk by chunk to a run's slice of the flat buffers, then point each parameter's state at
        its views (arrays the rule created, e.g. a first momentum buffer, are copied into the buffers)."""
        template = self.state.get(run[0][0], {})
        names = state_arrays(template)
        dtype = run[0][0].data.dtype
        params = layout.buffers["param"][dtype]
        scratch = self._scratch_buffers.get(("grads", dtype))
        if scratch is None:
            scratch = self._scratch_buffers["grads", dtype] = np.empty(CHUNK, dtype=dtype)
        chunk_state: dict[str, Any] = template
        for start, stop, g in layout.chunks(run, scratch):
            chunk_state = {k: v for k, v in template.items() if not isinstance(v, np.ndarray)}
            given = {name: layout.buffers[name][dtype][start:stop] for name in names}
            chunk_state.update(given)
            self._update(params[start:stop], g, group, chunk_state)
            for name in state_arrays(chunk_state):
                if chunk_state[name] is not given.get(name):  # made or replaced by the rule: copy it in
                    if name not in layout.buffers:
                        layout.allocate(name)
                    layout.buffers[name][dtype][start:stop] = chunk_state[name]
        for p, _ in run:
            state = self.state.setdefault(p, {})
            for name, value in chunk_state.items():
                state[name] = layout.views[name][layout.index[id(p)]] if isinstance(value, np.ndarray) else value

    def _update(self, p: np.ndarray, g: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        """Update the array ``p`` in place from its gradient ``g`` (subclasses).

        With ``elementwise = True`` the arrays may be a chunk of the flat buffers (1-D, several parameters' worth or
        part of one), and ``state`` that chunk's state: the rule must treat every element alike.
        """
        raise NotImplementedError

    def _scratch(self, like: np.ndarray, count: int) -> list[np.ndarray]:
        """``count`` temporary arrays shaped like ``like``, views of buffers shared by all parameters.

        A buffer grows to the largest parameter seen and is then reused: the arrays are only valid until the
        next parameter's update, which is all an update rule needs.
        """
        views = []
        for k in range(count):
            key = (k, like.dtype, type(like))  # (per device: a model moved to a GPU gets GPU buffers)
            buf = self._scratch_buffers.get(key)
            if buf is None or buf.size < like.size:
                buf = get_array_module(like).empty(like.size, dtype=like.dtype)
                self._scratch_buffers[key] = buf
            views.append(buf[: like.size].reshape(like.shape))
        return views

    # -- saving and loading -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as plain data, as PyTorch lays it out::

            {"state": {0: {"step": 3.0, "exp_avg": ndarray, ...}, 1: {...}},
             "param_groups": [{"lr": 0.001, ..., "params": [0, 1]}, {..., "params": [2]}]}

        Parameters are named by their position counting through the groups. The arrays are copies, so later
        steps do not change a saved state dict.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {
            index[id(p)]: {key: value.copy() if _is_array(value) else value for key, value in s.items()}
            for p, s in self.state.items()
            if id(p) in index
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a ``state_dict()``: each group's hyperparameters and each parameter's state (copied).

        The groups must match this optimizer's in number and size (build the optimizer the same way).
        Integer or string keys are accepted for ``state`` (string keys come back from JSON-based files),
        and lists for tuple hyperparameters such as ``betas``.
        """
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("an optimizer state dict is a dict with 'state' and 'param_groups' entries")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups, but this optimizer has "
                f"{len(self.param_groups)}"
            )
        by_index: dict[int, Tensor] = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups, strict=True)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"loaded state dict's parameter group {i} has {len(saved['params'])} parameters, but this "
                    f"optimizer's group {i} has {len(group['params'])}"
                )
            for idx, p in zip(saved["params"], group["params"], strict=True):
                by_index[int(idx)] = p

        state: dict[Tensor, dict[str, Any]] = {}
        for key, saved_state in state_dict["state"].items():
            idx = int(key)
            if idx not in by_index:
                raise ValueError(f"loaded state dict has state for parameter {idx}, which no parameter group lists")
            p = by_index[idx]
            restored: dict[str, Any] = {}
            for name, value in saved_state.items():
                if isinstance(value, np.ndarray):
                    if value.shape != p.shape:
                        raise ValueError(
                            f"loaded state '{name}' of parameter {idx} has shape {value.shape}, but the parameter "
                            f"has shape {p.shape}"
                        )
                    xp = get_array_module(p.data)
                    value = xp.array(value, dtype=p.dtype if np.issubdtype(value.dtype, np.floating) else None)
                elif name == "step":
                    value = float(value)
                restored[name] = value
            state[p] = restored

        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups, strict=True):
            new_group = {key: value for key, value in group.items() if key != "params"}
            for key, value in saved.items():
                if key == "params":
                    continue
                if isinstance(new_group.get(key), tuple) and isinstance(value, list):
                    value = tuple(value)
                new_group[key] = value
            new_group["params"] = group["params"]
            self._validate_group(new_group)
            new_groups.append(new_group)
        self.param_groups = new_groups
        self.state = state


def _is_array(value: Any) -> bool:
    """True for a NumPy or GPU (CuPy) array."""
    return isinstance(value, np.ndarray) or get_array_module(value) is not np


def _follow_device(p: Any, state: dict[str, Any]) -> None:
    """Move a parameter's state arrays to the parameter's device (after ``model.to("cuda")``, say), as PyTorch's
    optimizers follow their parameters."""
    xp = get_array_module(p)
    for name, value in state.items():
        if _is_array(value) and get_array_module(value) is not xp:
            state[name] = to_device(value, device_of(p))


def _check_grad(p: Tensor) -> None:
    """Raise a clear error for a gradient that does not fit its parameter, or a parameter that cannot be updated."""
    g = p.grad.data
    if g.shape != p.data.shape or g.dtype != p.data.dtype:
        raise ValueError(
            f"a parameter of shape {p.shape} and dtype {p.dtype} has a gradient of shape {g.shape} "
            f"and dtype {g.dtype}; they must match"
        )
    if not getattr(p.data.flags, "writeable", True):  # (CuPy arrays are always writeable)
        raise ValueError(
            f"a parameter of shape {p.shape} holds a read-only array (a memory-mapped or broadcast "
            "one?); the optimizer updates parameters in place: give it a copy, p.data = p.data.copy()"
        )
