"""Arithmetic over measurements: ``evaluate``, which reads an expression of numbers, named
measurements, arithmetic, comparisons and a few functions and nothing else, within bounds
that no claim file can make it exceed; the ``expression`` statistic over other measure
tables, and ``as_list``.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

from claims.measure_registry import MeasureError, measure, statistic

_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
              ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
              ast.USub: operator.neg, ast.Lt: operator.lt,
              ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
              ast.Eq: operator.eq}


def _round(x: Any, digits: Any = None) -> Any:
    if digits is not None and not (isinstance(digits, int) and abs(digits) <= _MAX_DIGITS):
        raise MeasureError(f"round: digits must be an integer within ±{_MAX_DIGITS}, got {digits!r}")
    return round(x) if digits is None else round(x, digits)


_FUNCTIONS = {"min": min, "max": max, "abs": abs, "round": _round, "int": int, "len": len}
#: Bounds on what one expression may do, so that no claim file can hang or crash the report.
_MAX_LENGTH, _MAX_DEPTH, _MAX_DIGITS, _MAX_MAGNITUDE, _MAX_REFERENCE_DEPTH = 1000, 40, 30, 1e30, 20
_reference_depth = 0


def evaluate(expr: str, names: dict[str, Any]) -> Any:
    """Arithmetic and comparisons over numbers and named measurements; nothing else."""
    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](ev(node.operand))
        if isinstance(node, ast.Compare) and all(type(o) in _OPERATORS for o in node.ops):
            left, ok = ev(node.left), True
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = ev(right_node)
                ok = ok and _OPERATORS[type(op)](left, right)
                left = right
            return ok
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            return all(ev(v) for v in node.values)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in _FUNCTIONS and not node.keywords):
            return _FUNCTIONS[node.func.id](*(ev(a) for a in node.args))
        raise MeasureError(f"expression {expr!r}: {ast.dump(node)[:60]} is not allowed "
                           f"(numbers, names {sorted(names)}, + - * / // %, comparisons, "
                           f"{', '.join(_FUNCTIONS)})")
    if not isinstance(expr, str) or len(expr) > _MAX_LENGTH:
        raise MeasureError(f"expression must be a string of at most {_MAX_LENGTH} characters")
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise MeasureError(f"expression {expr!r} is not valid: {getattr(error, 'msg', error)}") from None
    depth = _depth(tree)
    if depth > _MAX_DEPTH:
        raise MeasureError(f"expression {expr[:60]!r} nests {depth} deep; at most {_MAX_DEPTH}")
    try:
        value = ev(tree)
    except (ArithmeticError, ValueError, TypeError) as error:  # 1/0, int(1e999), a list plus a number
        if isinstance(error, MeasureError):
            raise
        raise MeasureError(f"expression {expr!r}: {type(error).__name__}: {error}") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) > _MAX_MAGNITUDE:
        raise MeasureError(f"expression {expr!r} gives {value:.3g}, beyond ±{_MAX_MAGNITUDE:g}")
    return value


def _depth(node: ast.AST) -> int:
    children = list(ast.iter_child_nodes(node))
    return 1 + max((_depth(c) for c in children), default=0) if len(children) < 10_000 else _MAX_DEPTH + 1


@statistic("expression")
def expression(spec: dict[str, Any]) -> Any:
    """``expr`` over constants and ``refs``, each ref itself a measure table."""
    if _reference_depth >= _MAX_REFERENCE_DEPTH:
        raise MeasureError(f"references nested deeper than {_MAX_REFERENCE_DEPTH}")
    refs = spec.get("refs", {})
    if not isinstance(refs, dict):
        raise MeasureError(f"refs must be a table of name = measure table, got {refs!r}")
    return evaluate(spec["expr"], inputs(spec))


def inputs(spec: dict[str, Any]) -> dict[str, Any]:
    """The named measurements an ``expression`` table computes over, measured now: what a reason
    shows beside the result, so that its arithmetic is read from the models, not written down."""
    global _reference_depth
    _reference_depth += 1
    try:
        return {name: measure(ref if isinstance(ref, dict) else {"statistic": None})
                for name, ref in spec.get("refs", {}).items()}
    finally:
        _reference_depth -= 1


@statistic("as_list")
def as_list(spec: dict[str, Any]) -> list[Any]:
    """The measure ``of`` as a one-item list: a claimed string (a loss, an optimizer) is a list."""
    return [measure(spec["of"])]
