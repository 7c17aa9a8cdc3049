"""IQM quantum computers through ``iqm-client`` (the ``iqm`` extra, iqm-client 36).

Spec: ``{"name": "iqm", "url": "https://...", "quantum_computer": "garnet"}``. ``url`` falls back
to ``IQM_SERVER_URL``; ``quantum_computer`` (the alias) may be left out when the server has only
one. Credentials, by name (resolved where the backend is built, e.g. on a worker):
``"tokens_file"`` (a tokens file, as ``IQM_TOKENS_FILE`` names one), a ``"token"`` reference
(``{"env": "VAR"}`` or ``{"file": PATH}``), or a ``"token"`` value (held as a ``Secret``, never
shown, and never written to job files); without any, iqm-client reads ``IQM_TOKEN`` or
``IQM_TOKENS_FILE``. Other options: ``calibration_set_id`` (pin one calibration), ``max_shots``
(default 100000), ``optimization_level`` (default 1), ``seed`` (of the transpiler), ``timeout``
(seconds per HTTP request, default 60), ``retry`` (the retry policy, see
:mod:`hal_workflow.backends.retry`).

Every server call goes through the retry policy. Reads (status, results, calibration) are
retried on any transient error. A submit is retried only when the server certainly did not
create the job (429, 503, a connection that was never made): iqm-client offers no way to
find a job by a tag, so after an ambiguous failure (a timeout once the request was sent, 502,
504) the submit is not repeated and the error says so, rather than risk a second job.

Circuits are transpiled with Qiskit to IQM's native ``r``/``cz`` basis on the device's coupling
map (qubit ``i`` is the ``i``-th qubit of the dynamic quantum architecture) and sent as native
``prx``/``cz``/``measure`` operations (:mod:`hal_workflow.backends.iqm_native`). Because the
adapter transpiles, ``Capabilities.gate_set`` lists every standard OpenQASM 3 gate a circuit may
use; the device's own operations are :attr:`IQMBackend.native_operations`.

Jobs live on IQM's server, so another process can rebuild the backend from its spec and query
a job by id. The ``batch`` extension sends many circuits (or bindings) as one IQM job; element
``k`` has the id ``<job id>#<k>``, and cancelling any element cancels the whole job.
Architectures with computational resonators (MOVE gates) are not supported.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from hal_workflow.backends.iqm_native import METADATA_KEY, MeasurementLayout, to_iqm_circuit
from hal_workflow.backends.options import check_options
from hal_workflow.backends.retry import RetryPolicy, is_retryable
from hal_workflow.circuits.gates import STANDARD_GATES
from hal_workflow.circuits.ir import IfOp, ResetOp
from hal_workflow.compilation.checks import bound_values, shots_issues, width_issues
from hal_workflow.compilation.qiskit_bridge import (
    as_circuit,
    from_qiskit,
    transpile_for,
)
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
from hal_workflow.contract.secrets import reveal, wrap_secrets
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
    from iqm.iqm_client import IQMClient
    from iqm.pulse import Circuit as IQMCircuit
    from iqm.station_control.client.job_trackers import CircuitJobTracker
    from qiskit import QuantumCircuit

    from hal_workflow.circuits import Circuit

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

STATE_TABLE: dict[str, JobState] = {
    "waiting": JobState.QUEUED,
    "processing": JobState.RUNNING,
    "completed": JobState.COMPLETED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED,
}
"""IQM job status -> contract state (``iqm.station_control...jobs_new.JobStatus``)."""

NATIVE_BASIS = ("r", "cz")
"""The Qiskit basis that maps one-to-one onto IQM's ``prx`` and ``cz``."""


