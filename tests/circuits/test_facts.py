"""Qubit and bit counts, gate counts and depth, checked against Qiskit's importers."""

from __future__ import annotations

from dataclasses import replace

import pytest
import qiskit.qasm2
import qiskit.qasm3

from hal_workflow.circuits import Circuit

H3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'
H2 = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'

# Programs Qiskit's OpenQASM 3 importer reads as flat circuits.
FLAT_PROGRAMS = {
    "bell": H3 + "qubit[2] q;\nbit[2] c;\nh q[0];\ncx q[0], q[1];\nc = measure q;\n",
    "broadcast": H3 + "qubit[3] q;\nqubit[3] r;\nbit[3] c;\nh q;\ncx q, r;\nrz(0.3) r[1];\n"
                      "c = measure r;\n",
    "slices-and-sets": H3 + "qubit[4] q;\nh q[1:2];\nx q[{0, 3}];\ncx q[0:1], q[2:3];\n"
                            "swap q[-1], q[0];\n",
    "barriers": H3 + "qubit[3] q;\nbit[3] c;\nh q[0];\nbarrier;\nx q[2];\nbarrier q[0], q[1];\n"
                     "cx q[0], q[1];\nc = measure q;\n",
    "reset-and-remeasure": H3 + "qubit[2] q;\nbit[2] c;\nh q;\nc[0] = measure q[0];\n"
                                "reset q[0];\ncx q[1], q[0];\nc[1] = measure q[0];\n",
    "physical-qubits": H3 + "h $0;\ncx $0, $2;\nrz(pi / 4) $2;\n",
    "every-standard-gate": H3 + "qubit[3] q;\n"
        "p(0.1) q[0]; x q[0]; y q[1]; z q[2]; h q[0]; s q[1]; sdg q[2]; t q[0]; tdg q[1];\n"
        "sx q[2]; rx(0.2) q[0]; ry(0.3) q[1]; rz(0.4) q[2]; cx q[0], q[1]; cy q[1], q[2];\n"
        "cz q[2], q[0]; cp(0.5) q[0], q[1]; crx(0.6) q[1], q[2]; cry(0.7) q[2], q[0];\n"
        "crz(0.8) q[0], q[1]; ch q[1], q[2]; swap q[2], q[0]; ccx q[0], q[1], q[2];\n"
        "cswap q[1], q[2], q[0]; cu(0.1, 0.2, 0.3, 0.4) q[0], q[2];\n"
        "u1(0.9) q[0]; u2(0.1, 0.2) q[1]; u3(0.1, 0.2, 0.3) q[2]; U(0.3, 0.2, 0.1) q[0];\n",
    "conditional": H3 + "qubit[2] q;\nbit[2] c;\nh q[0];\nc[0] = measure q[0];\n"
                        "if (c[0]) { x q[1]; }\nh q[0];\nc[1] = measure q[1];\n",
    "register-condition": H3 + "qubit[2] q;\nbit[2] c;\nh q;\nc = measure q;\n"
                               "if (c == 2) { x q[0]; z q[1]; } else { y q[0]; }\n",
}

# Qiskit spells U as "u" and the stdgates aliases with their canonical names.
QISKIT_NAMES = {"u": "U", "if_else": None}


def qiskit_counts(circuit: qiskit.QuantumCircuit) -> dict[str, int]:
    counts: dict[str, int] = {}
    for instruction in circuit.data:
        operation = instruction.operation
        blocks = getattr(operation, "blocks", ())
        if blocks:  # count what the branches contain, as gate_counts does
            for block in blocks:
                for name, count in qiskit_counts(block).items():
                    counts[name] = counts.get(name, 0) + count
            continue
        name = QISKIT_NAMES.get(operation.name, operation.name)
        counts[name] = counts.get(name, 0) + 1
    return counts


@pytest.mark.parametrize("name", sorted(FLAT_PROGRAMS))
def test_facts_match_qiskit_importer(name: str) -> None:
    text = FLAT_PROGRAMS[name]
    ours = Circuit.from_qasm(text)
    reference = qiskit.qasm3.loads(text)
    assert ours.num_qubits == reference.num_qubits
    assert ours.num_clbits == reference.num_clbits
    assert ours.gate_counts == qiskit_counts(reference)
    assert ours.depth == reference.depth()


