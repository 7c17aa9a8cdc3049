"""Amazon Braket adapter: the SDK's ``LocalSimulator`` in-process, or an ``AwsDevice`` by ARN.

Spec: ``{"name": "braket", "device": "local"}`` is the state-vector ``LocalSimulator``
(``"local:braket_dm"`` the density-matrix one); a device ARN
(``"arn:aws:braket:::device/quantum-simulator/amazon/sv1"``) opens an ``AwsDevice`` with the
credentials and region of the AWS SDK's own chain (environment, config files, roles), or of
the named ``"profile"`` and ``"region"`` (resolved by boto3 where the backend is built, e.g. on
a worker). Nothing secret goes in the spec. ``"s3_destination"`` (``"s3://bucket/prefix"``)
sets where results go (default: the SDK's default bucket); ``"retry"`` the retry policy.

Every AWS call goes through :class:`~hal_workflow.backends.retry.RetryPolicy` (the SDK's own
retries are turned off so that there is one policy). A retried ``CreateQuantumTask`` carries
the same ``clientToken``, Braket's idempotency token, so it never creates a second task.

Programs go to Braket as OpenQASM 3 after :func:`~hal_workflow.compilation.braket_program.
to_braket` swaps ``stdgates.inc`` for definitions in Braket's gate names; ``input float``
parameters travel as ``inputs=``. Braket reports measurements per measured qubit, so counts are
rebuilt per classical bit from the circuit's measurement map.

Jobs on the local simulator run one at a time on a worker thread of this backend (QUEUED while
they wait, cancellable then). ``LocalSimulator.run`` cannot be interrupted: a job cancelled
while RUNNING finishes its simulation and then ends CANCELLED. Local jobs live only in this
process. AWS task ids are task ARNs, readable from any process.

Braket (and the numba it loads) is imported only when a backend is built, so the default
simulator's numba threading layer is not switched to Braket's choice by merely importing
hal-workflow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from hal_workflow.backends.local_jobs import LocalJob, LocalJobTable
from hal_workflow.backends.options import check_options
from hal_workflow.backends.retry import RetryPolicy, is_retryable, retry_after_of
from hal_workflow.compilation.braket_program import (
    braket_gate_set,
    counts_from_measurements,
    from_braket,
    measurement_map,
    to_braket,
    unsupported_features,
)
from hal_workflow.compilation.checks import bound_values, shots_issues, width_issues
from hal_workflow.compilation.qiskit_bridge import as_circuit
from hal_workflow.contract.backend import Backend
from hal_workflow.contract.errors import (
    BackendUnavailableError,
    ConfigurationError,
    CredentialsError,
    HalError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    RateLimitedError,
    SubmissionError,
    ValidationError,
)
from hal_workflow.contract.types import (
    AvailabilityStatus,
    BackendAvailability,
    Capabilities,
    ExecutionResult,
    JobId,
    JobState,
    JobStatus,
    ValidationResult,
)

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

TASK_STATES: dict[str, JobState] = {
    "CREATED": JobState.QUEUED,
    "QUEUED": JobState.QUEUED,
    "RUNNING": JobState.RUNNING,
    "CANCELLING": JobState.RUNNING,  # keeps the state it came from until CANCELLED
    "COMPLETED": JobState.COMPLETED,
    "FAILED": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
}
"""Braket quantum task state -> contract state."""

_LOCAL_JOBS = LocalJobTable("braket")
"""Local jobs of every Braket backend in this process: ids stay unique across instances, and
an instance rebuilt from the spec (in this process) finds the jobs of another."""

LOCAL_MAX_SHOTS = 1_000_000
"""Shots cap of the local simulators (their own limit, 2**63 - 1, is not a useful promise)."""


def task_state(vendor: str) -> JobState:
    """The contract state of a Braket task state (unknown ones count as QUEUED, with a log)."""
    state = TASK_STATES.get(str(vendor).upper())
    if state is None:
        logger.warning("unknown Braket task state %r; treating it as QUEUED", vendor)
        return JobState.QUEUED
    return state


@contextlib.contextmanager
def _aws_errors(what: str, job_id: str | None = None) -> Iterator[None]:
    """Translate botocore/Braket exceptions raised while doing ``what`` to contract errors."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
    )

    try:
        yield
    except HalError:
        raise
    except NoRegionError as exc:
        raise CredentialsError(
            f"Amazon Braket: {what}: no AWS region configured; set AWS_DEFAULT_REGION or a "
            "region in ~/.aws/config"
        ) from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise CredentialsError(
            f"Amazon Braket: {what}: no AWS credentials found; configure them as for the AWS "
            "CLI (environment, ~/.aws/credentials, SSO or an instance role)"
        ) from exc
    except EndpointConnectionError as exc:
        raise BackendUnavailableError(f"Amazon Braket: {what}: cannot reach AWS") from exc
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        if code in {"AccessDeniedException", "UnrecognizedClientException",
                    "ExpiredTokenException", "InvalidSignatureException"}:
            raise CredentialsError(f"Amazon Braket: {what}: {code}") from exc
        if code == "ResourceNotFoundException":
            if job_id is not None:
                raise JobNotFoundError(job_id, f"Amazon Braket: no task {job_id}") from exc
            raise ConfigurationError(f"Amazon Braket: {what}: {message or code}") from exc
        if code in _THROTTLING:
            raise RateLimitedError(f"Amazon Braket: {what}: {code}",
                                   retry_after=retry_after_of(exc)) from exc
        if code in {"InternalServiceException", "DeviceOfflineException",
                    "ServiceUnavailableException"} or is_retryable(exc):
            unavailable = BackendUnavailableError(f"Amazon Braket: {what}: {code}")
            unavailable.retry_after = retry_after_of(exc)
            raise unavailable from exc
        if code in {"ServiceQuotaExceededException", "DeviceRetiredException"}:
            refused = BackendUnavailableError(f"Amazon Braket: {what}: {code}: {message}")
            refused.retryable = False  # waiting does not raise a quota or revive a device
            raise refused from exc
        raise SubmissionError(f"Amazon Braket: {what}: {code}: {message}") from exc
    except BotoCoreError as exc:
        failed = BackendUnavailableError(f"Amazon Braket: {what}: {exc}")
        failed.retryable = is_retryable(exc)  # connection and read timeouts, not bad params
        raise failed from exc


