"""The Circuit object: identity, pickling, files, caching, binding and the light import."""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import qiskit.qasm3
from qiskit.quantum_info import Operator, Statevector

from hal_workflow.circuits import Circuit, evaluate_param, library
from hal_workflow.circuits.ir import Expr
from hal_workflow.contract.errors import CircuitError

H3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'
PARAMETRIC = H3 + """input float[64] theta;
input angle phi;
input int k;
gate rot(a) x { rz(a / 2) x; ry(-a) x; }
qubit[2] q;
bit[2] c;
rx(theta * 2 + phi) q[0];
ry(phi ** 2 - theta) q[1];
for int i in [0:1] { rz(k * theta / 3) q[i]; }
cx q[0], q[1];
rot(theta + 1) q[1];
c = measure q;
"""


# -- identity and transport -------------------------------------------------------------------


def test_qasm_round_trips_to_an_equal_circuit() -> None:
    circuit = Circuit.from_qasm(PARAMETRIC)
    again = Circuit.from_qasm(circuit.qasm)
    assert again == circuit and hash(again) == hash(circuit)
    assert again.lowered == circuit.lowered
    assert Circuit.from_qasm(PARAMETRIC.replace("cx", "cz")) != circuit


def test_pickle_carries_text_and_source_and_relowers() -> None:
    circuit = Circuit.from_qasm(PARAMETRIC, source="ansatz.qasm")
    payload = pickle.dumps(circuit)
    assert len(payload) < len(PARAMETRIC) + 200  # the text, not the lowered IR
    restored = pickle.loads(payload)
    assert restored == circuit and restored.source == "ansatz.qasm"
    assert restored.lowered == circuit.lowered


def test_bound_circuit_pickles_and_relowers_to_the_same_ir() -> None:
    bound = Circuit.from_qasm(PARAMETRIC).bind({"theta": 0.25, "k": 2})
    restored = pickle.loads(pickle.dumps(bound))
    assert restored == bound
    assert restored.parameters == ("phi",)
    assert restored.lowered == bound.lowered


def test_repr_is_short_and_informative() -> None:
    text = repr(Circuit.from_qasm(PARAMETRIC, source="ansatz.qasm"))
    assert "ansatz.qasm" in text and "2 qubits" in text and "theta" in text
    assert "\n" not in text and len(text) < 150


def test_same_text_reuses_the_cached_lowering() -> None:
    text = H3 + "qubit q;\nh q;\n// unique text for this test\n"
    assert Circuit.from_qasm(text).lowered is Circuit.from_qasm(text).lowered


def test_from_file_reads_and_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bell.qasm"
    path.write_text(library.bell().qasm)
    circuit = Circuit.from_file(path)
    assert circuit.source == str(path) and circuit == library.bell()
    with pytest.raises(CircuitError, match="cannot read file") as info:
        Circuit.from_file(tmp_path / "missing.qasm")
    assert info.value.source == str(tmp_path / "missing.qasm")


def test_import_is_light() -> None:
    code = "import sys, json; import hal_workflow.circuits; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True)
    modules = json.loads(out.stdout)
    heavy = {"openqasm3", "antlr4", "pyqir", "qiskit", "numpy"}
    assert heavy.isdisjoint(name.split(".")[0] for name in modules)


# -- binding ----------------------------------------------------------------------------------


def test_parameters_are_inputs_in_declaration_order() -> None:
    assert Circuit.from_qasm(PARAMETRIC).parameters == ("theta", "phi", "k")


def test_bind_all_gives_numbers_equal_to_relowering_the_bound_text() -> None:
    values = {"theta": 0.3, "phi": -1.25, "k": 3}
    bound = Circuit.from_qasm(PARAMETRIC).bind(values)
    assert bound.parameters == ()
    assert "const float[64] theta = 0.3;" in bound.qasm
    assert "const int k = 3;" in bound.qasm
    assert "input" not in bound.qasm
    relowered = Circuit.from_qasm(bound.qasm)
    assert relowered.lowered == bound.lowered  # floats identical, not just close
    angles = [op.params[0] for op in bound.lowered.operations if getattr(op, "params", ())]
    assert angles == [0.3 * 2 + -1.25, (-1.25) ** 2 - 0.3, 3 * 0.3 / 3, 3 * 0.3 / 3,
                      (0.3 + 1) / 2, -(0.3 + 1)]


def test_partial_binding_keeps_the_rest_free() -> None:
    circuit = Circuit.from_qasm(PARAMETRIC)
    partial = circuit.bind({"phi": -0.5})
    assert partial.parameters == ("theta", "k")
    first = partial.lowered.operations[0].params[0]
    assert isinstance(first, Expr) and first.free == frozenset({"theta"})
    rest = {"theta": 0.7, "k": 1}
    full = partial.bind(rest)
    assert full == circuit.bind({"phi": -0.5, **rest})
    assert full.lowered == Circuit.from_qasm(full.qasm).lowered
    for op, reference in zip(partial.lowered.operations, full.lowered.operations, strict=True):
        if getattr(op, "params", ()):
            assert evaluate_param(op.params[0], rest) == pytest.approx(reference.params[0],
                                                                        rel=1e-15)


