"""Pauli expectation values from measurements, against Qiskit's exact values."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector

from hal_workflow.circuits import Circuit
from hal_workflow.contract.errors import CircuitError, ValidationError
from hal_workflow.executors import observables
from hal_workflow.executors._tasks import run_estimates

ANSATZ = Circuit.from_qasm("""
OPENQASM 3.0;
include "stdgates.inc";
input float a;
input float b;
qubit[3] q;
ry(a) q[0];
rx(b) q[1];
h q[2];
cx q[0], q[1];
cz q[1], q[2];
""")
OBSERVABLE = [(0.7, "ZZI"), (-0.4, "XIY"), (1.1, "IYX"), (0.3, "ZIZ"), (-0.2, "III")]


def reference(binding: dict[str, float]) -> float:
    circuit = QuantumCircuit(3)
    circuit.ry(binding["a"], 0)
    circuit.rx(binding["b"], 1)
    circuit.h(2)
    circuit.cx(0, 1)
    circuit.cz(1, 2)
    operator = SparsePauliOp.from_list([(label, c) for c, label in OBSERVABLE])
    return float(Statevector(circuit).expectation_value(operator).real)


def test_grouping_shares_bases_between_agreeing_terms() -> None:
    grouping = observables.group_terms([(1, "II"), (1, "IZ"), (1, "ZI"), (1, "ZZ"), (1, "XX"),
                                        (1, "XI")])
    assert grouping.bases == ("ZZ", "XX")
    assert grouping.term_basis == (0, 0, 0, 0, 1, 1)


@pytest.mark.parametrize("binding", [{"a": 0.4, "b": -1.2}, {"a": 2.5, "b": 0.9}])
def test_measured_estimate_agrees_with_the_exact_value(binding: dict[str, float]) -> None:
    shots = 200_000
    measured, exact = (run_estimates({"name": "sim", "seed": 3}, ANSATZ, OBSERVABLE, [binding],
                                     shots, exact=flag)[0] for flag in (False, True))
    expected = reference(binding)
    assert exact == pytest.approx(expected, abs=1e-9)
    bound = sum(abs(c) for c, _ in OBSERVABLE) / np.sqrt(shots)  # >= 1 sigma of the estimate
    assert abs(measured - expected) < 4 * bound


def test_in_basis_appends_rotations_and_a_register() -> None:
    measured = observables.in_basis(ANSATZ, "XYZ")  # qubit 0: Z, qubit 1: Y, qubit 2: X
    assert measured.num_clbits == 3
    tail = measured.qasm.splitlines()[-7:]
    assert tail == ["bit[3] hal_m;", "sdg q[1];", "h q[1];", "h q[2];",
                    "hal_m[0] = measure q[0];", "hal_m[1] = measure q[1];",
                    "hal_m[2] = measure q[2];"]


def test_bad_inputs_are_contract_errors() -> None:
    with pytest.raises(ValidationError, match="acts on 2 qubits, the circuit has 3"):
        observables.check_observable([(1.0, "ZZ")], 3)
    with pytest.raises(ValidationError, match="I, X, Y, Z"):
        observables.check_observable([(1.0, "ZQZ")], 3)
    with pytest.raises(CircuitError, match="without measurements"):
        observables.in_basis(Circuit.bell(), "ZZ")


def test_in_basis_ir_equals_parsing_its_text() -> None:
    measured = observables.in_basis(ANSATZ, "XYZ")
    parsed = Circuit.from_qasm(measured.qasm)
    assert measured.lowered.operations == parsed.lowered.operations
    assert measured.lowered.clbit_registers == parsed.lowered.clbit_registers
    assert measured.num_clbits == parsed.num_clbits == 3