_THROTTLING = frozenset({"ThrottlingException", "TooManyRequestsException", "Throttling"})
_token = threading.local()


@contextlib.contextmanager
def _client_token(token: str) -> Iterator[None]:
    """Send ``token`` as ``clientToken`` of every CreateQuantumTask this thread makes."""
    _token.value = token
    try:
        yield
    finally:
        _token.value = None


def _put_client_token(params: dict[str, Any], **_: Any) -> None:
    token = getattr(_token, "value", None)
    if token is not None:
        params["clientToken"] = token


def _boto_session(profile: str | None, region: str | None) -> Any:
    """A boto3 session for the named profile and region (None: the SDK's own choice)."""
    import boto3
    from botocore.exceptions import ProfileNotFound

    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound as exc:
        raise CredentialsError(
            f"braket: no AWS profile {profile!r} in ~/.aws/config or ~/.aws/credentials"
        ) from exc


def _aws_session(profile: str | None, region: str | None) -> Any:
    """A Braket ``AwsSession`` on the named profile/region, with the SDK's own retries off
    (the retry policy is the one layer) and our idempotency token on each task creation."""
    from botocore.config import Config
    from braket.aws import AwsSession

    boto_session = _boto_session(profile, region)
    with _aws_errors("opening an AWS session"):
        session = AwsSession(boto_session=boto_session,
                             config=Config(retries={"total_max_attempts": 1}))
    # Before botocore fills in a random token of its own:
    session.braket_client.meta.events.register_first(
        "before-parameter-build.braket.CreateQuantumTask", _put_client_token)
    return session


def _s3_folder(destination: str | None) -> tuple[str, str] | None:
    """``"s3://bucket/prefix"`` as Braket's ``(bucket, prefix)``."""
    if destination is None:
        return None
    bucket, _, prefix = destination.removeprefix("s3://").partition("/")
    if not destination.startswith("s3://") or not bucket:
        raise ConfigurationError(
            f"braket: 's3_destination' is s3://BUCKET/PREFIX, got {destination!r}")
    return bucket, prefix.rstrip("/") or "hal-workflow"


