"""Module: the base class of every layer and model, as in ``torch.nn.Module``.

A Module is a tree. Assigning an attribute files it by type:

    self.weight = Parameter(...)     -> _parameters["weight"]  (learnable, in parameters() and state_dict())
    self.fc = Linear(...)            -> _modules["fc"]         (a child: its parameters are ours too)
    self.register_buffer("mask", a)  -> _buffers["mask"]       (state that is not learned, e.g. a running mean)
    self.scale = 0.5                 -> a plain attribute

Registered values are also ordinary instance attributes, so ``self.weight`` in ``forward`` is a plain
attribute read (why: the nn README).

Names are dotted paths through the tree, exactly as PyTorch prints them: ``transformer.h.0.attn.c_attn.weight``.
``named_parameters()`` walks the tree in pre-order (a module's own parameters, then each child's, in the order
they were assigned) and lists a parameter shared by two modules (tied weights) once; ``state_dict()`` walks the
same way but, like torch, lists a tied parameter under every name it has, so each name loads on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

from numpy2gpt.autograd import Tensor
from numpy2gpt.autograd.device import Device, device_of, parse_to_args, to_device
from numpy2gpt.nn.parameter import Parameter
from numpy2gpt.nn.utils import _zero_grads


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` returns: names the model has but the state dict lacked, and the reverse."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _addindent(text: str, spaces: int) -> str:
    """Indent every line of ``text`` but the first (children's reprs nest inside their parent's)."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    pad = " " * spaces
    return lines[0] + "\n" + "\n".join(pad + line for line in lines[1:])


def _moved(data: Any, device: Device | None, dtype: Any) -> Any:
    """``data`` on ``device`` and, when floating, in ``dtype`` (either may be None: unchanged)."""
    if dtype is not None and data.dtype.kind == "f" and data.dtype != dtype:
        data = data.astype(dtype)
    return data if device is None else to_device(data, device)


def _as_buffer(value: Any) -> Tensor | None:
    """Buffers are stored as Tensors (never requiring grad); an ndarray is wrapped without a copy."""
    if value is None or isinstance(value, Tensor):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        return Tensor(np.asarray(value))
    raise TypeError(f"a buffer must be an ndarray, a Tensor or None, got {type(value).__name__}")


