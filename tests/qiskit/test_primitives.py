"""HalSampler and HalEstimator against Qiskit's reference primitives, on random circuits."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.circuit.library import efficient_su2
from qiskit.primitives import StatevectorEstimator, StatevectorSampler
from qiskit.quantum_info import SparsePauliOp, Statevector, random_pauli_list

from hal_workflow.contract.errors import (
    CircuitError,
    ConfigurationError,
    UnsupportedExtensionError,
    ValidationError,
)
from hal_workflow.qiskit import HalEstimator, HalSampler


def random_case(seed: int, num_qubits: int, terms: int, shape: tuple[int, ...]
                ) -> tuple[QuantumCircuit, SparsePauliOp, np.ndarray]:
    rng = np.random.default_rng(seed)
    circuit = efficient_su2(num_qubits, reps=2, entanglement="circular")
    paulis = random_pauli_list(num_qubits, terms, seed=seed, phase=False)
    observable = SparsePauliOp(paulis, rng.normal(size=terms))
    values = rng.uniform(-np.pi, np.pi, (*shape, circuit.num_parameters))
    return circuit, observable, values


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exact_estimates_equal_the_reference(seed: int) -> None:
    circuit, observable, values = random_case(seed, 3 + seed, 12, (3, 2))
    other = SparsePauliOp.from_list([("Z" * circuit.num_qubits, 1.0)])
    observables = [[[observable]], [[other]]]  # shape (2, 1, 1) against values (3, 2)
    ours = HalEstimator().run([(circuit, observables, values)]).result()[0]
    reference = StatevectorEstimator().run([(circuit, observables, values)]).result()[0]
    assert ours.data.evs.shape == reference.data.evs.shape == (2, 3, 2)
    np.testing.assert_allclose(ours.data.evs, reference.data.evs, atol=1e-10, rtol=0)
    assert np.all(ours.data.stds == 0)
    assert ours.metadata["exact"] is True


@pytest.mark.parametrize("seed", [4, 5])
def test_measured_estimates_lie_within_four_standard_errors(seed: int) -> None:
    circuit, observable, values = random_case(seed, 4, 10, (6,))
    ours = HalEstimator(options={"seed": seed}).run([(circuit, observable, values)],
                                                   precision=0.02).result()[0]
    exact = StatevectorEstimator().run([(circuit, observable, values)]).result()[0].data.evs
    assert ours.metadata["shots"] == 2500 and ours.metadata["exact"] is False
    assert np.all(ours.data.stds > 0)
    z = np.abs(ours.data.evs - exact) / ours.data.stds
    assert np.all(z < 4), z
    # the standard error is the true spread: about the requested precision per unit norm
    assert np.all(ours.data.stds < 2 * np.abs(observable.coeffs).sum() * 0.02)


def test_measured_estimates_do_not_depend_on_chunking() -> None:
    circuit, observable, values = random_case(6, 3, 6, (10,))
    pub = (circuit, observable, values)
    whole = HalEstimator(options={"seed": 9}).run([pub], precision=0.05).result()[0]
    chunked = HalEstimator(options={"seed": 9, "chunk_size": 3}).run([pub], precision=0.05
                                                                   ).result()[0]
    np.testing.assert_array_equal(whole.data.evs, chunked.data.evs)
    np.testing.assert_array_equal(whole.data.stds, chunked.data.stds)


def test_observable_forms_and_per_pub_precision() -> None:
    circuit, observable, values = random_case(7, 3, 5, (2,))
    pubs = [(circuit, "ZZI", values), (circuit, observable, values[0], 0.05),
            (circuit, {"XXY": 0.5, "IIZ": -1.0}, values, 0.0)]
    ours = HalEstimator(options={"seed": 1}).run(pubs).result()
    reference = StatevectorEstimator().run([*pubs[:1], pubs[1][:3], *pubs[2:]]).result()
    np.testing.assert_allclose(ours[0].data.evs, reference[0].data.evs, atol=1e-10)
    assert ours[1].metadata["shots"] == 400 and ours[1].data.evs.shape == ()
    assert abs(ours[1].data.evs - reference[1].data.evs) < 4 * ours[1].data.stds
    np.testing.assert_allclose(ours[2].data.evs, reference[2].data.evs, atol=1e-10)


def tvd(counts: dict[str, int], exact: dict[str, float]) -> float:
    shots = sum(counts.values())
    keys = set(counts) | set(exact)
    return 0.5 * sum(abs(counts.get(k, 0) / shots - exact.get(k, 0.0)) for k in keys)


@pytest.mark.parametrize("seed", [1, 2])
def test_sampler_distributions_match_the_exact_ones(seed: int) -> None:
    circuit, _, values = random_case(seed, 4, 1, (2, 3))
    measured = circuit.measure_all(inplace=False)
    shots = 20_000
    ours = HalSampler(options={"seed": seed}).run([(measured, values)], shots=shots).result()[0]
    reference = StatevectorSampler(seed=seed).run([(measured, values)], shots=shots
                                                  ).result()[0]
    bits = ours.data.meas
    assert bits.shape == reference.data.meas.shape == (2, 3)
    assert bits.num_shots == shots and bits.num_bits == 4
    for index in np.ndindex(2, 3):
        bound = circuit.assign_parameters(values[index])
        exact = Statevector(bound).probabilities_dict()
        counts = bits.get_counts(index)
        # 16 outcomes, 20k shots: TV distance of an exact sampler is ~0.01; both below 0.03
        assert tvd(counts, exact) < 0.03
        assert tvd(reference.data.meas.get_counts(index), exact) < 0.03
    assert len(bits.get_bitstrings((0, 0))) == shots


def test_sampler_registers_and_per_pub_shots() -> None:
    qc = QuantumCircuit(3)
    from qiskit.circuit import ClassicalRegister

    alpha, beta = ClassicalRegister(1, "alpha"), ClassicalRegister(2, "beta")
    qc.add_register(alpha)
    qc.add_register(beta)
    theta = Parameter("t")
    qc.x(0)
    qc.ry(theta, 2)
    qc.measure(0, alpha[0])
    qc.measure(1, beta[0])
    qc.measure(2, beta[1])
    result = HalSampler(options={"seed": 2}).run(
        [(qc, [0.0, np.pi]), (qc, [np.pi], 10)], shots=50).result()
    assert result[0].data.alpha.get_counts(0) == {"1": 50}
    assert result[0].data.beta.get_counts(0) == {"00": 50}
    assert result[0].data.beta.get_counts(1) == {"10": 50}
    assert result[1].data.beta.num_shots == 10
    assert result[1].metadata["shots"] == 10


def test_bad_input_is_a_typed_error() -> None:
    circuit, observable, values = random_case(1, 3, 4, (2,))
    estimator = HalEstimator()
    with pytest.raises(ValidationError, match="estimator PUB 0"):
        estimator.run([(circuit, observable)])  # unbound parameters
    with pytest.raises(ValidationError, match="not broadcastable"):
        estimator.run([(circuit, [observable] * 3, values)])
    with pytest.raises(ValidationError, match="PUB 0"):
        estimator.run([(circuit, "ZZ", values)])  # 2 qubits on a 3-qubit circuit
    with pytest.raises(ValidationError, match="Hermitian"):
        estimator.run([(circuit, SparsePauliOp(["XZI"], [1j]), values)])
    with pytest.raises(ValidationError, match="PUB 0"):
        estimator.run([(circuit, observable, np.zeros((2, 5)))])  # wrong parameter count
    with pytest.raises(ConfigurationError, match="unknown option"):
        HalEstimator(options={"shotz": 3})
    with pytest.raises(ConfigurationError, match="executor"):
        HalSampler(executor=object())
    measured = circuit.measure_all(inplace=False)
    with pytest.raises(ValidationError, match="shots"):
        HalSampler().run([(measured, values)], shots=0)
    with pytest.raises(CircuitError, match="without measurements"):
        estimator.run([(measured, observable, values)], precision=0.1).result()


def test_precision_zero_needs_the_statevector_extension() -> None:
    circuit, observable, values = random_case(1, 2, 3, (1,))
    estimator = HalEstimator({"name": "ibm", "backend": "fake_manila"})
    with pytest.raises(UnsupportedExtensionError, match="precision > 0"):
        estimator.run([(circuit, observable, values)], precision=0)


def test_measured_estimates_on_scalar_qubits_and_physical_qubits() -> None:
    qc = QuantumCircuit(2)  # loose qubits: exported as ``qubit _qubit0;``
    from qiskit.circuit import Qubit

    loose = QuantumCircuit([Qubit(), Qubit()])
    for circuit in (qc, loose):
        circuit.h(0)
        circuit.cx(0, 1)
    observable = SparsePauliOp.from_list([("XX", 1.0), ("ZZ", 0.5)])
    for circuit in (qc, loose):
        result = HalEstimator(options={"seed": 1}).run([(circuit, observable)], precision=0.01
                                                       ).result()[0]
        assert result.data.evs == pytest.approx(1.5, abs=4 * result.data.stds + 1e-12)
    from hal_workflow.circuits import Circuit
    from hal_workflow.executors.observables import in_basis

    physical = Circuit.from_qasm("OPENQASM 3.0;\ninclude \"stdgates.inc\";\nh $0;\ncx $0, $1;\n")
    assert in_basis(physical, "XX").qasm.rstrip().endswith("hal_m[1] = measure $1;")


def test_both_measured_routes_agree_with_the_exact_values() -> None:
    """Basis circuits run as jobs, or every basis sampled from the simulator's states: both
    within 4 standard errors of the exact value, with standard errors of the same size, and
    within 4 standard errors of each other (they draw different samples)."""
    from hal_workflow.executors._tasks import run_expectations
    from hal_workflow.qiskit import from_qiskit, parameter_name

    circuit, observable, values = random_case(8, 4, 8, (4,))
    program = from_qiskit(circuit)
    names = [parameter_name(p) for p in circuit.parameters]
    bindings = [dict(zip(names, row, strict=True)) for row in values.tolist()]
    exact, _ = run_expectations("sim", program, [observable], bindings, 1, exact=True)
    spec = {"name": "sim", "seed": 2}
    routes = []
    for from_states in (True, False):
        means, variances = run_expectations(spec, program, [observable], bindings, 3000,
                                            exact=False, from_states=from_states)
        stds = np.sqrt(variances)
        assert np.all(np.abs(means - exact) < 4 * stds), from_states
        assert np.all(stds < np.abs(observable.coeffs).sum() / np.sqrt(3000))
        routes.append((means, variances))
    (fast, fast_var), (general, general_var) = routes
    assert np.all(np.abs(fast - general) < 4 * np.sqrt(fast_var + general_var))
    # standard errors from 3000 samples per basis: a few percent apart at most
    np.testing.assert_allclose(np.sqrt(fast_var), np.sqrt(general_var), rtol=0.15)
