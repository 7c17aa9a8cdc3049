"""The Qiskit bridge: OpenQASM 3 in and out, transpilation, Target -> Capabilities/calibration.

References are independent of the code under test: Qiskit's ``Operator`` for equivalence, and
the fake backends' own ``BackendProperties`` for calibration values.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

pytest.importorskip("qiskit_ibm_runtime")

from qiskit import QuantumCircuit, qasm3
from qiskit.circuit.library import ECRGate, RZGate, SXGate, XGate
from qiskit.quantum_info import Operator
from qiskit.transpiler import InstructionProperties, Target
from qiskit_aer import AerSimulator
from qiskit_ibm_runtime.fake_provider import FakeManilaV2, FakeSherbrooke

from hal_workflow.circuits import STANDARD_GATES, Circuit
from hal_workflow.compilation.qiskit_bridge import (
    calibration_from_target,
    capabilities_from_target,
    from_qiskit,
    openqasm_gate_name,
    qiskit_gate_name,
    to_qiskit,
    transpile_for,
)
from hal_workflow.compilation.qiskit_circuit import lowered_to_qiskit
from hal_workflow.contract import CircuitError, ValidationCode, ValidationError
from hal_workflow.testing import circuits

HEADER = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'
MIXED = HEADER + (
    "qubit[3] q;\nbit[3] c;\n"
    "h q[0];\ncx q[0], q[1];\nry(0.3) q[2];\nccx q[0], q[2], q[1];\ncp(0.7) q[2], q[0];\n"
    "u3(0.1, 0.2, 0.3) q[1];\nswap q[1], q[2];\n"
)


def unitary(qc: QuantumCircuit, width: int | None = None) -> Operator:
    """The unitary of ``qc`` without its final measurements, padded with identities (ancillas
    added by a layout come last, as ``Operator.from_circuit`` orders them)."""
    operator = Operator(qc.remove_final_measurements(inplace=False))
    extra = (width or qc.num_qubits) - qc.num_qubits
    return Operator(np.eye(2**extra)).tensor(operator) if extra else operator


# -- OpenQASM 3 in and out --------------------------------------------------------------------
def test_round_trip_keeps_the_unitary() -> None:
    qc = to_qiskit(MIXED)
    again = to_qiskit(from_qiskit(qc))
    assert unitary(again).equiv(unitary(qc))
    assert unitary(qc).equiv(unitary(to_qiskit(Circuit.from_qasm(MIXED))))


def test_inputs_become_parameters() -> None:
    qc = to_qiskit(circuits.rotation("theta"))
    assert [p.name for p in qc.parameters] == ["theta"]
    assert "input float[64] theta;" in from_qiskit(qc)


def test_openqasm2_is_accepted() -> None:
    text = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\n'
    qc = to_qiskit(text)
    assert unitary(qc).equiv(unitary(qasm3.loads(circuits.bell()[0])))


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (HEADER + "qubit[2] q;\nfoo q[0];\n", 4),  # unknown gate
        ("OPENQASM 3.0;\nqubit[2 q;\n", 2),  # syntax error
        (HEADER + "qubit[1] q;\nh q[0]\n", 4),  # missing semicolon
    ],
    ids=["unknown-gate", "syntax", "missing-semicolon"],
)
def test_errors_are_circuit_errors_with_line(text: str, line: int) -> None:
    with pytest.raises(CircuitError) as info:
        to_qiskit(text)
    assert info.value.line == line
    assert info.value.detail


MODIFIERS = ["", "ctrl @ ", "negctrl @ ", "inv @ ", "pow(0.5) @ ", "ctrl @ inv @ "]


def from_ir(text: str) -> QuantumCircuit:
    """The circuit built from our lowered IR (the path taken when Qiskit's importer fails)."""
    return lowered_to_qiskit(Circuit.from_qasm(text).lowered)


@pytest.mark.parametrize("modifier", MODIFIERS)
def test_ir_gates_match_qiskits_importer(modifier: str) -> None:
    for gate, (num_params, arity) in circuits.STANDARD_GATES.items():
        width = arity + modifier.count("ctrl")
        values = ", ".join(str(0.3 + 0.2 * k) for k in range(num_params))
        params = f"({values})" if num_params else ""
        text = HEADER + f"qubit[{width}] q;\n{modifier}{gate}{params} " + ", ".join(
            f"q[{i}]" for i in range(width)) + ";\n"
        ours, reference = Operator(from_ir(text)), Operator(qasm3.loads(text))
        assert np.allclose(ours.data, reference.data), f"{modifier}{gate}"


def test_bound_circuits_with_constants() -> None:
    # Qiskit's importer rejects `const`; Circuit.bind writes them.
    template = circuits.program(2, 2, ["rx(2 * a + sin(a)) q[0];", "ry(a / 2) q[1];",
                                       *circuits.measure_all(2)], inputs=["a"])
    bound = Circuit.from_qasm(template).bind({"a": 0.7})
    assert "const" in bound.qasm
    expected = QuantumCircuit(2)
    expected.rx(2 * 0.7 + math.sin(0.7), 0)
    expected.ry(0.7 / 2, 1)
    assert unitary(to_qiskit(bound)).equiv(unitary(expected))
    symbolic = to_qiskit(template)  # the expression stays symbolic while unbound
    assert unitary(symbolic.assign_parameters({"a": 0.7})).equiv(unitary(expected))


def test_unexpressible_parameter_functions() -> None:
    text = circuits.program(1, 1, ["rx(floor(a)) q[0];"], inputs=["a"])
    with pytest.raises(CircuitError, match="floor"):
        to_qiskit(text)
    assert len(to_qiskit(Circuit.from_qasm(text).bind({"a": 1.5})).parameters) == 0


def test_custom_gates_keep_their_names() -> None:
    # As Qiskit exports a native gate, and as an executed program is read back.
    text = HEADER + (
        "gate r(p0, p1) a { U(p0, p1 - pi / 2, pi / 2 - p1) a; }\n"
        "qubit[2] q;\nr(0.1, 0.2) q[0];\ncz q[0], q[1];\n"
    )
    qc = to_qiskit(text)
    assert set(qc.count_ops()) == {"r", "cz"}
    reference = QuantumCircuit(2)
    reference.r(0.1, 0.2, 0)
    reference.cz(0, 1)
    assert unitary(qc).equiv(unitary(reference))
    assert unitary(from_ir(text)).equiv(unitary(reference))  # the IR inlines r


@pytest.mark.parametrize("names", [("theta", "phi"), ("b", "a"), ("x2", "x10")])
def test_gate_parameters_in_unsorted_order(names: tuple[str, str]) -> None:
    # Qiskit's importer would bind these by sorted name: built from the IR instead.
    first, second = names
    text = HEADER + (
        f"gate g({first}, {second}) t {{ U({first}, {second} - pi / 2, pi / 2 - {second}) t; }}\n"
        "qubit[1] q;\ng(0.1, 0.2) q[0];\n"
    )
    reference = QuantumCircuit(1)
    reference.r(0.1, 0.2, 0)
    assert unitary(to_qiskit(text)).equiv(unitary(reference))


@pytest.mark.parametrize("convert", [to_qiskit, from_ir], ids=["importer", "ir"])
def test_registers_and_classical_control(convert: Any) -> None:
    text = HEADER + (
        "qubit[3] q;\nbit[2] c;\nbit[1] d;\n"
        "x q[0];\nc[0] = measure q[0];\n"
        "if (c[0]) { x q[1]; } else { h q[1]; }\n"
        "c[1] = measure q[1];\n"
        "if (c == 3) { x q[2]; }\n"  # a condition over two bits
        "d[0] = measure q[2];\n"
    )
    qc = convert(text)
    assert [(r.name, r.size) for r in qc.cregs] == [("c", 2), ("d", 1)]
    assert [(r.name, r.size) for r in qc.qregs] == [("q", 3)]
    counts = AerSimulator().run(qc, shots=20, seed_simulator=1).result().get_counts()
    assert counts == {"1 11": 20}  # d c, as Qiskit prints registers


def test_gate_names_map_both_ways() -> None:
    assert openqasm_gate_name("u") == "U" and qiskit_gate_name("U") == "u"
    assert qiskit_gate_name("CX") == "cx" and qiskit_gate_name("cphase") == "cp"
    assert openqasm_gate_name("ecr") == "ecr"  # native names stay


# -- transpilation -----------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 7])
def test_transpiled_to_target_is_equivalent_up_to_layout(seed: int) -> None:
    target = FakeManilaV2().target
    qc = to_qiskit(MIXED)
    isa = transpile_for(qc, target=target, seed=seed)
    assert set(isa.count_ops()) - {"measure", "barrier"} <= set(target.operation_names)
    # from_circuit undoes the initial layout and the routing permutation
    assert Operator.from_circuit(isa).equiv(unitary(qc, isa.num_qubits))


def test_transpiled_to_basis_and_coupling_map() -> None:
    qc = to_qiskit(MIXED)
    isa = transpile_for(qc, basis_gates=["U", "cz"], coupling_map=[(0, 1), (1, 2)], seed=3)
    assert set(isa.count_ops()) <= {"u", "cz"}
    for instruction in isa.data:
        if len(instruction.qubits) == 2:
            pair = {isa.find_bit(q).index for q in instruction.qubits}
            assert pair in ({0, 1}, {1, 2}), pair
    assert Operator.from_circuit(isa).equiv(unitary(qc))


def test_too_wide_for_the_target() -> None:
    with pytest.raises(ValidationError) as info:
        transpile_for(circuits.wide(6), target=FakeManilaV2().target)
    assert [i.code for i in info.value.issues] == [ValidationCode.TOO_MANY_QUBITS]
    assert "6" in str(info.value) and "5" in str(info.value)


# -- Target -> Capabilities ------------------------------------------------------------------
def test_capabilities_of_manila() -> None:
    backend = FakeManilaV2()
    caps = capabilities_from_target("manila", backend.target, max_shots=1234, simulator=False)
    assert caps.num_qubits == 5 and caps.max_shots == 1234 and not caps.simulator
    assert caps.gate_set == {"cx", "id", "rz", "sx", "x"}  # no measure/delay/control flow
    assert set(caps.coupling_map) == set(backend.coupling_map.get_edges())
    assert caps.supports_reset and caps.supports_mid_circuit_measurement


def test_capabilities_of_sherbrooke_are_directed() -> None:
    backend = FakeSherbrooke()
    caps = capabilities_from_target("sherbrooke", backend.target)
    assert caps.num_qubits == 127 and "ecr" in caps.gate_set and "cx" not in caps.gate_set
    edges = set(backend.coupling_map.get_edges())
    assert set(caps.coupling_map) == edges
    a, b = next(iter(edges))
    assert ((b, a) in caps.coupling_map) == ((b, a) in edges)  # direction kept, not symmetrised
    assert any((y, x) not in edges for x, y in edges)


def test_transpiling_adapters_accept_every_standard_gate() -> None:
    caps = capabilities_from_target("m", FakeManilaV2().target, transpiles=True)
    assert set(STANDARD_GATES) | {"cx", "sx", "rz", "x", "id"} == caps.gate_set


def test_all_to_all_target_has_no_coupling_map() -> None:
    caps = capabilities_from_target("aer", AerSimulator().target)
    assert caps.coupling_map is None and {"U", "cx", "h"} <= caps.gate_set


def test_unknown_override_is_rejected() -> None:
    with pytest.raises(TypeError, match="colour"):
        capabilities_from_target("m", FakeManilaV2().target, colour="red")


# -- Target -> CalibrationSnapshot ---------------------------------------------------------
def test_calibration_of_manila_matches_its_properties() -> None:
    backend = FakeManilaV2()
    properties = backend.properties()
    snapshot = calibration_from_target(backend.target, timestamp=123.0, calibration_id="v1")
    assert (snapshot.timestamp, snapshot.calibration_id) == (123.0, "v1")
    for qubit in snapshot.qubits:
        assert qubit.t1_s == pytest.approx(properties.t1(qubit.qubit))
        assert qubit.t2_s == pytest.approx(properties.t2(qubit.qubit))
        assert qubit.frequency_hz == pytest.approx(properties.frequency(qubit.qubit))
        assert qubit.readout_error == pytest.approx(properties.readout_error(qubit.qubit))
    for gate in snapshot.gates:
        assert gate.error == pytest.approx(properties.gate_error(gate.gate, list(gate.qubits)))
        assert gate.duration_s == pytest.approx(
            properties.gate_length(gate.gate, list(gate.qubits))
        )
    assert {g.gate for g in snapshot.gates} == {"cx", "id", "rz", "sx", "x"}


def test_calibration_of_a_sparse_target() -> None:
    target = Target(num_qubits=2)
    target.add_instruction(SXGate(), {(0,): InstructionProperties(error=1e-3, duration=None),
                                      (1,): None})
    target.add_instruction(XGate(), {(0,): InstructionProperties(error=float("nan"))})
    target.add_instruction(RZGate(math.pi / 2), {(0,): None, (1,): None})
    target.add_instruction(ECRGate(), {(0, 1): InstructionProperties(error=0.01, duration=5e-7)})
    snapshot = calibration_from_target(target)
    assert snapshot.timestamp > 0
    assert [(q.qubit, q.t1_s, q.readout_error) for q in snapshot.qubits] == [
        (0, None, None), (1, None, None)]
    assert [(g.gate, g.qubits, g.error, g.duration_s) for g in snapshot.gates] == [
        ("ecr", (0, 1), 0.01, 5e-7), ("sx", (0,), 1e-3, None)]  # NaN and empty entries dropped