def _drop_portability_warning(record: logging.LogRecord) -> bool:
    return "may not be supported on QPUs" not in record.getMessage()


@dataclass(frozen=True)
class _Prepared:
    """A checked circuit in Braket's terms."""

    source: str  # the OpenQASM text Braket runs
    sources: tuple[int | None, ...]  # measurement map: the qubit behind each clbit
    parameters: tuple[str, ...]


class _SerialRunner:
    """Runs local jobs one at a time, in submission order, on one daemon thread.

    A job waits QUEUED until its turn, so it can still be cancelled before it starts.
    """

    def __init__(self, table: LocalJobTable, name: str) -> None:
        self._table = table
        self._name = name
        self._queue: queue.SimpleQueue[tuple[LocalJob, Callable[[LocalJob], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: LocalJob, work: Callable[[LocalJob], ExecutionResult]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
        self._queue.put((job, work))

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            self._table.run(*item)

    def close(self) -> None:
        """Stop the worker once the jobs queued so far have run."""
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread = None


class BraketBackend(Backend):
    """Amazon Braket's local simulators, or a Braket device by ARN."""

    OPTIONS = frozenset({"name", "device", "profile", "region", "s3_destination", "retry"})

    def __init__(self, spec: Mapping[str, Any]) -> None:
        spec = dict(spec)
        check_options(
            spec, self.OPTIONS, "braket",
            "the spec takes 'device' ('local', 'local:<simulator>' or a device ARN), and for "
            "AWS devices 'profile', 'region', 's3_destination' and 'retry'; credentials come "
            "from the AWS SDK's own configuration",
        )
        device = spec.get("device", "local")
        if not isinstance(device, str) or not device:
            raise ConfigurationError("braket: 'device' must be 'local', 'local:<name>' or an ARN")
        for key in ("profile", "region", "s3_destination"):
            if spec.get(key) is not None and not isinstance(spec[key], str):
                raise ConfigurationError(f"braket: '{key}' must be text, got {spec[key]!r}")
        self._retry = RetryPolicy.from_spec(spec)
        self._s3_folder = _s3_folder(spec.get("s3_destination"))
        self._local = device == "local" or device.startswith("local:")
        self._session: Any = None
        if self._local:
            self._device = self._open_local(device)
        elif not device.startswith("arn:aws:braket:"):
            raise ConfigurationError(
                f"braket: device {device!r} is neither 'local[:<simulator>]' nor a Braket "
                "device ARN")
        else:
            self._session = _aws_session(spec.get("profile"), spec.get("region"))
            self._device = self._aws_call("opening device", lambda: self._open_aws(device))
        self._table = _LOCAL_JOBS
        self._runner = _SerialRunner(self._table, f"hal-braket-{id(self):x}")
        self._aws_prepared: dict[str, _Prepared] = {}  # AWS tasks submitted here, by ARN
        action = self._device.properties.action.get("braket.ir.openqasm.program")
        if action is None:
            raise ConfigurationError(f"braket: device {device!r} does not run OpenQASM 3 programs")
        self._operations = frozenset(action.supportedOperations)
        self._modifiers = frozenset(m.name for m in action.supportedModifiers)
        self._gate_set = braket_gate_set(self._operations, self._modifiers)
        super().__init__(spec)

    # -- devices ---------------------------------------------------------------------------
    @staticmethod
    def _open_local(device: str) -> Any:
        from braket.devices import LocalSimulator

        # The simulator logs a warning for every program with gate definitions or modifiers
        # (ours define the standard gates): true for QPUs, noise for a local simulation.
        logging.getLogger("braket.default_simulator.openqasm.interpreter").addFilter(
            _drop_portability_warning
        )

        name = device.partition(":")[2] or "braket_sv"
        backends = LocalSimulator.registered_backends()
        gate_model = sorted(b for b in backends if b.startswith("braket_") and b != "braket_ahs")
        if name not in backends or name == "braket_ahs":
            raise ConfigurationError(
                f"braket: unknown local simulator {name!r}; choose one of "
                f"{', '.join('local:' + b for b in gate_model)}"
            )
        return LocalSimulator(name)

    def _open_aws(self, arn: str) -> Any:
        from braket.aws import AwsDevice

        with _aws_errors(f"opening device {arn}"):
            return AwsDevice(arn, aws_session=self._session)

    def _aws_call(self, what: str, fn: Callable[[], _T], job_id: str | None = None) -> _T:
        """``fn()`` (blocking AWS calls), its errors translated, retried by the spec's policy."""

        def attempt() -> _T:
            with _aws_errors(what, job_id):
                return fn()

        return self._retry.named(f"braket: {what}").call(attempt)

    def _discover_capabilities(self) -> Capabilities:
        properties = self._device.properties
        high = properties.service.shotsRange[1]
        return Capabilities(
            name=f"braket:{self._device.name}",
            num_qubits=int(properties.paradigm.qubitCount),
            gate_set=self._gate_set,
            coupling_map=self._coupling_map(properties),
            max_shots=min(int(high), LOCAL_MAX_SHOTS) if self._local else int(high),
            simulator=self._local or "simulator" in str(getattr(self._device, "type", "")).lower(),
            supports_reset=self._local or "reset" in self._operations,
            supports_mid_circuit_measurement=False,
            extensions=frozenset({"batch"}),
        )

    @staticmethod
    def _coupling_map(properties: Any) -> tuple[tuple[int, int], ...] | None:
        connectivity = getattr(properties.paradigm, "connectivity", None)
        if connectivity is None or connectivity.fullyConnected:
            return None
        return tuple(
            (int(a), int(b)) for a, targets in connectivity.connectivityGraph.items()
            for b in targets
        )

    def _extensions(self) -> Mapping[str, object]:
        return {"batch": _BraketBatch(self)}

    async def availability(self) -> BackendAvailability:
        if self._local:
            return BackendAvailability(AvailabilityStatus.ONLINE, queue_depth=0,
                                       message="local simulator (in this process)")
        try:  # a probe: one attempt
            with _aws_errors("reading device status"):
                status = await asyncio.to_thread(lambda: self._device.status)
        except HalError as exc:
            return BackendAvailability(AvailabilityStatus.OFFLINE, message=str(exc))
        state = {"ONLINE": AvailabilityStatus.ONLINE, "OFFLINE": AvailabilityStatus.OFFLINE,
                 "RETIRED": AvailabilityStatus.OFFLINE}.get(status, AvailabilityStatus.OFFLINE)
        return BackendAvailability(state, message=f"device status {status}")

    async def aclose(self) -> None:
        self._runner.close()

    # -- validation ------------------------------------------------------------------------
    def _check(
        self, circuit: Circuit | str, shots: int | None, required: bool = False
    ) -> tuple[list, Circuit]:
        circuit = as_circuit(circuit)  # CircuitError for malformed text
        caps = self.capabilities()
        issues = [
            *shots_issues(shots, caps.max_shots, required=required),
            *width_issues(circuit.num_qubits, caps.num_qubits, caps.name),
            *unsupported_features(circuit, self._gate_set, self._modifiers),
        ]
        return issues, circuit

    async def validate(self, circuit: Circuit | str, shots: int | None = None) -> ValidationResult:
        issues, _ = await asyncio.to_thread(self._check, circuit, shots)
        return ValidationResult(tuple(issues))

    def _prepare(self, circuit: Circuit | str, shots: int) -> _Prepared:
        issues, checked = self._check(circuit, shots, required=True)
        if issues:
            raise ValidationError(issues, self.name)
        return _Prepared(
            source=to_braket(checked),
            sources=measurement_map(checked.lowered),
            parameters=checked.parameters,
        )

    def _inputs(self, prepared: _Prepared, binding: Mapping[str, float] | None) -> dict[str, float]:
        values = bound_values(prepared.parameters, binding, self.name)
        return dict(zip(prepared.parameters, values, strict=True))

    # -- results ---------------------------------------------------------------------------
    def _execution_result(
        self, job_id: str, task_result: Any, prepared: _Prepared, timings: dict[str, float]
    ) -> ExecutionResult:
        counts = counts_from_measurements(
            task_result.measured_qubits, task_result.measurements, prepared.sources
        )
        return ExecutionResult(
            counts=counts,
            shots=sum(counts.values()),
            job_id=job_id,
            backend=self.name,
            timings=timings,
            executed_program=prepared.source,
            metadata={
                "device": self._device.name,
                "task_id": str(task_result.task_metadata.id),
                "measured_qubits": [int(q) for q in task_result.measured_qubits],
            },
        )

    # -- submission --------------------------------------------------------------------------
    def _program(self, prepared: _Prepared) -> Any:
        from braket.ir.openqasm import Program

        return Program(source=prepared.source)

    def _submit_local(self, prepared: _Prepared, shots: int, inputs: dict[str, float]) -> JobId:
        job = self._table.create()
        program = self._program(prepared)

        def work(job: LocalJob) -> ExecutionResult:
            started = time.perf_counter()
            task_result = self._device.run(program, shots=shots, inputs=inputs).result()
            queued = (job.started_at or job.submitted_at) - job.submitted_at
            timings = {"execution_s": time.perf_counter() - started, "queued_s": max(0.0, queued)}
            return self._execution_result(job.job_id, task_result, prepared, timings)

        self._runner.submit(job, work)
        return JobId(job.job_id)

    def _submit_aws(self, prepared: _Prepared, shots: int, inputs: dict[str, float]) -> JobId:
        program = self._program(prepared)
        with _client_token(str(uuid.uuid4())):  # the same token on every attempt
            task = self._aws_call("submitting a task", lambda: self._device.run(
                program, shots=shots, inputs=inputs, s3_destination_folder=self._s3_folder))
        self._aws_prepared[task.id] = prepared
        return JobId(task.id)

    def _submit_one(
        self, circuit: Circuit | str, shots: int, parameters: Mapping[str, float] | None
    ) -> JobId:
        prepared = self._prepare(circuit, shots)
        inputs = self._inputs(prepared, parameters)
        submit = self._submit_local if self._local else self._submit_aws
        return submit(prepared, shots, inputs)

    async def submit(
        self,
        circuit: Circuit | str,
        shots: int,
        parameters: Mapping[str, float] | None = None,
    ) -> JobId:
        return await asyncio.to_thread(self._submit_one, circuit, shots, parameters)

    def _submit_many(
        self, prepared: list[_Prepared], inputs: list[dict[str, float]], shots: int
    ) -> list[JobId]:
        """Submit several programs; one job id per program, in order.

        AWS devices get one ``run_batch`` (tasks submitted in parallel). The local simulator
        runs them one by one on the worker thread instead: its ``run_batch`` forks a process
        pool, and a child forked from a process whose OpenMP threads have started (numba's
        ``omp`` layer, as hal-workflow's own simulator uses) aborts, leaving the batch hung.
        """
        if self._local:
            return [self._submit_local(p, shots, i) for p, i in zip(prepared, inputs, strict=True)]
        # One task at a time, each with its own idempotency token, so that a retried task is
        # never created twice (run_batch's parallel creation has no per-task token).
        return [self._submit_aws(p, shots, i) for p, i in zip(prepared, inputs, strict=True)]

    # -- jobs ----------------------------------------------------------------------------------
    def _aws_task(self, job_id: str) -> Any:
        if not str(job_id).startswith("arn:aws:braket:"):
            raise JobNotFoundError(str(job_id), f"not a Braket task ARN: {job_id!r}")
        from braket.aws import AwsQuantumTask

        return self._aws_call("looking up a task",
                              lambda: AwsQuantumTask(job_id, aws_session=self._session), job_id)

    def _status(self, job_id: str) -> JobStatus:
        if self._local:
            try:
                return self._table.status(job_id)
            except JobNotFoundError:
                raise JobNotFoundError(
                    job_id, f"unknown job id {job_id!r}; local Braket jobs live only in the "
                    "process that submitted them"
                ) from None
        task = self._aws_task(job_id)

        def read() -> tuple[str, str | None]:
            vendor = task.state()
            return vendor, task.metadata().get("failureReason") if vendor == "FAILED" else None

        vendor, reason = self._aws_call("reading task status", read, job_id)
        return JobStatus(job_id, task_state(vendor), reason=reason, vendor_state=vendor)

    async def status(self, job_id: str) -> JobStatus:
        return await asyncio.to_thread(self._status, job_id)

    def _aws_result(self, job_id: str) -> ExecutionResult:
        task = self._aws_task(job_id)
        status = self._status(job_id)
        if status.state is JobState.FAILED:
            raise JobFailedError(job_id, status.reason)
        if status.state is JobState.CANCELLED:
            raise JobCancelledError(job_id)
        task_result = self._aws_call("reading a task result", task.result, job_id)
        if task_result is None:  # the SDK returns None for FAILED/CANCELLED tasks
            status = self._status(job_id)
            if status.state is JobState.CANCELLED:
                raise JobCancelledError(job_id)
            raise JobFailedError(job_id, status.reason)
        prepared = self._aws_prepared.get(job_id)
        if prepared is None:  # submitted by another process: re-read the program it ran
            circuit = as_circuit(from_braket(task_result.additional_metadata.action.source))
            prepared = _Prepared(task_result.additional_metadata.action.source,
                                 measurement_map(circuit.lowered), circuit.parameters)
        metadata = task_result.task_metadata
        timings = {}
        if metadata.createdAt and metadata.endedAt:
            from datetime import datetime

            created = datetime.fromisoformat(str(metadata.createdAt).replace("Z", "+00:00"))
            ended = datetime.fromisoformat(str(metadata.endedAt).replace("Z", "+00:00"))
            timings["total_s"] = max(0.0, (ended - created).total_seconds())
        return self._execution_result(job_id, task_result, prepared, timings)

    async def result(self, job_id: str) -> ExecutionResult:
        if self._local:
            try:
                return await self._table.result(job_id)
            except JobNotFoundError:
                await self.status(job_id)  # raises with the local-jobs explanation
                raise
        return await asyncio.to_thread(self._aws_result, job_id)

    def _cancel(self, job_id: str) -> None:
        if self._local:
            self._status(job_id)  # JobNotFoundError for an unknown id
            # A job still QUEUED ends CANCELLED at once; a running simulation finishes, then
            # the job ends CANCELLED (LocalSimulator.run cannot be interrupted).
            self._table.cancel(job_id)
            return
        task = self._aws_task(job_id)

        def cancel() -> None:
            if task.state() not in {"COMPLETED", "FAILED", "CANCELLED"}:
                task.cancel()

        self._aws_call("cancelling a task", cancel, job_id)

    async def cancel(self, job_id: str) -> None:
        await asyncio.to_thread(self._cancel, job_id)


class _BraketBatch:
    """``batch``: several circuits, or one circuit over many bindings, submitted together."""

    def __init__(self, backend: BraketBackend) -> None:
        self._backend = backend

    def _batch(self, circuits: Sequence[Circuit | str], shots: int) -> list[JobId]:
        backend = self._backend
        prepared = [backend._prepare(c, shots) for c in circuits]
        inputs = [backend._inputs(p, None) for p in prepared]
        return backend._submit_many(prepared, inputs, shots)

    def _sweep(
        self, circuit: Circuit | str, bindings: Sequence[Mapping[str, float]], shots: int
    ) -> list[JobId]:
        backend = self._backend
        prepared = backend._prepare(circuit, shots)
        inputs = [backend._inputs(prepared, b) for b in bindings]
        return backend._submit_many([prepared] * len(inputs), inputs, shots)

    async def submit_batch(self, circuits: Sequence[Circuit | str], shots: int) -> list[JobId]:
        return await asyncio.to_thread(self._batch, list(circuits), shots)

    async def submit_sweep(
        self, circuit: Circuit | str, bindings: Sequence[Mapping[str, float]], shots: int
    ) -> list[JobId]:
        return await asyncio.to_thread(self._sweep, circuit, list(bindings), shots)
