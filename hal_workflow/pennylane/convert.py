"""PennyLane tapes as OpenQASM 3 text: the gate map shared by the device and the converter.

Every numeric gate parameter becomes an ``input float`` of the program, so tapes that differ
only in their angles (the shifted tapes of a parameter-shift gradient, a ``batch_params``
sweep) have the *same* text and reach a backend as one sweep of bindings, compiled once.

Wires map to qubits by position: wire ``w`` is qubit ``wire_map[w]`` (by default the tape's
wire order), and qubit ``q`` is measured into classical bit ``q``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hal_workflow.contract.errors import CircuitError

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit

__all__ = ["GATES", "decomposer", "from_tape", "is_supported", "tape_to_qasm", "wire_map_for"]

# PennyLane operation name -> OpenQASM 3 gate (stdgates.inc spelling); same matrices.
GATES: dict[str, str] = {
    "PauliX": "x", "PauliY": "y", "PauliZ": "z", "Hadamard": "h", "S": "s", "T": "t",
    "SX": "sx", "Adjoint(S)": "sdg", "Adjoint(T)": "tdg", "Adjoint(SX)": "inv @ sx",
    "RX": "rx", "RY": "ry", "RZ": "rz", "PhaseShift": "p", "U1": "p", "U2": "u2", "U3": "u3",
    "CNOT": "cx", "CY": "cy", "CZ": "cz", "CH": "ch", "SWAP": "swap", "CSWAP": "cswap",
    "Toffoli": "ccx", "ControlledPhaseShift": "cp", "CRX": "crx", "CRY": "cry", "CRZ": "crz",
    "GlobalPhase": "gphase",
}
IGNORED = frozenset({"Identity", "Barrier", "Snapshot"})
"""Operations with nothing to execute."""

_HEADER = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'


def is_supported(op: Any) -> bool:
    """Whether ``op`` is written directly (the device decomposes everything else)."""
    return op.name in GATES or op.name in IGNORED


def decomposer(op: Any) -> Any:
    """``op``'s own decomposition, else (an operator defined only by its matrix, such as
    ``BlockEncode``) a ``QubitUnitary`` of that matrix, which PennyLane decomposes further."""
    import pennylane as qml
    from pennylane.exceptions import DecompositionUndefinedError

    if op.has_decomposition:
        return op.decomposition()
    if op.has_matrix and op.num_params >= 0 and op.name != "QubitUnitary":
        return [qml.QubitUnitary(op.matrix(), wires=op.wires)]
    raise DecompositionUndefinedError(f"{op.name} has no decomposition")


def wire_map_for(wires: Sequence[Hashable]) -> dict[Hashable, int]:
    """Wire label -> qubit index, by position."""
    return {w: i for i, w in enumerate(wires)}


def _angle(op: Any, value: Any) -> float:
    try:
        number = complex(value)
    except (TypeError, ValueError) as exc:
        raise CircuitError(f"{op.name}: parameter {value!r} is not a number") from exc
    if number.imag != 0 or not math.isfinite(number.real):
        raise CircuitError(f"{op.name}: parameter {value!r} is not a finite real number")
    return float(number.real)


def tape_to_qasm(
    tape: Any,
    wire_map: Mapping[Hashable, int] | None = None,
    num_qubits: int | None = None,
    measure: bool = True,
) -> tuple[str, dict[str, float]]:
    """``(text, bindings)``: the tape's operations as a program with ``input float`` angles.

    Args:
        tape: a ``QuantumScript`` whose operations are all :func:`is_supported`.
        wire_map: wire label -> qubit (default: the tape's wires by position).
        num_qubits: width of the register (default: one past the largest mapped qubit).
        measure: end with ``c = measure q`` over every qubit (False for exact simulation).

    Raises:
        CircuitError: an unsupported operation (named), a wire missing from ``wire_map``, or a
            non-real parameter.
    """
    mapping = dict(wire_map) if wire_map is not None else wire_map_for(tape.wires)
    width = num_qubits if num_qubits is not None else max(mapping.values(), default=-1) + 1
    width = max(width, 1)
    lines: list[str] = []
    bindings: dict[str, float] = {}
    for op in tape.operations:
        if op.name in IGNORED:
            continue
        gate = GATES.get(op.name)
        if gate is None:
            raise CircuitError(f"unsupported operation {op.name} on wires {list(op.wires)}")
        names = []
        for value in op.parameters:
            name = f"pl_{len(bindings)}"
            angle = _angle(op, value)
            bindings[name] = -angle if op.name == "GlobalPhase" else angle
            names.append(name)
        args = f"({', '.join(names)})" if names else ""
        if op.name == "GlobalPhase":  # PennyLane's GlobalPhase(phi) is exp(-i phi)
            lines.append(f"{gate}{args};")
            continue
        try:
            qubits = [mapping[w] for w in op.wires]
        except KeyError as exc:
            raise CircuitError(
                f"{op.name}: wire {exc.args[0]!r} does not map to a qubit "
                f"(wires: {list(mapping)})"
            ) from None
        lines.append(f"{gate}{args} {', '.join(f'q[{q}]' for q in qubits)};")
    declarations = [f"input float {name};" for name in bindings]
    body = [f"qubit[{width}] q;", *lines]
    if measure:
        body[1:1] = [f"bit[{width}] c;"]
        body.append("c = measure q;")
    return _HEADER + "\n".join([*declarations, *body]) + "\n", bindings


def _supported_tape(tape: Any) -> Any:
    """``tape`` with mid-circuit measurements deferred, measured observables rotated to the Z
    basis, and every operation decomposed to :data:`GATES`."""
    import pennylane as qml
    from pennylane.devices.preprocess import decompose
    from pennylane.exceptions import DecompositionUndefinedError, DeviceError

    try:
        (tape,), _ = qml.defer_measurements(tape)
        if any(m.obs is not None for m in tape.measurements):
            (tape,), _ = qml.transforms.diagonalize_measurements(tape)
        (tape,), _ = decompose(tape, stopping_condition=is_supported, decomposer=decomposer,
                               skip_initial_state_prep=False, name="hal_workflow",
                               error=DeviceError)
    except (DeviceError, DecompositionUndefinedError, ValueError) as exc:
        raise CircuitError(f"cannot convert the PennyLane tape: {exc}") from exc
    return tape


def from_tape(tape: Any, wire_map: Mapping[Hashable, int] | None = None) -> Circuit:
    """A PennyLane ``QuantumScript``/``QuantumTape`` as a :class:`Circuit` (the conversion
    registry's entry for tapes).

    Operations are decomposed to standard gates; measured observables are rotated to the
    computational basis; every wire is measured, wire ``tape.wires[i]`` (or
    ``wire_map[w]``) into classical bit ``i``. Angles are bound, so the circuit has no free
    parameters.
    """
    from hal_workflow.circuits import Circuit

    if wire_map is None:
        wire_map = wire_map_for(tape.wires)
    missing = [w for w in tape.wires if w not in wire_map]
    if missing:
        raise CircuitError(f"wire {missing[0]!r} does not map to a qubit (wires: {list(wire_map)})")
    for name, index in wire_map.items():
        if isinstance(index, bool) or not isinstance(index, numbers.Integral) or index < 0:
            raise CircuitError(f"wire {name!r} maps to {index!r}, not a qubit index")
    text, bindings = tape_to_qasm(_supported_tape(tape), wire_map)
    return Circuit.from_qasm(text, source="<pennylane tape>").bind(bindings)
