"""QDMI devices through mqt-core's QDMI driver (the ``qdmi`` extra, mqt-core 4.1).

Spec: ``{"name": "qdmi", "device": "mqt.ddsim.default"}``; :func:`list_qdmi_devices` lists the
devices the driver knows (mqt-core ships the DDSIM simulator and description-only models of
superconducting chips: ``mqt.sc.iqm.garnet``, ``mqt.sc.ibm.heron``, ...). Options:
``program_format`` (``"qasm3"``, the default, or ``"qir"`` for base-profile QIR made by
:meth:`Circuit.to_qir`), ``max_qubits`` (report at most this many qubits, e.g. to keep a
simulator that claims 65535 within reach), ``max_shots`` (default 100000) and ``simulator``
(override whether the device counts as a simulator; by default only ``mqt.ddsim.*`` does).

Capabilities and the ``calibration`` extension are read from the device's QDMI properties
(sites, coupling map, T1/T2 in the device's duration unit times its scale factor, operation
fidelities and durations). Devices that report no program formats describe hardware only: they
serve capabilities and compilation, and ``submit`` rejects every circuit with a validation
issue saying so.

QDMI offers no way to find a job by id, so jobs are kept in a table of this process: any
backend of this process can query them by id, but **jobs do not outlive the process** that
submitted them. A FAILED job carries a generic reason, because mqt-core prints the device's
diagnostic to the process's stderr only; circuits are checked by our own parser and rebuilt by
:mod:`hal_workflow.backends.qdmi_program` first, so that should be rare. All QDMI calls are
blocking and run on worker threads, one at a time.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from hal_workflow.backends.options import check_options
from hal_workflow.backends.qdmi_program import ddsim_qasm
from hal_workflow.circuits.circuit import as_circuit
from hal_workflow.circuits.gates import GATE_ALIASES, STANDARD_GATES
from hal_workflow.circuits.ir import GateOp, IfOp, Operation, ResetOp
from hal_workflow.compilation.checks import bound_values, shots_issues, width_issues
from hal_workflow.contract.backend import Backend
from hal_workflow.contract.errors import (
    BackendUnavailableError,
    CircuitError,
    ConfigurationError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    SubmissionError,
    ValidationError,
)
from hal_workflow.contract.types import (
    AvailabilityStatus,
    BackendAvailability,
    CalibrationSnapshot,
    Capabilities,
    ExecutionResult,
    GateCalibration,
    JobId,
    JobState,
    JobStatus,
    QubitCalibration,
    ValidationCode,
    ValidationIssue,
    ValidationResult,
)

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

JOB_STATES: dict[str, JobState] = {
    "CREATED": JobState.QUEUED,
    "SUBMITTED": JobState.QUEUED,
    "QUEUED": JobState.QUEUED,
    "RUNNING": JobState.RUNNING,
    "DONE": JobState.COMPLETED,
    "CANCELED": JobState.CANCELLED,
    "FAILED": JobState.FAILED,
}
"""``qdmi.Job.Status`` names (mqt-core 4.1) -> contract states."""

DEVICE_STATES: dict[str, AvailabilityStatus] = {
    "IDLE": AvailabilityStatus.ONLINE,
    "BUSY": AvailabilityStatus.BUSY,
    "CALIBRATION": AvailabilityStatus.MAINTENANCE,
    "MAINTENANCE": AvailabilityStatus.MAINTENANCE,
    "OFFLINE": AvailabilityStatus.OFFLINE,
    "ERROR": AvailabilityStatus.OFFLINE,
}
"""``qdmi.Device.Status`` names -> availability."""

PROGRAM_FORMATS = {"qasm3": "QASM3", "qir": "QIR_BASE_STRING"}
"""Spec ``program_format`` -> the ``qdmi.ProgramFormat`` sent to the device."""

FAILED_REASON = (
    "the QDMI device reported FAILED; mqt-core writes the device's diagnostic to this "
    "process's stderr only"
)

# QDMI operation names that OpenQASM 3 spells differently, and operations that are not gates.
_OPENQASM_NAMES = {"i": "id", "u": "U"}
_NOT_GATES = frozenset({"measure", "reset", "barrier", "if_else", "delay"})
_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "ps": 1e-12}
_SIMULATOR_PREFIXES = ("mqt.ddsim.",)

_qdmi_lock = threading.Lock()  # the driver is not documented as thread-safe: one call at a time


def _qdmi() -> Any:
    try:
        from mqt.core import qdmi
    except ImportError as exc:
        raise ConfigurationError(
            f"the QDMI backend needs mqt-core: pip install 'hal-workflow[qdmi]' ({exc})"
        ) from exc
    return qdmi


def _blocking(fn: Callable[[], _T]) -> _T:
    with _qdmi_lock:
        return fn()


# -- devices -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QDMIDeviceInfo:
    """One device the QDMI driver offers."""

    id: str
    name: str
    num_qubits: int
    program_formats: tuple[str, ...]
    status: str

    @property
    def runs_programs(self) -> bool:
        """Whether the device executes jobs (else it only describes hardware)."""
        return bool(self.program_formats)


def list_qdmi_devices() -> list[QDMIDeviceInfo]:
    """Every device of mqt-core's QDMI driver, with what it runs."""
    qdmi = _qdmi()

    def describe(device_id: str) -> QDMIDeviceInfo:
        device = qdmi.open_device(device_id)
        return QDMIDeviceInfo(
            id=device_id,
            name=device.name(),
            num_qubits=device.qubits_num(),
            program_formats=tuple(f.name for f in device.supported_program_formats()),
            status=device.status().name,
        )

    return _blocking(lambda: [describe(i) for i in qdmi.device_ids()])