class IQMBackend(Backend):
    """A quantum computer behind an IQM server (see the module docstring for the spec)."""

    OPTIONS = frozenset({"name", "url", "quantum_computer", "token", "tokens_file",
                         "calibration_set_id", "max_shots", "optimization_level", "seed",
                         "timeout", "retry"})

    def __init__(self, spec: Mapping[str, Any]) -> None:
        spec = wrap_secrets(spec)  # a token, by value or reference, as a Secret
        check_options(spec, self.OPTIONS, "iqm")
        url = spec.get("url") or os.environ.get("IQM_SERVER_URL")
        if not url:
            raise ConfigurationError(
                "iqm: no server URL; give the spec a 'url' or set IQM_SERVER_URL"
            )
        self._url = str(url)
        self._quantum_computer = spec.get("quantum_computer")
        self._token = spec.get("token")
        self._tokens_file = spec.get("tokens_file")
        if self._token is not None and self._tokens_file is not None:
            raise ConfigurationError("iqm: give 'token' or 'tokens_file', not both")
        self._retry = RetryPolicy.from_spec(spec)
        self._calibration_set_id = _optional_uuid(spec.get("calibration_set_id"))
        self._max_shots = int(spec.get("max_shots", 100_000))
        self._optimization_level = int(spec.get("optimization_level", 1))
        self._seed = None if spec.get("seed") is None else int(spec["seed"])
        self._timeout = float(spec.get("timeout", 60.0))
        self._client_lock = threading.Lock()
        self._client_instance: IQMClient | None = None
        self._trackers: dict[str, CircuitJobTracker] = {}
        self._calibrations: dict[str, CalibrationSnapshot] = {}
        self._qubits: list[str] = []
        self._transpiled = functools.lru_cache(maxsize=64)(self._transpile)
        self.native_operations: frozenset[str] = frozenset()
        super().__init__(spec)

    # -- the client ------------------------------------------------------------------------
    def _client(self) -> IQMClient:
        """The IQMClient, built on first use (its constructor already talks to the server)."""
        with self._client_lock:
            if self._client_instance is None:
                from iqm.iqm_client import IQMClient
                from iqm.iqm_server_client.iqm_server_executor import IQMServerExecutor
                from iqm.iqm_server_client.iqm_server_storage import IQMServerStorage

                tokens_file = self._tokens_file
                if tokens_file is not None:
                    tokens_file = os.path.expanduser(os.path.expandvars(str(tokens_file)))
                    if not os.path.isfile(tokens_file):
                        raise CredentialsError(f"iqm: tokens_file {tokens_file} does not exist")
                with self._translated("connect"):
                    server = _server_client_class()(
                        self._url,
                        quantum_computer=self._quantum_computer,
                        token=reveal(self._token),
                        tokens_file=tokens_file,
                        client_signature="hal-workflow",
                        timeout=self._timeout,
                    )
                self._client_instance = IQMClient(
                    executor=IQMServerExecutor(client=server),
                    storage=IQMServerStorage(client=server),
                )
                logger.debug("iqm: connected to %s (%s)", self._url, server.quantum_computer)
            return self._client_instance

    async def _call(
        self, what: str, fn: Callable[[IQMClient], _T], job_id: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> _T:
        """Run ``fn(client)`` on a worker thread, translating IQM errors, retried by the
        spec's retry policy (``retry`` overrides it)."""

        def call() -> _T:
            with self._translated(what, job_id):
                return fn(self._client())

        policy = (retry or self._retry).named(f"iqm: {what}")
        return await policy.call_in_thread(call)

    @contextlib.contextmanager
    def _translated(self, what: str, job_id: str | None = None) -> Iterator[None]:
        """Turn iqm-client and network errors into contract errors (never showing a token)."""
        import requests
        from exa.common.errors import iqm_error as iqm
        from iqm.station_control.client.authentication import (
            ClientAuthenticationError,
            ClientConfigurationError,
        )

        where = f"iqm ({self._url}): {what}"
        try:
            yield
        except HalError:
            raise
        except iqm.RateLimitError as exc:
            raise RateLimitedError(f"{where}: rate limited by the server ({exc})",
                                   retry_after=_last_retry_after()) from exc
        except (iqm.AuthenticationError, iqm.ForbiddenError, ClientAuthenticationError) as exc:
            raise CredentialsError(
                f"{where}: the server rejected the credentials ({exc}); set IQM_TOKEN or "
                "IQM_TOKENS_FILE"
            ) from exc
        except iqm.NotFoundError as exc:
            if job_id is not None:
                raise JobNotFoundError(job_id, f"{where}: unknown job id {job_id!r}") from exc
            raise BackendUnavailableError(f"{where}: not found: {exc}") from exc
        except (iqm.ValidationError, iqm.InvalidOperationError) as exc:
            code = ValidationCode.COUPLING_VIOLATION if "locus" in str(exc) else (
                ValidationCode.UNSUPPORTED_FEATURE)
            raise ValidationError([ValidationIssue(code, f"{what}: {exc}")], self._name()) from exc
        except ClientConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc}") from exc
        except (requests.ConnectionError, requests.Timeout, iqm.OperationTimeoutError,
                iqm.SystemUnavailableError, iqm.BadGatewayError, iqm.InternalSystemError) as exc:
            unavailable = BackendUnavailableError(f"{where}: server unreachable ({exc})")
            unavailable.retry_after = _last_retry_after()
            if what == "submit" and not _never_processed(exc):
                # The request may have reached the server: retrying could create a second job.
                unavailable.retryable = False
                unavailable.args = (
                    f"{where}: no answer after the job was sent ({exc}); not retried because "
                    "the server may have created it, and iqm-client cannot look a job up by tag",)
            raise unavailable from exc
        except (iqm.IQMError, requests.RequestException, ValueError) as exc:
            kind = SubmissionError if what == "submit" else BackendUnavailableError
            failed = kind(f"{where}: {type(exc).__name__}: {exc}")
            failed.retryable = what != "submit" and is_retryable(exc)
            raise failed from exc

    def _name(self) -> str:
        caps = getattr(self, "_capabilities", None)
        return caps.name if caps is not None else "iqm"

    # -- capabilities and calibration -------------------------------------------------------
    def _discover_capabilities(self) -> Capabilities:
        def read() -> tuple[Any, str]:
            client = self._client()
            with self._translated("read the quantum architecture"):
                return (client.get_dynamic_quantum_architecture(self._calibration_set_id),
                        client.quantum_computer_name)

        dqa, alias = self._retry.named("iqm: connect").call(read)
        self._qubits = list(dqa.qubits)
        index = {name: i for i, name in enumerate(self._qubits)}
        pairs: set[tuple[int, int]] = set()
        if "cz" in dqa.gates:
            for a, b in dqa.gates["cz"].loci:
                if a in index and b in index:  # resonator loci need MOVE gates: left out
                    pairs.update({(index[a], index[b]), (index[b], index[a])})
        self.native_operations = frozenset(dqa.gates)
        return Capabilities(
            name=f"iqm:{alias}",
            num_qubits=len(self._qubits),
            gate_set=frozenset(STANDARD_GATES),
            native_gates=frozenset(self.native_operations - {"measure", "barrier", "delay"}),
            coupling_map=tuple(sorted(pairs)),
            max_shots=self._max_shots,
            simulator=False,
            supports_reset="reset" in dqa.gates,
            supports_mid_circuit_measurement=True,
            extensions=frozenset({"batch", "calibration"}),
        )

    def _extensions(self) -> Mapping[str, object]:
        return {"batch": _IQMBatch(self), "calibration": _IQMCalibration(self)}

    def _snapshot(
        self, client: IQMClient, calibration_set_id: uuid.UUID | None
    ) -> CalibrationSnapshot:
        """Qubit and gate data of a calibration set, from its quality metrics (cached by id)."""
        from exa.common.errors.iqm_error import NotFoundError
        from iqm.station_control.client.qon import ObservationFinder

        dqa = client.get_dynamic_quantum_architecture(calibration_set_id)
        key = str(dqa.calibration_set_id)
        if key in self._calibrations:
            return self._calibrations[key]
        try:
            metrics = client.get_quality_metric_set(dqa.calibration_set_id)
            observations = metrics.observations + client.get_calibration_set(
                dqa.calibration_set_id).observations
            timestamp = (metrics.end_timestamp or metrics.created_timestamp).timestamp()
        except NotFoundError:  # servers without quality metrics: no per-qubit data
            snapshot = CalibrationSnapshot(timestamp=time.time(), calibration_id=key)
        else:
            finder = ObservationFinder(observations, skip_unparseable=True)
            snapshot = _calibration(finder, dqa, self._qubits, timestamp, key)
        self._calibrations[key] = snapshot
        return snapshot

    # -- availability and validation ------------------------------------------------------
    async def availability(self) -> BackendAvailability:
        try:  # a probe: one attempt, an unreachable server is OFFLINE at once
            health = await self._call("health", lambda c: c.get_health(),
                                      retry=self._retry.replace(max_attempts=1))
        except BackendUnavailableError as exc:
            return BackendAvailability(AvailabilityStatus.OFFLINE, message=str(exc))
        return BackendAvailability(AvailabilityStatus.ONLINE, message=str(health))

    def _feature_issues(self, circuit: Circuit) -> list[ValidationIssue]:
        """Operations this adapter cannot express in IQM's native operations."""
        issues = []
        for op in circuit.lowered.operations:
            if isinstance(op, IfOp):
                issues.append(ValidationIssue(
                    ValidationCode.UNSUPPORTED_FEATURE,
                    f"line {op.line}: classically controlled operations are not supported on IQM "
                    "through hal-workflow",
                ))
            elif isinstance(op, ResetOp) and not self._capabilities.supports_reset:
                issues.append(ValidationIssue(
                    ValidationCode.UNSUPPORTED_FEATURE,
                    f"line {op.line}: {self.name} offers no reset in its current calibration",
                ))
        return issues

    def _transpile(self, circuit: Circuit) -> QuantumCircuit:
        """``circuit`` on the device's qubits in the ``r``/``cz`` basis, parameters still free.

        Raises ``ValidationError`` for a circuit that cannot run here at all.
        """
        from qiskit.transpiler import CouplingMap

        issues = width_issues(circuit.num_qubits, self._capabilities.num_qubits, self.name)
        issues += self._feature_issues(circuit)
        if issues:
            raise ValidationError(issues, self.name)
        coupling = CouplingMap(list(self._capabilities.coupling_map or ()))
        for q in range(len(self._qubits)):
            if q not in coupling.physical_qubits:
                coupling.add_physical_qubit(q)
        return transpile_for(circuit, basis_gates=NATIVE_BASIS, coupling_map=coupling,
                             optimization_level=self._optimization_level, seed=self._seed)

    def _check(
        self, circuit: Circuit | str, shots: int | None
    ) -> tuple[list[ValidationIssue], Circuit, QuantumCircuit | None]:
        """Every reason ``circuit`` cannot run, the parsed circuit and its transpiled form.

        Raises ``CircuitError`` for text that does not parse.
        """
        parsed = as_circuit(circuit)
        issues = shots_issues(shots, self._capabilities.max_shots)
        try:
            return issues, parsed, self._transpiled(parsed)
        except ValidationError as exc:
            return [*issues, *exc.issues], parsed, None

    async def validate(self, circuit: Circuit | str, shots: int | None = None) -> ValidationResult:
        issues, _, _ = await asyncio.to_thread(self._check, circuit, shots)
        return ValidationResult(tuple(issues))

    def _require_shots(self, shots: int | None) -> None:
        """``ValidationError`` unless ``shots`` is given and in range (submit needs it)."""
        issues = shots_issues(shots, self._capabilities.max_shots, required=True)
        if issues:
            raise ValidationError(issues, self.name)

    def native_circuit(
        self,
        circuit: Circuit | str,
        parameters: Mapping[str, float] | None = None,
        shots: int | None = None,
    ) -> IQMCircuit:
        """The ``iqm.pulse.Circuit`` that ``submit`` would send, without sending it (a dry run).

        Raises ``CircuitError`` for text that does not parse and ``ValidationError`` for a
        circuit that cannot run here (the issues ``validate`` reports, or unbound inputs).
        """
        issues, parsed, transpiled = self._check(circuit, shots)
        if issues or transpiled is None:
            raise ValidationError(issues, self.name)
        values = bound_values(parsed.parameters, parameters, self.name)
        if values:
            names = dict(zip(parsed.parameters, values, strict=True))
            transpiled = transpiled.assign_parameters(
                {p: names[p.name] for p in transpiled.parameters})
        return to_iqm_circuit(transpiled, self._qubits, name="hal-workflow",
                              program=from_qiskit(transpiled))

    def _submit_natives(self, client: IQMClient, natives: list[Any], shots: int) -> str:
        """Send ``natives`` as one IQM job; return its id (a UUID string)."""
        tracker = client.submit_circuits(
            natives, shots=shots, calibration_set_id=self._calibration_set_id
        )
        job_id = str(tracker.job_id)
        self._trackers[job_id] = tracker
        logger.debug("iqm: submitted job %s (%d circuit(s), %d shots)", job_id, len(natives),
                     shots)
        return job_id

    async def submit(
        self,
        circuit: Circuit | str,
        shots: int,
        parameters: Mapping[str, float] | None = None,
    ) -> JobId:
        self._require_shots(shots)

        def submit(client: IQMClient) -> str:
            native = self.native_circuit(circuit, parameters, shots)
            return self._submit_natives(client, [native], shots)

        return JobId(await self._call("submit", submit))

    async def _submit_many(
        self, items: list[tuple[Circuit | str, Mapping[str, float] | None]], shots: int
    ) -> list[JobId]:
        """One IQM job for every (circuit, binding); element ``k`` is ``<job id>#<k>``."""
        self._require_shots(shots)

        def submit(client: IQMClient) -> list[JobId]:
            natives = [self.native_circuit(c, p, shots) for c, p in items]
            job_id = self._submit_natives(client, natives, shots)
            return [JobId(f"{job_id}#{k}") for k in range(len(natives))]

        return await self._call("submit", submit)

    def _tracker(self, client: IQMClient, job_id: str) -> CircuitJobTracker:
        """The tracker of the IQM job behind ``job_id``, refreshed unless it is terminal."""
        key = str(_parse_id(job_id)[0])
        known = self._trackers.get(key)
        if known is not None:
            known.update()
            return known
        with _quiet():  # get_job warns once per server message
            fetched = client.get_job(uuid.UUID(key))
        if fetched.job_data.type != "circuit":
            raise JobNotFoundError(job_id, f"iqm: job {job_id} is not a circuit job")
        self._trackers[key] = fetched  # type: ignore[assignment]
        return fetched  # type: ignore[return-value]

    async def status(self, job_id: str) -> JobStatus:
        _parse_id(job_id)
        tracker = await self._call("status", lambda c: self._tracker(c, job_id), job_id)
        data = tracker.job_data
        vendor = str(data.status.value if hasattr(data.status, "value") else data.status)
        state = STATE_TABLE.get(vendor)
        if state is None:
            logger.warning("iqm: unknown job status %r of job %s; reading it as QUEUED", vendor,
                           job_id)
            state = JobState.QUEUED
        reason = "; ".join(e.message for e in data.errors) or None
        if state is JobState.FAILED and reason is None:
            reason = "the IQM server reported the job failed without a message"
        return JobStatus(job_id=job_id, state=state, reason=reason, vendor_state=vendor,
                         queue_position=data.queue_position)

    async def result(self, job_id: str) -> ExecutionResult:
        _, index = _parse_id(job_id)
        status = await self.wait(job_id)
        if status.state is JobState.FAILED:
            raise JobFailedError(job_id, status.reason)
        if status.state is JobState.CANCELLED:
            raise JobCancelledError(job_id)

        def fetch(client: IQMClient) -> ExecutionResult:
            tracker = self._tracker(client, job_id)
            batch = tracker.result_counts() or []
            with _quiet():  # parsing a fetched payload trips iqm-client's own deprecations
                natives = tracker.payload().circuits
            if index >= len(natives):
                raise JobNotFoundError(job_id, f"iqm: job {job_id} has {len(natives)} circuits")
            if index >= len(batch):
                raise JobFailedError(job_id, "the IQM server returned no measurement counts")
            metadata = getattr(natives[index], "metadata", None) or {}
            layout = MeasurementLayout.from_metadata(metadata)
            measured = batch[index]
            counts = (layout.counts(measured.measurement_keys, measured.counts) if layout
                      else {k[::-1]: v for k, v in measured.counts.items()})
            data = tracker.job_data
            calibration_id = data.compilation.calibration_set_id if data.compilation else None
            return ExecutionResult(
                counts=counts,
                shots=sum(counts.values()),
                job_id=job_id,
                backend=self.name,
                timings=_timings(data.timeline),
                executed_program=(metadata.get(METADATA_KEY) or {}).get("program"),
                calibration=self._snapshot(client, calibration_id),
                metadata={"calibration_set_id": str(calibration_id) if calibration_id else None,
                          "qubits": list(self._qubits)},
            )

        return await self._call("result", fetch, job_id)

    async def cancel(self, job_id: str) -> None:
        """Cancel the IQM job; for an element of a batch, that cancels the whole batch."""
        uid, _ = _parse_id(job_id)
        await self._call("cancel", lambda c: c.cancel_job(uid), job_id)
        logger.debug("iqm: asked to cancel job %s", job_id)


