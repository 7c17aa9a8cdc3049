"""The contract's value types: what backends report and return.

All are frozen dataclasses: immutable, picklable (they cross Dask and Parsl boundaries) and
convertible to and from JSON-compatible dicts with ``to_dict``/``from_dict``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any, NewType, TypeVar

JobId = NewType("JobId", str)
"""An opaque job identifier. With the backend spec it is enough to reattach to a job."""

_T = TypeVar("_T", bound="_Serialisable")


class _Serialisable:
    """JSON round-tripping shared by the value types."""

    def to_dict(self) -> dict[str, Any]:
        return _to_jsonable(asdict(self))  # type: ignore[call-overload]

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls: type[_T], text: str) -> _T:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls: type[_T], data: Mapping[str, Any]) -> _T:
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (frozenset, set)):
        return sorted(_to_jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    return value


class JobState(str, Enum):
    """The five states of a job. COMPLETED, FAILED and CANCELLED are terminal."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def rank(self) -> int:
        """Position in the only allowed order QUEUED < RUNNING < terminal."""
        return 2 if self.is_terminal else (1 if self is JobState.RUNNING else 0)

    def can_become(self, new: JobState) -> bool:
        """Whether a job in this state may next be observed in ``new`` (monotonic order)."""
        if self.is_terminal:
            return new is self
        return new.rank >= self.rank


_TERMINAL = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})


@dataclass(frozen=True)
class JobStatus(_Serialisable):
    """A job's state as observed at ``observed_at`` (Unix time).

    ``vendor_state`` keeps the backend's own state name beside ours; ``reason`` explains a
    FAILED (or CANCELLED) state.
    """

    job_id: str
    state: JobState
    reason: str | None = None
    vendor_state: str | None = None
    queue_position: int | None = None
    observed_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        if not isinstance(self.state, JobState):
            object.__setattr__(self, "state", JobState(self.state))

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal


class AvailabilityStatus(str, Enum):
    ONLINE = "ONLINE"
    BUSY = "BUSY"
    MAINTENANCE = "MAINTENANCE"
    OFFLINE = "OFFLINE"


@dataclass(frozen=True)
class BackendAvailability(_Serialisable):
    """Whether a backend accepts work now, how long its queue is and the expected wait (s)."""

    status: AvailabilityStatus
    queue_depth: int | None = None
    estimated_wait_s: float | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.status, AvailabilityStatus):
            object.__setattr__(self, "status", AvailabilityStatus(self.status))

    @property
    def accepting_jobs(self) -> bool:
        return self.status in (AvailabilityStatus.ONLINE, AvailabilityStatus.BUSY)


EXTENSION_NAMES = frozenset({"batch", "sessions", "calibration", "pulse"})
"""Extensions named by contract v1. Backends may offer others under their own names."""


@dataclass(frozen=True)
class Capabilities(_Serialisable):
    """What a backend can run. Computed once when the backend is built.

    ``gate_set`` holds the OpenQASM 3 gate names (``stdgates.inc`` spelling) a submitted
    circuit may use. ``coupling_map`` is a tuple of directed qubit pairs, or None when every
    pair is connected. ``native_gates`` is the device's own basis (vendor names, e.g.
    ``{"prx", "cz"}``); when it is not empty the backend compiles every circuit to it in
    ``submit`` (``compiles`` is True), routing onto ``coupling_map``, so submitted circuits may
    use any gate of ``gate_set`` on any pair of qubits.
    """

    name: str
    num_qubits: int
    gate_set: frozenset[str]
    coupling_map: tuple[tuple[int, int], ...] | None = None
    max_shots: int = 100_000
    simulator: bool = True
    supports_measurement: bool = True
    supports_reset: bool = True
    supports_mid_circuit_measurement: bool = False
    extensions: frozenset[str] = frozenset()
    formats: frozenset[str] = frozenset({"openqasm3"})
    contract_version: str = "1.1"
    native_gates: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "gate_set", frozenset(self.gate_set))
        object.__setattr__(self, "native_gates", frozenset(self.native_gates))
        object.__setattr__(self, "extensions", frozenset(self.extensions))
        object.__setattr__(self, "formats", frozenset(self.formats))
        if self.coupling_map is not None:
            pairs = tuple((int(a), int(b)) for a, b in self.coupling_map)
            object.__setattr__(self, "coupling_map", pairs)

    @property
    def hardware(self) -> bool:
        return not self.simulator

    @property
    def compiles(self) -> bool:
        """Whether ``submit`` compiles circuits to ``native_gates`` (and routes) itself."""
        return bool(self.native_gates)

    def connected(self, a: int, b: int) -> bool:
        """Whether a two-qubit gate may act on ``(a, b)`` in either direction."""
        if self.coupling_map is None:
            return True
        return (a, b) in self.coupling_map or (b, a) in self.coupling_map


