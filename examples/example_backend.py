"""A complete HAL contract v1 backend in one file: the model for a vendor adapter.

``ExampleBackend`` runs OpenQASM 3 circuits exactly, on qiskit's ``Statevector``. Qiskit stands
in for *your* SDK: replace the translation (:meth:`ExampleBackend._translate`) and the
execution (:meth:`ExampleBackend._execute`) with calls into your own stack, and keep the rest,
which is what the contract asks of every backend (``docs/contract-v1.md``):

1. Read options from the spec in ``__init__``, reject unknown ones with
   ``ConfigurationError``, and call ``super().__init__(spec)`` last: that calls
   :meth:`_discover_capabilities` once and caches the result.
2. ``validate`` reports every reason a circuit cannot run; ``submit`` rejects exactly those
   (plus missing parameter bindings) with ``ValidationError``, before a job exists.
3. Jobs run off the event loop, and so does any SDK call that holds the GIL
   (:func:`hal_workflow.compilation.workers.call`: a worker process above a size budget).
   :class:`~hal_workflow.backends.local_jobs.LocalJobTable`
   gives in-process jobs the contract's bookkeeping: unique ids, monotonic states, FAILED
   with a reason, cancellation through ``job.cancel_event``.
4. Only contract errors escape: SDK exceptions are translated (``CircuitError`` with line and
   column here), with the original kept as ``__cause__``.
5. Extensions are advertised in ``capabilities().extensions`` and handed out by
   :meth:`_extensions`.

Use it with ``register_backend("example", ExampleBackend)`` and then
``get_backend({"name": "example", "num_qubits": 5, "seed": 7})``, or declare it as an entry point
in the ``hal_workflow.backends`` group of your package. Run the conformance kit on it with::

    from hal_workflow.testing import ConformanceSuite

    class TestExample(ConformanceSuite):
        backend_spec = {"name": "example"}
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np
import qiskit.qasm3
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector

from hal_workflow.backends.local_jobs import JobCancelled, LocalJob, LocalJobTable
from hal_workflow.compilation import workers
from hal_workflow.contract import (
    AvailabilityStatus,
    Backend,
    BackendAvailability,
    BackendUnavailableError,
    CalibrationSnapshot,
    Capabilities,
    CircuitError,
    ConfigurationError,
    ExecutionResult,
    JobId,
    JobStatus,
    QubitCalibration,
    SubmissionError,
    ValidationCode,
    ValidationError,
    ValidationIssue,
    ValidationResult,
)

# The gates this "device" accepts, in stdgates.inc spelling (qiskit uses the same names).
# Deliberately not every standard gate, so that validation has something to reject.
GATE_SET = frozenset(
    {"id", "x", "y", "z", "h", "s", "sdg", "t", "tdg", "sx", "p", "rx", "ry", "rz",
     "cx", "cy", "cz", "cp", "swap", "ccx"}
)  # fmt: skip
MAX_QUBITS = 20  # a statevector of 2**20 amplitudes is 16 MiB
_NOT_GATES = frozenset({"measure", "barrier"})
_QISKIT_POSITION = re.compile(r"^(\d+),(\d+): (.*)$", re.DOTALL)


class ExampleBackend(Backend):
    """An exact statevector simulator behind the HAL contract.

    Spec options: ``num_qubits`` (default 5, at most 20) and ``seed`` (an int for
    reproducible sampling; default fresh randomness). Jobs run one at a time on a worker
    thread, as on a single device, so later jobs wait QUEUED.
    """

    def __init__(self, spec: Mapping[str, Any]) -> None:
        options = dict(spec)
        options.pop("name", None)
        self._num_qubits = options.pop("num_qubits", 5)
        self._seed = options.pop("seed", None)
        if options:
            raise ConfigurationError(f"example: unknown option(s) {sorted(options)}")
        if not isinstance(self._num_qubits, int) or not 1 <= self._num_qubits <= MAX_QUBITS:
            raise ConfigurationError(
                f"example: num_qubits must be an int in 1..{MAX_QUBITS}, got {self._num_qubits!r}"
            )
        if self._seed is not None and not isinstance(self._seed, int):
            raise ConfigurationError(f"example: seed must be an int, got {self._seed!r}")
        # Job ids must never repeat, even across backends built from the same spec in one
        # process, so every instance gets its own id prefix.
        self._jobs = LocalJobTable(f"example-{uuid.uuid4().hex[:6]}")
        self._job_ids: list[str] = []  # to report the queue and cancel leftovers on aclose
        self._device = ThreadPoolExecutor(max_workers=1, thread_name_prefix="example-device")
        self._closed = False
        super().__init__(spec)  # last: discovers and caches the capabilities

    # -- description -------------------------------------------------------------------
    def _discover_capabilities(self) -> Capabilities:
        return Capabilities(
            name="example",
            num_qubits=self._num_qubits,
            gate_set=GATE_SET,
            coupling_map=None,  # all-to-all
            max_shots=100_000,
            simulator=True,
            supports_reset=False,  # one statevector cannot represent a reset's mixture
            supports_mid_circuit_measurement=False,
            extensions=frozenset({"batch", "sessions", "calibration"}),
        )

    def _extensions(self) -> Mapping[str, object]:
        return {
            "batch": ExampleBatch(self),
            "sessions": ExampleSessions(self),
            "calibration": ExampleCalibration(self),
        }

    async def availability(self) -> BackendAvailability:
        waiting = sum(not self._jobs.status(j).is_terminal for j in self._job_ids)
        status = AvailabilityStatus.BUSY if waiting else AvailabilityStatus.ONLINE
        return BackendAvailability(status, queue_depth=waiting, estimated_wait_s=None)

    # -- validation --------------------------------------------------------------------
    def _translate(self, circuit: Any) -> QuantumCircuit:
        """OpenQASM 3 (or a ``Circuit``) to the SDK's form; parse errors become CircuitError."""
        text = circuit if isinstance(circuit, str) else getattr(circuit, "qasm", None)
        if not isinstance(text, str):
            raise CircuitError(f"expected OpenQASM 3 text or a Circuit, got {type(circuit)}")
        try:
            # The SDK's importer holds the GIL: a large program is read in a worker process
            # (small ones here), so the event loop keeps running even beside a thread.
            return workers.call(qiskit.qasm3.loads, text, size=workers.estimate(text))
        except Exception as exc:  # the SDK's parse and conversion errors
            found = _QISKIT_POSITION.match(str(exc).strip("'\""))  # "4,0: gate 'hh' is ..."
            if found:
                line, column, detail = found.groups()
                raise CircuitError(detail, line=int(line), column=int(column)) from exc
            raise CircuitError(str(exc)) from exc

    def _issues(self, qc: QuantumCircuit, shots: int | None) -> list[ValidationIssue]:
        """Every reason ``qc`` cannot run here with ``shots`` (empty: it can)."""
        caps = self.capabilities()
        issues = []
        if qc.num_qubits > caps.num_qubits:
            issues.append(ValidationIssue(
                ValidationCode.TOO_MANY_QUBITS,
                f"circuit uses {qc.num_qubits} qubits; {caps.name} has {caps.num_qubits}",
            ))
        if shots is not None and not 1 <= shots <= caps.max_shots:
            issues.append(ValidationIssue(
                ValidationCode.SHOTS_OUT_OF_RANGE,
                f"shots must be in 1..{caps.max_shots}, got {shots}",
            ))
        measured: set[int] = set()
        for instruction in qc.data:
            name = instruction.operation.name
            qubits = [qc.find_bit(q).index for q in instruction.qubits]
            if name in _NOT_GATES:
                if name == "measure":
                    measured.update(qubits)
                continue
            if name == "reset":
                issues.append(ValidationIssue(
                    ValidationCode.UNSUPPORTED_FEATURE, f"{caps.name} does not support reset"
                ))
            elif name not in caps.gate_set:
                issues.append(ValidationIssue(
                    ValidationCode.GATE_NOT_SUPPORTED,
                    f"gate {name!r} on qubits {qubits} is not supported by {caps.name}; "
                    f"supported: {', '.join(sorted(caps.gate_set))}",
                ))
            if measured.intersection(qubits):
                issues.append(ValidationIssue(
                    ValidationCode.UNSUPPORTED_FEATURE,
                    f"{name!r} on qubits {qubits} after their measurement (mid-circuit "
                    f"measurement is not supported by {caps.name})",
                ))
        return issues

    async def validate(self, circuit: Any, shots: int | None = None) -> ValidationResult:
        qc = await asyncio.to_thread(self._translate, circuit)  # parsing is CPU work
        return ValidationResult(tuple(self._issues(qc, shots)))

    def _bind(self, qc: QuantumCircuit, parameters: Mapping[str, float] | None) -> QuantumCircuit:
        """Bind every ``input float``; a missing or unknown name is UNBOUND_PARAMETERS."""
        given = dict(parameters or {})
        declared = {p.name: p for p in qc.parameters}
        missing, unknown = sorted(set(declared) - set(given)), sorted(set(given) - set(declared))
        issues = [
            ValidationIssue(ValidationCode.UNBOUND_PARAMETERS, f"input {n!r} has no value")
            for n in missing
        ] + [
            ValidationIssue(ValidationCode.UNBOUND_PARAMETERS, f"{n!r} is not an input")
            for n in unknown
        ]
        if issues:
            raise ValidationError(issues, self.name)
        return qc.assign_parameters({declared[n]: float(v) for n, v in given.items()})

    # -- jobs --------------------------------------------------------------------------
    async def _checked(self, circuit: Any, shots: int) -> QuantumCircuit:
        """Translate and validate: what can reject a job before it exists (bar bindings)."""
        qc = await asyncio.to_thread(self._translate, circuit)  # parsing is CPU work
        ValidationResult(tuple(self._issues(qc, shots))).raise_for_issues(self.name)
        return qc

    def _start(self, qc: QuantumCircuit, shots: int) -> JobId:
        """Queue a prepared circuit on the device thread."""
        if self._closed:
            raise BackendUnavailableError(f"{self.name}: the backend was closed")
        job = self._jobs.create()
        self._job_ids.append(job.job_id)
        # LocalJobTable.run moves QUEUED -> RUNNING -> COMPLETED/FAILED/CANCELLED.
        self._device.submit(self._jobs.run, job, partial(self._execute, qc, shots))
        return JobId(job.job_id)

    async def submit(
        self, circuit: Any, shots: int, parameters: Mapping[str, float] | None = None
    ) -> JobId:
        qc = await self._checked(circuit, shots)
        return self._start(self._bind(qc, parameters), shots)

    def _execute(self, qc: QuantumCircuit, shots: int, job: LocalJob) -> ExecutionResult:
        """Run on the device thread: evolve gate by gate (checking for cancellation), sample."""
        started = time.time()
        state = Statevector.from_int(0, 2**qc.num_qubits)
        source_of: dict[int, int] = {}  # classical bit -> the qubit last measured into it
        for instruction in qc.data:
            if job.cancel_event.is_set():
                raise JobCancelled
            qubits = [qc.find_bit(q).index for q in instruction.qubits]
            if instruction.operation.name == "measure":
                source_of[qc.find_bit(instruction.clbits[0]).index] = qubits[0]
            elif instruction.operation.name != "barrier":
                state = state.evolve(instruction.operation, qubits)
        counts = _sample(state, source_of, qc.num_clbits, shots, np.random.default_rng(self._seed))
        finished = time.time()
        return ExecutionResult(
            counts=counts,
            shots=shots,
            job_id=job.job_id,
            backend=self.name,
            timings={
                "queued_s": started - job.submitted_at,
                "execution_s": finished - started,
                "total_s": finished - job.submitted_at,
            },
            executed_program=qiskit.qasm3.dumps(qc),
        )

    async def status(self, job_id: str) -> JobStatus:
        return self._jobs.status(job_id)  # JobNotFoundError for an unknown id

    async def result(self, job_id: str) -> ExecutionResult:
        return await self._jobs.result(job_id)  # waits off the loop; raises for FAILED/CANCELLED

    async def cancel(self, job_id: str) -> None:
        self._jobs.cancel(job_id)  # QUEUED: cancelled now; RUNNING: _execute stops at the next gate

    async def aclose(self) -> None:
        self._closed = True
        for job_id in self._job_ids:  # jobs die with this backend, so end them cleanly
            self._jobs.cancel(job_id)
        self._device.shutdown(wait=False, cancel_futures=True)