class Module:
    """Base class for layers and models: subclass it, assign parameters and submodules in ``__init__`` (after
    ``super().__init__()``), and define ``forward``. Calling the module calls ``forward``.

    Example::

        class MLP(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(2, 16)
                self.fc2 = nn.Linear(16, 1)

            def forward(self, x):
                return self.fc2(self.fc1(x).tanh())

        MLP().named_parameters()  # fc1.weight (16, 2), fc1.bias (16,), fc2.weight (1, 16), fc2.bias (1,)
    """

    training: bool
    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Tensor | None]
    _non_persistent_buffers: set[str]
    _modules: dict[str, Module | None]

    def __init__(self) -> None:
        # object.__setattr__: these must exist before our own __setattr__ can file anything.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", {})

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward(); define forward() in the subclass")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # -- registration -----------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        # Never touch self.__dict__ here: reading it makes CPython switch the instance to a slower attribute
        # layout, and every `self.weight` in forward would pay for it (about 20 ns instead of 7).
        params = getattr(self, "_parameters", None)
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError(f"cannot assign parameter '{name}' before Module.__init__() call")
            self._forget(name)
            params[name] = value
        elif isinstance(value, Module):
            if params is None:
                raise AttributeError(f"cannot assign module '{name}' before Module.__init__() call")
            self._forget(name)
            self._modules[name] = value
        elif params is not None:
            if name in params:
                if value is not None:
                    raise TypeError(
                        f"cannot assign '{type(value).__name__}' as parameter '{name}' (nn.Parameter or None expected)"
                    )
                params[name] = None
            elif name in self._modules:
                if value is not None:
                    raise TypeError(
                        f"cannot assign '{type(value).__name__}' as child module '{name}' (nn.Module or None expected)"
                    )
                self._modules[name] = None
            elif name in self._buffers:
                value = _as_buffer(value)
                self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        found = False
        if getattr(self, "_parameters", None) is not None:
            for registry in (self._parameters, self._buffers, self._modules):
                if name in registry:
                    del registry[name]
                    found = True
            self._non_persistent_buffers.discard(name)
        try:
            object.__delattr__(self, name)
        except AttributeError:
            if not found:
                raise

    def _forget(self, name: str) -> None:
        """Remove ``name`` from every registry (before it is filed again, perhaps under another kind)."""
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent_buffers.discard(name)
        self._modules.pop(name, None)

    def _check_new_name(self, name: Any, kind: str, registry: dict[str, Any]) -> None:
        if getattr(self, "_parameters", None) is None:
            raise AttributeError(f"cannot register {kind} '{name}' before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if name == "" or "." in name:
            raise KeyError(f"{kind} name can't be empty or contain '.', got {name!r}")
        if hasattr(self, name) and name not in registry:
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a ``None`` placeholder, which is skipped by parameters() and state_dict())."""
        self._check_new_name(name, "parameter", self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' as parameter '{name}' (nn.Parameter expected)")
        self._forget(name)
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module (``self.name = module`` does the same for names that are identifiers)."""
        self._check_new_name(name, "module", self._modules)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._forget(name)
        self._modules[name] = module
        object.__setattr__(self, name, module)

    register_module = add_module

    def register_buffer(self, name: str, tensor: Any, persistent: bool = True) -> None:
        """Add state that is not learned (no gradient), such as a causal mask or running statistics.

        ``tensor`` (an ndarray, a Tensor or None) is stored as a Tensor and read back as ``self.name``.
        Persistent buffers are saved in ``state_dict()`` after the parameters; non-persistent ones are not
        (use that for things that are cheap to recompute, like a mask).
        """
        self._check_new_name(name, "buffer", self._buffers)
        value = _as_buffer(tensor)
        self._forget(name)
        self._buffers[name] = value
        if not persistent:
            self._non_persistent_buffers.add(name)
        object.__setattr__(self, name, value)

    # -- walking the tree -------------------------------------------------------------------------
    def named_modules(
        self, memo: set[int] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """Every module in the tree, this one first (name ``""``), then each child's subtree in order.
        A module reachable by two paths is listed once (under its first name) unless ``remove_duplicate=False``."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            yield from module.named_modules(memo, prefix + "." + name if prefix else name, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The direct children (each listed once), in the order they were assigned."""
        seen: set[int] = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def _named_members(
        self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool
    ) -> Iterator[tuple[str, Any]]:
        memo: set[int] = set()
        if recurse:
            modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
        else:
            modules = iter([(prefix, self)])
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None:
                    continue
                if remove_duplicate:
                    if id(value) in memo:
                        continue
                    memo.add(id(value))
                yield (module_prefix + "." + name if module_prefix else name), value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) for every parameter, pre-order; a tied parameter once, under its first name."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def get_submodule(self, target: str) -> Module:
        """The module at a dotted path (``"transformer.h.0.attn"``); ``""`` is this module."""
        module: Module = self
        if target == "":
            return module
        walked = []
        for part in target.split("."):
            child = module._modules.get(part)
            if child is None:
                where = ".".join(walked) or type(self).__name__
                raise AttributeError(f"{where} has no submodule '{part}' (looking up '{target}')")
            walked.append(part)
            module = child
        return module

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at a dotted path (``"transformer.wte.weight"``)."""
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        param = module._parameters.get(name)
        if param is None:
            raise AttributeError(f"{type(module).__name__} has no parameter '{name}' (looking up '{target}')")
        return param

    def num_parameters(self, only_trainable: bool = False) -> int:
        """The number of scalars in all parameters (tied parameters counted once)."""
        return sum(p.data.size for p in self.parameters() if p.requires_grad or not only_trainable)

    # -- modes and bulk changes -------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active) on this module and every descendant; returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"training mode is expected to be a bool, got {type(mode).__name__}")
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        """``train(False)``: evaluation mode (dropout off) for the whole tree; returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze every parameter in place; returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (``grad = None``), or zero it in place with set_to_none=False."""
        _zero_grads(self.parameters(), set_to_none)

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn(module)`` on every descendant (children first) and then on self; returns self.
        Typical use: ``model.apply(init_weights)``."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Move parameters and buffers to a device and/or convert the floating ones to a dtype, in place, as
        ``torch.nn.Module.to``: ``to("cuda")``, ``to("cpu")``, ``to(np.float64)``, ``to("cuda", np.float32)``. The
        Parameter objects stay the same (an optimizer made earlier still holds them; its state follows at its
        next step). ``cuda()``, ``cpu()``, ``double()`` and ``float()`` are shorthands."""
        device, dtype = parse_to_args(args, kwargs)
        if dtype is not None and np.dtype(dtype).kind != "f":
            raise TypeError(f"Module.to() converts floating parameters only, got dtype {np.dtype(dtype)}")
        for module in self.modules():
            for t in (*module._parameters.values(), *module._buffers.values()):
                if t is not None:
                    t.data = _moved(t.data, device, dtype)
                    if t.grad is not None:
                        t.grad = Tensor(_moved(t.grad.data, device, dtype))
        return self

    def cuda(self, device: int | None = None) -> Module:
        """Move every parameter and buffer to a GPU (needs CuPy): ``to("cuda")``."""
        return self.to("cuda" if device is None else f"cuda:{device}")

    def cpu(self) -> Module:
        return self.to("cpu")

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    # -- state dict -------------------------------------------------------------------------------
    def _state_tensors(self, prefix: str = "") -> dict[str, Tensor]:
        """name -> Tensor for everything ``state_dict`` saves, in its order (tied tensors under every name)."""
        out: dict[str, Tensor] = {}
        for name, param in self._parameters.items():
            if param is not None:
                out[prefix + name] = param
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers:
                out[prefix + name] = buf
        for name, module in self._modules.items():
            if module is not None:
                out.update(module._state_tensors(prefix + name + "."))
        return out

    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> dict[str, Any]:
        """Every parameter, then every persistent buffer, module by module in pre-order, as
        ``{dotted name: ndarray}``. A tied parameter appears under each of its names.

        The arrays are the parameters' own storage, not copies (as in torch): copy them
        (``{k: v.copy() for k, v in sd.items()}``) to keep a snapshot while training goes on.
        ``keep_vars=True`` gives the Parameter/Tensor objects instead.
        """
        tensors = self._state_tensors(prefix)
        if keep_vars:
            return dict(tensors)
        return {name: t.data for name, t in tensors.items()}

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy ``state_dict``'s arrays into this module's parameters and buffers, in place.

        Every entry is checked before anything is written, so a failed load changes nothing. Values are
        converted to each parameter's dtype (a float64 checkpoint loads into a float32 model), and written
        into the existing arrays: the Parameter objects (and the arrays an optimizer may hold) stay the same.

        Raises RuntimeError listing every problem: shape mismatches (always, with both shapes), and with
        ``strict=True`` (the default) missing and unexpected keys. Returns ``(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"expected a dict from state_dict(), got {type(state_dict).__name__}")
        own = self._state_tensors()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors: list[str] = []
        if strict:
            if missing:
                errors.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
            if unexpected:
                errors.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
        updates: list[tuple[Tensor, np.ndarray]] = []
        for key, target in own.items():
            if key not in state_dict:
                continue
            raw = state_dict[key]
            value = raw.data if isinstance(raw, Tensor) else raw if hasattr(raw, "shape") else np.asarray(raw)
            if value.shape != target.data.shape:
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {value.shape} from checkpoint, "
                    f"the shape in current model is {target.data.shape}."
                )
            elif value.dtype.kind not in "biuf" or not np.can_cast(value.dtype, target.data.dtype, "same_kind"):
                errors.append(
                    f"dtype mismatch for {key}: cannot convert {value.dtype} from checkpoint to "
                    f"{target.data.dtype} in current model."
                )
            else:
                updates.append((target, value))
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t" + "\n\t".join(errors))
        for target, value in updates:
            value = to_device(value, device_of(target.data))  # a checkpoint's host arrays go to the model's device
            if getattr(target.data.flags, "writeable", True):
                target.data[...] = value
            else:
                target.data = value.astype(target.data.dtype, copy=True)
        return IncompatibleKeys(missing, unexpected)

    # -- printing ---------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside this module's parentheses (its configuration); override it in layers."""
        return ""

    def _child_lines(self) -> list[str]:
        lines = []
        for name, module in self._modules.items():
            lines.append(f"({name}): " + _addindent(repr(module), 2))
        return lines

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = self._child_lines()
        lines = extra_lines + child_lines
        if not lines:
            return f"{type(self).__name__}()"
        if len(extra_lines) == 1 and not child_lines:
            return f"{type(self).__name__}({extra})"
        return type(self).__name__ + "(\n  " + "\n  ".join(lines) + "\n)"
