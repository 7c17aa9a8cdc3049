"""Translate a transpiled Qiskit circuit into IQM's native circuit format, and counts back.

IQM servers execute ``iqm.pulse.Circuit`` objects made of native operations on named qubits:
``prx(angle, phase)`` (radians), ``cz``, ``measure(key)``, ``reset`` and ``barrier``. The adapter
transpiles to Qiskit's ``r``/``cz`` basis first; ``RGate(theta, phi)`` is exactly
``prx(angle=theta, phase=phi)`` (both are ``exp(-i theta/2 (cos(phi) X + sin(phi) Y))``; IQM's
own ``iqm.qiskit_iqm.qiskit_to_iqm`` maps them the same way).

Each measurement gets its own key (``m0``, ``m1``, ... in program order) and the circuit's
metadata records which classical bit each key writes, the number of classical bits and the
executed program. That metadata travels with the job to the server, so any process holding
the job id can rebuild counts in the contract's bit order (all classical bits, bit 0
rightmost; a later measurement into the same bit wins, as in OpenQASM).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hal_workflow.contract.errors import ValidationError
from hal_workflow.contract.types import ValidationCode, ValidationIssue

if TYPE_CHECKING:
    from iqm.pulse import Circuit as IQMCircuit
    from qiskit import QuantumCircuit

METADATA_KEY = "hal_workflow"
_SKIPPED = frozenset({"id", "delay"})  # no effect on outcomes


@dataclass(frozen=True)
class MeasurementLayout:
    """Which classical bit each measurement key writes, in program order."""

    keys: tuple[tuple[str, int], ...]
    num_clbits: int

    def to_metadata(self) -> dict[str, Any]:
        return {"keys": [list(pair) for pair in self.keys], "num_clbits": self.num_clbits}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None) -> MeasurementLayout | None:
        """The layout recorded by :func:`to_iqm_circuit`, or None for a foreign circuit."""
        ours = (metadata or {}).get(METADATA_KEY)
        if not isinstance(ours, Mapping) or "keys" not in ours:
            return None
        return cls(tuple((str(k), int(c)) for k, c in ours["keys"]), int(ours["num_clbits"]))

    def counts(self, measurement_keys: Sequence[str], counts: Mapping[str, int]) -> dict[str, int]:
        """Turn IQM counts (one character per key, in ``measurement_keys`` order) into ours."""
        position = {key: i for i, key in enumerate(measurement_keys)}
        missing = [key for key, _ in self.keys if key not in position]
        if missing:
            raise ValueError(f"the server returned no results for measurement keys {missing}")
        result: Counter[str] = Counter()
        for outcome, n in counts.items():
            bits = ["0"] * self.num_clbits
            for key, clbit in self.keys:
                bits[clbit] = outcome[position[key]]
            result["".join(reversed(bits))] += n
        return dict(result)


def to_iqm_circuit(
    qc: QuantumCircuit,
    qubit_names: Sequence[str],
    *,
    name: str = "circuit",
    program: str | None = None,
) -> IQMCircuit:
    """Convert ``qc``, already transpiled to ``r``/``cz`` on physical qubits, to an IQM circuit.

    ``qubit_names[i]`` is the IQM name of physical qubit ``i``. ``program`` (the executed
    OpenQASM 3) is stored in the metadata for the result. Raises ``ValidationError`` for an
    instruction with no native counterpart (transpilation should have removed it).
    """
    from iqm.pulse import Circuit as IQMCircuit
    from iqm.pulse import CircuitOperation

    operations: list[CircuitOperation] = []
    keys: list[tuple[str, int]] = []
    for instruction in qc.data:
        op = instruction.operation
        locus = tuple(qubit_names[qc.find_bit(q).index] for q in instruction.qubits)
        if op.name == "r":
            angle, phase = (float(p) for p in op.params)
            operations.append(CircuitOperation("prx", locus, {"angle": angle, "phase": phase}))
        elif op.name in ("cz", "reset", "barrier"):
            operations.append(CircuitOperation(op.name, locus, {}))
        elif op.name == "measure":
            key = f"m{len(keys)}"
            keys.append((key, qc.find_bit(instruction.clbits[0]).index))
            operations.append(CircuitOperation("measure", locus, {"key": key}))
        elif op.name not in _SKIPPED:
            raise ValidationError([ValidationIssue(
                ValidationCode.GATE_NOT_SUPPORTED,
                f"{op.name!r} has no IQM native counterpart (expected r, cz, measure)",
            )])
    layout = MeasurementLayout(tuple(keys), qc.num_clbits)
    metadata = {METADATA_KEY: {**layout.to_metadata(), "program": program}}
    return IQMCircuit(name=name, instructions=tuple(operations), metadata=metadata)