def _sample(
    state: Statevector,
    source_of: Mapping[int, int],
    num_clbits: int,
    shots: int,
    rng: np.random.Generator,
) -> dict[str, int]:
    """Sample the measured qubits; key every outcome over all clbits, bit 0 rightmost."""
    qubits = sorted(set(source_of.values()))
    probabilities = state.probabilities(qubits) if qubits else np.ones(1)
    hits = rng.multinomial(shots, probabilities / probabilities.sum())
    position = {q: i for i, q in enumerate(qubits)}  # bit i of an outcome index is qubits[i]
    counts: dict[str, int] = {}
    for outcome in np.flatnonzero(hits):
        bits = ["0"] * num_clbits
        for clbit, qubit in source_of.items():
            bits[num_clbits - 1 - clbit] = "1" if outcome >> position[qubit] & 1 else "0"
        key = "".join(bits)
        counts[key] = counts.get(key, 0) + int(hits[outcome])
    return counts


class ExampleBatch:
    """The ``batch`` extension. A service would send one request; here it loops.

    Every element is prepared (validated) before the first job starts, so an invalid element
    rejects the whole batch and leaves no jobs behind.
    """

    def __init__(self, backend: ExampleBackend) -> None:
        self._backend = backend

    async def submit_batch(self, circuits: Sequence[Any], shots: int) -> list[JobId]:
        checked = [await self._backend._checked(c, shots) for c in circuits]
        bound = [self._backend._bind(qc, None) for qc in checked]
        return [self._backend._start(qc, shots) for qc in bound]

    async def submit_sweep(
        self, circuit: Any, bindings: Sequence[Mapping[str, float]], shots: int
    ) -> list[JobId]:
        qc = await self._backend._checked(circuit, shots)
        bound = [self._backend._bind(qc, b) for b in bindings]
        return [self._backend._start(each, shots) for each in bound]