def test_bound_circuit_matches_qiskit_with_assigned_parameters(to_qiskit) -> None:
    text = H3 + "input float a;\ninput float b;\nqubit[2] q;\nrx(a) q[0];\ncrz(a - b) q[0], q[1];\n"
    values = {"a": 0.4, "b": 1.3}
    bound = Circuit.from_qasm(text).bind(values)
    reference = qiskit.qasm3.loads(text)
    reference = reference.assign_parameters({p: values[p.name] for p in reference.parameters})
    assert Operator(to_qiskit(bound.lowered)) == Operator(reference)
    assert Circuit.from_qasm(bound.qasm).lowered == bound.lowered


@pytest.mark.parametrize("values, message", [
    ({"gamma": 1.0}, "unknown parameter(s) gamma (free parameters: theta, phi, k)"),
    ({"theta": "0.1"}, "parameter 'theta' must be a real number"),
    ({"theta": math.inf}, "parameter 'theta' must be finite"),
    ({"k": 1.5}, "parameter 'k' is an integer input"),
])
def test_bind_rejects_bad_input(values: dict[str, object], message: str) -> None:
    with pytest.raises(CircuitError) as info:
        Circuit.from_qasm(PARAMETRIC).bind(values)
    assert message in str(info.value)


def test_binding_a_bound_name_again_is_an_error() -> None:
    with pytest.raises(CircuitError, match="unknown parameter"):
        Circuit.from_qasm(PARAMETRIC).bind({"theta": 1.0}).bind({"theta": 2.0})


def test_bind_accepts_numpy_numbers() -> None:
    bound = Circuit.from_qasm(PARAMETRIC).bind({"theta": np.float64(0.5), "phi": np.float32(1),
                                                "k": np.int64(2)})
    assert bound.parameters == ()


# -- library ----------------------------------------------------------------------------------


def test_bell_and_ghz_states() -> None:
    for n, circuit in [(2, Circuit.bell()), (2, library.bell()), (5, Circuit.ghz(5))]:
        reference = qiskit.qasm3.loads(circuit.qasm)
        reference.remove_final_measurements()
        probabilities = Statevector(reference).probabilities_dict()
        assert probabilities == pytest.approx({"0" * n: 0.5, "1" * n: 0.5})
        assert (circuit.num_qubits, circuit.num_clbits) == (n, n)
        assert circuit.gate_counts["measure"] == n


def test_qft_is_the_discrete_fourier_transform(to_qiskit) -> None:
    n = 4
    size = 2 ** n
    omega = np.exp(2j * np.pi / size)
    dft = np.array([[omega ** (j * k) for k in range(size)] for j in range(size)]) / np.sqrt(size)
    # The textbook circuit treats q[0] as the most significant bit; Qiskit's matrices use it as
    # the least significant one, which reverses the bit order on both sides.
    reverse = [int(format(i, f"0{n}b")[::-1], 2) for i in range(size)]
    expected = dft[np.ix_(reverse, reverse)]
    circuit = library.qft(n, measure=False)
    assert np.allclose(Operator(to_qiskit(circuit.lowered)).data, expected)
    assert library.qft(n).gate_counts["measure"] == n


def test_random_layered_is_reproducible_and_layered() -> None:
    first = library.random_layered(5, 4, seed=7)
    assert first == library.random_layered(5, 4, seed=7)
    assert first != library.random_layered(5, 4, seed=8)
    assert first.gate_counts == {"U": 5 * 4, "cx": 2 + 2 + 2 + 2, "measure": 5}
    assert first.depth == 4 * 2 + 1


def test_hardware_efficient_ansatz_has_named_free_parameters(to_qiskit) -> None:
    circuit = library.hardware_efficient_ansatz(3, 2, measure=False)
    assert circuit.parameters == tuple(f"theta_{i}" for i in range(2 * 3 * 3))
    values = {name: 0.1 * i for i, name in enumerate(circuit.parameters)}
    reference = qiskit.qasm3.loads(circuit.qasm)
    reference = reference.assign_parameters({p: values[p.name] for p in reference.parameters})
    assert Operator(to_qiskit(circuit.bind(values).lowered)) == Operator(reference)


@pytest.mark.parametrize("call", [lambda: library.ghz(0), lambda: library.qft(-1),
                                  lambda: library.random_layered(2, -1)])
def test_library_rejects_bad_sizes(call) -> None:
    with pytest.raises(CircuitError, match="needs an integer"):
        call()