def _seconds(value: float | None, unit: str | None, scale: float | None) -> float | None:
    """A QDMI duration (an integer in ``unit`` times ``scale``) in seconds."""
    if value is None:
        return None
    factor = _SECONDS.get((unit or "ns").strip())
    if factor is None:
        raise BackendUnavailableError(f"qdmi: unknown duration unit {unit!r}")
    return float(value) * float(scale if scale is not None else 1.0) * factor


def _openqasm_name(operation: str) -> str:
    return _OPENQASM_NAMES.get(operation, operation)


# -- jobs of this process ---------------------------------------------------------------------
@dataclass
class _Job:
    device_id: str
    handle: Any  # qdmi.Job
    shots: int
    num_clbits: int
    program: str
    submitted_at: float
    state: JobState = JobState.QUEUED
    vendor_state: str = "CREATED"
    finished_at: float | None = None
    counts: dict[str, int] | None = None


class _JobTable:
    """The QDMI jobs of this process by our id (QDMI cannot look a job up by id)."""

    def __init__(self) -> None:
        self._jobs: dict[str, _Job] = {}
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, job: _Job) -> str:
        with self._lock:
            job_id = f"qdmi-{os.getpid():x}-{next(self._counter)}"
            self._jobs[job_id] = job
        return job_id

    def get(self, job_id: str, device_id: str) -> _Job:
        job = self._jobs.get(str(job_id))
        if job is None or job.device_id != device_id:
            raise JobNotFoundError(
                str(job_id),
                f"qdmi: unknown job id {job_id!r} on {device_id}; QDMI jobs live only in the "
                "process that submitted them",
            )
        return job

    def observe(self, job: _Job, vendor: str) -> None:
        """Record the device's status, never moving a job backwards."""
        state = JOB_STATES.get(vendor)
        if state is None:
            logger.warning("qdmi: unknown job status %r; reading it as QUEUED", vendor)
            state = JobState.QUEUED
        with self._lock:
            if job.state.can_become(state):
                job.state, job.vendor_state = state, vendor
                if state.is_terminal and job.finished_at is None:
                    job.finished_at = time.time()


_JOBS = _JobTable()


