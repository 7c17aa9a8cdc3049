"""Classical OpenQASM expressions: folded to numbers, or built into safe symbolic sources.

An expression made only of literals, constants and loop variables folds to a Python number.
One that depends on an ``input`` parameter becomes a :class:`Sym`, whose ``source`` is a Python
expression assembled here node by node from the AST (numbers, parameter names, ``+ - * / **``,
``mod`` and the OpenQASM math functions), so user text is never evaluated. The source uses
the names that :data:`hal_workflow.circuits.ir._MATH_NAMESPACE` provides, and folding uses the
same functions (``%`` is ``math.fmod``), so a bound parameter gives the same float whether the
expression is folded while lowering or evaluated later.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from openqasm3 import ast


@dataclass(frozen=True, slots=True)
class Sym:
    """A real expression over free parameters (see the module docstring)."""

    source: str
    free: frozenset[str]


Value = int | float | bool | Sym
Resolver = Callable[[ast.Identifier], Value]
Failer = Callable[[Any, str], NoReturn]

CONSTANTS: dict[str, float] = {
    "pi": math.pi, "π": math.pi, "tau": math.tau, "τ": math.tau, "euler": math.e, "ℇ": math.e,
}


def _fmod(a: float, b: float) -> float:
    return math.fmod(a, b)


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "**": operator.pow, "%": _fmod,
}
_COMPARISON: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt,
    "<=": operator.le, ">=": operator.ge,
    "&&": lambda a, b: bool(a) and bool(b), "||": lambda a, b: bool(a) or bool(b),
}
_BITWISE: dict[str, Callable[[Any, Any], Any]] = {
    "&": operator.and_, "|": operator.or_, "^": operator.xor,
    "<<": operator.lshift, ">>": operator.rshift,
}
# OpenQASM function -> (arity, folding function); the symbolic form calls the same name.
# (``pow`` is a keyword of the grammar, never a function call.)
_FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "sin": (1, math.sin), "cos": (1, math.cos), "tan": (1, math.tan),
    "arcsin": (1, math.asin), "arccos": (1, math.acos), "arctan": (1, math.atan),
    "exp": (1, math.exp), "log": (1, math.log), "sqrt": (1, math.sqrt),
    "floor": (1, math.floor), "ceiling": (1, math.ceil), "mod": (2, _fmod),
}


def number_source(value: int | float | bool) -> str:
    """A Python literal for ``value``, parenthesised when negative."""
    if isinstance(value, bool):
        return "1" if value else "0"
    text = repr(value) if isinstance(value, int) else repr(float(value))
    return f"({text})" if text.startswith("-") else text


def source_of(value: Value) -> str:
    return value.source if isinstance(value, Sym) else number_source(value)


def _free(*values: Value) -> frozenset[str]:
    return frozenset().union(*(v.free for v in values if isinstance(v, Sym)))


class Evaluator:
    """Evaluates expression nodes; ``resolve`` gives identifiers their values and ``fail``
    raises a positioned error for a node."""

    def __init__(self, resolve: Resolver, fail: Failer) -> None:
        self._resolve = resolve
        self._fail = fail

    # -- entry points --------------------------------------------------------------------

    def value(self, node: Any) -> Value:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            self._fail(node, f"unsupported expression ({_describe(node)})")
        return method(node)  # type: ignore[no-any-return]

    def number(self, node: Any, what: str) -> int | float:
        """A value that must be known while lowering (sizes, indices, loop bounds...)."""
        value = self.value(node)
        if isinstance(value, Sym):
            names = ", ".join(sorted(value.free))
            self._fail(node, f"unbound free parameter(s) {names} where a number is needed ({what})")
        return value

    def integer(self, node: Any, what: str) -> int:
        value = self.number(node, what)
        if isinstance(value, float):
            if not value.is_integer():
                self._fail(node, f"{what} must be an integer, got {value!r}")
            return int(value)
        return int(value)

    # -- literals and names --------------------------------------------------------------

    def _IntegerLiteral(self, node: ast.IntegerLiteral) -> Value:
        return node.value

    def _FloatLiteral(self, node: ast.FloatLiteral) -> Value:
        return node.value

    def _BooleanLiteral(self, node: ast.BooleanLiteral) -> Value:
        return node.value

    def _BitstringLiteral(self, node: ast.BitstringLiteral) -> Value:
        return node.value

    def _ImaginaryLiteral(self, node: ast.ImaginaryLiteral) -> Value:
        self._fail(node, "complex numbers are not supported")

    def _DurationLiteral(self, node: ast.DurationLiteral) -> Value:
        self._fail(node, "unsupported construct: durations (timing)")

    def _Identifier(self, node: ast.Identifier) -> Value:
        constant = CONSTANTS.get(node.name)
        return constant if constant is not None else self._resolve(node)

    # -- operators -----------------------------------------------------------------------

    def _UnaryExpression(self, node: ast.UnaryExpression) -> Value:
        operand = self.value(node.expression)
        op = node.op.name
        if op == "-":
            return Sym(f"(-{operand.source})", operand.free) if isinstance(operand, Sym) \
                else -operand
        if isinstance(operand, Sym):
            self._fail(node, f"operator '{op}' cannot be applied to input parameters")
        if op == "!":
            return not operand
        if isinstance(operand, float):
            self._fail(node, "operator '~' needs an integer")
        return ~int(operand)

    def _BinaryExpression(self, node: ast.BinaryExpression) -> Value:
        lhs, rhs = self.value(node.lhs), self.value(node.rhs)
        op = node.op.name
        if isinstance(lhs, Sym) or isinstance(rhs, Sym):
            if op not in _ARITHMETIC:
                self._fail(node, f"operator '{op}' cannot be applied to input parameters")
            if op == "%":
                return Sym(f"mod({source_of(lhs)}, {source_of(rhs)})", _free(lhs, rhs))
            return Sym(f"({source_of(lhs)} {op} {source_of(rhs)})", _free(lhs, rhs))
        if op in _BITWISE:
            if isinstance(lhs, float) or isinstance(rhs, float):
                self._fail(node, f"operator '{op}' needs integers")
            return self._fold(node, _BITWISE[op], lhs, rhs)
        if op == "%" and isinstance(lhs, int) and isinstance(rhs, int) and rhs != 0:
            return int(math.fmod(lhs, rhs))
        function = _ARITHMETIC.get(op) or _COMPARISON.get(op)
        if function is None:  # pragma: no cover - every BinaryOperator is listed above
            self._fail(node, f"unsupported operator '{op}'")
        return self._fold(node, function, lhs, rhs)

    def _FunctionCall(self, node: ast.FunctionCall) -> Value:
        name = node.name.name
        entry = _FUNCTIONS.get(name)
        if entry is None:
            self._fail(node, f"unknown function '{name}'")
        arity, function = entry
        if len(node.arguments) != arity:
            self._fail(node, f"function '{name}' takes {arity} argument(s), "
                             f"got {len(node.arguments)}")
        args = [self.value(argument) for argument in node.arguments]
        if any(isinstance(arg, Sym) for arg in args):
            return Sym(f"{name}({', '.join(source_of(arg) for arg in args)})", _free(*args))
        return self._fold(node, function, *args)

    def _Cast(self, node: ast.Cast) -> Value:
        value = self.value(node.argument)
        target = type(node.type).__name__
        if target in ("FloatType", "AngleType"):
            return value if isinstance(value, Sym) else float(value)
        if isinstance(value, Sym):
            self._fail(node, f"cannot cast input parameters to {_type_name(node.type)}")
        if target in ("IntType", "UintType"):
            return int(value)
        if target in ("BoolType", "BitType"):
            return bool(value)
        self._fail(node, f"unsupported cast to {_type_name(node.type)}")

    def _fold(self, node: Any, function: Callable[..., Any], *args: Any) -> Value:
        try:
            result = function(*args)
        except ZeroDivisionError:
            self._fail(node, "division by zero")
        except OverflowError:
            self._fail(node, "cannot evaluate expression: number too large")
        except ValueError as exc:
            self._fail(node, f"cannot evaluate expression: {exc}")
        if isinstance(result, complex):
            self._fail(node, "expression has no real value")
        return result  # type: ignore[no-any-return]


def _type_name(node: Any) -> str:
    return type(node).__name__.removesuffix("Type").lower()


def _describe(node: Any) -> str:
    names = {
        "IndexExpression": "indexing a classical value",
        "SizeOf": "sizeof",
        "DurationOf": "durationof",
        "Concatenation": "concatenation",
        "ArrayLiteral": "array literal",
        "QuantumMeasurement": "measure used as a value",
        "RangeDefinition": "range",
        "DiscreteSet": "set",
    }
    return names.get(type(node).__name__, type(node).__name__)
