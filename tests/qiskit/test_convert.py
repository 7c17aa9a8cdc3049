"""QuantumCircuit enters every entry point through the one conversion registry."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.quantum_info import Statevector

import hal_workflow
from hal_workflow.circuits import Circuit
from hal_workflow.circuits.conversion import as_bindings, as_circuit
from hal_workflow.contract.errors import CircuitError, ValidationError
from hal_workflow.contract.extensions import run_many
from hal_workflow.orchestration.sync import backend_for, run_sync
from hal_workflow.qiskit import parameter_name

THETA = Parameter("θ")
VEC = ParameterVector("x", 2)


def parametrised() -> QuantumCircuit:
    qc = QuantumCircuit(2)
    qc.ry(2 * THETA + 0.1, 0)
    qc.rx(VEC[0], 1)
    qc.rzz(VEC[0] * VEC[1], 0, 1)
    qc.cx(0, 1)
    qc.measure_all()
    return qc


def exact_probabilities(values: dict[Parameter, float]) -> dict[str, float]:
    qc = parametrised().remove_final_measurements(inplace=False).assign_parameters(values)
    return dict(Statevector(qc).probabilities_dict())


def tvd(counts: dict[str, int], exact: dict[str, float]) -> float:
    shots = sum(counts.values())
    keys = set(counts) | set(exact)
    return 0.5 * sum(abs(counts.get(k, 0) / shots - exact.get(k, 0.0)) for k in keys)


VALUES = {THETA: 0.4, VEC[0]: -1.1, VEC[1]: 2.3}


def test_parameters_get_stable_valid_names() -> None:
    assert parameter_name(THETA) == "theta"
    assert parameter_name(VEC[1]) == "x_1"
    assert parameter_name(Parameter("2 a-b")) == "p_2_a_b"
    assert parameter_name(Parameter("input")) == "p_input"
    circuit = as_circuit(parametrised())
    assert isinstance(circuit, Circuit)
    assert set(circuit.parameters) == {"theta", "x_0", "x_1"}
    assert "input float[64] theta;" in circuit.qasm


def test_bindings_by_parameter_or_by_name() -> None:
    assert as_bindings({THETA: 1.0, "x_0": 2.0, VEC[1]: 3.0}) == {
        "theta": 1.0, "x_0": 2.0, "x_1": 3.0}
    with pytest.raises(CircuitError, match="bound twice"):
        as_bindings({THETA: 1.0, "theta": 2.0})
    with pytest.raises(CircuitError, match="keyed by name"):
        as_bindings({3: 1.0})


def test_run_submit_sweep_validate_accept_quantum_circuits() -> None:
    qc = parametrised()
    spec = {"name": "sim", "seed": 11}
    exact = exact_probabilities(VALUES)
    result = hal_workflow.run(qc, spec, shots=20_000, parameters=VALUES)
    assert tvd(dict(result.counts), exact) < 0.02
    job = hal_workflow.submit(qc, spec, shots=20_000, parameters={"theta": 0.4, "x_0": -1.1,
                                                                 "x_1": 2.3})
    assert job.result().counts == result.counts  # same seed, same binding by name
    assert hal_workflow.validate(qc, "sim")
    swept = hal_workflow.sweep(qc, [VALUES, {THETA: -0.05, VEC[0]: 0.0, VEC[1]: 0.0}], spec,
                               shots=4000)
    assert swept[1].counts == {"00": 4000}
    report = hal_workflow.validate(qc.assign_parameters(VALUES), "sim", shots=0)
    assert not report.valid


def test_backend_submit_and_batch_accept_quantum_circuits() -> None:
    backend = backend_for({"name": "sim", "seed": 5})
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    bell.measure_all()
    results = run_sync(run_many(backend, [bell, bell], 1000))
    assert all(set(r.counts) == {"00", "11"} for r in results)
    single = run_sync(backend.run(bell, 1000))
    assert set(single.counts) == {"00", "11"}
    swept = run_sync(run_many(backend, parametrised(), 2000, [VALUES, VALUES]))
    assert swept[0].counts != swept[1].counts  # seeds seed + i


def test_unbound_parameters_are_a_typed_error() -> None:
    with pytest.raises(ValidationError, match="unbound input parameter"):
        hal_workflow.run(parametrised(), "sim", shots=10)


def test_unknown_binding_names_are_a_typed_error() -> None:
    with pytest.raises(CircuitError, match="unknown parameter"):
        hal_workflow.run(parametrised(), "sim", shots=10, parameters={**VALUES, "phi": 1.0})


def test_clashing_parameter_names_are_refused() -> None:
    qc = QuantumCircuit(1)
    qc.rx(Parameter("a b"), 0)
    qc.ry(Parameter("a_b"), 0)
    with pytest.raises(CircuitError, match="both become"):
        as_circuit(qc)


def test_classical_registers_keep_qiskit_bit_order() -> None:
    qc = QuantumCircuit(3)
    from qiskit.circuit import ClassicalRegister

    first, second = ClassicalRegister(1, "a"), ClassicalRegister(2, "b")
    qc.add_register(first)
    qc.add_register(second)
    qc.x(0)
    qc.x(2)
    qc.measure(0, first[0])     # clbit 0 <- 1
    qc.measure(1, second[0])    # clbit 1 <- 0
    qc.measure(2, second[1])    # clbit 2 <- 1
    result = hal_workflow.run(qc, "sim", shots=10)
    assert result.counts == {"101": 10}
    assert np.isclose(sum(result.probabilities().values()), 1.0)
