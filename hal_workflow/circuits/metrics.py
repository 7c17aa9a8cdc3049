"""Facts about a lowered circuit that validators and reports need: gate counts and depth."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from hal_workflow.circuits.ir import (
    BarrierOp,
    GateOp,
    LoweredCircuit,
    MeasureOp,
    Operation,
    ResetOp,
)


def gate_counts(circuit: LoweredCircuit) -> dict[str, int]:
    """Operations by name, like Qiskit's ``count_ops``: gates (modifiers do not change the
    name), ``measure``, ``reset`` and ``barrier``. Both branches of an ``if`` are counted;
    a bare global phase (``gphase`` on no qubit) is not an operation and is left out."""
    counts: Counter[str] = Counter()
    _count(circuit.operations, counts)
    return dict(counts)


def _count(operations: Iterable[Operation], counts: Counter[str]) -> None:
    for op in operations:
        if isinstance(op, GateOp):
            if op.qubits:
                counts[op.name] += 1
        elif isinstance(op, MeasureOp):
            counts["measure"] += 1
        elif isinstance(op, ResetOp):
            counts["reset"] += 1
        elif isinstance(op, BarrierOp):
            counts["barrier"] += 1
        else:
            _count(op.body, counts)
            _count(op.else_body, counts)


def depth(circuit: LoweredCircuit) -> int:
    """The number of layers, computed as Qiskit's ``QuantumCircuit.depth`` does.

    Every operation sits one layer above the latest operation on any of its qubits and bits
    (a measurement touches its bit, an ``if`` its condition bits and everything in its
    branches, as one operation). Barriers take no layer but line up the wires they cover.
    """
    offset = circuit.num_qubits
    level = [0] * (circuit.num_qubits + circuit.num_clbits)
    for op in circuit.operations:
        qubits, clbits = wires(op)
        touched = [*qubits, *(offset + bit for bit in clbits)]
        if not touched:
            continue
        top = max(level[w] for w in touched) + (0 if isinstance(op, BarrierOp) else 1)
        for w in touched:
            level[w] = top
    return max(level, default=0)


def wires(op: Operation) -> tuple[set[int], set[int]]:
    """The qubits and classical bits an operation touches (an ``if`` includes its branches)."""
    if isinstance(op, GateOp):
        return set(op.qubits), set()
    if isinstance(op, MeasureOp):
        return {op.qubit}, {op.clbit}
    if isinstance(op, ResetOp):
        return {op.qubit}, set()
    if isinstance(op, BarrierOp):
        return set(op.qubits), set()
    qubits: set[int] = set()
    clbits = set(op.condition.clbits)
    for inner in (*op.body, *op.else_body):
        inner_qubits, inner_clbits = wires(inner)
        qubits |= inner_qubits
        clbits |= inner_clbits
    return qubits, clbits
