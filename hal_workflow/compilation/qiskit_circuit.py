"""Build a Qiskit ``QuantumCircuit`` from a lowered circuit (our IR), not from its text.

Why not ``qiskit.qasm3.loads``: Qiskit's importer rejects ``const`` declarations, which every
circuit bound with ``Circuit.bind`` contains (and many hand-written programs do), and it is a
second parser whose idea of the language can differ from ours. The lowered IR has constants
folded, loops unrolled and custom gates inlined, and names only standard gates whose matrices
are Qiskit's, so the translation is direct:

- gates map to Qiskit's standard gate classes (``U`` -> ``UGate``, ``gphase`` ->
  ``GlobalPhaseGate``); modifiers become ``inverse()``, ``power()`` and ``control()``;
- free ``input`` parameters become ``Parameter`` objects and their expressions
  ``ParameterExpression`` s;
- registers keep their names where they tile the qubits/bits in order; ``if`` blocks become
  ``if_test`` blocks over the condition's bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Gate, Parameter, ParameterExpression
from qiskit.circuit.classical import expr
from qiskit.circuit.library import GlobalPhaseGate, get_standard_gate_name_mapping

from hal_workflow.circuits.ir import (
    BarrierOp,
    Condition,
    Expr,
    GateOp,
    IfOp,
    LoweredCircuit,
    MeasureOp,
    Modifier,
    Operation,
    Param,
    ResetOp,
)
from hal_workflow.contract.errors import CircuitError

__all__ = ["lowered_to_qiskit"]

_ALIASES = {"U": "u", "CX": "cx", "phase": "p", "cphase": "cp"}


def _symbolic(name: str, method: str | None, numeric: Callable[..., float]) -> Callable[..., Any]:
    """A function of the OpenQASM standard library that also takes ParameterExpressions."""

    def function(*args: Any) -> Any:
        if not any(isinstance(a, ParameterExpression) for a in args):
            return numeric(*args)
        if method is None:
            raise CircuitError(f"'{name}' of an input parameter cannot be expressed in Qiskit; "
                               "bind the parameter first")
        return getattr(args[0], method)()

    return function


_NAMESPACE: dict[str, Any] = {
    "__builtins__": {},
    "pi": math.pi, "π": math.pi, "tau": math.tau, "τ": math.tau, "euler": math.e, "ℇ": math.e,
    "sin": _symbolic("sin", "sin", math.sin),
    "cos": _symbolic("cos", "cos", math.cos),
    "tan": _symbolic("tan", "tan", math.tan),
    "arcsin": _symbolic("arcsin", "arcsin", math.asin),
    "arccos": _symbolic("arccos", "arccos", math.acos),
    "arctan": _symbolic("arctan", "arctan", math.atan),
    "exp": _symbolic("exp", "exp", math.exp),
    "log": _symbolic("log", "log", math.log),
    "abs": _symbolic("abs", "abs", abs),
    "sqrt": lambda x: x**0.5 if isinstance(x, ParameterExpression) else math.sqrt(x),
    "mod": _symbolic("mod", None, math.fmod),
    "floor": _symbolic("floor", None, math.floor),
    "ceiling": _symbolic("ceiling", None, math.ceil),
}  # fmt: skip


class _Builder:
    def __init__(self, lowered: LoweredCircuit) -> None:
        self.qc = QuantumCircuit(
            *_registers(QuantumRegister, "q", lowered.num_qubits, lowered.qubit_registers),
            *_registers(ClassicalRegister, "c", lowered.num_clbits, lowered.clbit_registers),
        )
        self.parameters = {name: Parameter(name) for name in lowered.parameters}
        self.standard = get_standard_gate_name_mapping()

    def value(self, param: Param) -> float | ParameterExpression:
        if isinstance(param, Expr):
            return eval(param.source, _NAMESPACE, dict(self.parameters))
        return float(param)

    def gate(self, op: GateOp) -> Gate:
        params = [self.value(p) for p in op.params]
        if op.name == "gphase":
            gate: Gate = GlobalPhaseGate(*params)
        else:
            template = self.standard.get(_ALIASES.get(op.name, op.name))
            if template is None:
                raise CircuitError(f"gate '{op.name}' has no Qiskit equivalent", line=op.line)
            gate = type(template)(*params)
        for modifier in reversed(op.modifiers):  # innermost first
            gate = _modified(gate, modifier, op.line)
        return gate

    def condition(self, condition: Condition) -> Any:
        clbits = [self.qc.clbits[i] for i in condition.clbits]
        if len(clbits) == 1:
            return (clbits[0], condition.value)
        # value_of(bits) == value, bit by bit: b0 && !b1 && ...
        terms = [bit if (condition.value >> k) & 1 else expr.logic_not(bit)
                 for k, bit in enumerate(clbits)]
        combined = terms[0]
        for term in terms[1:]:
            combined = expr.logic_and(combined, term)
        return combined

    def emit(self, operations: Sequence[Operation]) -> None:
        qc = self.qc
        for op in operations:
            if isinstance(op, GateOp) and op.name == "gphase" and not op.modifiers:
                qc.global_phase += self.value(op.params[0])  # exported as gphase(...)
            elif isinstance(op, GateOp):
                qc.append(self.gate(op), [qc.qubits[q] for q in op.qubits])
            elif isinstance(op, MeasureOp):
                qc.measure(op.qubit, op.clbit)
            elif isinstance(op, ResetOp):
                qc.reset(op.qubit)
            elif isinstance(op, BarrierOp):
                qc.barrier(*op.qubits)
            elif isinstance(op, IfOp):
                with qc.if_test(self.condition(op.condition)) as otherwise:
                    self.emit(op.body)
                if op.else_body:
                    with otherwise:
                        self.emit(op.else_body)
            else:  # pragma: no cover - the IR has no other operations
                raise CircuitError(f"unexpected operation {op!r}")


def _modified(gate: Gate, modifier: Modifier, line: int | None) -> Gate:
    if modifier.kind == "inv":
        return gate.inverse()
    if modifier.kind == "pow":
        if isinstance(modifier.argument, Expr):
            raise CircuitError("pow @ with an input parameter cannot be expressed in Qiskit; "
                               "bind the parameter first", line=line)
        return gate.power(float(modifier.argument))
    count = int(modifier.argument)  # type: ignore[arg-type]
    state = None if modifier.kind == "ctrl" else "0" * count
    return gate.control(count, ctrl_state=state)


def _registers(kind: Any, default: str, size: int,
               declared: Sequence[tuple[str, int, int]]) -> list[Any]:
    """The declared registers when they tile ``range(size)`` in order, else one register."""
    position = 0
    for _, start, length in declared:
        if start != position:
            break
        position += length
    else:
        if position == size and declared:
            return [kind(length, name) for name, _, length in declared]
    return [kind(size, default)] if size else []


def lowered_to_qiskit(lowered: LoweredCircuit, name: str | None = None) -> QuantumCircuit:
    """A ``QuantumCircuit`` equal to ``lowered`` (qubit and clbit indices kept)."""
    builder = _Builder(lowered)
    builder.emit(lowered.operations)
    if name:
        builder.qc.name = name
    return builder.qc
