"""OpenQASM 3 over ``stdgates.inc`` -> the OpenQASM 3 that Amazon Braket runs, and back.

Braket's simulators and devices take OpenQASM 3 but know their own gate names (``cnot``,
``phaseshift``, ``si``, ``v``...) and cannot read ``include "stdgates.inc";`` (the local
simulator opens it as a file). :func:`to_braket` therefore replaces the include, on its own
line so error positions stay put, with definitions of the standard gates the program uses in
Braket's terms; every other line goes through untouched, so ``input`` parameters, loops and
user gates keep working. The definitions equal Qiskit's matrices exactly, controlled versions
included (checked in ``tests/compilation``). :func:`from_braket` undoes it, which lets a task
read back from AWS be parsed again to learn its measurement map.

Braket reports measurements per measured *qubit*, not per classical bit, so
:func:`measurement_map` (from the lowered circuit) and :func:`counts_from_measurements` rebuild
counts in our order: all classical bits, bit 0 rightmost.

No Braket import here: this is text and numpy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from hal_workflow.circuits.ir import GateOp, IfOp, LoweredCircuit, MeasureOp, Operation, ResetOp
from hal_workflow.contract.types import ValidationCode, ValidationIssue

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit

__all__ = [
    "BRAKET_GATES",
    "braket_gate_set",
    "counts_from_bits",
    "counts_from_measurements",
    "from_braket",
    "measurement_map",
    "to_braket",
    "unsupported_features",
]

# Standard gate -> (its definition in Braket's gates, or None when Braket has the same gate
# under the same name; the Braket operations it needs). Matrices equal Qiskit's.
BRAKET_GATES: dict[str, tuple[str | None, frozenset[str]]] = {
    name: (None, frozenset({name}))
    for name in ("x", "y", "z", "h", "s", "t", "rx", "ry", "rz", "cy", "cz", "swap", "cswap")
}
BRAKET_GATES.update({
    "U": (None, frozenset({"U"})),
    "gphase": (None, frozenset({"gphase"})),
    "id": ("gate id a { i a; }", frozenset({"i"})),
    "p": ("gate p(l) a { phaseshift(l) a; }", frozenset({"phaseshift"})),
    "phase": ("gate phase(l) a { phaseshift(l) a; }", frozenset({"phaseshift"})),
    "u1": ("gate u1(l) a { phaseshift(l) a; }", frozenset({"phaseshift"})),
    "u2": ("gate u2(f, l) a { U(pi/2, f, l) a; }", frozenset({"U"})),
    "u3": ("gate u3(t, f, l) a { U(t, f, l) a; }", frozenset({"U"})),
    "sdg": ("gate sdg a { si a; }", frozenset({"si"})),
    "tdg": ("gate tdg a { ti a; }", frozenset({"ti"})),
    "sx": ("gate sx a { v a; }", frozenset({"v"})),
    "cx": ("gate cx a, b { cnot a, b; }", frozenset({"cnot"})),
    "CX": ("gate CX a, b { cnot a, b; }", frozenset({"cnot"})),
    "cp": ("gate cp(l) a, b { cphaseshift(l) a, b; }", frozenset({"cphaseshift"})),
    "cphase": ("gate cphase(l) a, b { cphaseshift(l) a, b; }", frozenset({"cphaseshift"})),
    "crx": ("gate crx(t) a, b { ctrl @ rx(t) a, b; }", frozenset({"rx", "ctrl"})),
    "cry": ("gate cry(t) a, b { ctrl @ ry(t) a, b; }", frozenset({"ry", "ctrl"})),
    "crz": ("gate crz(t) a, b { ctrl @ rz(t) a, b; }", frozenset({"rz", "ctrl"})),
    "ch": ("gate ch a, b { ctrl @ h a, b; }", frozenset({"h", "ctrl"})),
    "ccx": ("gate ccx a, b, c { ccnot a, b, c; }", frozenset({"ccnot"})),
    "cu": (
        "gate cu(t, f, l, g) a, b { phaseshift(g) a; ctrl @ U(t, f, l) a, b; }",
        frozenset({"phaseshift", "U", "ctrl"}),
    ),
})

_BEGIN, _END = "/* hal-workflow: stdgates.inc for Braket { */", "/* } */"
_TRANSLATED = re.compile(re.escape(_BEGIN) + r".*?" + re.escape(_END))
_STDGATES = "stdgates.inc"


def braket_gate_set(operations: Iterable[str], modifiers: Iterable[str] = ()) -> frozenset[str]:
    """The standard gates a Braket device can run, given its supported operations/modifiers.

    Braket lists operations in its own case (``U``, ``GPhase``, ``cnot``); names compare
    case-insensitively.
    """
    available = {op.lower() for op in operations} | {m.lower() for m in modifiers}
    return frozenset(
        name for name, (_, needs) in BRAKET_GATES.items()
        if {n.lower() for n in needs} <= available
    )


def _gate_names(program: object) -> set[str]:
    """Names of every gate called anywhere in an ``openqasm3`` AST (gate bodies included)."""
    from openqasm3.visitor import QASMVisitor

    names: set[str] = set()

    class Collector(QASMVisitor[None]):
        def visit_QuantumGate(self, node: object, context: None = None) -> None:
            names.add(node.name.name)  # type: ignore[attr-defined]
            self.generic_visit(node, context)  # type: ignore[arg-type]

    Collector().visit(program)  # type: ignore[arg-type]
    return names


def to_braket(circuit: Circuit) -> str:
    """The program text to hand to Braket: stdgates.inc replaced by Braket definitions."""
    from openqasm3 import ast

    from hal_workflow.circuits.parsing import parse

    text = circuit.qasm
    program = parse(text, circuit.source)
    includes = [s for s in program.statements
                if isinstance(s, ast.Include) and s.filename == _STDGATES]
    if not includes:
        return text
    used = _gate_names(program)
    definitions = [BRAKET_GATES[g][0] for g in sorted(used) if g in BRAKET_GATES]
    replacement = " ".join([_BEGIN, *(d for d in definitions if d), _END])
    lines = text.split("\n")  # ANTLR counts lines by "\n" alone
    for include in reversed(includes):  # later edits first: earlier spans stay valid
        span = include.span
        assert span is not None  # the parser records every statement's span
        new = replacement if include is includes[0] else ""  # one copy of the definitions
        line = lines[span.start_line - 1]
        lines[span.start_line - 1] = line[: span.start_column] + new + line[span.end_column + 1:]
    return "\n".join(lines)


def from_braket(source: str) -> str:
    """Undo :func:`to_braket`: the definitions become ``include "stdgates.inc";`` again."""
    return _TRANSLATED.sub(f'include "{_STDGATES}";', source)


def _operations(operations: Sequence[Operation]) -> Iterable[Operation]:
    for op in operations:
        yield op
        if isinstance(op, IfOp):
            yield from _operations(op.body)
            yield from _operations(op.else_body)


def unsupported_features(
    circuit: Circuit, gate_set: frozenset[str], modifiers: frozenset[str]
) -> list[ValidationIssue]:
    """What a Braket device cannot run through this translation: OpenQASM 2, gates outside
    ``gate_set``, modifiers outside ``modifiers``, classical control and operations on a
    qubit after its measurement."""
    issues = []
    if re.match(r"(?:\s|//[^\n]*\n|/\*.*?\*/)*OPENQASM\s+2\b", circuit.qasm, re.DOTALL):
        issues.append(ValidationIssue(
            ValidationCode.UNSUPPORTED_FEATURE,
            "Braket runs OpenQASM 3 only; this is an OpenQASM 2 program",
        ))
    lowered = circuit.lowered
    missing = sorted({op.name for op in _operations(lowered.operations)
                      if isinstance(op, GateOp) and op.name not in gate_set})
    if missing:
        issues.append(ValidationIssue(
            ValidationCode.GATE_NOT_SUPPORTED,
            f"gate(s) {', '.join(missing)} not supported by this Braket device",
        ))
    kinds = sorted({m.kind for op in _operations(lowered.operations) if isinstance(op, GateOp)
                    for m in op.modifiers} - modifiers)
    if kinds:
        issues.append(ValidationIssue(
            ValidationCode.UNSUPPORTED_FEATURE,
            f"gate modifier(s) {', '.join(kinds)} not supported by this Braket device",
        ))
    measured: dict[int, int | None] = {}
    for op in lowered.operations:
        if isinstance(op, IfOp):
            issues.append(ValidationIssue(
                ValidationCode.UNSUPPORTED_FEATURE,
                f"line {op.line}: classically controlled operations are not supported on Braket",
            ))
            break
        if isinstance(op, MeasureOp):
            measured.setdefault(op.qubit, op.line)
            continue
        qubits = op.qubits if isinstance(op, GateOp) else (op.qubit,) if isinstance(
            op, ResetOp) else ()
        again = [q for q in qubits if q in measured]
        if again:
            issues.append(ValidationIssue(
                ValidationCode.UNSUPPORTED_FEATURE,
                f"line {op.line}: qubit {again[0]} is used after its measurement on line "
                f"{measured[again[0]]}; Braket supports measurements at the end only",
            ))
            break
    return issues


def measurement_map(lowered: LoweredCircuit) -> tuple[int | None, ...]:
    """For each classical bit, the qubit last measured into it (None: never written)."""
    sources: list[int | None] = [None] * lowered.num_clbits
    for op in lowered.operations:
        if isinstance(op, MeasureOp):
            sources[op.clbit] = op.qubit
    return tuple(sources)


def counts_from_bits(bits: np.ndarray) -> dict[str, int]:
    """Counts of a (shots, clbits) 0/1 array, as bitstrings with clbit 0 rightmost."""
    shots, width = bits.shape
    if width == 0:
        return {"": int(shots)} if shots else {}
    rows, counts = np.unique(np.asarray(bits, dtype=np.uint8)[:, ::-1], axis=0,
                             return_counts=True)
    return {"".join("1" if b else "0" for b in row): int(n)
            for row, n in zip(rows, counts, strict=True)}


def counts_from_measurements(
    measured_qubits: Sequence[int],
    measurements: np.ndarray,
    sources: Sequence[int | None],
) -> dict[str, int]:
    """Counts in our order from Braket's per-qubit ``measurements`` (shots x measured qubits).

    ``sources`` is :func:`measurement_map`: clbit ``i`` takes the column of qubit
    ``sources[i]``; a bit never written reads 0.
    """
    rows = np.asarray(measurements, dtype=np.uint8).reshape(len(measurements), -1)
    column = {int(q): i for i, q in enumerate(measured_qubits)}
    bits = np.zeros((rows.shape[0], len(sources)), dtype=np.uint8)
    for clbit, qubit in enumerate(sources):
        if qubit is None:
            continue
        if qubit not in column:
            raise ValueError(
                f"Braket returned no measurement of qubit {qubit} (measured: "
                f"{list(measured_qubits)})"
            )
        bits[:, clbit] = rows[:, column[qubit]]
    return counts_from_bits(bits)