# -- the backend -------------------------------------------------------------------------------
class QDMIBackend(Backend):
    """A device of mqt-core's QDMI driver (see the module docstring for the spec)."""

    OPTIONS = frozenset({"name", "device", "program_format", "max_qubits", "max_shots",
                         "simulator"})

    def __init__(self, spec: Mapping[str, Any]) -> None:
        check_options(spec, self.OPTIONS, "qdmi")
        self._device_id = str(spec.get("device", "mqt.ddsim.default"))
        qdmi = _qdmi()
        known = _blocking(qdmi.device_ids)
        if self._device_id not in known:
            raise ConfigurationError(
                f"qdmi: unknown device {self._device_id!r}; available: {', '.join(known)}"
            )
        self._device = _blocking(lambda: qdmi.open_device(self._device_id))
        self._formats = {f.name for f in _blocking(self._device.supported_program_formats)}
        self._format_option = str(spec.get("program_format", "qasm3")).lower()
        if self._format_option not in PROGRAM_FORMATS:
            raise ConfigurationError(
                f"qdmi: program_format must be one of {sorted(PROGRAM_FORMATS)}, "
                f"got {self._format_option!r}"
            )
        if self._formats and PROGRAM_FORMATS[self._format_option] not in self._formats:
            raise ConfigurationError(
                f"qdmi: {self._device_id} does not accept {self._format_option} programs; it "
                f"accepts {', '.join(sorted(self._formats))}"
            )
        self._max_qubits = spec.get("max_qubits")
        self._max_shots = int(spec.get("max_shots", 100_000))
        self._simulator = bool(spec.get("simulator", self._device_id.startswith(
            _SIMULATOR_PREFIXES)))
        super().__init__(spec)

    @property
    def accepts_programs(self) -> bool:
        """Whether the device runs jobs (description-only devices do not)."""
        return bool(self._formats)

    # -- capabilities and calibration ---------------------------------------------------
    def _discover_capabilities(self) -> Capabilities:
        device = self._device

        def read() -> Capabilities:
            operations = {op.name(): op for op in device.operations()}
            gates = {_openqasm_name(name) for name, op in operations.items()
                     if name not in _NOT_GATES and op.qubits_num() is not None}
            if "QASM3" in self._formats:  # the device reads stdgates.inc itself
                gates |= set(STANDARD_GATES)
            gates |= {alias for alias, target in GATE_ALIASES.items() if target in gates}
            couplings = device.coupling_map()
            num_qubits = device.qubits_num()
            if self._max_qubits is not None:
                num_qubits = min(num_qubits, int(self._max_qubits))
            coupling_map = None if couplings is None else tuple(
                (a.index(), b.index()) for a, b in couplings
                if a.index() < num_qubits and b.index() < num_qubits)
            return Capabilities(
                name=f"qdmi:{self._device_id}",
                num_qubits=num_qubits,
                gate_set=frozenset(gates),
                coupling_map=coupling_map,
                max_shots=self._max_shots,
                simulator=self._simulator,
                supports_measurement="measure" in operations,
                supports_reset="reset" in operations,
                supports_mid_circuit_measurement="if_else" in operations,
                extensions=frozenset() if self._simulator else frozenset({"calibration"}),
            )

        return _blocking(read)

    def _extensions(self) -> Mapping[str, object]:
        return {"calibration": _QDMICalibration(self)}

    def calibration(self) -> CalibrationSnapshot:
        """T1/T2 per site and errors/durations per operation, as the device reports them now."""
        device = self._device

        def read() -> CalibrationSnapshot:
            unit, scale = device.duration_unit(), device.duration_scale_factor()
            sites = device.sites()[: self._capabilities.num_qubits]
            operations = {op.name(): op for op in device.operations()}
            measure = operations.get("measure")
            qubits = []
            for site in sites:
                fidelity = measure.fidelity([site]) if measure is not None else None
                qubits.append(QubitCalibration(
                    qubit=site.index(),
                    t1_s=_seconds(site.t1(), unit, scale),
                    t2_s=_seconds(site.t2(), unit, scale),
                    readout_error=None if fidelity is None else 1.0 - fidelity,
                ))
            gates = []
            for name, op in operations.items():
                if name in _NOT_GATES:
                    continue
                loci = ([[s] for s in (op.sites() or sites)] if op.qubits_num() == 1
                        else [list(p) for p in (op.site_pairs() or ())])
                for locus in loci:
                    fidelity, duration = op.fidelity(locus), op.duration(locus)
                    if fidelity is None and duration is None:
                        continue
                    gates.append(GateCalibration(
                        gate=_openqasm_name(name),
                        qubits=tuple(s.index() for s in locus),
                        error=None if fidelity is None else 1.0 - fidelity,
                        duration_s=_seconds(duration, unit, scale),
                    ))
            return CalibrationSnapshot(
                timestamp=time.time(), qubits=tuple(qubits), gates=tuple(gates),
                calibration_id=f"{self._device_id}@{device.version()}",
            )

        return _blocking(read)

    # -- availability and validation ----------------------------------------------------
    async def availability(self) -> BackendAvailability:
        def read() -> tuple[str, int | None]:
            return self._device.status().name, self._device.queue_length()

        vendor, queue = await asyncio.to_thread(_blocking, read)
        if not self.accepts_programs:
            return BackendAvailability(
                AvailabilityStatus.OFFLINE,
                message=f"{self._device_id} is {vendor} but accepts no programs; use it for "
                "capabilities and compilation",
            )
        status = DEVICE_STATES.get(vendor, AvailabilityStatus.OFFLINE)
        return BackendAvailability(status, queue_depth=queue, message=f"device status {vendor}")

    def _issues(
        self, circuit: Circuit, shots: int | None, required: bool = False
    ) -> list[ValidationIssue]:
        """Every reason ``circuit`` cannot run here as it is (``required``: shots must be
        given, as on submit)."""
        caps = self._capabilities
        issues = shots_issues(shots, caps.max_shots, required=required)
        if not self.accepts_programs:
            issues.append(ValidationIssue(
                ValidationCode.UNSUPPORTED_FEATURE,
                f"device {self._device_id} accepts no programs; use it for capabilities and "
                "compilation",
            ))
        issues += width_issues(circuit.num_qubits, caps.num_qubits, caps.name)
        issues += self._operation_issues(circuit.lowered.operations)
        if not issues and self._format_option == "qir":
            try:  # base-profile QIR cannot say everything OpenQASM 3 can (values don't matter)
                circuit.bind(dict.fromkeys(circuit.parameters, 0.0)).to_qir()
            except CircuitError as exc:
                issues.append(ValidationIssue(ValidationCode.UNSUPPORTED_FEATURE,
                                              f"not expressible as base-profile QIR: {exc}"))
        return issues

    def _operation_issues(self, operations: tuple[Operation, ...]) -> list[ValidationIssue]:
        caps = self._capabilities
        issues = []
        for op in operations:
            where = f"line {op.line}: " if op.line is not None else ""
            if isinstance(op, GateOp) and op.name not in caps.gate_set:
                issues.append(ValidationIssue(
                    ValidationCode.GATE_NOT_SUPPORTED,
                    f"{where}gate {op.name!r} is not among {caps.name}'s operations "
                    f"({', '.join(sorted(caps.gate_set))}); transpile the circuit first",
                ))
            elif isinstance(op, ResetOp) and not caps.supports_reset:
                issues.append(ValidationIssue(ValidationCode.UNSUPPORTED_FEATURE,
                                              f"{where}{caps.name} has no reset"))
            elif isinstance(op, IfOp):
                if not caps.supports_mid_circuit_measurement:
                    issues.append(ValidationIssue(
                        ValidationCode.UNSUPPORTED_FEATURE,
                        f"{where}{caps.name} has no classically controlled operations",
                    ))
                issues += self._operation_issues(op.body + op.else_body)
        return issues

    async def validate(self, circuit: Circuit | str, shots: int | None = None) -> ValidationResult:
        def check() -> ValidationResult:
            return ValidationResult(tuple(self._issues(as_circuit(circuit), shots)))

        return await asyncio.to_thread(check)

    def program(
        self, circuit: Circuit | str, parameters: Mapping[str, float] | None = None
    ) -> str:
        """The program ``submit`` sends to the device (OpenQASM 3 or QIR text): a dry run."""
        parsed = as_circuit(circuit)
        values = dict(zip(parsed.parameters, bound_values(parsed.parameters, parameters,
                                                          self.name), strict=True))
        if self._format_option == "qir":
            return (parsed.bind(values) if values else parsed).to_qir()
        return ddsim_qasm(parsed.lowered, values)

    # -- jobs -------------------------------------------------------------------------------
    def _submit(
        self, circuit: Circuit | str, shots: int, parameters: Mapping[str, float] | None
    ) -> str:
        parsed = as_circuit(circuit)
        issues = self._issues(parsed, shots, required=True)
        if issues:
            raise ValidationError(issues, self.name)
        text = self.program(parsed, parameters)
        qdmi = _qdmi()
        program_format = getattr(qdmi.ProgramFormat, PROGRAM_FORMATS[self._format_option])
        try:
            handle = _blocking(lambda: self._device.submit_job(text, program_format, shots))
        except RuntimeError as exc:
            raise SubmissionError(f"qdmi: {self._device_id} refused the job: {exc}") from exc
        job = _Job(device_id=self._device_id, handle=handle, shots=shots,
                   num_clbits=parsed.num_clbits, program=text, submitted_at=time.time())
        job_id = _JOBS.add(job)
        logger.debug("qdmi: submitted job %s (device job %s, %d shots) to %s", job_id,
                     handle.id, shots, self._device_id)
        return job_id

    async def submit(
        self,
        circuit: Circuit | str,
        shots: int,
        parameters: Mapping[str, float] | None = None,
    ) -> JobId:
        return JobId(await asyncio.to_thread(self._submit, circuit, shots, parameters))

    def _refresh(self, job: _Job) -> None:
        if not job.state.is_terminal:
            _JOBS.observe(job, _blocking(job.handle.check).name)

    async def status(self, job_id: str) -> JobStatus:
        job = _JOBS.get(job_id, self._device_id)
        await asyncio.to_thread(self._refresh, job)
        return JobStatus(
            job_id=job_id, state=job.state, vendor_state=job.vendor_state,
            reason=FAILED_REASON if job.state is JobState.FAILED else None,
        )

    async def result(self, job_id: str) -> ExecutionResult:
        job = _JOBS.get(job_id, self._device_id)
        status = await self.wait(job_id)
        if status.state is JobState.FAILED:
            raise JobFailedError(job_id, status.reason)
        if status.state is JobState.CANCELLED:
            raise JobCancelledError(job_id)

        def fetch() -> dict[str, int]:
            if job.counts is None:
                if job.num_clbits == 0:  # nothing measured: one empty bitstring per shot
                    job.counts = {"": job.shots}
                else:
                    counts = _blocking(lambda: job.handle.get_counts())
                    job.counts = {str(k): int(v) for k, v in counts.items()}
            return job.counts

        try:
            counts = await asyncio.to_thread(fetch)
        except RuntimeError as exc:
            raise JobFailedError(job_id, f"qdmi: reading the counts failed: {exc}") from exc
        finished = job.finished_at or time.time()
        return ExecutionResult(
            counts=dict(counts), shots=job.shots, job_id=job_id, backend=self.name,
            timings={"total_s": max(0.0, finished - job.submitted_at)},
            executed_program=job.program,
            metadata={"device": self._device_id, "program_format": self._format_option},
        )

    async def cancel(self, job_id: str) -> None:
        job = _JOBS.get(job_id, self._device_id)

        def cancel() -> None:
            self._refresh(job)
            if job.state.is_terminal:
                return
            try:
                _blocking(job.handle.cancel)
            except (ValueError, RuntimeError) as exc:  # it finished meanwhile
                logger.debug("qdmi: cancel of %s not applied: %s", job_id, exc)
            self._refresh(job)

        await asyncio.to_thread(cancel)


class _QDMICalibration:
    """The ``calibration`` extension of a hardware-describing QDMI device."""

    def __init__(self, backend: QDMIBackend) -> None:
        self._backend = backend

    async def snapshot(self) -> CalibrationSnapshot:
        return await asyncio.to_thread(self._backend.calibration)


__all__ = [
    "DEVICE_STATES",
    "JOB_STATES",
    "PROGRAM_FORMATS",
    "QDMIBackend",
    "QDMIDeviceInfo",
    "list_qdmi_devices",
]
