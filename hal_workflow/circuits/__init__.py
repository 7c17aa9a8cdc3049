"""Circuits: OpenQASM 3 (and 2) in, a validated :class:`Circuit` and its lowered IR out.

``Circuit.from_qasm(text)`` (or ``Circuit.from_file(path)``) checks the program and lowers it
to :class:`~hal_workflow.circuits.ir.LoweredCircuit`, the flat instruction list backends
execute: straight-line programs through a fast path (:mod:`.fastpath`), everything else
through the ``openqasm3`` reference parser (imported on first use). Work is bounded by the
``limits.*`` configuration (:mod:`.limits`). QIR import and export live in
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
from hal_workflow.circuits.limits import CircuitLimitError, Limits

__all__ = [
    "GATE_ALIASES",
    "STANDARD_GATES",
    "Circuit",
    "CircuitLimitError",
    "Limits",
    "LoweredCircuit",
    "as_circuit",
    "bell",
    "evaluate_param",
    "ghz",
    "hardware_efficient_ansatz",
    "qft",
    "random_layered",
]