class _IQMBatch:
    """The ``batch`` extension: many circuits (or bindings) in one IQM job."""

    def __init__(self, backend: IQMBackend) -> None:
        self._backend = backend

    async def submit_batch(self, circuits: Sequence[Circuit | str], shots: int) -> list[JobId]:
        return await self._backend._submit_many([(c, None) for c in circuits], shots)

    async def submit_sweep(
        self, circuit: Circuit | str, bindings: Sequence[Mapping[str, float]], shots: int
    ) -> list[JobId]:
        return await self._backend._submit_many([(circuit, b) for b in bindings], shots)


class _IQMCalibration:
    """The ``calibration`` extension: the device's current calibration and quality metrics."""

    def __init__(self, backend: IQMBackend) -> None:
        self._backend = backend

    async def snapshot(self) -> CalibrationSnapshot:
        backend = self._backend
        return await backend._call(
            "calibration", lambda c: backend._snapshot(c, backend._calibration_set_id)
        )


# -- helpers -----------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence warnings that iqm-client raises about its own data (not the caller's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _optional_uuid(value: Any) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ConfigurationError(f"iqm: calibration_set_id {value!r} is not a UUID") from None


_JOB_ID = re.compile(r"^(?P<uuid>[0-9a-fA-F-]{32,36})(?:#(?P<index>\d+))?$")


