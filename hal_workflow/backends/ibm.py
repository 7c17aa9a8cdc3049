"""IBM Quantum adapter: qiskit-ibm-runtime's ``SamplerV2`` on IBM devices or fake backends.

Spec: ``{"name": "ibm", "backend": "fake_manila"}`` runs in the runtime's *local testing mode*
on a fake backend of ``qiskit_ibm_runtime.fake_provider`` (``"fake_manila"`` or the class name
``"FakeManilaV2"``): a noisy Aer simulation built from a snapshot of the real device's
calibration. Any other backend name (``"ibm_torino"``) opens a ``QiskitRuntimeService``, which
finds its account the SDK's own way: the ``QISKIT_IBM_TOKEN`` / ``QISKIT_IBM_CHANNEL`` /
``QISKIT_IBM_INSTANCE`` environment variables, else the saved account. Tokens never go in the
spec; it names the credentials instead: ``account`` (the name of an account saved with
``QiskitRuntimeService.save_account(name=...)``, read where the backend is built), ``channel``
and ``instance``. Other optional keys: ``optimization_level`` (default 1), ``seed`` (fixes
transpiler and, in local mode, simulator randomness) and ``retry`` (the retry policy).

Every runtime call (opening the service and backend, submitting, status, results, cancel) goes
through :class:`~hal_workflow.backends.retry.RetryPolicy`. Each job is tagged
``hal-workflow-<uuid>`` (``job_tags``); before a submit is tried again, the tag is looked up
(``service.jobs(job_tags=...)``), so a submit whose answer was lost is adopted, not repeated.

Circuits arrive as OpenQASM 3 and are transpiled to the device's ``Target`` with Qiskit's preset
pass manager (the runtime only accepts ISA circuits). The result carries that transpiled circuit
as ``executed_program`` and the calibration snapshot it was transpiled against.

Job ids: a runtime job id for one circuit; ``<id>#<k>`` for the k-th circuit of a batch and
``<id>#0.<k>`` for the k-th binding of a sweep (one runtime job, one PUB with a parameter
array). Cloud jobs are reattached by id from any process through ``service.job(id)``; jobs of
the local testing mode live only in the process that submitted them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import os
import pickle
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from qiskit import ClassicalRegister, QuantumCircuit
from qiskit.providers import QiskitBackendNotFoundError
from qiskit_ibm_runtime import Batch, QiskitRuntimeService, SamplerV2, fake_provider
from qiskit_ibm_runtime import Session as RuntimeSession
from qiskit_ibm_runtime.accounts import AccountNotFoundError, InvalidAccountError
from qiskit_ibm_runtime.api.exceptions import RequestsApiError
from qiskit_ibm_runtime.exceptions import (
    IBMAccountError,
    IBMError,
    IBMInputValueError,
    IBMNotAuthorizedError,
    RuntimeJobFailureError,
    RuntimeJobNotFound,
)
from qiskit_ibm_runtime.fake_provider.fake_backend import FakeBackendV2

from hal_workflow.backends.options import check_options
from hal_workflow.backends.retry import RetryPolicy, is_retryable, retry_after_of
from hal_workflow.compilation import workers
from hal_workflow.compilation.checks import bound_values, shots_issues
from hal_workflow.compilation.qiskit_bridge import (
    as_circuit,
    calibration_from_target,
    capabilities_from_target,
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
from hal_workflow.contract.types import (
    AvailabilityStatus,
    BackendAvailability,
    CalibrationSnapshot,
    Capabilities,
    ExecutionResult,
    JobId,
    JobState,
    JobStatus,
    ValidationIssue,
    ValidationResult,
)

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

RUNTIME_STATES: dict[str, JobState] = {
    "INITIALIZING": JobState.QUEUED,
    "QUEUED": JobState.QUEUED,
    "VALIDATING": JobState.QUEUED,
    "RUNNING": JobState.RUNNING,
    "DONE": JobState.COMPLETED,
    "ERROR": JobState.FAILED,
    "CANCELLED": JobState.CANCELLED,
}
"""Runtime job status (``JobStatus`` enum locally, a str in the cloud) -> contract state."""

_SECRET_ENV = ("QISKIT_IBM_TOKEN",)
_ALL_CLBITS = "_hal_clbits"  # the register over every clbit that we add before running
_JOB_ID = re.compile(r"^(?P<runtime>[^#]+)(?:#(?P<pub>\d+)(?:\.(?P<index>\d+))?)?$")


def runtime_state(status: Any) -> tuple[JobState, str]:
    """The contract state and vendor name of a runtime job status (enum or str)."""
    name = str(getattr(status, "name", status)).upper()
    state = RUNTIME_STATES.get(name)
    if state is None:
        logger.warning("unknown IBM runtime job status %r; treating it as QUEUED", name)
        state = JobState.QUEUED
    return state, name


def _scrub(text: str) -> str:
    """``text`` with any credential from the environment replaced by ``***``."""
    for var in _SECRET_ENV:
        secret = os.environ.get(var)
        if secret:
            text = text.replace(secret, "***")
    return text


def _network_failure(exc: BaseException) -> bool:
    """Whether ``exc`` was caused by the network (no connection, DNS, timeout)."""
    import requests

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (requests.ConnectionError, requests.Timeout, ConnectionError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


@contextlib.contextmanager
def _ibm_errors(what: str, job_id: str | None = None) -> Iterator[None]:
    """Translate qiskit-ibm-runtime exceptions raised while doing ``what`` to contract errors."""
    try:
        yield
    except HalError:
        raise
    except QiskitBackendNotFoundError as exc:
        raise ConfigurationError(f"IBM Quantum: {what}: no such backend") from exc
    except RuntimeJobNotFound as exc:
        raise JobNotFoundError(job_id or "?", _scrub(f"IBM Quantum: {exc}")) from exc
    except RuntimeJobFailureError as exc:
        raise JobFailedError(job_id or "?", _scrub(str(exc))) from exc
    except AccountNotFoundError as exc:
        raise CredentialsError(
            "IBM Quantum: no account found; set QISKIT_IBM_TOKEN (and QISKIT_IBM_INSTANCE) "
            "or save one with QiskitRuntimeService.save_account()"
        ) from exc
    except (IBMNotAuthorizedError, InvalidAccountError, IBMAccountError) as exc:
        if _network_failure(exc):
            raise BackendUnavailableError(
                f"IBM Quantum: {what}: cannot reach the service (network)"
            ) from exc
        raise CredentialsError(
            f"IBM Quantum: {what}: credentials rejected: {_scrub(str(exc))}"
        ) from exc
    except RequestsApiError as exc:
        if getattr(exc, "status_code", None) in (401, 403):
            raise CredentialsError(f"IBM Quantum: {what}: not authorised") from exc
        if getattr(exc, "status_code", None) == 404 and job_id is not None:
            raise JobNotFoundError(job_id, _scrub(f"IBM Quantum: {exc}")) from exc
        if getattr(exc, "status_code", None) == 429:
            raise RateLimitedError(f"IBM Quantum: {what}: rate limited",
                                   retry_after=retry_after_of(exc)) from exc
        unavailable = BackendUnavailableError(f"IBM Quantum: {what}: {_scrub(str(exc))}")
        # 5xx and timeouts may pass; a request the service refused (400, 409...) will not.
        unavailable.retryable = is_retryable(exc) or getattr(exc, "status_code", -1) in (None, -1)
        raise unavailable from exc
    except IBMInputValueError as exc:
        raise SubmissionError(f"IBM Quantum: {what}: {_scrub(str(exc))}") from exc
    except IBMError as exc:
        if _network_failure(exc):
            raise BackendUnavailableError(f"IBM Quantum: {what}: network failure") from exc
        raise SubmissionError(f"IBM Quantum: {what}: {_scrub(str(exc))}") from exc
    except Exception as exc:
        if _network_failure(exc):
            raise BackendUnavailableError(f"IBM Quantum: {what}: network failure") from exc
        raise


def _integer_option(
    spec: Mapping[str, Any], key: str, default: int | None, allowed: range | None = None
) -> int | None:
    """``spec[key]`` as an int (``default`` when absent); ConfigurationError otherwise."""
    value = spec.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or (
        allowed is not None and value not in allowed
    ):
        limits = f" from {allowed.start} to {allowed.stop - 1}" if allowed else ""
        raise ConfigurationError(f"ibm: {key!r} must be an integer{limits}, got {value!r}")
    return value


def _fake_backend_classes() -> dict[str, type[FakeBackendV2]]:
    """Every fake backend class of qiskit-ibm-runtime, by backend name and by class name."""
    classes: dict[str, type[FakeBackendV2]] = {}
    for attribute in dir(fake_provider):
        cls = getattr(fake_provider, attribute)
        if isinstance(cls, type) and issubclass(cls, FakeBackendV2) and cls is not FakeBackendV2:
            classes[cls.__name__] = cls
            name = cls.__dict__.get("backend_name")
            if isinstance(name, str):
                classes[name] = cls
    return classes


_LOCAL_DEVICES: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
_LOCAL_DEVICES_LOCK = threading.Lock()


def local_device(name: str) -> concurrent.futures.ThreadPoolExecutor:
    """The one worker thread of fake device ``name`` in local testing mode.

    A device runs one job at a time; so does its local stand-in, so that later jobs wait
    QUEUED and can be cancelled then, as on the service (a running Aer job cannot stop).
    """
    with _LOCAL_DEVICES_LOCK:
        if name not in _LOCAL_DEVICES:
            _LOCAL_DEVICES[name] = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix=f"hal-ibm-local-{name}")
        return _LOCAL_DEVICES[name]


def compile_for_device(program: str, target: Any, optimization_level: int,
                       seed: int | None) -> tuple[bytes, int, tuple[str, ...], str]:
    """``program`` transpiled for ``target`` (pickled), its operations and parameter names,
    and the result as OpenQASM 3 (what ran).

    Module-level so that large programs are compiled in a worker process, export included
    (:mod:`hal_workflow.compilation.workers`): both allocate heavily, and the garbage
    collector's full passes over a large heap stall every thread of the caller.
    """
    isa = transpile_for(program, target=target, optimization_level=optimization_level,
                        seed=seed)
    executed = from_qiskit(isa)
    if isa.num_clbits:
        # One register over every clbit in order: its BitArray is our bitstring, whatever
        # registers (or loose bits) the circuit declared.
        isa.add_register(ClassicalRegister(bits=list(isa.clbits), name=_ALL_CLBITS))
    return (pickle.dumps(isa, protocol=pickle.HIGHEST_PROTOCOL), len(isa.data),
            tuple(p.name for p in isa.parameters), executed)


_LOCAL_FAKES: dict[str, FakeBackendV2] = {}


def run_local(device: str, pubs: list[tuple[Any, ...]], options: dict[str, Any]) -> Any:
    """Run ``pubs`` on fake device ``device`` in local testing mode; the PrimitiveResult.
    Circuits may come pickled (:class:`_Prepared`).

    Module-level, by device name, so that :mod:`hal_workflow.compilation.workers` can run it
    in a worker process: Aer's C++ execution holds the GIL (1.4 s for a 200-binding sweep
    here), which would stall the caller's event loop. The fake device is built once per
    process; same device, options and seed give the same samples wherever it runs.
    """
    fake = _LOCAL_FAKES.get(device)
    if fake is None:
        fake = _LOCAL_FAKES.setdefault(device, _fake_backend_classes()[device]())
    pubs = [(pickle.loads(c) if isinstance(c, bytes) else c, *rest) for c, *rest in pubs]
    return SamplerV2(mode=fake, options=options).run(pubs).result()


def _gate_shots(pubs: list[tuple[Any, ...]], prepared: list[_Prepared]) -> int:
    """The work of ``pubs`` in a simulator: operations x parameter sets x shots."""
    total = 0
    for (_, values, shots), p in zip(pubs, prepared, strict=True):
        sets = 1 if values is None else max(1, int(np.asarray(values).size
                                                  // max(1, len(p.parameters))))
        total += p.operations * sets * int(shots or 1)
    return total


class _LocalDeviceJob:
    """A runtime job of local testing mode, queued on its fake device's thread (the parts of
    ``RuntimeJobV2`` the adapter uses: ``job_id``, ``result``, ``cancel``, ``_future``).
    The thread runs the job here when it is small and in a worker process otherwise."""

    def __init__(self, device: str, pubs: list[tuple[Any, ...]], prepared: list[_Prepared],
                 options: dict[str, Any]) -> None:
        self._id = f"local-{uuid.uuid4()}"
        pubs = [(p.isa_pickle, *rest) for (_, *rest), p in zip(pubs, prepared, strict=True)]
        self._future = local_device(device).submit(
            workers.call, run_local, device, pubs, options, size=_gate_shots(pubs, prepared))

    def job_id(self) -> str:
        return self._id

    def result(self) -> Any:
        return self._future.result()

    def cancel(self) -> bool:
        return self._future.cancel()


@dataclass
class _Submission:
    """What we keep of one runtime job: the job and, per PUB, the program that ran."""

    job: Any
    device: str
    executed: list[str | None]
    calibration: CalibrationSnapshot | None
    local: bool
    submitted_at: float = field(default_factory=time.time)
    transpile_s: float = 0.0


_SUBMISSIONS: dict[str, _Submission] = {}
"""Runtime jobs seen in this process, by runtime id: shared by every IBMBackend, so a backend
rebuilt from the spec in this process reads jobs another instance submitted (the only way to
reach a local-mode job, which the runtime cannot look up by id)."""
_SUBMISSIONS_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Prepared:
    """A circuit transpiled for the device, ready to become a PUB.

    The transpiled circuit is kept pickled: it goes to a worker process as it is (local
    mode), and is rebuilt here only when the runtime client needs the object. Pickling and
    unpickling a 10,000-gate circuit holds the GIL for 0.1-0.2 s (seconds under load).
    """

    isa_pickle: bytes  # with the all-clbits register added
    operations: int  # its size
    executed: str  # the transpiled circuit as OpenQASM 3 (before that register)
    inputs: tuple[str, ...]  # the circuit's input names, as declared
    parameters: tuple[str, ...]  # the inputs left in the transpiled circuit, in its order
    transpile_s: float

    @functools.cached_property
    def isa(self) -> QuantumCircuit:
        circuit: QuantumCircuit = pickle.loads(self.isa_pickle)
        return circuit


class IBMBackend(Backend):
    """IBM Quantum devices (or their fake twins) through qiskit-ibm-runtime's SamplerV2."""

    OPTIONS = frozenset({"name", "backend", "account", "channel", "instance",
                         "optimization_level", "seed", "retry"})

    def __init__(self, spec: Mapping[str, Any]) -> None:
        spec = dict(spec)
        secret_keys = [k for k in spec if re.search("token|secret|password|key", str(k), re.I)]
        if secret_keys:
            raise ConfigurationError(
                f"ibm: do not put credentials in the spec (keys {secret_keys}); set "
                "QISKIT_IBM_TOKEN or save an account with QiskitRuntimeService.save_account()"
            )
        check_options(spec, self.OPTIONS, "ibm")
        device = spec.get("backend")
        if not isinstance(device, str) or not device:
            raise ConfigurationError(
                "ibm: the spec needs 'backend', e.g. {'name': 'ibm', 'backend': 'fake_manila'}"
            )
        level = _integer_option(spec, "optimization_level", 1, range(4))
        self._optimization_level = 1 if level is None else level
        self._seed = _integer_option(spec, "seed", None)
        self._retry = RetryPolicy.from_spec(spec)
        self._service: Any = None
        self._device = self._open(device, spec)
        self._local = isinstance(self._device, FakeBackendV2)
        self._prepare_cached = functools.lru_cache(maxsize=64)(self._transpile)
        super().__init__(spec)

    # -- device ------------------------------------------------------------------------
    def _open(self, device: str, spec: Mapping[str, Any]) -> Any:
        fakes = _fake_backend_classes()
        if device in fakes:
            return fakes[device]()
        if device.startswith("fake"):
            known = sorted(n for n in fakes if n.startswith("fake_"))
            raise ConfigurationError(
                f"ibm: unknown fake backend {device!r}; known: {', '.join(known)}"
            )
        for key in ("account", "channel", "instance"):
            if spec.get(key) is not None and not isinstance(spec[key], str):
                raise ConfigurationError(f"ibm: {key!r} must be text, got {spec[key]!r}")
        account = spec.get("account")
        try:
            self._service = self._call(f"opening backend {device!r}", lambda: QiskitRuntimeService(
                name=account, channel=spec.get("channel"), instance=spec.get("instance")))
        except (ValueError, TypeError) as exc:  # a bad channel or instance
            raise ConfigurationError(f"ibm: {_scrub(str(exc))}") from exc
        except CredentialsError as exc:
            if account is None:
                raise
            raise CredentialsError(
                f"IBM Quantum: no usable saved account {account!r} ({exc}); save it with "
                f"QiskitRuntimeService.save_account(name={account!r}, ...)") from exc
        try:
            return self._call(f"opening backend {device!r}", lambda: self._service.backend(device))
        except ConfigurationError as exc:
            raise ConfigurationError(f"ibm: the account has no backend {device!r}") from exc

    def _call(self, what: str, fn: Callable[[], _T], job_id: str | None = None,
              retry: RetryPolicy | None = None) -> _T:
        """``fn()`` (blocking runtime calls), errors translated, retried by the spec's policy."""

        def attempt() -> _T:
            with _ibm_errors(what, job_id):
                return fn()

        return (retry or self._retry).named(f"ibm: {what}").call(attempt)

    def _discover_capabilities(self) -> Capabilities:
        configuration = self._device.configuration()
        return capabilities_from_target(
            f"ibm:{self._device.name}",
            self._device.target,
            transpiles=True,  # submit() transpiles: every standard gate is accepted
            max_shots=int(getattr(configuration, "max_shots", 0) or 100_000),
            simulator=False,  # fake backends model the hardware, noise included
            extensions=frozenset({"batch", "sessions", "calibration"}),
        )

    def _extensions(self) -> Mapping[str, object]:
        return {
            "batch": _IBMBatch(self),
            "sessions": _IBMSessions(self),
            "calibration": _IBMCalibration(self),
        }

    def _calibration(self) -> CalibrationSnapshot:
        properties = self._device.properties()
        updated = getattr(properties, "last_update_date", None)
        return calibration_from_target(
            self._device.target,
            timestamp=updated.timestamp() if updated is not None else None,
            calibration_id=getattr(properties, "backend_version", None),
        )

    async def availability(self) -> BackendAvailability:
        if self._local:
            return BackendAvailability(
                AvailabilityStatus.ONLINE, queue_depth=0, estimated_wait_s=0.0,
                message="local testing mode: fake backend simulated with its noise model",
            )
        try:
            with _ibm_errors("reading backend status"):
                status = await asyncio.to_thread(self._device.status)
        except HalError as exc:
            return BackendAvailability(AvailabilityStatus.OFFLINE, message=str(exc))
        if not status.operational:
            state = AvailabilityStatus.MAINTENANCE
        else:
            state = AvailabilityStatus.BUSY if status.pending_jobs else AvailabilityStatus.ONLINE
        return BackendAvailability(
            state, queue_depth=status.pending_jobs, message=status.status_msg or None
        )

    # -- validation and preparation ----------------------------------------------------
    def _transpile(self, circuit: Circuit) -> _Prepared:
        """Transpile ``circuit`` for the device (cached: validate, then submit, reuse it)."""
        started = time.perf_counter()
        isa, operations, parameters, executed = workers.call(
            compile_for_device, circuit.qasm, self._device.target, self._optimization_level,
            self._seed, size=workers.estimate(circuit))
        return _Prepared(
            isa_pickle=isa,
            operations=operations,
            executed=executed,
            inputs=circuit.parameters,
            parameters=parameters,
            transpile_s=time.perf_counter() - started,
        )

    def _check(
        self, circuit: Circuit | str, shots: int | None, required: bool = False
    ) -> tuple[list[ValidationIssue], _Prepared | None]:
        """Every reason ``circuit`` cannot run with ``shots``, and the prepared circuit if any.

        Raises ``CircuitError`` for text that does not parse.
        """
        issues = shots_issues(shots, self.capabilities().max_shots, required=required)
        try:
            prepared = self._prepare_cached(as_circuit(circuit))
        except ValidationError as exc:  # too wide for the device, or not transpilable
            return [*issues, *exc.issues], None
        return issues, prepared

    async def validate(self, circuit: Circuit | str, shots: int | None = None) -> ValidationResult:
        issues, _ = await asyncio.to_thread(self._check, circuit, shots)
        return ValidationResult(tuple(issues))

    def _prepare(self, circuit: Circuit | str, shots: int) -> _Prepared:
        issues, prepared = self._check(circuit, shots, required=True)
        if issues or prepared is None:
            raise ValidationError(issues, self.name)
        return prepared

    def _values(self, prepared: _Prepared, binding: Mapping[str, float] | None) -> list[float]:
        """The values of ``binding`` in the order of the transpiled circuit's parameters."""
        values = bound_values(prepared.inputs, binding, self.name)
        by_name = dict(zip(prepared.inputs, values, strict=True))
        return [by_name[name] for name in prepared.parameters]

    # -- submission --------------------------------------------------------------------
    def _sampler_options(self, tag: str) -> dict[str, Any]:
        options: dict[str, Any] = {"environment": {"job_tags": [tag]}}
        if self._local and self._seed is not None:
            options["simulator"] = {"seed_simulator": self._seed}
        return options

    def _sampler(self, mode: Any, tag: str) -> SamplerV2:
        return SamplerV2(mode=mode, options=self._sampler_options(tag))

    def _tagged(self, tag: str) -> Any | None:
        """The runtime job tagged ``tag``, if the service has one (None in local mode)."""
        if self._service is None:
            return None
        jobs = self._service.jobs(job_tags=[tag], limit=1, backend_name=self._device.name)
        return jobs[0] if jobs else None

    def _run_pubs(
        self, pubs: list[tuple[Any, ...]], prepared: list[_Prepared], mode: Any = None
    ) -> str:
        """Start one runtime job for ``pubs`` and record it; return its runtime id.

        Retried by the policy; from the second attempt on, the job's tag is looked up first,
        so a job whose creation succeeded but whose answer was lost is adopted, not repeated.
        """
        calibration = self._call("reading calibration data", self._calibration)
        tag = f"hal-workflow-{uuid.uuid4().hex}"
        tries = 0

        def submit() -> Any:
            nonlocal tries
            tries += 1
            found = self._tagged(tag) if tries > 1 else None
            if found is not None:
                logger.info("ibm: adopted runtime job %s (tag %s) after a failed submit",
                            found.job_id(), tag)
                return found
            if self._service is None:  # local testing mode: the fake device's queue, one job
                # at a time (a local session or batch changes nothing there)
                return _LocalDeviceJob(self._device.name, pubs, prepared,
                                       self._sampler_options(tag))
            return self._sampler(mode if mode is not None else self._device, tag).run(
                [(p.isa, *rest) for (_, *rest), p in zip(pubs, prepared, strict=True)])

        job = self._call("submitting a job", submit)
        runtime_id = job.job_id()
        with _SUBMISSIONS_LOCK:
            _SUBMISSIONS[runtime_id] = _Submission(
                job=job,
                device=self._device.name,
                executed=[p.executed for p in prepared],
                calibration=calibration,
                local=self._local,
                transpile_s=sum(p.transpile_s for p in prepared),
            )
        logger.debug("ibm: submitted runtime job %s (%d PUBs)", runtime_id, len(pubs))
        return runtime_id

    def _submit_one(
        self,
        circuit: Circuit | str,
        shots: int,
        parameters: Mapping[str, float] | None,
        mode: Any = None,
    ) -> JobId:
        prepared = self._prepare(circuit, shots)
        values = self._values(prepared, parameters)
        pub = (None, values or None, shots)  # the circuit: prepared's, added by _run_pubs
        return JobId(self._run_pubs([pub], [prepared], mode))

    async def submit(
        self,
        circuit: Circuit | str,
        shots: int,
        parameters: Mapping[str, float] | None = None,
    ) -> JobId:
        return await asyncio.to_thread(self._submit_one, circuit, shots, parameters)

    def _submit_batch(self, circuits: Sequence[Circuit | str], shots: int) -> list[JobId]:
        prepared = [self._prepare(c, shots) for c in circuits]
        pubs = []
        for p in prepared:
            self._values(p, None)  # a batch of circuits binds nothing: all must be concrete
            pubs.append((None, None, shots))
        runtime_id = self._run_pubs(pubs, prepared)
        return [JobId(f"{runtime_id}#{k}") for k in range(len(pubs))]

    def _submit_sweep(
        self, circuit: Circuit | str, bindings: Sequence[Mapping[str, float]], shots: int
    ) -> list[JobId]:
        prepared = self._prepare(circuit, shots)
        values = np.array([self._values(prepared, b) for b in bindings], dtype=float)
        values = values.reshape(len(bindings), len(prepared.parameters))
        runtime_id = self._run_pubs([(None, values, shots)], [prepared])
        return [JobId(f"{runtime_id}#0.{k}") for k in range(len(bindings))]

    # -- jobs ----------------------------------------------------------------------------
    def _parse_id(self, job_id: str) -> tuple[str, int, int | None]:
        match = _JOB_ID.match(str(job_id))
        if match is None:
            raise JobNotFoundError(str(job_id), f"not an IBM job id: {job_id!r}")
        index = match["index"]
        return match["runtime"], int(match["pub"] or 0), None if index is None else int(index)

    def _submission(self, job_id: str) -> _Submission:
        runtime_id, _, _ = self._parse_id(job_id)
        with _SUBMISSIONS_LOCK:
            record = _SUBMISSIONS.get(runtime_id)
        if record is not None:
            return record
        if self._local:
            raise JobNotFoundError(
                job_id,
                f"unknown job id {job_id!r}; jobs of the local testing mode live only in the "
                "process that submitted them",
            )
        job = self._call("looking up a job", lambda: self._service.job(runtime_id), job_id)
        pubs = (getattr(job, "inputs", None) or {}).get("pubs", [])
        executed = []
        for pub in pubs:
            circuit = pub[0] if isinstance(pub, (tuple, list)) else getattr(pub, "circuit", None)
            executed.append(from_qiskit(circuit) if isinstance(circuit, QuantumCircuit) else None)
        record = _Submission(job=job, device=self._device.name, executed=executed,
                             calibration=None, local=False)
        with _SUBMISSIONS_LOCK:
            return _SUBMISSIONS.setdefault(runtime_id, record)

    def _status(self, job_id: str) -> JobStatus:
        record = self._submission(job_id)
        job = record.job
        future = getattr(job, "_future", None)
        if record.local and isinstance(future, concurrent.futures.Future):
            return _future_status(job_id, future)

        def read() -> tuple[JobState, str, str | None]:
            state, vendor = runtime_state(job.status())
            failed = state is JobState.FAILED
            return state, vendor, (_scrub(job.error_message() or "") or None) if failed else None

        state, vendor, reason = self._call("reading job status", read, job_id)
        return JobStatus(job_id, state, reason=reason, vendor_state=vendor)

    async def status(self, job_id: str) -> JobStatus:
        return await asyncio.to_thread(self._status, job_id)

    def _result(self, job_id: str) -> ExecutionResult:
        runtime_id, pub, index = self._parse_id(job_id)
        record = self._submission(job_id)
        try:  # blocks until the job ends; a lost connection is retried
            primitive_result = self._retry.named("ibm: reading a result").call(record.job.result)
        except Exception as exc:  # the job's own failure, or it was cancelled
            status = self._status(job_id)
            if status.state is JobState.CANCELLED:
                raise JobCancelledError(job_id) from exc
            if _network_failure(exc):
                raise BackendUnavailableError(
                    f"IBM Quantum: job {job_id}: network failure"
                ) from exc
            reason = status.reason or _scrub(f"{type(exc).__name__}: {exc}")
            raise JobFailedError(job_id, reason) from exc
        pub_result = primitive_result[pub]
        shots = int(pub_result.metadata.get("shots", 0))
        if _ALL_CLBITS in pub_result.data:
            bits = pub_result.data[_ALL_CLBITS]
            if index is not None:
                bits = bits[index]
            counts = {k: int(v) for k, v in bits.get_counts().items()}
            shots = shots or int(bits.num_shots)
        else:  # a circuit without classical bits
            counts = {"": shots}
        return ExecutionResult(
            counts=counts,
            shots=shots,
            job_id=job_id,
            backend=self.name,
            timings={"transpile_s": record.transpile_s},
            executed_program=record.executed[pub] if pub < len(record.executed) else None,
            calibration=record.calibration,
            metadata={
                "runtime_job_id": runtime_id,
                "device": record.device,
                "local_testing_mode": record.local,
                **({"noise": "fake-backend noise model (Aer)"} if record.local else {}),
            },
        )

    async def result(self, job_id: str) -> ExecutionResult:
        return await asyncio.to_thread(self._result, job_id)

    def _cancel(self, job_id: str) -> None:
        record = self._submission(job_id)
        if self._status(job_id).is_terminal:
            return
        # A local job cannot stop once it runs (cancel() returns False); it then completes.
        self._call("cancelling a job", record.job.cancel, job_id)

    async def cancel(self, job_id: str) -> None:
        """Cancel the runtime job behind ``job_id``: every circuit of its batch or sweep."""
        await asyncio.to_thread(self._cancel, job_id)


