"""Bridge between hal-workflow circuits and Qiskit: import, export, transpile, describe.

Adapters whose vendor stack speaks Qiskit (IBM, IQM, QDMI) use these helpers so that circuits
cross into Qiskit in one place and every failure on the way comes back as a contract error:

- :func:`to_qiskit` reads a circuit into Qiskit (our parser's errors,
  :class:`~hal_workflow.contract.errors.CircuitError` with line and column, come first);
  :func:`from_qiskit` writes OpenQASM 3 with ``qiskit.qasm3.dumps``.
- :func:`transpile_for` runs Qiskit's preset pass manager against a ``Target`` or a basis plus
  coupling map.
- :func:`capabilities_from_target` and :func:`calibration_from_target` read a Qiskit ``Target``
  into the contract's :class:`Capabilities` and :class:`CalibrationSnapshot`.

Qiskit is imported when this module is imported; nothing imports this module eagerly.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from qiskit import QuantumCircuit, qasm3
from qiskit.circuit import Gate
from qiskit.transpiler import CouplingMap, Target, TranspilerError
from qiskit.transpiler import generate_preset_pass_manager as _preset_pass_manager

from hal_workflow.circuits.circuit import as_circuit
from hal_workflow.compilation.qiskit_circuit import lowered_to_qiskit
from hal_workflow.contract.errors import CircuitError, ValidationError
from hal_workflow.contract.types import (
    CalibrationSnapshot,
    Capabilities,
    GateCalibration,
    QubitCalibration,
    ValidationCode,
    ValidationIssue,
)

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit

logger = logging.getLogger(__name__)

__all__ = [
    "as_circuit",
    "calibration_from_target",
    "capabilities_from_target",
    "from_qiskit",
    "openqasm_gate_name",
    "qiskit_gate_name",
    "to_qiskit",
    "transpile_for",
]

# Qiskit instruction names whose OpenQASM 3 spelling differs. Every other gate keeps its name:
# stdgates names agree with Qiskit's, and native gates outside stdgates.inc (ecr, rzz, r, ...)
# are only meaningful under their vendor name anyway.
_QISKIT_TO_OPENQASM = {"u": "U", "global_phase": "gphase"}
_OPENQASM_TO_QISKIT = {
    **{v: k for k, v in _QISKIT_TO_OPENQASM.items()},
    "CX": "cx",
    "phase": "p",
    "cphase": "cp",
}
# Instructions that are not gates to report in Capabilities.gate_set / calibration gates.
_NOT_GATES = frozenset({"measure", "reset", "delay", "barrier"})
_GATE_PARAMETERS = re.compile(r"\bgate\s+\w+\s*\(([^)]*)\)")


def openqasm_gate_name(qiskit_name: str) -> str:
    """The OpenQASM 3 name of a Qiskit instruction (``'u'`` -> ``'U'``; most are unchanged)."""
    return _QISKIT_TO_OPENQASM.get(qiskit_name, qiskit_name)


def qiskit_gate_name(openqasm_name: str) -> str:
    """The Qiskit instruction name of an OpenQASM 3 gate (``'U'`` -> ``'u'``, ``'CX'`` -> ``'cx'``).
    """
    return _OPENQASM_TO_QISKIT.get(openqasm_name, openqasm_name)


# -- OpenQASM 3 in and out -------------------------------------------------------------------
def _importer_binds_correctly(text: str) -> bool:
    """Whether Qiskit's importer gets every custom gate's parameters right in ``text``.

    qiskit-qasm3-import (0.6) binds a gate definition's parameters in sorted name order, not in
    declaration order: ``gate g(theta, phi)`` called as ``g(0.1, 0.2)`` silently runs with
    ``theta = 0.2``. Qiskit's own exporter names them ``p0, p1, ...``, which sort right.
    """
    for match in _GATE_PARAMETERS.finditer(text):
        names = [name.strip() for name in match.group(1).split(",")]
        if names != sorted(names) or names != sorted(names, key=_natural):
            return False
    return True


def _natural(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def to_qiskit(circuit: Circuit | str) -> QuantumCircuit:
    """A circuit (a ``Circuit``, or OpenQASM 3/2 text) as a Qiskit ``QuantumCircuit``.

    The text is checked by our parser first (``CircuitError`` with line and column), then read
    by Qiskit's importer, which keeps the program's structure: registers, ``input float theta``
    as ``Parameter("theta")``, and custom gates such as a device's native ``r`` or ``ecr`` as
    gates of that name (how executed programs are read back). Programs the importer cannot
    read (``const`` declarations, as every ``Circuit.bind`` result has; math functions of
    inputs; OpenQASM 2) or would misread (see :func:`_importer_binds_correctly`) are built
    from the lowered circuit instead (:mod:`.qiskit_circuit`), custom gates inlined. Both give
    the same unitary.
    """
    circuit = as_circuit(circuit)
    if _importer_binds_correctly(circuit.qasm):
        try:
            return qasm3.loads(circuit.qasm)
        except Exception:  # QASM3ImporterError, or the parser on OpenQASM 2
            logger.debug("Qiskit's importer cannot read this circuit; building it from the IR")
    return lowered_to_qiskit(circuit.lowered)


def from_qiskit(qc: QuantumCircuit) -> str:
    """Export a Qiskit circuit as OpenQASM 3 text (``include "stdgates.inc";`` form).

    Overlapping classical registers are written as aliases. Raises ``CircuitError`` when the
    circuit holds something OpenQASM 3 cannot express.
    """
    try:
        return qasm3.dumps(qc, allow_aliasing=True)
    except Exception as exc:  # QASM3ExporterError and anything a custom instruction raises
        raise CircuitError(f"cannot export {qc.name!r} as OpenQASM 3: {exc}") from exc


# -- transpilation ---------------------------------------------------------------------------
def transpile_for(
    circuit: Circuit | str | QuantumCircuit,
    *,
    basis_gates: Iterable[str] | None = None,
    coupling_map: Iterable[Sequence[int]] | CouplingMap | None = None,
    target: Target | None = None,
    optimization_level: int = 1,
    seed: int | None = None,
) -> QuantumCircuit:
    """Transpile ``circuit`` with Qiskit's preset pass manager.

    Give either a ``target`` (gates, connectivity and errors of a device) or ``basis_gates``
    (OpenQASM 3 names) and/or ``coupling_map`` (directed pairs). The result is laid out on
    physical qubits; ``result.layout`` tells where each virtual qubit went. Raises
    ``ValidationError`` when the circuit does not fit (too wide, gates that cannot be
    synthesised).

    Import and transpilation hold the GIL (Qiskit's Rust passes): above
    ``compilation.worker-min-operations`` both run in a worker process
    (:mod:`hal_workflow.compilation.workers`), so the caller's event loop keeps running.
    """
    from hal_workflow.compilation import workers

    if not isinstance(circuit, QuantumCircuit | str):
        circuit = as_circuit(circuit).qasm  # text crosses to a worker cheaply
    return workers.call(
        _transpile_here, circuit, size=workers.estimate(circuit),
        basis_gates=None if basis_gates is None else list(basis_gates),
        coupling_map=coupling_map if isinstance(coupling_map, CouplingMap | None)
        else [list(pair) for pair in coupling_map],
        target=target, optimization_level=optimization_level, seed=seed)


def _transpile_here(
    circuit: str | QuantumCircuit,
    *,
    basis_gates: Iterable[str] | None,
    coupling_map: Iterable[Sequence[int]] | CouplingMap | None,
    target: Target | None,
    optimization_level: int,
    seed: int | None,
) -> QuantumCircuit:
    """:func:`transpile_for` in this process."""
    qc = circuit if isinstance(circuit, QuantumCircuit) else to_qiskit(circuit)
    cmap = coupling_map
    if cmap is not None and not isinstance(cmap, CouplingMap):
        cmap = CouplingMap([list(pair) for pair in cmap])
    width = target.num_qubits if target is not None else None
    if width is None and cmap is not None:
        width = cmap.size()
    if width is not None and qc.num_qubits > width:
        raise ValidationError(
            [ValidationIssue(
                ValidationCode.TOO_MANY_QUBITS,
                f"circuit uses {qc.num_qubits} qubits, the device has {width}",
            )]
        )
    basis = None if basis_gates is None else [qiskit_gate_name(g) for g in basis_gates]
    try:
        manager = _preset_pass_manager(
            optimization_level=optimization_level,
            target=target,
            basis_gates=basis,
            coupling_map=cmap,
            seed_transpiler=seed,
        )
        return manager.run(qc)
    except TranspilerError as exc:
        raise ValidationError(
            [ValidationIssue(ValidationCode.GATE_NOT_SUPPORTED, f"cannot transpile: {exc}")]
        ) from exc


# -- Target -> contract types ----------------------------------------------------------------
def _gate_names(target: Target) -> list[str]:
    """Qiskit names of the unitary gates in ``target`` (no measure, delay, control flow)."""
    names = []
    for name in target.operation_names:
        operation = target.operation_from_name(name)
        if isinstance(operation, Gate) and name not in _NOT_GATES:
            names.append(name)
    return names


def capabilities_from_target(
    name: str, target: Target, *, transpiles: bool = False, **overrides: Any
) -> Capabilities:
    """The contract's Capabilities of a device described by a Qiskit ``Target``.

    ``gate_set`` holds the target's gates under their OpenQASM 3 names; with ``transpiles=True``
    (the adapter transpiles every circuit to the target itself) it also holds every standard
    gate, since those are then accepted too, and ``native_gates`` holds the target's own.
    ``coupling_map`` is the directed pairs (None when the target connects every pair).
    ``overrides`` sets any other Capabilities field (``max_shots``, ``simulator``...).
    """
    from hal_workflow.circuits import STANDARD_GATES

    native = {openqasm_gate_name(g) for g in _gate_names(target)}
    gate_set = native | set(STANDARD_GATES) if transpiles else native
    coupling = target.build_coupling_map()
    operations = set(target.operation_names)
    values: dict[str, Any] = {
        "name": name,
        "num_qubits": target.num_qubits or 0,
        "gate_set": frozenset(gate_set),
        "native_gates": frozenset(native) if transpiles else frozenset(),
        "coupling_map": None if coupling is None else tuple(sorted(coupling.get_edges())),
        "supports_measurement": "measure" in operations,
        "supports_reset": "reset" in operations,
        "supports_mid_circuit_measurement": "if_else" in operations,
    }
    known = {f.name for f in fields(Capabilities)}
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"unknown Capabilities fields: {sorted(unknown)}")
    values.update(overrides)
    return Capabilities(**values)


def _number(value: Any) -> float | None:
    """A finite float, or None for missing/NaN calibration values."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _properties(target: Target, name: str, qargs: tuple[int, ...]) -> Any:
    if name not in target.operation_names:
        return None
    return (target[name] or {}).get(qargs)


def calibration_from_target(
    target: Target,
    *,
    timestamp: float | None = None,
    calibration_id: str | None = None,
) -> CalibrationSnapshot:
    """The qubit (T1, T2, frequency, readout error) and gate (error, duration) data of a Target.

    Gate names are OpenQASM 3 names; ``timestamp`` (Unix time) defaults to now because a Target
    does not record when it was calibrated (pass the backend's ``last_update_date`` instead).
    """
    qubit_properties = target.qubit_properties or [None] * (target.num_qubits or 0)
    qubits = []
    for index, props in enumerate(qubit_properties):
        measure = _properties(target, "measure", (index,))
        qubits.append(QubitCalibration(
            qubit=index,
            t1_s=_number(getattr(props, "t1", None)),
            t2_s=_number(getattr(props, "t2", None)),
            readout_error=_number(getattr(measure, "error", None)),
            frequency_hz=_number(getattr(props, "frequency", None)),
        ))
    gates = []
    for name in sorted(_gate_names(target)):
        entries: Mapping[Any, Any] = target[name] or {}
        for qargs, props in sorted(entries.items(), key=lambda kv: kv[0] or ()):
            if qargs is None or props is None:
                continue
            error, duration = _number(props.error), _number(props.duration)
            if error is None and duration is None:
                continue
            gates.append(GateCalibration(
                gate=openqasm_gate_name(name), qubits=tuple(qargs), error=error,
                duration_s=duration,
            ))
    return CalibrationSnapshot(
        timestamp=time.time() if timestamp is None else timestamp,
        qubits=tuple(qubits),
        gates=tuple(gates),
        calibration_id=calibration_id,
    )
