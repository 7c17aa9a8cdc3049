"""OpenQASM 3 texts and ideal distributions used by the conformance kit.

Plain text on purpose: every backend must accept OpenQASM 3, so the kit needs nothing but the
contract to drive one. Each builder returns ``(text, ideal)`` where ``ideal`` maps bitstrings
(classical bit 0 rightmost) to their exact probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import hal_workflow.circuits.gates as _gates

HEADER = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'

# stdgates.inc as name -> (number of parameters, of qubits). Aliases (``phase``, ``cphase``,
# ``CX``) are left out, since a backend that accepts a gate accepts its alias too, and so are
# the built-ins ``U`` and ``gphase``, which every OpenQASM 3 backend accepts.
STANDARD_GATES: dict[str, tuple[int, int]] = {
    name: shape
    for name, shape in _gates.STANDARD_GATES.items()
    if name not in _gates.GATE_ALIASES and name not in _gates.BUILTIN_GATES
}


def program(
    num_qubits: int, num_clbits: int, body: Iterable[str], inputs: Iterable[str] = ()
) -> str:
    """An OpenQASM 3 program over ``qubit[num_qubits] q`` and ``bit[num_clbits] c``."""
    lines = [HEADER.rstrip("\n")]
    lines += [f"input float {name};" for name in inputs]
    lines += [f"qubit[{num_qubits}] q;", f"bit[{num_clbits}] c;"]
    lines += list(body)
    return "\n".join(lines) + "\n"


def measure_all(num_qubits: int) -> list[str]:
    return [f"c[{i}] = measure q[{i}];" for i in range(num_qubits)]


def ghz(num_qubits: int) -> tuple[str, dict[str, float]]:
    """H on qubit 0, a CX chain, measure all: half all-zeros, half all-ones."""
    body = ["h q[0];"] + [f"cx q[{i}], q[{i + 1}];" for i in range(num_qubits - 1)]
    ideal = {"0" * num_qubits: 0.5, "1" * num_qubits: 0.5}
    return program(num_qubits, num_qubits, body + measure_all(num_qubits)), ideal


def bell() -> tuple[str, dict[str, float]]:
    return ghz(2)


def bit_order() -> tuple[str, dict[str, float]]:
    """Qubit 0 flipped and measured into c[2], qubit 1 into c[0]; c[1] and c[3] never written.

    The only outcome is ``"0100"``: all four classical bits, bit 0 rightmost, clbits (not
    qubits) deciding the position. It is not a palindrome, so reversed keys show.
    """
    body = ["x q[0];", "c[2] = measure q[0];", "c[0] = measure q[1];"]
    return program(2, 4, body), {"0100": 1.0}


def rotation(parameter: str = "theta") -> str:
    """``ry(parameter)`` on one qubit, then measure: P(1) = sin^2(parameter / 2)."""
    return program(1, 1, [f"ry({parameter}) q[0];", "c[0] = measure q[0];"], inputs=[parameter])


def rotation_ideal(theta: float) -> dict[str, float]:
    p1 = math.sin(theta / 2) ** 2
    return {"0": 1.0 - p1, "1": p1}


def single_gate(gate: str, num_qubits: int) -> str:
    """A circuit applying ``gate`` (from :data:`STANDARD_GATES`) once, then measuring."""
    num_params, arity = STANDARD_GATES[gate]
    params = f"({', '.join(['0.5'] * num_params)})" if num_params else ""
    qubits = ", ".join(f"q[{i}]" for i in range(arity))
    return program(num_qubits, num_qubits, [f"{gate}{params} {qubits};", *measure_all(num_qubits)])


def wide(num_qubits: int) -> str:
    """H on every qubit of a ``num_qubits`` register, then measure."""
    body = [f"h q[{i}];" for i in range(num_qubits)]
    return program(num_qubits, num_qubits, body + measure_all(num_qubits))


def deep(num_qubits: int, layers: int) -> str:
    """A long entangling circuit (H layer, CX chain, RZ layer, repeated) to cancel mid-run."""
    layer = [f"h q[{i}];" for i in range(num_qubits)]
    layer += [f"cx q[{i}], q[{i + 1}];" for i in range(num_qubits - 1)]
    layer += [f"rz(0.1) q[{i}];" for i in range(num_qubits)]
    return program(num_qubits, num_qubits, layer * layers + measure_all(num_qubits))