def _future_status(job_id: str, future: concurrent.futures.Future[Any]) -> JobStatus:
    """The status of a local-mode job, read from the future it runs in.

    ``PrimitiveJob.status()`` reports (and caches) ERROR for a job still pending in its thread
    pool, so the future is the reliable source.
    """
    if future.cancelled():
        return JobStatus(job_id, JobState.CANCELLED, vendor_state="CANCELLED")
    if not future.done():
        running = future.running()
        return JobStatus(job_id, JobState.RUNNING if running else JobState.QUEUED,
                         vendor_state="RUNNING" if running else "QUEUED")
    exc = future.exception()
    if exc is not None:
        return JobStatus(job_id, JobState.FAILED, reason=_scrub(f"{type(exc).__name__}: {exc}"),
                         vendor_state="ERROR")
    return JobStatus(job_id, JobState.COMPLETED, vendor_state="DONE")


# -- extensions ------------------------------------------------------------------------------
class _IBMBatch:
    """``batch``: many circuits in one runtime job (one PUB each), or a sweep as one PUB."""

    def __init__(self, backend: IBMBackend) -> None:
        self._backend = backend

    async def submit_batch(self, circuits: Sequence[Circuit | str], shots: int) -> list[JobId]:
        return await asyncio.to_thread(self._backend._submit_batch, list(circuits), shots)

    async def submit_sweep(
        self, circuit: Circuit | str, bindings: Sequence[Mapping[str, float]], shots: int
    ) -> list[JobId]:
        return await asyncio.to_thread(self._backend._submit_sweep, circuit, list(bindings), shots)