class ExampleSession:
    """One session. A service would reserve the device; here it only names a group of jobs."""

    def __init__(self, backend: ExampleBackend) -> None:
        self._backend = backend
        self._session_id = f"example-session-{uuid.uuid4().hex[:8]}"
        self.closed = False

    @property
    def session_id(self) -> str:
        return self._session_id

    async def submit(
        self, circuit: Any, shots: int, parameters: Mapping[str, float] | None = None
    ) -> JobId:
        if self.closed:  # the reservation is gone: refuse rather than run outside it
            raise SubmissionError(f"session {self._session_id} is closed")
        return await self._backend.submit(circuit, shots, parameters)


class ExampleSessions:
    """The ``sessions`` extension: ``async with ext.session() as s: await s.submit(...)``."""

    def __init__(self, backend: ExampleBackend) -> None:
        self._backend = backend

    @contextlib.asynccontextmanager
    async def session(self, max_time_s: float | None = None) -> AsyncIterator[ExampleSession]:
        session = ExampleSession(self._backend)
        try:
            yield session
        finally:
            session.closed = True  # a service would also release the reservation here


class ExampleCalibration:
    """The ``calibration`` extension: an exact simulator is a perfect device."""

    def __init__(self, backend: ExampleBackend) -> None:
        self._backend = backend

    async def snapshot(self) -> CalibrationSnapshot:
        qubits = tuple(
            QubitCalibration(q, readout_error=0.0)
            for q in range(self._backend.capabilities().num_qubits)
        )
        return CalibrationSnapshot(timestamp=time.time(), qubits=qubits, calibration_id="ideal")