def _parse_id(job_id: str) -> tuple[uuid.UUID, int]:
    """``<IQM job UUID>`` or ``<UUID>#<k>`` (circuit ``k`` of a batch); else no such job."""
    match = _JOB_ID.match(str(job_id))
    try:
        if match is None:
            raise ValueError(job_id)
        return uuid.UUID(match["uuid"]), int(match["index"] or 0)
    except ValueError:
        raise JobNotFoundError(str(job_id), f"iqm: {job_id!r} is not an IQM job id") from None


def _timings(timeline: list[Any]) -> dict[str, float]:
    """Seconds from the first to the last timeline entry of a finished job."""
    stamps: list[datetime] = [entry.timestamp for entry in timeline]
    if len(stamps) < 2:
        return {}
    return {"total_s": max(0.0, (max(stamps) - min(stamps)).total_seconds())}


def _calibration(finder: Any, dqa: Any, qubits: list[str], timestamp: float,
                 calibration_id: str) -> CalibrationSnapshot:
    """Read T1/T2/readout/frequency per qubit and fidelity/duration per gate locus."""
    index = {name: i for i, name in enumerate(qubits)}
    t1, t2 = finder.get_coherence_times(qubits)
    measure = dqa.gates.get("measure")
    qubit_data = []
    for name in qubits:
        errors = None
        if measure is not None:
            impl = measure.get_default_implementation((name,))
            errors = finder.get_measure_errors("measure", impl, (name,))
        qubit_data.append(QubitCalibration(
            qubit=index[name], t1_s=t1.get(name), t2_s=t2.get(name),
            readout_error=None if errors is None else sum(errors) / 2,
            frequency_hz=finder.get_qubit_frequency(name),
        ))
    gates = []
    for gate_name in ("prx", "cz"):
        info = dqa.gates.get(gate_name)
        for locus in info.loci if info is not None else ():
            if not all(q in index for q in locus):
                continue
            impl = info.get_default_implementation(locus)
            fidelity = finder.get_gate_fidelity(gate_name, impl, locus)
            duration = finder.get_gate_duration(gate_name, impl, locus)
            if fidelity is None and duration is None:
                continue
            gates.append(GateCalibration(
                gate=gate_name, qubits=tuple(index[q] for q in locus),
                error=None if fidelity is None else 1.0 - fidelity, duration_s=duration,
            ))
    return CalibrationSnapshot(timestamp=timestamp, qubits=tuple(qubit_data), gates=tuple(gates),
                               calibration_id=calibration_id)


