"""The stdgates -> Braket translation and the rebuilding of counts from Braket's measurements.

The translation is checked exactly: Braket's own state-vector simulator runs each translated
standard gate (plain and under ``ctrl @``) on half of a maximally entangled state, which
encodes the whole unitary, and the state must equal Qiskit's for the original program.
"""

from __future__ import annotations

import numpy as np
import pytest

from hal_workflow.circuits import Circuit
from hal_workflow.compilation.braket_program import (
    BRAKET_GATES,
    braket_gate_set,
    counts_from_bits,
    counts_from_measurements,
    from_braket,
    measurement_map,
    to_braket,
    unsupported_features,
)
from hal_workflow.contract import ValidationCode
from hal_workflow.testing import circuits

ALL_MODIFIERS = frozenset({"ctrl", "negctrl", "inv", "pow"})
IONQ_LIKE = ["x", "y", "z", "rx", "ry", "rz", "h", "cnot", "s", "si", "t", "ti", "v", "vi",
             "xx", "yy", "zz", "swap"]


def _choi_program(gate: str, controlled: bool) -> tuple[str, int]:
    """``gate`` (under ``ctrl @`` if asked) on qubits 0..n-1, each entangled with n+i."""
    num_params, arity = circuits.STANDARD_GATES[gate]
    n = arity + int(controlled)
    params = f"({', '.join(str(0.4 + 0.3 * k) for k in range(num_params))})" if num_params else ""
    body = [f"h q[{i}];\ncx q[{i}], q[{n + i}];" for i in range(n)]
    body.append(f"{'ctrl @ ' if controlled else ''}{gate}{params} "
                f"{', '.join(f'q[{i}]' for i in range(n))};")
    return circuits.HEADER + f"qubit[{2 * n}] q;\n" + "\n".join(body) + "\n", 2 * n


@pytest.mark.parametrize("controlled", [False, True], ids=["plain", "ctrl"])
def test_translation_equals_qiskit_exactly(controlled: bool) -> None:
    pytest.importorskip("braket.devices")
    from braket.devices import LocalSimulator
    from braket.ir.openqasm import Program
    from qiskit import qasm3
    from qiskit.quantum_info import Statevector

    simulator = LocalSimulator()
    for gate in circuits.STANDARD_GATES:
        text, width = _choi_program(gate, controlled)
        source = to_braket(Circuit.from_qasm(text)) + "#pragma braket result state_vector\n"
        braket_state = np.asarray(
            simulator.run(Program(source=source), shots=0).result().values[0]
        )
        # Braket orders amplitudes with qubit 0 most significant, Qiskit least significant.
        braket_state = braket_state.reshape([2] * width).transpose(range(width)[::-1]).ravel()
        expected = Statevector(qasm3.loads(text)).data
        assert np.allclose(braket_state, expected, atol=1e-9), (gate, controlled)


def test_translation_replaces_only_the_include() -> None:
    text = circuits.program(3, 3, ["sdg q[0];", "cu(0.1, 0.2, 0.3, 0.4) q[0], q[1];",
                                   "h q[2];", *circuits.measure_all(3)])
    source = to_braket(Circuit.from_qasm(text))
    assert "include" not in source and source.count("\n") == text.count("\n")
    assert "gate sdg a { si a; }" in source and "gate cu(" in source
    assert "gate h" not in source  # Braket's own h is used
    assert source.splitlines()[2:] == text.splitlines()[2:]  # the program itself is untouched


def test_from_braket_restores_the_program() -> None:
    text = circuits.program(2, 2, ["cp(0.3) q[0], q[1];", "sx q[1];", *circuits.measure_all(2)],
                            inputs=["theta"])
    circuit = Circuit.from_qasm(text)
    restored = Circuit.from_qasm(from_braket(to_braket(circuit)))
    assert restored.lowered.operations == circuit.lowered.operations
    assert restored.parameters == ("theta",)


def test_program_without_stdgates_is_unchanged() -> None:
    text = "OPENQASM 3.0;\nqubit[1] q;\nbit[1] c;\nU(0.1, 0.2, 0.3) q[0];\nc[0] = measure q[0];\n"
    assert to_braket(Circuit.from_qasm(text)) == text


# -- gate sets and unsupported features ------------------------------------------------------
def test_gate_set_of_a_full_simulator() -> None:
    ops = {op for _, needs in BRAKET_GATES.values() for op in needs} - {"ctrl"}
    assert braket_gate_set(ops, {"ctrl"}) == frozenset(BRAKET_GATES)


def test_gate_set_of_a_restricted_device() -> None:
    gates = braket_gate_set(IONQ_LIKE)
    assert gates == {"x", "y", "z", "rx", "ry", "rz", "h", "s", "sdg", "t", "tdg", "sx", "cx",
                     "CX", "swap"}
    assert "crx" in braket_gate_set([*IONQ_LIKE, "GPhase", "U"], ["ctrl"])


def test_unsupported_gates_and_modifiers() -> None:
    text = circuits.program(2, 2, ["cp(0.1) q[0], q[1];", "inv @ s q[0];",
                                   *circuits.measure_all(2)])
    issues = unsupported_features(Circuit.from_qasm(text), braket_gate_set(IONQ_LIKE),
                                  frozenset())
    codes = {i.code: i.message for i in issues}
    assert "cp" in codes[ValidationCode.GATE_NOT_SUPPORTED]
    assert "inv" in codes[ValidationCode.UNSUPPORTED_FEATURE]
    assert not unsupported_features(Circuit.from_qasm(text), frozenset(BRAKET_GATES),
                                    ALL_MODIFIERS)


def test_classical_control_is_unsupported() -> None:
    text = circuits.program(2, 2, ["c[0] = measure q[0];", "if (c[0]) { x q[1]; }",
                                   "c[1] = measure q[1];"])
    issues = unsupported_features(Circuit.from_qasm(text), frozenset(BRAKET_GATES),
                                  ALL_MODIFIERS)
    assert [i.code for i in issues] == [ValidationCode.UNSUPPORTED_FEATURE]
    assert "classically controlled" in issues[0].message


def test_measuring_twice_at_the_end_is_fine() -> None:
    text = circuits.program(1, 2, ["x q[0];", "c[0] = measure q[0];", "c[1] = measure q[0];"])
    assert not unsupported_features(Circuit.from_qasm(text), frozenset(BRAKET_GATES),
                                    ALL_MODIFIERS)


# -- measurements -> counts ------------------------------------------------------------------
def test_measurement_map_follows_clbits() -> None:
    text = circuits.program(3, 4, ["c[2] = measure q[0];", "c[0] = measure q[2];",
                                   "c[0] = measure q[1];"])
    assert measurement_map(Circuit.from_qasm(text).lowered) == (1, None, 0, None)


def test_counts_from_permuted_columns() -> None:
    # Braket measured qubits [2, 0]; clbit 0 <- qubit 0, clbit 1 <- never, clbit 2 <- qubit 2.
    measurements = np.array([[1, 0], [1, 0], [0, 1]])
    counts = counts_from_measurements([2, 0], measurements, (0, None, 2))
    assert counts == {"100": 2, "001": 1}


def test_counts_need_every_source_qubit() -> None:
    with pytest.raises(ValueError, match="qubit 3"):
        counts_from_measurements([0], np.zeros((2, 1)), (3,))


def test_counts_without_classical_bits() -> None:
    assert counts_from_bits(np.zeros((5, 0))) == {"": 5}
