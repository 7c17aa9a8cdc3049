"""Clients nobody here wrote: qiskit-algorithms and qiskit-machine-learning on our primitives."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.circuit.library import real_amplitudes, zz_feature_map
from qiskit.primitives import StatevectorEstimator, StatevectorSampler
from qiskit.quantum_info import SparsePauliOp

from hal_workflow.qiskit import HalEstimator, HalSampler

qiskit_algorithms = pytest.importorskip("qiskit_algorithms")
qml_neural = pytest.importorskip("qiskit_machine_learning.neural_networks")

H2 = SparsePauliOp.from_list([
    ("II", -1.052373245772859), ("IZ", 0.39793742484318045), ("ZI", -0.39793742484318045),
    ("ZZ", -0.01128010425623538), ("XX", 0.18093119978423156),
])
EDGES = [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)]


def maxcut_hamiltonian(num_nodes: int) -> SparsePauliOp:
    terms = []
    for i, j in EDGES:
        label = ["I"] * num_nodes
        label[num_nodes - 1 - i] = label[num_nodes - 1 - j] = "Z"
        terms.append(("".join(label), 0.5))
    return SparsePauliOp.from_list(terms)


def cut_size(bitstring: str) -> int:
    bits = bitstring[::-1]  # bit i of node i
    return sum(bits[i] != bits[j] for i, j in EDGES)


def test_vqe_reaches_the_exact_ground_energy_of_h2() -> None:
    exact = np.linalg.eigvalsh(H2.to_matrix()).min()
    vqe = qiskit_algorithms.VQE(HalEstimator(), real_amplitudes(2, reps=2),
                                qiskit_algorithms.optimizers.SLSQP(maxiter=200),
                                initial_point=np.full(6, 0.3))
    result = vqe.compute_minimum_eigenvalue(H2)
    assert result.eigenvalue == pytest.approx(exact, abs=1e-6)


def test_vqe_with_measured_estimates_gets_close() -> None:
    exact = np.linalg.eigvalsh(H2.to_matrix()).min()
    estimator = HalEstimator(options={"default_precision": 0.005, "seed": 3})
    vqe = qiskit_algorithms.VQE(estimator, real_amplitudes(2, reps=2),
                                qiskit_algorithms.optimizers.SPSA(maxiter=60),
                                initial_point=np.full(6, 0.3))
    result = vqe.compute_minimum_eigenvalue(H2)
    assert result.eigenvalue == pytest.approx(exact, abs=0.05)


def test_qaoa_finds_the_maxcut_optimum() -> None:
    hamiltonian = maxcut_hamiltonian(4)
    best = max(cut_size(format(z, "04b")) for z in range(16))
    qaoa = qiskit_algorithms.QAOA(HalSampler(options={"seed": 7}),
                                  qiskit_algorithms.optimizers.COBYLA(maxiter=200), reps=2,
                                  initial_point=[0.5, 0.5, 0.5, 0.5])
    result = qaoa.compute_minimum_eigenvalue(hamiltonian)
    assert cut_size(result.best_measurement["bitstring"]) == best == 4


def test_estimator_qnn_forward_and_backward_match_the_reference() -> None:
    features, ansatz = zz_feature_map(2, reps=1), real_amplitudes(2, reps=1)
    circuit = features.compose(ansatz)
    observable = SparsePauliOp.from_list([("ZZ", 1.0), ("XI", 0.5)])
    rng = np.random.default_rng(0)
    inputs, weights = rng.uniform(-1, 1, (5, 2)), rng.uniform(-1, 1, 4)
    outputs = []
    for estimator in (HalEstimator(), StatevectorEstimator()):
        qnn = qml_neural.EstimatorQNN(circuit=circuit, estimator=estimator,
                                      observables=observable, default_precision=0.0,
                                      input_params=features.parameters,
                                      weight_params=ansatz.parameters)
        forward = qnn.forward(inputs, weights)
        _, weight_grad = qnn.backward(inputs, weights)
        outputs.append((forward, weight_grad))
    (ours_f, ours_g), (ref_f, ref_g) = outputs
    assert ours_f.shape == (5, 1) and ours_g.shape == (5, 1, 4)
    np.testing.assert_allclose(ours_f, ref_f, atol=1e-10)
    np.testing.assert_allclose(ours_g, ref_g, atol=1e-10)


def test_sampler_qnn_forward_and_backward_are_sound() -> None:
    x, w = Parameter("x"), Parameter("w")
    qc = QuantumCircuit(1)
    qc.ry(x, 0)
    qc.ry(w, 0)
    qc.measure_all()
    qnn = qml_neural.SamplerQNN(circuit=qc, sampler=HalSampler(options={"seed": 1,
                                                                         "default_shots": 20000}),
                                input_params=[x], weight_params=[w])
    inputs, weights = np.array([[0.3], [1.2]]), np.array([0.4])
    forward = qnn.forward(inputs, weights)
    _, weight_grad = qnn.backward(inputs, weights)
    angle = inputs[:, 0] + weights[0]
    exact = np.stack([np.cos(angle / 2) ** 2, np.sin(angle / 2) ** 2], axis=1)
    exact_grad = np.stack([-np.sin(angle) / 2, np.sin(angle) / 2], axis=1)
    assert forward.shape == (2, 2) and weight_grad.shape == (2, 2, 1)
    np.testing.assert_allclose(forward, exact, atol=0.02)
    np.testing.assert_allclose(weight_grad[:, :, 0], exact_grad, atol=0.03)
    reference = qml_neural.SamplerQNN(circuit=qc, sampler=StatevectorSampler(seed=1),
                                      input_params=[x], weight_params=[w])
    assert reference.forward(inputs, weights).shape == forward.shape