@pytest.mark.parametrize("name, text, unrolled", [
    ("const-and-loop",
     H3 + "const int n = 3;\nqubit[n] q;\nfor int i in [0:n - 2] { cx q[i], q[i + 1]; }\n"
          "for uint k in {2, 0} { rx(k * pi / n) q[k]; }\n",
     H3 + "qubit[3] q;\ncx q[0], q[1];\ncx q[1], q[2];\nrx(2 * pi / 3) q[2];\nrx(0) q[0];\n"),
    ("stepped-range",
     H3 + "qubit[6] q;\nfor int i in [4:-2:0] { h q[i]; }\nfor int i in [1:2:5] { x q[i]; }\n",
     H3 + "qubit[6] q;\nh q[4];\nh q[2];\nh q[0];\nx q[1];\nx q[3];\nx q[5];\n"),
    ("old-style-and-arrow",
     H3 + "qreg q[2];\ncreg c[2];\nh q[0];\nCX q[0], q[1];\nmeasure q -> c;\n",
     H3 + "qubit[2] q;\nbit[2] c;\nh q[0];\ncx q[0], q[1];\nc = measure q;\n"),
])
def test_loops_and_constants_match_the_unrolled_program(name: str, text: str,
                                                         unrolled: str) -> None:
    ours = Circuit.from_qasm(text)
    reference = qiskit.qasm3.loads(unrolled)
    assert ours.gate_counts == qiskit_counts(reference)
    assert ours.depth == reference.depth()
    assert without_lines(ours) == without_lines(Circuit.from_qasm(unrolled))


def without_lines(circuit: Circuit) -> list[object]:
    return [replace(op, line=None) for op in circuit.lowered.operations]


@pytest.mark.parametrize("text", [
    H2 + "qreg q[3];\ncreg c[3];\nh q[0];\ncx q[0], q[1];\nu3(0.1, 0.2, 0.3) q[2];\n"
         "u2(0.4, 0.5) q[1];\nu1(0.6) q[0];\nbarrier q;\nmeasure q -> c;\n",
    H2 + "qreg a[2];\nqreg b[2];\ncreg c[2];\nU(0.1, 0.2, 0.3) a[0];\nCX a[0], b[1];\n"
         "t b[0];\nmeasure b -> c;\nif (c == 1) x a[1];\n",
])
def test_openqasm2_facts_match_qiskit_qasm2(text: str) -> None:
    ours = Circuit.from_qasm(text)
    reference = qiskit.qasm2.loads(text)
    assert (ours.num_qubits, ours.num_clbits) == (reference.num_qubits, reference.num_clbits)
    assert ours.gate_counts == qiskit_counts(reference)
    assert ours.depth == reference.depth()


def test_registers_are_flattened_in_declaration_order() -> None:
    circuit = Circuit.from_qasm(H3 + "qubit[2] a;\nbit b;\nqubit c;\nbit[3] d;\n"
                                     "x c;\nd[2] = measure a[1];\nb = measure c;\n")
    lowered = circuit.lowered
    assert lowered.qubit_registers == (("a", 0, 2), ("c", 2, 1))
    assert lowered.clbit_registers == (("b", 0, 1), ("d", 1, 3))
    assert [(op.qubit, op.clbit) for op in lowered.operations[1:]] == [(1, 3), (2, 0)]


def test_custom_gates_count_their_inlined_gates_and_modifiers_keep_the_name() -> None:
    circuit = Circuit.from_qasm(H3 + "gate bell a, b { h a; cx a, b; }\nqubit[3] q;\n"
                                     "bell q[0], q[1];\nctrl @ bell q[2], q[0], q[1];\n"
                                     "inv @ s q[0];\npow(2) @ t q[1];\n")
    assert circuit.gate_counts == {"h": 2, "cx": 2, "s": 1, "t": 1}


def test_operations_record_their_line() -> None:
    text = H3 + "gate g a { h a; x a; }\nqubit[2] q;\nbit[2] c;\ng q[0];\n\ncx q[0], q[1];\n" \
                "c = measure q;\n"
    lines = text.splitlines()

    def line_of(statement: str) -> int:
        return lines.index(statement) + 1

    # inlined gates carry the line of the call
    expected = [line_of("g q[0];")] * 2 + [line_of("cx q[0], q[1];")] + \
        [line_of("c = measure q;")] * 2
    assert [op.line for op in Circuit.from_qasm(text).lowered.operations] == expected