class _IBMSession:
    """A runtime ``Session``: jobs submitted through it share the device reservation."""

    def __init__(self, backend: IBMBackend, runtime_session: Any) -> None:
        self._backend = backend
        self._runtime = runtime_session
        # Local testing mode has no session id; give the session one of our own.
        self._id = runtime_session.session_id or f"local-session-{uuid.uuid4()}"
        self.closed = False

    @property
    def session_id(self) -> str:
        return str(self._runtime.session_id or self._id)

    async def submit(
        self, circuit: Circuit | str, shots: int, parameters: Mapping[str, float] | None = None
    ) -> JobId:
        if self.closed:  # local mode would run it anyway; the cloud refuses a closed session
            raise SubmissionError(f"session {self.session_id} is closed")
        return await asyncio.to_thread(
            self._backend._submit_one, circuit, shots, parameters, self._runtime
        )


class _IBMSessions:
    """``sessions``: ``async with ext.session() as s`` opens a runtime Session (or Batch)."""

    def __init__(self, backend: IBMBackend) -> None:
        self._backend = backend

    @contextlib.asynccontextmanager
    async def session(
        self, max_time_s: float | None = None, *, batch: bool = False
    ) -> AsyncIterator[_IBMSession]:
        """Open a runtime ``Session`` (``batch=True``: a runtime ``Batch``) on the device."""
        kind = Batch if batch else RuntimeSession
        max_time = None if max_time_s is None else int(max_time_s)
        call = self._backend._call
        runtime = await asyncio.to_thread(
            call, "opening a session",
            lambda: kind(backend=self._backend._device, max_time=max_time))
        session = _IBMSession(self._backend, runtime)
        try:
            yield session
        finally:
            session.closed = True
            await asyncio.to_thread(call, "closing a session", runtime.close)


class _IBMCalibration:
    """``calibration``: the device's qubit and gate data, as the transpiler sees it."""

    def __init__(self, backend: IBMBackend) -> None:
        self._backend = backend

    async def snapshot(self) -> CalibrationSnapshot:
        return await asyncio.to_thread(
            self._backend._call, "reading calibration data", self._backend._calibration)
