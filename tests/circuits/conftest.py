"""Qiskit as the independent reference for circuit tests.

``qiskit_from_lowered`` rebuilds a lowered circuit's gates with Qiskit's own gate classes
and modifier methods (``inverse``, ``power``, ``control``), so comparing its ``Operator`` with
the one Qiskit's OpenQASM importer builds checks our inlining and modifier handling against
Qiskit's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import library as gates

from hal_workflow.circuits.ir import GateOp, LoweredCircuit, evaluate_param

QISKIT_GATES = {
    "p": gates.PhaseGate, "x": gates.XGate, "y": gates.YGate, "z": gates.ZGate,
    "h": gates.HGate, "s": gates.SGate, "sdg": gates.SdgGate, "t": gates.TGate,
    "tdg": gates.TdgGate, "sx": gates.SXGate, "rx": gates.RXGate, "ry": gates.RYGate,
    "rz": gates.RZGate, "cx": gates.CXGate, "cy": gates.CYGate, "cz": gates.CZGate,
    "cp": gates.CPhaseGate, "crx": gates.CRXGate, "cry": gates.CRYGate, "crz": gates.CRZGate,
    "ch": gates.CHGate, "swap": gates.SwapGate, "ccx": gates.CCXGate, "cswap": gates.CSwapGate,
    "cu": gates.CUGate, "id": gates.IGate, "u1": gates.U1Gate, "u2": gates.U2Gate,
    "u3": gates.U3Gate, "U": gates.UGate, "gphase": gates.GlobalPhaseGate,
}


def qiskit_from_lowered(lowered: LoweredCircuit,
                        bindings: Mapping[str, float] | None = None) -> QuantumCircuit:
    """The gates of ``lowered`` (no measurements) as a Qiskit circuit."""
    circuit = QuantumCircuit(lowered.num_qubits)
    for op in lowered.operations:
        assert isinstance(op, GateOp), f"unexpected {op}"
        gate = QISKIT_GATES[op.name](*(evaluate_param(p, bindings or {}) for p in op.params))
        for modifier in reversed(op.modifiers):
            if modifier.kind == "inv":
                gate = gate.inverse()
            elif modifier.kind == "pow":
                gate = gate.power(evaluate_param(modifier.argument, bindings or {}))
            else:
                state = None if modifier.kind == "ctrl" else 0
                gate = gate.control(int(modifier.argument), ctrl_state=state, annotated=False)
        circuit.append(gate, list(op.qubits))
    return circuit


@pytest.fixture
def to_qiskit() -> Callable[..., QuantumCircuit]:
    return qiskit_from_lowered
