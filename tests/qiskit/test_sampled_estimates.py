"""The simulator's sampled estimates (every measurement basis drawn from one state) against
exact values from Qiskit's ``Statevector``: unbiased, with standard errors that are the true
spread, on any qubit order, and the same whatever the rotation buffers or the chunking."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.quantum_info import SparsePauliOp, Statevector, random_pauli_list, random_statevector

from hal_workflow.circuits.observables import as_observable
from hal_workflow.simulator import expectation


def physical(state: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """``state`` (logical qubit ``q`` is bit ``q``) with logical qubit ``q`` on bit ``perm[q]``."""
    n = len(perm)
    out = np.empty_like(state)
    for index in range(1 << n):
        moved = sum(1 << int(perm[q]) for q in range(n) if index >> q & 1)
        out[moved] = state[index]
    return out


def case(num_qubits: int, seed: int) -> tuple[Statevector, list[SparsePauliOp], np.ndarray]:
    rng = np.random.default_rng(seed)
    state = random_statevector(2 ** num_qubits, seed=seed)
    paulis = random_pauli_list(num_qubits, 12, seed=seed, phase=False)
    observables = [SparsePauliOp(paulis, rng.normal(size=12)),
                   SparsePauliOp(paulis[:5], rng.normal(size=5)),  # terms shared with the first
                   SparsePauliOp("Y" * num_qubits)]
    return state, observables, rng.permutation(num_qubits)


def test_z_scores_over_many_seeds_are_standard_normal() -> None:
    """400 independent estimates (seeds 0..399) of three observables of one state: the
    z-scores against the exact values have mean 0 and spread 1, and the spread of the
    estimates equals the standard errors reported."""
    state, observables, perm = case(5, 3)
    exact = np.array([state.expectation_value(o).real for o in observables])
    paulis = [as_observable(o, 5) for o in observables]
    repeats = 400
    states = np.repeat(physical(state.data, perm)[None, :], repeats, axis=0)
    means, variances = expectation.measured_expectations(states, paulis, perm, 200,
                                                         list(range(repeats)))
    z = (means - exact) / np.sqrt(variances)
    # mean of 400 standard normals: sd 0.05; sd of their sd: about 0.035
    assert np.all(np.abs(z.mean(axis=0)) < 0.2), z.mean(axis=0)
    assert np.all(np.abs(z.std(axis=0) - 1) < 0.15), z.std(axis=0)
    spread = means.std(axis=0) / np.sqrt(variances.mean(axis=0))
    assert np.all(np.abs(spread - 1) < 0.15), spread


@pytest.mark.parametrize("keep", [0, 1, 3])
def test_fewer_kept_rotations_draw_the_same_samples(keep: int,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Rotations shared between bases (or redone when fewer partial states fit the buffer)
    are the same arithmetic: bit-identical estimates."""
    state, observables, perm = case(6, 5)
    paulis = [as_observable(o, 6) for o in observables]
    states = np.stack([physical(state.data, perm)] * 3)
    whole = expectation.measured_expectations(states, paulis, perm, 100, [7, 8, 9])
    monkeypatch.setattr(expectation, "SAMPLE_BUFFER_BYTES", (keep + 3) * 8 << 6)
    monkeypatch.setattr(expectation, "DRAWS_CHUNK_BYTES", 1)  # one state per group
    fewer = expectation.measured_expectations(states, paulis, perm, 100, [7, 8, 9])
    for a, b in zip(whole, fewer, strict=True):
        np.testing.assert_array_equal(a, b)
    # each state's estimate depends on its own seed only
    alone = expectation.measured_expectations(states[1:2], paulis, perm, 100, [8])
    np.testing.assert_array_equal(alone[0][0], whole[0][1])


def test_a_basis_state_gives_its_eigenvalue_with_no_spread() -> None:
    """|1+0+> (qubit 0 rightmost): its Z qubits in Z and its |+> qubits in X give the same
    value in every sample."""
    n = 4
    plus = Statevector.from_label("1+0+")
    perm = np.arange(n)
    observable = as_observable({"ZIZI": 0.5, "IXIX": 2.0, "ZIII": -1.0}, n)
    means, variances = expectation.measured_expectations(plus.data[None, :], [observable],
                                                         perm, 50, [1])
    assert means[0, 0] == pytest.approx(0.5 * -1 + 2.0 * 1 - 1.0 * -1)
    assert variances[0, 0] == pytest.approx(0.0, abs=1e-12)