class ValidationCode(str, Enum):
    TOO_MANY_QUBITS = "TOO_MANY_QUBITS"
    GATE_NOT_SUPPORTED = "GATE_NOT_SUPPORTED"
    COUPLING_VIOLATION = "COUPLING_VIOLATION"
    SHOTS_OUT_OF_RANGE = "SHOTS_OUT_OF_RANGE"
    NEEDS_TRANSPILATION = "NEEDS_TRANSPILATION"
    UNBOUND_PARAMETERS = "UNBOUND_PARAMETERS"
    UNSUPPORTED_FEATURE = "UNSUPPORTED_FEATURE"
    RESOURCE_LIMIT = "RESOURCE_LIMIT"


@dataclass(frozen=True)
class ValidationIssue(_Serialisable):
    code: ValidationCode
    message: str

    def __post_init__(self) -> None:
        if not isinstance(self.code, ValidationCode):
            object.__setattr__(self, "code", ValidationCode(self.code))


@dataclass(frozen=True)
class ValidationResult(_Serialisable):
    """The outcome of ``validate``: valid when ``issues`` is empty."""

    issues: tuple[ValidationIssue, ...] = ()

    def __post_init__(self) -> None:
        issues = tuple(
            i if isinstance(i, ValidationIssue) else ValidationIssue.from_dict(i)
            for i in self.issues
        )
        object.__setattr__(self, "issues", issues)

    @property
    def valid(self) -> bool:
        return not self.issues

    def __bool__(self) -> bool:
        return self.valid

    def raise_for_issues(self, backend: str | None = None) -> None:
        """Raise :class:`~hal_workflow.contract.errors.ValidationError` when invalid."""
        if self.issues:
            from hal_workflow.contract.errors import ValidationError

            raise ValidationError(self.issues, backend)


@dataclass(frozen=True)
class GateCalibration(_Serialisable):
    gate: str
    qubits: tuple[int, ...]
    error: float | None = None
    duration_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "qubits", tuple(self.qubits))


@dataclass(frozen=True)
class QubitCalibration(_Serialisable):
    qubit: int
    t1_s: float | None = None
    t2_s: float | None = None
    readout_error: float | None = None
    frequency_hz: float | None = None


@dataclass(frozen=True)
class CalibrationSnapshot(_Serialisable):
    """Qubit and gate error data of a device at ``timestamp`` (Unix time)."""

    timestamp: float
    qubits: tuple[QubitCalibration, ...] = ()
    gates: tuple[GateCalibration, ...] = ()
    calibration_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "qubits",
            tuple(q if isinstance(q, QubitCalibration) else QubitCalibration.from_dict(q)
                  for q in self.qubits),
        )
        object.__setattr__(
            self,
            "gates",
            tuple(g if isinstance(g, GateCalibration) else GateCalibration.from_dict(g)
                  for g in self.gates),
        )


@dataclass(frozen=True)
class ExecutionResult(_Serialisable):
    """The outcome of a completed job.

    ``counts`` keys are bitstrings over all classical bits, classical bit 0 rightmost (Qiskit's
    order), no separators. ``timings`` holds seconds (``queued_s``, ``execution_s``,
    ``total_s`` where known). ``executed_program`` is the program the backend actually ran
    (after transpilation); ``calibration`` the snapshot it ran against, where there is one.
    """

    counts: Mapping[str, int]
    shots: int
    job_id: str
    backend: str
    timings: Mapping[str, float] = field(default_factory=dict)
    executed_program: str | None = None
    calibration: CalibrationSnapshot | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.calibration, Mapping):
            object.__setattr__(
                self, "calibration", CalibrationSnapshot.from_dict(self.calibration)
            )

    def probabilities(self) -> dict[str, float]:
        """Counts divided by the number of shots."""
        total = sum(self.counts.values()) or 1
        return {k: v / total for k, v in self.counts.items()}

    def most_frequent(self) -> str:
        """The most frequent bitstring."""
        return max(self.counts.items(), key=lambda kv: kv[1])[0]
