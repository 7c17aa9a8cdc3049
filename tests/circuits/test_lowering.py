"""Lowering: the unitary of the lowered gates equals the one Qiskit builds from the same text."""

from __future__ import annotations

import math

import pytest
import qiskit.qasm2
import qiskit.qasm3
from qiskit.quantum_info import Operator

from hal_workflow.circuits import Circuit
from hal_workflow.circuits.ir import Condition, Expr, GateOp, IfOp, MeasureOp, Modifier
from hal_workflow.contract.errors import CircuitError

H3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'

UNITARY_PROGRAMS = {
    "custom-gate-with-parameters": H3 + """
gate rot(a, b) x { rz(a) x; ry(b / 2) x; rz(-a) x; }
gate ent(a) x, y { h x; cp(a * 2) x, y; rot(a, pi - a) y; }
qubit[3] q;
ent(0.3) q[0], q[1];
ent(1.1) q[2], q[0];
""",
    "inverse-of-custom-gate": H3 + """
gate g(a) x, y { h x; cx x, y; rz(a) y; s x; sx y; }
qubit[2] q;
inv @ g(0.7) q[0], q[1];
""",
    "controlled-custom-gate-with-global-phase": H3 + """
gate g(a) x, y { h x; cp(a) x, y; gphase(0.3); rz(a / 2) y; }
qubit[3] q;
h q;
ctrl @ g(0.4) q[0], q[1], q[2];
negctrl @ g(0.9) q[2], q[0], q[1];
""",
    "stacked-modifiers-on-custom-gate": H3 + """
gate g a, b { h a; t b; cx a, b; ry(0.2) a; }
qubit[4] q;
h q;
ctrl(2) @ inv @ g q[0], q[1], q[2], q[3];
negctrl @ ctrl @ pow(2) @ g q[3], q[2], q[1], q[0];
pow(-3) @ g q[1], q[3];
""",
    "modifiers-on-standard-gates": H3 + """
qubit[3] q;
h q;
ctrl @ rz(0.4) q[0], q[1];
ctrl(2) @ x q[0], q[1], q[2];
negctrl @ h q[2], q[0];
inv @ t q[1];
pow(0.5) @ x q[0];
pow(3) @ sx q[2];
inv @ ctrl @ s q[1], q[2];
ctrl @ gphase(0.5) q[0];
""",
    "nested-custom-gates": H3 + """
gate a1 x { h x; t x; }
gate a2 x, y { a1 x; cx x, y; a1 y; }
gate a3(t) x, y, z { a2 x, y; ctrl @ a2 z, x, y; rz(t) z; }
qubit[3] q;
a3(0.25) q[0], q[1], q[2];
inv @ a3(0.5) q[2], q[0], q[1];
""",
    "global-phase-at-top-level": H3 + "qubit[2] q;\nh q[0];\ngphase(0.7);\ncx q[0], q[1];\n",
    "broadcast-custom-gate": H3 + "gate g x, y { cx x, y; h y; }\nqubit[2] a;\nqubit[2] b;\n"
                                  "h a;\ng a, b;\ng b[0], a;\n",
}


@pytest.mark.parametrize("name", sorted(UNITARY_PROGRAMS))
def test_unitary_matches_qiskit(name: str, to_qiskit) -> None:
    text = UNITARY_PROGRAMS[name]
    ours = Operator(to_qiskit(Circuit.from_qasm(text).lowered))
    assert ours == Operator(qiskit.qasm3.loads(text))  # exact, global phase included


def test_standard_gates_only_remain_after_inlining() -> None:
    lowered = Circuit.from_qasm(UNITARY_PROGRAMS["nested-custom-gates"]).lowered
    assert {op.name for op in lowered.operations} <= {"h", "t", "cx", "rz"}


def test_controlled_custom_gate_keeps_modifiers_on_each_body_gate() -> None:
    lowered = Circuit.from_qasm(UNITARY_PROGRAMS["controlled-custom-gate-with-global-phase"])
    ops = [op for op in lowered.lowered.operations if isinstance(op, GateOp)][3:7]
    ctrl = Modifier("ctrl", 1.0)
    assert ops == [
        GateOp("h", (0, 1), (), (ctrl,), ops[0].line),
        GateOp("cp", (0, 1, 2), (0.4,), (ctrl,), ops[0].line),
        GateOp("gphase", (0,), (0.3,), (ctrl,), ops[0].line),  # a phase on the control
        GateOp("rz", (0, 2), (0.2,), (ctrl,), ops[0].line),
    ]


def test_openqasm2_qelib1_gates_match_qiskit_qasm2(to_qiskit) -> None:
    text = ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[5];\n'
            "h q;\nu(0.1, 0.2, 0.3) q[0];\nsxdg q[1];\ncsx q[1], q[2];\ncu1(0.4) q[2], q[3];\n"
            "cu3(0.5, 0.6, 0.7) q[3], q[4];\nrxx(0.8) q[0], q[4];\nrzz(0.9) q[1], q[3];\n"
            "rccx q[0], q[1], q[2];\nc3x q[0], q[1], q[2], q[3];\n"
            "c3sqrtx q[4], q[3], q[2], q[1];\nc4x q[0], q[1], q[2], q[3], q[4];\n"
            "cu(0.1, 0.2, 0.3, 0.4) q[0], q[1];\n")
    reference = qiskit.qasm2.loads(
        text, custom_instructions=qiskit.qasm2.LEGACY_CUSTOM_INSTRUCTIONS)  # Qiskit's qelib1
    assert Operator(to_qiskit(Circuit.from_qasm(text).lowered)) == Operator(reference)