__all__ = ["NATIVE_BASIS", "STATE_TABLE", "IQMBackend"]


_response_headers = threading.local()


def _last_retry_after() -> float | None:
    """The ``Retry-After`` of the last error response this thread received, in seconds."""
    value = getattr(_response_headers, "retry_after", None)
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None


def _never_processed(exc: BaseException) -> bool:
    """True when a failed request certainly did not reach the server's job logic: 429, 503,
    or a connection that was never made (refused, connect timeout)."""
    import requests
    from exa.common.errors import iqm_error as iqm

    if isinstance(exc, (iqm.RateLimitError, iqm.SystemUnavailableError, requests.ConnectTimeout)):
        return True
    chain: BaseException | None = exc
    while chain is not None:  # requests wraps urllib3's NewConnectionError (connection refused)
        if "NewConnectionError" in repr(chain) or isinstance(chain, ConnectionRefusedError):
            return True
        chain = chain.__cause__ or chain.__context__
    return False


@functools.lru_cache(maxsize=1)
def _server_client_class() -> type:
    """iqm-client's ``IQMServerClient``, noting each error response's ``Retry-After`` (the
    client's own errors drop the response, and with it the server's wait hint)."""
    from iqm.iqm_client import IQMServerClient

    class _Client(IQMServerClient):  # type: ignore[misc]
        def send_request(self, http_method: Callable[..., Any], url_path: str,
                         **kwargs: Any) -> Any:
            @functools.wraps(http_method)  # keeps __name__, which decides POST/GET handling
            def noting(*args: Any, **kw: Any) -> Any:
                response = http_method(*args, **kw)
                _response_headers.retry_after = (
                    None if response.ok else response.headers.get("Retry-After"))
                return response

            _response_headers.retry_after = None
            return super().send_request(noting, url_path, **kwargs)

    return _Client
