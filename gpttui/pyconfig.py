"""nanoGPT `config/*.py` files read by a safe evaluator of constant expressions (never run).

nanoGPT's configurator `exec`s these files. gpttui parses them with `ast` and evaluates
only what needs no code: numbers, strings, True/False/None, arithmetic (`5 * 8`,
`6e-4 / 10`), string concatenation, unary minus, tuples and lists of those, and names of
keys already assigned earlier in the same file (`lr_decay_iters = max_iters`). Anything
else (a call such as `str(time.time())`, an attribute, an import, an `if`) is skipped with a
warning that names the key and line; it is never executed. Imports and docstrings are
skipped silently: they set nothing.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpttui.errors import ConfigError

_MAX_STR = 10_000  # 'x' * 10**9 must not eat the memory
_MAX_POW = 1_000  # exponents beyond this are no config value

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}


class NeedsCode(Exception):
    """The expression cannot be evaluated without running code; the message says why."""


@dataclass(frozen=True)
class Skipped:
    line: int
    key: str | None  # None for a statement that assigns nothing we could name
    why: str

    def text(self, path: Path) -> str:
        what = f"'{self.key}'" if self.key else "a statement"
        return f"{path}:{self.line}: {what} skipped: {self.why} (config files are never executed)"


def _number_or_str(v: Any) -> bool:
    return isinstance(v, (int, float, str, bool)) or v is None


def evaluate(node: ast.AST, known: dict[str, Any]) -> Any:
    """The value of a constant expression, or NeedsCode."""
    if isinstance(node, ast.Constant):
        if not _number_or_str(node.value):
            raise NeedsCode(f"a {type(node.value).__name__} constant")
        return node.value
    if isinstance(node, ast.Name):
        if node.id in known:
            return known[node.id]
        raise NeedsCode(f"uses '{node.id}', which is not a key assigned above")
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [evaluate(e, known) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        v = evaluate(node.operand, known)
        if isinstance(v, str) and not isinstance(node.op, ast.Not):
            raise NeedsCode("a sign on a string")
        return _UNARY[type(node.op)](v)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _binop(node.op, evaluate(node.left, known), evaluate(node.right, known))
    raise NeedsCode(_describe(node))


def _binop(op: ast.operator, a: Any, b: Any) -> Any:
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        raise NeedsCode("arithmetic on a tuple or list")
    if isinstance(op, ast.Pow) and (isinstance(a, str) or isinstance(b, str) or abs(b) > _MAX_POW):
        raise NeedsCode("a power too large for a config value")
    if isinstance(op, ast.Mult) and (isinstance(a, str) or isinstance(b, str)):
        n = b if isinstance(a, str) else a
        s = a if isinstance(a, str) else b
        if not isinstance(n, int) or isinstance(n, bool) or len(s) * max(n, 0) > _MAX_STR:
            raise NeedsCode("a string repeated too often")
    try:
        return _BINOPS[type(op)](a, b)
    except (TypeError, ZeroDivisionError, OverflowError) as e:
        raise NeedsCode(f"an operation Python refuses ({e})") from None


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        func = node.func
        name = ast.unparse(func) if hasattr(ast, "unparse") else type(func).__name__
        return f"calls {name}()"
    if isinstance(node, ast.Attribute):
        return f"reads the attribute {ast.unparse(node)}"
    return f"a {type(node).__name__} expression"


def _statement(node: ast.stmt, values: dict[str, Any], skipped: list[Skipped]) -> None:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        key, expr = node.targets[0].id, node.value
    elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
        key, expr = node.target.id, node.value
    elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
        key = node.target.id
        expr = ast.BinOp(left=ast.Name(id=key, ctx=ast.Load()), op=node.op, right=node.value)
    else:
        names = sorted({t.id for n in ast.walk(node) if isinstance(n, ast.Assign) for t in n.targets
                        if isinstance(t, ast.Name)})
        why = f"a {type(node).__name__} statement" + (f" (assigning {', '.join(names)})" if names else "")
        skipped.append(Skipped(node.lineno, None, why))
        return
    try:
        values[key] = evaluate(expr, values)
    except NeedsCode as e:
        values.pop(key, None)  # a later line must not build on a value we could not compute
        skipped.append(Skipped(node.lineno, key, f"needs code ({e})"))


def read(path: Path) -> tuple[dict[str, Any], list[Skipped]]:
    """The settings a nanoGPT config file assigns, and the lines skipped (with why)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file", "check the path") from None
    except (SyntaxError, ValueError) as e:
        line = getattr(e, "lineno", None)
        raise ConfigError(f"{path}{f':{line}' if line else ''}: not valid Python ({getattr(e, 'msg', e)})",
                          "fix that line") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file", "save it as UTF-8") from None
    values: dict[str, Any] = {}
    skipped: list[Skipped] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)) or (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        ):
            continue  # imports and docstrings carry no settings
        _statement(node, values, skipped)
    return values, skipped