def test_input_expressions_become_expr_and_evaluate_like_qiskit_parameters(to_qiskit) -> None:
    text = H3 + ("input float[64] theta;\ninput angle phi;\nqubit[2] q;\n"
                 "rx(2 * theta + phi / 3) q[0];\nry(theta * theta - phi) q[1];\n"
                 "cp(-theta) q[0], q[1];\nrz(theta / (1.5 - theta) * pi) q[1];\n")
    circuit = Circuit.from_qasm(text)
    assert circuit.parameters == ("theta", "phi")
    params = [op.params[0] for op in circuit.lowered.operations]
    assert all(isinstance(p, Expr) for p in params)
    assert params[0].free == frozenset({"theta", "phi"})
    bindings = {"theta": 0.37, "phi": -1.2}
    reference = qiskit.qasm3.loads(text)
    by_name = {parameter.name: parameter for parameter in reference.parameters}
    reference = reference.assign_parameters({by_name[k]: v for k, v in bindings.items()})
    assert Operator(to_qiskit(circuit.lowered, bindings)) == Operator(reference)


def test_functions_of_inputs_evaluate_like_python_math() -> None:
    # Qiskit's importer cannot apply functions to parameters, so the reference is math itself.
    text = H3 + ("input float theta;\ninput float phi;\nqubit q;\n"
                 "rz(sin(theta) ** 2 + exp(phi) * mod(theta, 0.3) - arctan(phi) + sqrt(theta) "
                 "+ log(theta) + floor(phi) + ceiling(phi) + 2 ** -phi) q;\n")
    (op,) = Circuit.from_qasm(text).lowered.operations
    theta, phi = 0.81, -0.45
    expected = (math.sin(theta) ** 2 + math.exp(phi) * math.fmod(theta, 0.3) - math.atan(phi)
                + math.sqrt(theta) + math.log(theta) + math.floor(phi) + math.ceil(phi)
                + 2 ** -phi)
    assert op.params[0].evaluate({"theta": theta, "phi": phi}) == pytest.approx(expected,
                                                                                rel=1e-15)


def test_constants_fold_to_floats() -> None:
    circuit = Circuit.from_qasm(H3 + "const float a = pi / 4;\nconst int n = 2 ** 3;\n"
                                     "qubit q;\nrz(a * n - tau + euler) q;\n"
                                     "rx(arccos(0.5) + mod(7, 3) + floor(2.7)) q;\n")
    first, second = circuit.lowered.operations
    assert first.params == (math.pi / 4 * 8 - math.tau + math.e,)
    assert second.params == (math.acos(0.5) + 1.0 + 2.0,)


def test_physical_qubits_set_the_qubit_count() -> None:
    circuit = Circuit.from_qasm(H3 + "h $3;\ncx $3, $1;\n")
    assert circuit.num_qubits == 4
    assert [op.qubits for op in circuit.lowered.operations] == [(3,), (3, 1)]


def test_conditions_lower_to_ifop() -> None:
    text = H3 + """qubit[2] q;
bit[2] c;
bit b;
c = measure q;
b = measure q[0];
if (c == 2) { x q[0]; } else { y q[0]; }
if (c[1]) x q[1];
if (c[1] == 0) z q[1];
if (!b) h q[0];
if (c != 1) { s q[0]; }
if (c) t q[1];
if (true) sx q[0];
"""
    ops = [op for op in Circuit.from_qasm(text).lowered.operations if isinstance(op, IfOp)]
    assert [(op.condition, [g.name for g in op.body], [g.name for g in op.else_body])
            for op in ops] == [
        (Condition((0, 1), 2), ["x"], ["y"]),
        (Condition((1,), 1), ["x"], []),
        (Condition((1,), 0), ["z"], []),
        (Condition((2,), 0), ["h"], []),
        (Condition((0, 1), 1), [], ["s"]),  # != swaps the branches
        (Condition((0, 1), 0), [], ["t"]),  # a register is true when non-zero
    ]
    assert Circuit.from_qasm(text).lowered.operations[-1].name == "sx"  # constant condition


def test_measure_forms() -> None:
    text = H3 + ("qubit[2] q;\nbit[2] c;\nbit[2] d = measure q;\nc[1] = measure q[0];\n"
                 "measure q[1] -> c[0];\n")
    ops = Circuit.from_qasm(text).lowered.operations
    assert [(op.qubit, op.clbit) for op in ops if isinstance(op, MeasureOp)] == \
        [(0, 2), (1, 3), (0, 1), (1, 0)]


def test_user_gates_may_reuse_library_names_unless_the_library_is_included() -> None:
    # Without an include, a definition named like a standard or qelib1 gate is the user's own.
    text = "OPENQASM 3.0;\ngate h a { U(0.1, 0.2, 0.3) a; }\ngate rzz(t) a, b { cx a, b; }\n" \
           "qubit[2] q;\nh q[0];\nrzz(0.5) q[0], q[1];\n"
    assert [op.name for op in Circuit.from_qasm(text).lowered.operations] == ["U", "cx"]
    with pytest.raises(CircuitError, match=r"already defined by qelib1\.inc"):
        Circuit.from_qasm('OPENQASM 2.0;\ninclude "qelib1.inc";\n'
                          "gate rzz(t) a, b { cx a, b; }\n")
