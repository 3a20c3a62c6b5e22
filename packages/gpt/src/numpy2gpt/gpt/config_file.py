"""nanoGPT's habits for the ``numpy2gpt`` command: ``--max_iters=100`` flags and ``config/*.py`` files.

- :func:`normalize_argv` rewrites nanoGPT-style flags into this CLI's: ``--max_iters=100`` -> ``--max-iters=100``,
  ``--bias=False`` -> ``--no-bias``, and drops the settings that do not apply here (``--device=cpu``,
  ``--compile=False``, ...) with one line saying why (:data:`IGNORED`).
- :func:`read_config_file` reads a configuration file: TOML, or a nanoGPT-style ``.py`` file of plain
  ``name = value`` assignments, which is *parsed* with :mod:`ast`, never executed (numbers, strings, booleans and
  arithmetic on numbers such as ``5 * 8`` are allowed; anything else is an error naming the line).
- :func:`check_settings` turns ``{name: value}`` into ``TrainConfig`` fields: types checked, ignored keys
  announced, unknown keys an error naming them.
"""

from __future__ import annotations

import ast
import dataclasses
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["IGNORED", "check_settings", "normalize_argv", "read_config_file", "read_python_config"]

# nanoGPT settings that have no meaning here, and why. A key that is a TrainConfig field is used as a field instead
# (fields are looked up first): ``device`` is one (``--device cuda`` trains on a GPU with CuPy).
IGNORED: dict[str, str] = {
    "compile": "there is no torch.compile: NumPy runs each operation as it comes",
    "dtype": "numpy2gpt computes in float32 (no autocast / mixed precision on a CPU)",
    "backend": "torch.distributed's backend; data-parallel numpy2gpt runs use MPI (mpiexec)",
    "wandb_log": "no Weights & Biases logging: the metrics go to OUT_DIR/metrics.jsonl (and loss.png)",
    "wandb_project": "no Weights & Biases logging: the metrics go to OUT_DIR/metrics.jsonl (and loss.png)",
    "wandb_run_name": "no Weights & Biases logging: the metrics go to OUT_DIR/metrics.jsonl (and loss.png)",
}
ACCEPTED_VALUES: dict[str, tuple[str, ...]] = {}  # values that mean what numpy2gpt does anyway (no "no effect" note)

_FIELD_TYPES = {"int": int, "float": float, "str": str, "bool": bool}
_OPTION = re.compile(r"--([A-Za-z][A-Za-z0-9_-]*)(=.*)?", re.DOTALL)


def _note_ignored(name: str, value: Any, say: Callable[[str], None]) -> None:
    shown = "" if value is None else f"={value}"
    fine = value is None or str(value).strip("'\"") in ACCEPTED_VALUES.get(name, ())
    extra = "" if fine else " (the setting has no effect)"
    say(f"numpy2gpt: ignoring {name}{shown}: {IGNORED[name]}{extra}")


def normalize_argv(
    argv: Sequence[str],
    known_flags: Iterable[str],
    bool_flags: Iterable[str] = (),
    say: Callable[[str], None] = print,
) -> list[str]:
    """nanoGPT-style command-line settings rewritten into this CLI's flags.

    Only long options are touched, and only when the rewritten name is one of ``known_flags`` (``--max-iters``) or an
    :data:`IGNORED` setting, so values (a ``--prompt``) pass unchanged. ``--name=True``/``--name=False`` of a
    boolean flag (one of ``bool_flags``) becomes ``--name``/``--no-name``. Ignored settings are removed, with their
    value (``--device cpu`` or ``--device=cpu``), after one line through ``say``. Everything after ``--`` is kept.
    """
    known, bools = set(known_flags), set(bool_flags)
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if token == "--":
            out.extend(argv[i - 1 :])
            break
        m = _OPTION.fullmatch(token)
        if m is None:
            out.append(token)
            continue
        name, value = m.group(1), m.group(2)
        flag = "--" + name.replace("_", "-")
        key = name.replace("-", "_")
        if flag not in known and key in IGNORED:
            if value is None and key not in ("compile", "wandb_log") and i < len(argv) and not argv[i].startswith("-"):
                value = "=" + argv[i]  # `--device cpu`: the value is the next word
                i += 1
            _note_ignored(key, None if value is None else value[1:], say)
            continue
        if flag not in known:
            out.append(token)  # argparse names it if it is wrong
            continue
        if flag in bools and value is not None and value[1:] in ("True", "False", "true", "false", "1", "0"):
            out.append(flag if value[1:] in ("True", "true", "1") else "--no-" + flag[2:])
            continue
        out.append(flag + (value or ""))
    return out


