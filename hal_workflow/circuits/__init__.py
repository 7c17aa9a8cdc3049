"""Circuits: OpenQASM 3 (and 2) in, a validated :class:`Circuit` and its lowered IR out.

``Circuit.from_qasm(text)`` parses with the ``openqasm3`` reference parser (imported on first
use), checks the program and lowers it to :class:`~hal_workflow.circuits.ir.LoweredCircuit`,
the flat instruction list backends execute. QIR import and export live in
:mod:`hal_workflow.circuits.qir` (optional ``pyqir``).
"""

from __future__ import annotations

from hal_workflow.circuits.circuit import Circuit, as_circuit
from hal_workflow.circuits.gates import GATE_ALIASES, STANDARD_GATES
from hal_workflow.circuits.ir import LoweredCircuit, evaluate_param
from hal_workflow.circuits.library import (
    bell,
    ghz,
    hardware_efficient_ansatz,
    qft,
    random_layered,
)

__all__ = [
    "GATE_ALIASES",
    "STANDARD_GATES",
    "Circuit",
    "LoweredCircuit",
    "as_circuit",
    "bell",
    "evaluate_param",
    "ghz",
    "hardware_efficient_ansatz",
    "qft",
    "random_layered",
]
