"""Quantum jobs as Parsl apps, on a thread pool and on a local HighThroughputExecutor."""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np
import pytest
from engine_helpers import example
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector

from hal_workflow.circuits import Circuit
from hal_workflow.contract import ValidationError
from hal_workflow.executors import parsl as hal_parsl
from hal_workflow.orchestration.sync import sweep as local_sweep

ROTATED = Circuit.from_qasm("""
OPENQASM 3.0;
include "stdgates.inc";
input float theta;
qubit[2] q;
bit[2] c;
ry(theta) q[0];
cx q[0], q[1];
c = measure q;
""")
BINDINGS = [{"theta": float(t)} for t in np.linspace(0, np.pi, 13)]
SPEC = {"name": "sim", "threads": 1}
# 40 qubits and a T gate: too wide for a statevector, and not Clifford (no tableau)
TOO_WIDE = Circuit.from_qasm('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[40] q;\nbit[1] c;\n'
                            't q[0];\nc[0] = measure q[0];\n')


def test_run_circuit_returns_a_result(parsl_dfk: object) -> None:
    result = hal_parsl.run_circuit(ROTATED, SPEC, 500, {"theta": np.pi}).result()
    assert result.counts == {"11": 500}


def test_sweep_futures_in_input_order(parsl_dfk: object) -> None:
    futures = hal_parsl.sweep(ROTATED, BINDINGS, SPEC, shots=2000, chunk_size=4)
    assert len(futures) == len(BINDINGS) and all(isinstance(f, Future) for f in futures)
    # P(11) = sin^2(theta / 2): input order shows in a rising fraction of "11"
    ones = [f.result().counts.get("11", 0) / 2000 for f in futures]
    expected = np.sin(np.array([b["theta"] for b in BINDINGS]) / 2) ** 2
    assert np.max(np.abs(np.array(ones) - expected)) < 0.05


def test_sweep_matches_single_process_run(parsl_dfk: object) -> None:
    spec = {**SPEC, "seed": 99}
    reference = [dict(r.counts) for r in local_sweep(ROTATED, BINDINGS, spec, 300)]
    for chunk_size in (None, 5):
        futures = hal_parsl.sweep(ROTATED, BINDINGS, spec, 300, chunk_size=chunk_size)
        assert [dict(f.result().counts) for f in futures] == reference


def test_failed_circuit_is_a_typed_error(parsl_dfk: object) -> None:
    with pytest.raises(ValidationError, match="40 qubits"):
        hal_parsl.run_circuit(TOO_WIDE, SPEC, 10).result()
    futures = hal_parsl.sweep(TOO_WIDE, [{}, {}], SPEC, 10)
    for future in futures:
        with pytest.raises(ValidationError):
            future.result()


def test_quantum_app_runs_what_the_function_builds(parsl_dfk: object) -> None:
    @hal_parsl.quantum_app(backend=SPEC, shots=400)
    def prepared(theta: float, pairs: int) -> list:
        return [(ROTATED, {"theta": theta})] * pairs + [Circuit.bell()]

    results = prepared(np.pi, 2).result()
    assert [r.counts for r in results[:2]] == [{"11": 400}] * 2
    assert set(results[2].counts) == {"00", "11"}
    # an argument may be a future: the app waits for it
    angle = hal_parsl.local_app(lambda: np.pi)()
    single = hal_parsl.quantum_app(lambda t: (ROTATED, {"theta": t}), backend=SPEC, shots=50)
    assert single(angle).result().counts == {"11": 50}


def test_estimates_are_exact_expectation_values(parsl_dfk: object) -> None:
    ansatz = Circuit.from_qasm('OPENQASM 3.0; include "stdgates.inc"; input float a; '
                               "input float b; qubit[2] q; ry(a) q[0]; rx(b) q[1]; cx q[0], q[1];")
    observable = [(0.5, "ZI"), (-1.5, "XX"), (0.25, "YZ")]
    bindings = [{"a": 0.3 * i, "b": 0.7 - 0.2 * i} for i in range(6)]
    values = [f.result() for f in hal_parsl.estimate(ansatz, observable, bindings, SPEC)]
    operator = SparsePauliOp.from_list([(label, c) for c, label in observable])
    for binding, value in zip(bindings, values, strict=True):
        reference = QuantumCircuit(2)  # the same circuit, built in Qiskit
        reference.ry(binding["a"], 0)
        reference.rx(binding["b"], 1)
        reference.cx(0, 1)
        expected = Statevector(reference).expectation_value(operator).real
        assert value == pytest.approx(expected, abs=1e-9)


def test_iterations_chain_as_a_dag(parsl_dfk: object) -> None:
    """Each step's angle comes from the previous step's result, passed as a future."""
    next_angle = hal_parsl.local_app(
        lambda result: float(np.pi) if result.counts.get("11", 0) == 0 else 0.0)
    angle: object = 0.0
    futures = []
    for _ in range(4):
        step = hal_parsl.run_circuit(ROTATED, SPEC, 100, parameters=hal_parsl.local_app(
            lambda a: {"theta": a})(angle))
        futures.append(step)
        angle = next_angle(step)
    assert [f.result().counts for f in futures] == [{"00": 100}, {"11": 100}] * 2


def test_vqe_iterations_as_one_dag(parsl_dfk: object) -> None:
    """The H2 example's gradient descent, every iteration submitted up front."""
    vqe_h2 = example("vqe_h2")
    outcome = vqe_h2.vqe_parsl_dag({"name": "sim", "threads": 1}, exact=True, shots=1)
    exact = float(np.linalg.eigvalsh(vqe_h2.hamiltonian_matrix(vqe_h2.H2_TERMS))[0])
    assert abs(outcome.energy - exact) < vqe_h2.CHEMICAL_ACCURACY
