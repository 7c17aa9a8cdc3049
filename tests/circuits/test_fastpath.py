"""The straight-line fast path lowers exactly as the full parser does, or steps aside.

Every program is lowered twice, by :func:`lower_fast` and by the ``openqasm3`` reference parser
followed by the same lowering pass; the two :class:`Lowering` s (operations, parameters,
registers, input declarations and their text offsets) must be equal. Programs in the fast subset
must actually take the fast path, and anything wrong must make it step aside so that the full
parser reports the error.
"""

from __future__ import annotations

import math

import pytest
import qiskit.qasm2
import qiskit.qasm3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit.circuit.random import random_circuit
from test_lowering import UNITARY_PROGRAMS
from test_malformed import CORPUS

from hal_workflow.circuits import Circuit, library
from hal_workflow.circuits.fastpath import lower_fast
from hal_workflow.circuits.gates import STANDARD_GATES
from hal_workflow.circuits.limits import Limits
from hal_workflow.circuits.lowering import Lowering, lower_program
from hal_workflow.circuits.parsing import parse
from hal_workflow.contract.errors import CircuitError

LIMITS = Limits()


def full(text: str) -> Lowering:
    return lower_program(parse(text), text, None, LIMITS)


def assert_fast_equals_full(text: str) -> None:
    fast = lower_fast(text, None, LIMITS)
    assert fast is not None, "expected the fast path to take this program"
    assert fast == full(text)


def qiskit_dumps() -> list[tuple[str, str]]:
    programs = []
    for seed in range(24):
        circuit = random_circuit(5, 6, measure=seed % 2 == 0, seed=seed)
        programs.append((f"qasm2-{seed}", qiskit.qasm2.dumps(circuit)))
        programs.append((f"qasm3-{seed}", qiskit.qasm3.dumps(circuit)))
    return programs


@pytest.mark.parametrize(("name", "text"), qiskit_dumps(), ids=lambda v: v if len(v) < 12 else "")
def test_qiskit_exports_take_the_fast_path_and_lower_identically(name: str, text: str) -> None:
    assert_fast_equals_full(text)


@pytest.mark.parametrize("circuit", [
    library.bell(), library.ghz(7), library.qft(5), library.random_layered(6, 8, seed=3),
    library.hardware_efficient_ansatz(5, 3),
], ids=["bell", "ghz", "qft", "random-layered", "hea"])
def test_library_circuits_lower_identically(circuit: Circuit) -> None:
    assert_fast_equals_full(circuit.qasm)


@pytest.mark.parametrize("name", sorted(UNITARY_PROGRAMS))
def test_programs_outside_the_subset_fall_back_or_agree(name: str) -> None:
    text = UNITARY_PROGRAMS[name]
    fast = lower_fast(text, None, LIMITS)
    assert fast is None or fast == full(text)


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_malformed_programs_fall_back_to_the_full_parser(case) -> None:
    assert lower_fast(case.text, None, LIMITS) is None


def test_inputs_keep_their_declaration_offsets_for_binding() -> None:
    text = ('OPENQASM 3.0;\ninclude "stdgates.inc";\n  input float[64] theta ;  input float phi;\n'
            "qubit[2] q;\nrx(theta) q[0]; ry(-phi/2 + 0.25*theta) q[1]; // comment ; h q;\n"
            "cx q[0], q[1];\n")
    assert_fast_equals_full(text)
    bound = Circuit.from_qasm(text).bind({"theta": 0.5, "phi": 1.5})
    assert bound.lowered == Circuit.from_qasm(bound.qasm).lowered


def test_user_gate_named_like_a_standard_gate_is_used_after_its_definition() -> None:
    text = ("OPENQASM 3.0;\nqubit[2] q;\nh q[0];\ngate h a { U(0.1, 0.2, 0.3) a; }\nh q[0];\n")
    fast = lower_fast(text, None, LIMITS)
    assert fast is None or fast == full(text)
    assert [op.name for op in Circuit.from_qasm(text).lowered.operations] == ["h", "U"]


# -- randomised programs --------------------------------------------------------------------

_ANGLES = st.one_of(
    st.floats(-10, 10, allow_nan=False).map(lambda v: repr(round(v, 6))),
    st.integers(0, 12).map(str),
    st.sampled_from(["pi", "pi/2", "-pi/4", "3*pi/8", "-(pi - 0.5)/3", "2*pi/7 - -1",
                     "theta", "-theta/2", "theta*2 + pi", "(theta - phi)/3", "1e-3", ".5"]),
)


@st.composite
def straight_line_programs(draw: st.DrawFn) -> str:
    """A random program of the fast subset, with random spacing and comments."""
    v3 = draw(st.booleans())
    sizes = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    lines = ["OPENQASM 3.0;" if v3 else "OPENQASM 2.0;",
             'include "stdgates.inc";' if v3 else 'include "qelib1.inc";',
             "input float[64] theta;", "input float phi;"]
    qregs = [(f"q{i}", size) for i, size in enumerate(sizes)]
    for name, size in qregs:
        lines.append(f"qubit[{size}] {name};" if v3 else f"qreg {name}[{size}];")
    lines.append(f"bit[{sum(sizes)}] c;" if v3 else f"creg c[{sum(sizes)}];")
    qubits = [f"{name}[{i}]" for name, size in qregs for i in range(size)]
    names = sorted(n for n, (_, width) in STANDARD_GATES.items() if 0 < width <= len(qubits))
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["gate", "gate", "gate", "broadcast", "measure", "reset",
                                     "barrier"]))
        if kind == "gate":
            name = draw(st.sampled_from(names))
            num_params, width = STANDARD_GATES[name]
            operands = draw(st.permutations(qubits))[:width]
            params = [draw(_ANGLES) for _ in range(num_params)]
            call = name + (f"({', '.join(params)})" if params else "")
            separator = draw(st.sampled_from([",", ", ", " , "]))
            lines.append(f"{call} {separator.join(operands)};")
        elif kind == "broadcast":
            name, size = draw(st.sampled_from(qregs))
            lines.append(f"{draw(st.sampled_from(['h', 'x', 'rz(theta)', 'sx']))} {name};")
        elif kind == "measure":
            index = draw(st.integers(0, len(qubits) - 1))
            lines.append(f"c[{index}] = measure {qubits[index]};" if v3 else
                         f"measure {qubits[index]} -> c[{index}];")
        elif kind == "reset":
            lines.append(f"reset {draw(st.sampled_from(qubits))};")
        else:
            lines.append("barrier " + ", ".join(draw(st.lists(st.sampled_from(qubits),
                                                              min_size=0, max_size=3))) + ";")
    text = ""
    for line in lines:
        text += line + draw(st.sampled_from(["\n", "\n", " ", "  // note; h q\n", "\t\n"]))
    return text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(straight_line_programs())
def test_random_straight_line_programs_lower_identically(text: str) -> None:
    try:
        expected = full(text)
    except CircuitError:
        assert lower_fast(text, None, LIMITS) is None  # e.g. a gate angle that overflows
        return
    fast = lower_fast(text, None, LIMITS)
    assert fast is not None, text
    assert fast == expected


def test_fast_path_constants_equal_python_math() -> None:
    text = ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit q;\n'
            "rz(-pi/4*3) q; rz(-(pi - 0.5)/3) q; rz(2*pi/7 - -1) q;\n")
    params = [op.params[0] for op in lower_fast(text, None, LIMITS).circuit.operations]
    assert params == [-math.pi / 4 * 3, -(math.pi - 0.5) / 3, 2 * math.pi / 7 + 1]
