"""Fixing ``input`` parameters: in the OpenQASM text and, without re-parsing, in the IR.

A bound circuit's text is its template's text with each bound ``input`` declaration rewritten
as a ``const`` of the same type. Its lowering is the template's lowering with the parameters
substituted, which gives the same floats as lowering the new text (the expression sources
fold with the same functions), at a fraction of the cost of running the ANTLR parser again:
parameter sweeps bind thousands of times.
"""

from __future__ import annotations

import ast as pyast
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from hal_workflow.circuits.ir import Expr, GateOp, IfOp, LoweredCircuit, Operation, Param

if TYPE_CHECKING:
    from hal_workflow.circuits.lowering import InputDeclaration

_INPUT = re.compile(r"^input\s+(.*?)\s*;$", re.DOTALL)


def literal(value: float, integer: bool) -> str:
    """An OpenQASM literal for a bound value."""
    return str(int(value)) if integer else repr(float(value))


def bound_text(text: str, inputs: Sequence[InputDeclaration], values: Mapping[str, float]) -> str:
    """``text`` with the declarations of the inputs in ``values`` turned into constants."""
    pieces: list[str] = []
    cursor = 0
    for declaration in sorted(inputs, key=lambda d: d.start):
        if declaration.name not in values:
            continue
        statement = text[declaration.start:declaration.end]
        match = _INPUT.match(statement)
        declared = match[1] if match else f"float[64] {declaration.name}"
        value = literal(values[declaration.name], declaration.integer)
        pieces += [text[cursor:declaration.start], f"const {declared} = {value};"]
        cursor = declaration.end
    pieces.append(text[cursor:])
    return "".join(pieces)


def bind_lowered(circuit: LoweredCircuit, values: Mapping[str, float]) -> LoweredCircuit:
    """``circuit`` with the parameters in ``values`` replaced by their values."""
    names = frozenset(values)
    if not names & set(circuit.parameters):
        return circuit
    cache: dict[int, Param] = {}

    def param(value: Param) -> Param:
        if not isinstance(value, Expr) or not value.free & names:
            return value
        key = id(value)
        if key not in cache:
            cache[key] = value.evaluate(values) if value.free <= names else _substitute(value,
                                                                                       values)
        return cache[key]

    def operation(op: Operation) -> Operation:
        if isinstance(op, GateOp):
            return replace(
                op,
                params=tuple(param(p) for p in op.params),
                modifiers=tuple(replace(m, argument=param(m.argument)) for m in op.modifiers),
            )
        if isinstance(op, IfOp):
            return replace(op, body=tuple(map(operation, op.body)),
                           else_body=tuple(map(operation, op.else_body)))
        return op

    return replace(
        circuit,
        operations=tuple(map(operation, circuit.operations)),
        parameters=tuple(name for name in circuit.parameters if name not in names),
    )


def _substitute(expr: Expr, values: Mapping[str, float]) -> Expr:
    """A partially bound expression: the bound names become numeric literals."""

    class Substitute(pyast.NodeTransformer):
        def visit_Name(self, node: pyast.Name) -> pyast.expr:
            if node.id not in values:
                return node
            value = float(values[node.id])
            constant = pyast.Constant(abs(value))
            if math.copysign(1.0, value) < 0:  # unparse would not parenthesise -x ** y
                return pyast.UnaryOp(pyast.USub(), constant)
            return constant

    tree = pyast.fix_missing_locations(Substitute().visit(pyast.parse(expr.source, mode="eval")))
    return Expr(pyast.unparse(tree), expr.free - frozenset(values))
