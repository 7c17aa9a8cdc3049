"""``HalQrispBackend`` against Qrisp's default simulator on Qrisp's tutorial programs.

Qrisp pins qiskit < 2.6 and sympy <= 1.13, so it lives in an environment of its own: run these
with ``.ci/extra-tests.sh qrisp``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

pytest.importorskip("qrisp", reason="qrisp is not installed here: run .ci/extra-tests.sh qrisp")

import networkx as nx
from qrisp import QuantumFloat, QuantumVariable, h, multi_measurement
from qrisp.grover import grovers_alg, tag_state
from qrisp.qaoa import RX_mixer, create_maxcut_cost_operator

from hal_workflow import CircuitError
from hal_workflow.qrisp import HalQrispBackend

SHOTS = 20_000
TV_BOUND = 0.03


@pytest.fixture(scope="module")
def backend() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Qrisp 0.9 marks VirtualBackend deprecated
        return HalQrispBackend({"name": "sim", "seed": 11})


def _tv(ours: dict[Any, float], theirs: dict[Any, float]) -> float:
    return 0.5 * sum(abs(ours.get(k, 0.0) - theirs.get(k, 0.0)) for k in set(ours) | set(theirs))


def test_quantum_float_addition(backend: Any) -> None:
    a = QuantumFloat(3)
    a[:] = 3
    b = QuantumFloat(3)
    b[:] = 4
    total = a + b
    assert total.get_measurement(backend=backend) == total.get_measurement() == {7: 1.0}


def test_quantum_float_multiplication_in_superposition(backend: Any) -> None:
    qf = QuantumFloat(3)
    h(qf[0])
    h(qf[1])
    square = qf * qf
    ours = square.get_measurement(backend=backend, shots=SHOTS)
    exact = square.get_measurement()
    assert exact == {0: 0.25, 1: 0.25, 4: 0.25, 9: 0.25}
    assert _tv(ours, exact) < TV_BOUND


def test_grover_on_quantum_floats(backend: Any) -> None:
    def oracle(qf_list: list[Any], phase: float = np.pi) -> None:
        tag_state({qf_list[0]: -3, qf_list[1]: 2}, phase=phase)

    qf_list = [QuantumFloat(2, signed=True), QuantumFloat(2, signed=True)]
    grovers_alg(qf_list, oracle)
    ours = multi_measurement(qf_list, backend=backend, shots=SHOTS)
    exact = multi_measurement(qf_list)
    assert max(exact, key=exact.get) == (-3, 2)
    assert max(ours, key=ours.get) == (-3, 2)
    assert _tv(ours, exact) < TV_BOUND


def test_qaoa_maxcut_layer(backend: Any) -> None:
    graph = nx.Graph([(0, 3), (0, 4), (1, 3), (1, 4), (2, 3), (2, 4)])
    cost = create_maxcut_cost_operator(graph)
    qarg = QuantumVariable(graph.number_of_nodes())
    h(qarg)
    for gamma, beta in [(0.4, 0.3), (0.7, 0.2)]:
        cost(qarg, gamma)
        RX_mixer(qarg, beta)
    ours = qarg.get_measurement(backend=backend, shots=SHOTS)
    exact = qarg.get_measurement()
    assert len(exact) > 4
    assert _tv(ours, exact) < TV_BOUND


def test_unreadable_program_is_a_circuit_error(backend: Any) -> None:
    with pytest.raises(CircuitError, match="qrisp circuit"):
        backend._run("OPENQASM 2.0;\nqreg q[1];\nnot_a_gate q[0];\n", 10)
