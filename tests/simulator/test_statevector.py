"""Exact amplitudes against Qiskit's ``Statevector``, on every gate, modifier and code path.

The reference circuit is built independently: Qiskit parses the same OpenQASM text with its
own importer. Every kernel path is exercised: direct kernels (small states), the cache-blocked
stage kernels (forced on small states with tiny blocks), fusion off, and complex64.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_backend, program, random_program, reference_state, run

from hal_workflow.contract import ValidationCode, ValidationError
from hal_workflow.simulator.gates import GATES

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside Qiskit's importer

PATHS = {
    "direct": {},
    "unfused": {"fusion": False},
    "fused-2": {"max_fused_qubits": 2},
    "fused-5": {"max_fused_qubits": 5},
    "blocked": {"blocking_threshold": 4, "block_qubits": 4},
    "blocked-unfused": {"blocking_threshold": 4, "block_qubits": 3, "fusion": False},
    "blocked-fused-3": {"blocking_threshold": 4, "block_qubits": 5, "max_fused_qubits": 3},
}


def _statevector(backend: object, text: str,
                 parameters: dict[str, float] | None = None) -> np.ndarray:
    return run(backend.extension("statevector").statevector(text, parameters))  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("seed", range(4))
def test_random_circuits_match_qiskit(path: str, seed: int) -> None:
    rng = np.random.default_rng(1000 * seed + len(path))
    backend = make_backend(**PATHS[path])
    for num_qubits in (3, 5, 8) if not path.startswith("blocked") else (7, 9):
        text = random_program(rng, num_qubits, num_ops=45)
        ours = _statevector(backend, text)
        expected = reference_state(text)
        np.testing.assert_allclose(ours, expected, atol=1e-10, err_msg=text)


@pytest.mark.parametrize("name", sorted(GATES))
def test_every_gate_alone_and_controlled(sim: object, name: str) -> None:
    """Each standard gate, bare, inverted, raised to a power and controlled, on a random
    input state (so phases and the qubit order inside the gate matter)."""
    definition = GATES[name]
    params = ", ".join(f"{0.3 + 0.41 * i:.2f}" for i in range(definition.num_params))
    gate = f"{name}({params})" if params else name
    width = definition.num_qubits
    operands = ", ".join(f"q[{q}]" for q in reversed(range(width)))
    prep = [f"u3({0.4 + q:.1f}, {0.2 * q:.1f}, {0.7 - q:.1f}) q[{q}];" for q in range(4)]
    variants = [
        f"{gate} {operands};" if width else f"{gate};",
        f"inv @ {gate} {operands};" if width else f"inv @ {gate};",
        f"pow(0.5) @ {gate} {operands};" if width else f"pow(0.5) @ {gate};",
        f"ctrl @ {gate} q[3]{', ' if width else ''}{operands};",
        f"negctrl @ {gate} q[3]{', ' if width else ''}{operands};",
    ]
    for line in variants:
        text = program(4, [*prep, line])
        np.testing.assert_allclose(_statevector(sim, text), reference_state(text), atol=1e-10,
                                   err_msg=line)


def test_many_controls_run_without_dense_expansion(sim: object) -> None:
    """A 9-qubit controlled gate is applied with controls kept apart (no 2^9 matrix)."""
    prep = [f"h q[{q}];" for q in range(10)]
    body = [*prep, "ctrl(8) @ ry(0.7) q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[9];",
            "negctrl(3) @ ctrl(6) @ z q[9], q[8], q[7], q[6], q[5], q[4], q[3], q[2], q[1], q[0];",
            "ctrl(9) @ gphase(0.3) q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7], q[8];"]
    text = program(10, body)
    np.testing.assert_allclose(_statevector(sim, text), reference_state(text), atol=1e-10)


def test_parameters_bound_per_call(sim: object) -> None:
    rng = np.random.default_rng(7)
    text = random_program(rng, 5, 40, inputs=("alpha", "beta"))
    for alpha, beta in [(0.1, -0.7), (2.5, 1.3)]:
        bindings = {"alpha": alpha, "beta": beta}
        np.testing.assert_allclose(_statevector(sim, text, bindings),
                                   reference_state(text, bindings), atol=1e-10)


def test_swaps_are_relabelled_but_state_is_logical(sim: object) -> None:
    body = ["h q[0];", "ry(0.3) q[2];", "swap q[0], q[2];", "cx q[2], q[1];", "swap q[1], q[3];",
            "rz(0.4) q[3];", "swap q[0], q[3];", "ctrl @ swap q[1], q[0], q[2];"]
    text = program(4, body)
    np.testing.assert_allclose(_statevector(sim, text), reference_state(text), atol=1e-12)


def test_global_phase_is_kept(sim: object) -> None:
    text = program(2, ["gphase(0.9);", "h q[0];", "pow(0.5) @ gphase(0.4);", "inv @ rz(0.3) q[1];"])
    np.testing.assert_allclose(_statevector(sim, text), reference_state(text), atol=1e-12)


def test_complex64(sim: object) -> None:
    rng = np.random.default_rng(3)
    for options in ({}, {"blocking_threshold": 4, "block_qubits": 4}):
        backend = make_backend(precision="complex64", **options)
        text = random_program(rng, 8, 50)
        ours = _statevector(backend, text)
        assert ours.dtype == np.complex64
        np.testing.assert_allclose(ours, reference_state(text), atol=1e-5)


def test_probabilities_and_expectation(sim: object) -> None:
    from qiskit import qasm3
    from qiskit.quantum_info import SparsePauliOp, Statevector

    rng = np.random.default_rng(11)
    text = random_program(rng, 5, 40, modifiers=False, custom=False)
    ext = sim.extension("statevector")  # type: ignore[attr-defined]
    reference = Statevector(qasm3.loads(text))
    np.testing.assert_allclose(run(ext.probabilities(text)), reference.probabilities(), atol=1e-12)
    observable = {"ZZIII": 0.5, "IXYZI": -1.25, "YYYYY": 0.3, "IIIIX": 2.0, "IIIII": 0.1}
    expected = reference.expectation_value(SparsePauliOp.from_list(list(observable.items())))
    energy = run(ext.expectation(text, observable))
    assert energy == pytest.approx(float(np.real(expected)), abs=1e-10)


def test_statevector_refuses_mid_circuit_measurement(sim: object) -> None:
    text = program(1, ["h q[0];", "c[0] = measure q[0];", "h q[0];"], num_clbits=1)
    with pytest.raises(ValidationError) as info:
        run(sim.extension("statevector").statevector(text))  # type: ignore[attr-defined]
    assert info.value.issues[0].code is ValidationCode.UNSUPPORTED_FEATURE


def test_wide_state_with_relabelled_swaps(sim: object) -> None:
    """17 qubits: blocked stages, a permuted final layout (parallel reordering kernel) and
    the parallel Pauli expectation kernel."""
    from qiskit import qasm3
    from qiskit.quantum_info import SparsePauliOp, Statevector

    rng = np.random.default_rng(17)
    body = [f"u3({rng.uniform(0, 3):.4f}, {rng.uniform(0, 3):.4f}, 0.1) q[{q}];"
            for q in range(17)]
    body += [f"cx q[{q}], q[{q + 1}];" for q in range(16)]
    body += ["swap q[0], q[16];", "swap q[3], q[9];", "cp(0.7) q[16], q[2];", "swap q[2], q[5];"]
    text = program(17, body)
    np.testing.assert_allclose(_statevector(sim, text), reference_state(text), atol=1e-10)
    label = "XIZ" + "I" * 12 + "YZ"
    expected = Statevector(qasm3.loads(text)).expectation_value(SparsePauliOp(label))
    energy = run(sim.extension("statevector").expectation(text, {label: 2.0}))  # type: ignore[attr-defined]
    assert energy == pytest.approx(2.0 * float(np.real(expected)), abs=1e-10)