# ----------------------------------------------------------------------------------------------------------------
# configuration files

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _literal(node: ast.expr) -> Any:
    """The value of a constant expression: a literal, or +, -, *, /, //, %, ** on numbers (``5 * 8``, ``6e-4 / 10``).

    Raises ValueError for anything else (names, calls, attribute access, ...)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        operand = _literal(node.operand)
        if isinstance(operand, (int, float)) and not isinstance(operand, bool):
            return _UNARY[type(node.op)](operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _literal(node.left), _literal(node.right)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right))
        if numbers and not (isinstance(node.op, ast.Pow) and abs(right) > 64):
            return _BINARY[type(node.op)](left, right)
    raise ValueError("not a constant")


def read_python_config(path: str | Path) -> dict[str, Any]:
    """The ``name = value`` assignments of a nanoGPT-style ``config/*.py`` file, parsed, never executed.

    Comments, blank lines and string statements (a docstring) are allowed; every other statement, or a value that
    is not a constant (see :func:`_literal`), is a ``ValueError`` naming the file, the line and its text."""
    path = Path(path)
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as e:
        raise ValueError(f"config file {path}, line {e.lineno}: not valid Python ({e.msg})") from None
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue  # a docstring or a string used as a comment
        target = value = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        text = lines[node.lineno - 1].strip() if node.lineno <= len(lines) else ""
        if target is None:
            raise ValueError(
                f"config file {path}, line {node.lineno}: `{text}` is not a plain `name = value` assignment "
                "(the file is read, not run: no imports, loops or function calls)"
            )
        try:
            out[target] = _literal(value)
        except ValueError:
            raise ValueError(
                f"config file {path}, line {node.lineno}: the value of {target} is not a constant (`{text}`); "
                "use a number, a string, True/False, or arithmetic on numbers"
            ) from None
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    with path.open("rb") as f:
        try:
            raw = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"config file {path} is not valid TOML: {e}") from None
    return raw["train"] if isinstance(raw.get("train"), dict) else raw


def read_config_file(
    path: str | Path, fields: Sequence[dataclasses.Field], say: Callable[[str], None] = print
) -> dict[str, Any]:
    """The settings of a config file (``.py``: nanoGPT style; anything else: TOML, top level or a ``[train]``
    table), checked against ``fields`` by :func:`check_settings`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    raw = read_python_config(path) if path.suffix == ".py" else _read_toml(path)
    return check_settings(raw, fields, str(path), say)


def _field_type(f: dataclasses.Field) -> type:
    return _FIELD_TYPES[f.type if isinstance(f.type, str) else f.type.__name__]


def check_settings(
    raw: dict[str, Any], fields: Sequence[dataclasses.Field], source: str, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """``{name: value}`` (names with dashes or underscores) -> ``{field: value}`` for the dataclass ``fields``.

    Each value must have its field's type (an int is accepted for a float); an :data:`IGNORED` key is dropped after
    one line through ``say``; unknown keys are a ``ValueError`` naming all of them and ``source``."""
    by_name = {f.name: f for f in fields}
    out: dict[str, Any] = {}
    unknown = []
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name not in by_name:
            if name in IGNORED:
                _note_ignored(name, value, say)
            else:
                unknown.append(key)
            continue
        kind = _field_type(by_name[name])
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise ValueError(f"{source}: {key} must be of type {kind.__name__}, got {value!r}")
        out[name] = value
    if unknown:
        raise ValueError(
            f"{source}: unknown setting(s) {', '.join(sorted(unknown))} (`numpy2gpt train --help` lists the settings)"
        )
    return out
