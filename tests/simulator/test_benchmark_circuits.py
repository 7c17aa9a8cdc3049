"""The circuit classes of the simulator benchmark (``benchmarks/circuits.py``): the OpenQASM
text parses with our parser and with Qiskit's ``qasm3`` loader, and our statevector equals
Qiskit's ``Statevector`` of the same text at a small width."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_backend, reference_state, run

from benchmarks.circuits import CLASSES, bernstein_vazirani, random_regular_graph
from hal_workflow.circuits import Circuit
from hal_workflow.contract.errors import CircuitError

WIDTH = 8


def _final_state(text: str) -> np.ndarray:
    """Our final state of ``text`` without its closing measurement."""
    unmeasured = text.replace("c = measure q;\n", "")
    backend = make_backend(method="statevector")
    return run(backend.extension("statevector").statevector(unmeasured))


@pytest.mark.parametrize("kind", sorted(CLASSES))
def test_class_parses_and_matches_qiskit(kind: str) -> None:
    from qiskit import qasm3

    text = CLASSES[kind](WIDTH)
    assert CLASSES[kind](WIDTH) == text  # deterministic
    ours = Circuit.from_qasm(text)
    theirs = qasm3.loads(text)
    assert ours.num_qubits == theirs.num_qubits == WIDTH
    assert ours.gate_counts.get("measure") == WIDTH
    np.testing.assert_allclose(_final_state(text), reference_state(text), atol=1e-10)


@pytest.mark.parametrize("n", [6, 20, 26])
def test_regular_graph_is_simple_and_three_regular(n: int) -> None:
    edges = random_regular_graph(n)
    assert len(set(edges)) == len(edges) == 3 * n // 2
    assert all(a < b for a, b in edges)
    assert np.bincount(np.array(edges).ravel(), minlength=n).tolist() == [3] * n


def test_odd_regular_graph_is_refused() -> None:
    with pytest.raises(CircuitError, match="n \\* degree even"):
        random_regular_graph(7)


def test_bernstein_vazirani_reveals_its_secret() -> None:
    """BV measures one outcome with certainty: the secret (the cx pattern), ancilla 1."""
    text = bernstein_vazirani(WIDTH)
    secret = ["0"] * (WIDTH - 1)
    for line in text.splitlines():
        if line.startswith("cx "):
            secret[int(line.split("q[")[1].split("]")[0])] = "1"
    expected = "1" + "".join(reversed(secret))  # clbit 0 rightmost, ancilla leftmost
    probabilities = np.abs(reference_state(text)) ** 2
    assert format(int(np.argmax(probabilities)), f"0{WIDTH}b") == expected
    assert probabilities.max() == pytest.approx(1.0)


def _pauli_sum(n: int, terms: list[tuple[str, list[int]]]) -> np.ndarray:
    """sum of Pauli strings on ``n`` qubits (qubit 0 rightmost, Qiskit's order)."""
    from qiskit.quantum_info import SparsePauliOp

    return SparsePauliOp.from_sparse_list([(p, q, 1.0) for p, q in terms], n).to_matrix()


def _same_up_to_phase(a: np.ndarray, b: np.ndarray) -> None:
    assert abs(np.vdot(a, b)) == pytest.approx(1.0, abs=1e-10)


def test_heisenberg_step_is_the_xxx_evolution() -> None:
    """One step on two qubits is exactly exp(-i J dt (XX + YY + ZZ)) on the Neel state |q1=1>."""
    from scipy.linalg import expm

    from benchmarks.circuits import heisenberg

    h = _pauli_sum(2, [("XX", [0, 1]), ("YY", [0, 1]), ("ZZ", [0, 1])])
    neel = np.zeros(4)
    neel[0b10] = 1.0
    _same_up_to_phase(reference_state(heisenberg(2, steps=1, dt=0.3, coupling=0.7)),
                      expm(-1j * 0.7 * 0.3 * h) @ neel)


def test_ising_step_is_zz_then_field() -> None:
    """One step on three qubits is exp(-i dt h X) exp(-i dt J ZZ) on |000>."""
    from scipy.linalg import expm

    from benchmarks.circuits import ising

    zz = _pauli_sum(3, [("ZZ", [0, 1]), ("ZZ", [1, 2])])
    x = _pauli_sum(3, [("X", [q]) for q in range(3)])
    start = np.zeros(8)
    start[0] = 1.0
    expected = expm(-1j * 0.2 * 0.5 * x) @ expm(-1j * 0.2 * 1.5 * zz) @ start
    _same_up_to_phase(reference_state(ising(3, steps=1, dt=0.2, coupling=1.5, field=0.5)),
                      expected)
