"""Containers: Sequential (a pipeline), ModuleList (an indexable list), ModuleDict (a named collection).

All three keep their children in ``_modules`` under string keys, so their parameters get names like
``h.0.attn.c_attn.weight`` (ModuleList/Sequential: the position) or ``transformer.wte.weight`` (ModuleDict:
the key), exactly as in PyTorch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, overload

from numpy2gpt.nn.module import Module, _addindent


def _index(idx: Any, size: int, kind: str) -> int:
    """A Python index (negative allowed) checked against ``size``."""
    try:
        i = int(idx.__index__())
    except AttributeError:
        raise TypeError(f"{kind} indices must be integers or slices, not {type(idx).__name__}") from None
    if not -size <= i < size:
        raise IndexError(f"index {i} is out of range for a {kind} of length {size}")
    return i % size


class _IndexedModules(Module):
    """What Sequential and ModuleList share: children stored under the keys "0", "1", ... in order."""

    def _renumber(self, modules: list[Module]) -> None:
        """Store ``modules`` under keys "0".."n-1" (after an insert or delete), keeping attributes in sync."""
        for key in list(self._modules):
            delattr(self, key)
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __setitem__(self, idx: int, module: Module) -> None:
        self.add_module(str(_index(idx, len(self), type(self).__name__)), module)

    def __delitem__(self, idx: int | slice) -> None:
        modules = list(self._modules.values())
        if isinstance(idx, slice):
            del modules[idx]
        else:
            del modules[_index(idx, len(modules), type(self).__name__)]
        self._renumber(modules)

    def append(self, module: Module) -> _IndexedModules:
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> _IndexedModules:
        """Append every module of ``modules``; returns self."""
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert ``module`` before position ``index`` (like list.insert)."""
        modules = list(self._modules.values())
        modules.insert(index, module)
        self._renumber(modules)

    def __iadd__(self, modules: Iterable[Module]) -> _IndexedModules:
        return self.extend(modules)


class Sequential(_IndexedModules):
    """Modules applied one after another: ``Sequential(a, b, c)(x) == c(b(a(x)))``.

    Also ``Sequential(OrderedDict(name=module, ...))`` to name the steps. Supports ``len``, iteration,
    ``seq[i]`` (a module), ``seq[i:j]`` (a Sequential of those steps), ``append``, ``extend`` and ``insert``.
    """

    def __init__(self, *modules: Module | Mapping[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(modules):
                self.add_module(str(i), module)  # type: ignore[arg-type]

    @overload
    def __getitem__(self, idx: int) -> Module: ...
    @overload
    def __getitem__(self, idx: slice) -> Sequential: ...

    def __getitem__(self, idx: int | slice) -> Module | Sequential:
        if isinstance(idx, slice):
            return Sequential(dict(list(self._modules.items())[idx]))
        return list(self._modules.values())[_index(idx, len(self), "Sequential")]

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x


class ModuleList(_IndexedModules):
    """A list of modules whose parameters belong to the owner (``self.h = ModuleList([Block() for ...])``).

    It has no forward: iterate over it. Supports ``len``, iteration, ``ml[i]``, ``ml[i:j]`` (a ModuleList),
    assignment and deletion by index, ``append``, ``extend``, ``insert`` and ``+=``.
    """

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    @overload
    def __getitem__(self, idx: int) -> Module: ...
    @overload
    def __getitem__(self, idx: slice) -> ModuleList: ...

    def __getitem__(self, idx: int | slice) -> Module | ModuleList:
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return self._modules[str(_index(idx, len(self), "ModuleList"))]  # type: ignore[return-value]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleList has no forward(); iterate over it: `for block in self.h: x = block(x)`")

    def _child_lines(self) -> list[str]:
        """Runs of identical children print once, as torch does: ``(0-11): 12 x Block(...)``."""
        reprs = [(name, repr(module)) for name, module in self._modules.items()]
        lines = []
        start = 0
        while start < len(reprs):
            end = start
            while end + 1 < len(reprs) and reprs[end + 1][1] == reprs[start][1]:
                end += 1
            text = _addindent(reprs[start][1], 2)
            if end == start:
                lines.append(f"({reprs[start][0]}): {text}")
            else:
                lines.append(f"({reprs[start][0]}-{reprs[end][0]}): {end - start + 1} x {text}")
            start = end + 1
        return lines


class ModuleDict(Module):
    """Named modules, in insertion order: ``self.transformer = ModuleDict(dict(wte=..., h=..., ln_f=...))``.

    Items are reachable as ``md["wte"]`` and as attributes ``md.wte``. Supports ``len``, iteration over keys,
    ``in``, ``keys()``, ``values()``, ``items()``, ``update()``, ``pop()`` and ``clear()``.
    """

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        try:
            return self._modules[key]  # type: ignore[return-value]
        except KeyError:
            raise KeyError(f"ModuleDict has no key {key!r}; keys are {list(self._modules)}") from None

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        if key not in self._modules:
            raise KeyError(f"ModuleDict has no key {key!r}")
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> Iterable[str]:
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        return self._modules.values()  # type: ignore[return-value]

    def items(self) -> Iterable[tuple[str, Module]]:
        return self._modules.items()  # type: ignore[return-value]

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add (or replace) entries from a mapping or from (key, module) pairs."""
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for key, module in pairs:
            self[key] = module

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        for key in list(self._modules):
            del self[key]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleDict has no forward(); call its entries: `self.transformer.wte(idx)`")
