"""Blocking helpers for scripts and notebooks: ``run``, ``sweep``, ``submit`` and ``Job``.

The contract is async; these wrap it for code that is not. They work with no event loop
(scripts, Dask and Parsl workers: a persistent per-thread loop, so a call costs microseconds)
and inside a running loop (Jupyter: the coroutine runs on a helper thread's loop while the
caller blocks). Backends are built once per process and spec, then reused.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import threading
from collections.abc import Awaitable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from hal_workflow.backends.registry import BackendSpec, get_backend, normalize_spec
from hal_workflow.circuits.conversion import as_bindings, as_circuit
from hal_workflow.contract.extensions import submit_many

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit
    from hal_workflow.contract.backend import Backend
    from hal_workflow.contract.types import ExecutionResult, JobId, JobStatus, ValidationResult

_T = TypeVar("_T")
YIELD_EVERY = 64
_backends: dict[str, Backend] = {}
_backends_lock = threading.Lock()
_thread_state = threading.local()
_helper_loop: asyncio.AbstractEventLoop | None = None
_helper_lock = threading.Lock()


def spec_key(spec: BackendSpec) -> str:
    """A canonical string for a spec, used to share one backend per spec in a process."""
    from hal_workflow.contract.secrets import fingerprint_default

    # Secrets as salted digests: specs differing only in a token get different backends.
    return json.dumps(normalize_spec(spec), sort_keys=True, default=fingerprint_default)


def backend_for(spec: BackendSpec | Backend) -> Backend:
    """The process-wide backend for ``spec`` (built on first use), or ``spec`` if a backend."""
    if not isinstance(spec, (str, Mapping)):
        return spec
    key = spec_key(spec)
    backend = _backends.get(key)
    if backend is None:
        with _backends_lock:
            backend = _backends.get(key)
            if backend is None:
                backend = _backends[key] = get_backend(spec)
    return backend


def _helper() -> asyncio.AbstractEventLoop:
    global _helper_loop
    with _helper_lock:
        if _helper_loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="hal-sync", daemon=True).start()
            _helper_loop = loop
        return _helper_loop


def run_sync(awaitable: Awaitable[_T]) -> _T:
    """Run a coroutine to completion from synchronous code, even inside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = getattr(_thread_state, "loop", None)
        if loop is None or loop.is_closed():
            loop = _thread_state.loop = asyncio.new_event_loop()
        return loop.run_until_complete(awaitable)
    coroutine = cast("Coroutine[Any, Any, _T]", awaitable)
    return asyncio.run_coroutine_threadsafe(coroutine, _helper()).result()


def run(
    circuit: Circuit | str | Any,
    backend: BackendSpec | Backend = "sim",
    shots: int = 1000,
    parameters: Mapping[str, float] | None = None,
    timeout: float | None = None,
) -> ExecutionResult:
    """Run ``circuit`` (a ``Circuit``, OpenQASM text or a registered framework circuit such as
    a Qiskit ``QuantumCircuit``) on ``backend`` and return its result (blocking).
    ``parameters`` are keyed by input name or by the framework's parameter objects."""
    circuit, parameters = as_circuit(circuit), as_bindings(parameters)
    target = backend_for(backend)
    if getattr(target, "records_jobs", False):  # the simulator journals its own jobs
        return run_sync(target.run(circuit, shots, parameters, timeout=timeout))
    return run_sync(_run_recorded(target, circuit, shots, parameters, timeout))


async def _run_recorded(backend: Backend, circuit: Circuit | str, shots: int,
                        parameters: Mapping[str, float] | None,
                        timeout: float | None) -> ExecutionResult:
    job_id = await backend.submit(circuit, shots, parameters)
    record_jobs(backend, [job_id], circuit, shots, [parameters])
    return await _result_recorded(backend, job_id, timeout)


async def _result_recorded(backend: Backend, job_id: str,
                           timeout: float | None) -> ExecutionResult:
    """``result_when_done``, recording the outcome of a job the backend does not journal."""
    from hal_workflow.contract.errors import JobCancelledError, JobFailedError

    try:
        result = await backend.result_when_done(job_id, timeout=timeout)
    except JobFailedError as exc:
        _record_end(backend, job_id, "FAILED", exc.reason)
        raise
    except JobCancelledError:
        _record_end(backend, job_id, "CANCELLED", None)
        raise
    _record_end(backend, job_id, "COMPLETED", None, result)
    return result


def _journal_for(backend: Backend) -> Any:
    """The journal that records ``backend``'s jobs here, or None: backends that journal
    their own jobs (``records_jobs``, the simulator) and a disabled journal need none."""
    if getattr(backend, "records_jobs", False):
        return None
    from hal_workflow import config, journal

    if not config.get("journal.enabled", True):
        return None
    return journal.default()


def record_jobs(backend: Backend, job_ids: Sequence[str], circuit: Circuit | str | None = None,
                shots: int | None = None,
                bindings: Sequence[Mapping[str, float] | None] | None = None) -> None:
    """Record jobs just submitted to ``backend`` in the job journal (QUEUED), unless the
    backend journals its own: what makes any job readable by id from a fresh process."""
    journal = _journal_for(backend)
    if journal is None:
        return
    from hal_workflow.journal import spec_json

    text = circuit if isinstance(circuit, str) else getattr(circuit, "qasm", None)
    spec = spec_json(backend.spec)
    name = backend.spec.get("name")
    for job_id, parameters in zip(job_ids, bindings or [None] * len(job_ids), strict=True):
        journal.record_submit(str(job_id), name, spec, circuit=text, shots=shots,
                              parameters=parameters)


def record_results(backend: Backend, job_ids: Sequence[str],
                   results: Sequence[ExecutionResult]) -> None:
    """Record the results of jobs :func:`record_jobs` recorded (COMPLETED)."""
    for job_id, result in zip(job_ids, results, strict=True):
        _record_end(backend, job_id, "COMPLETED", None, result)


def _record_end(backend: Backend, job_id: str, state: str, reason: str | None,
                result: ExecutionResult | None = None) -> None:
    journal = _journal_for(backend)
    if journal is None:
        return
    if result is not None:
        journal.record_result(job_id, result)
    journal.observe(job_id, state, reason)  # nothing new if status() already saw it end


def sweep(
    circuit: Circuit | str | Any,
    bindings: Sequence[Mapping[str, float]],
    backend: BackendSpec | Backend = "sim",
    shots: int = 1000,
    timeout: float | None = None,
    *,
    seed: int | None = None,
    sweep_id: str | None = None,
    progress: bool | None = None,
    chunk_size: int | None = None,
) -> list[ExecutionResult]:
    """Run ``circuit`` once per binding (batch extension where offered), results in order.

    Element ``i`` is sampled with ``seed + i`` (``seed`` defaults to the spec's). With
    ``sweep_id``, each chunk's results go to the job journal as they arrive, and a rerun
    with the same id (after the driver was killed, say) reuses every stored element whose
    inputs match and computes the rest: the results equal an uninterrupted run's, and the
    reused ones carry ``metadata["reused"] = True``. ``progress`` draws a bar (None: only
    on a terminal); ``chunk_size`` bindings go to the backend at a time.
    """
    from hal_workflow.orchestration.sweeps import plan_sweep, progress_bar

    target = backend_for(backend)
    circuit = as_circuit(circuit)  # converted once; bindings by name or parameter object
    bindings = [as_bindings(b) or {} for b in bindings]
    plan = plan_sweep(target.spec, circuit, bindings, shots, seed, sweep_id)
    if chunk_size is None:
        chunk_size = max(1, min(1000, math.ceil(len(bindings) / 20)))
    results: list[ExecutionResult | None] = [plan.done.get(i) for i in range(len(bindings))]
    bar = progress_bar(len(bindings), progress, initial=plan.reused, reused=plan.reused)
    with bar:
        if plan.sweep_id is not None and plan.missing and _takes_indices(target):
            # a scheduler batch: one sparse array of the missing elements (task i, seed + i)
            _sweep_sparse(target, circuit, bindings, shots, plan, results, bar, chunk_size,
                          timeout)
        else:
            for indices in plan.ranges(chunk_size if sweep_id or not bar.disable else
                                       max(1, len(bindings))):
                part = bindings[indices.start:indices.stop]
                chunk = run_sync(run_seeded(target, circuit, part, shots,
                                            plan.chunk_seed(indices.start), timeout))
                plan.store(indices.start, chunk)
                results[indices.start:indices.stop] = chunk
                bar.update(len(chunk))
    return results  # type: ignore[return-value]


def _takes_indices(backend: Backend) -> bool:
    """Whether the backend's batch extension submits sparse element indices (the SLURM/PBS
    batch: ``submit_sweep(..., seed=, indices=)`` runs ``bindings[k]`` as array task
    ``indices[k]`` with seed ``seed + indices[k]``)."""
    batch = backend.extension("batch")
    if batch is None:
        return False
    parameters = inspect.signature(batch.submit_sweep).parameters
    return "indices" in parameters and "seed" in parameters


def _sweep_sparse(target: Backend, circuit: Circuit | str, bindings: list[Mapping[str, float]],
                  shots: int, plan: Any, results: list[Any], bar: Any, chunk_size: int,
                  timeout: float | None) -> None:
    """Submit the missing elements of ``plan`` at once, then store results as they come."""
    missing = plan.missing
    batch: Any = target.extension("batch")
    job_ids = run_sync(batch.submit_sweep(circuit, [bindings[i] for i in missing], shots,
                                          seed=plan.seed, indices=missing))
    record_jobs(target, job_ids, circuit, shots, [bindings[i] for i in missing])
    pending: list[tuple[int, ExecutionResult]] = []
    for index, job_id in zip(missing, job_ids, strict=True):
        result = run_sync(_result_recorded(target, job_id, timeout))
        results[index] = result
        pending.append((index, result))
        bar.update(1)
        if len(pending) >= chunk_size:
            plan.store_indexed(pending)
            pending = []
    plan.store_indexed(pending)


async def submit_seeded(
    backend: Backend,
    circuit: Circuit | str,
    bindings: Sequence[Mapping[str, float]],
    shots: int,
    seed: int | None,
) -> list[JobId]:
    """Submit ``circuit`` over ``bindings``, element ``j`` seeded ``seed + j`` where the
    backend takes seeds (its batch extension's ``submit_sweep(..., seed=)``, else
    ``submit(..., seed=)``); backends without seeds sample as they do."""
    bindings = list(bindings)
    if seed is None:
        return await submit_many(backend, circuit, shots, bindings)
    batch = backend.extension("batch")
    if batch is not None and _takes_seed(batch.submit_sweep):
        return list(await batch.submit_sweep(circuit, bindings, shots, seed=seed))
    if batch is None and _takes_seed(backend.submit):
        return [await backend.submit(circuit, shots, b, seed=seed + j)  # type: ignore[call-arg]
                for j, b in enumerate(bindings)]
    return await submit_many(backend, circuit, shots, bindings)


def _takes_seed(method: Any) -> bool:
    return "seed" in inspect.signature(method).parameters


async def run_seeded(
    backend: Backend,
    circuit: Circuit | str,
    bindings: Sequence[Mapping[str, float]],
    shots: int,
    seed: int | None,
    timeout: float | None = None,
) -> list[ExecutionResult]:
    """:func:`submit_seeded`, then every result in order (yielding to the event loop every
    :data:`YIELD_EVERY` results, since results of finished jobs return without waiting).
    Jobs of backends that do not journal their own are recorded in the journal."""
    job_ids = await submit_seeded(backend, circuit, bindings, shots, seed)
    record_jobs(backend, job_ids, circuit, shots, list(bindings))
    results = []
    for k, job_id in enumerate(job_ids, 1):
        results.append(await _result_recorded(backend, job_id, timeout))
        if k % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    return results


def validate(
    circuit: Circuit | str | Any, backend: BackendSpec | Backend = "sim", shots: int | None = None
) -> ValidationResult:
    """Whether ``circuit`` can run on ``backend`` as given, with every reason it cannot."""
    return run_sync(backend_for(backend).validate(as_circuit(circuit), shots))


@dataclass(frozen=True)
class Job:
    """A handle on a submitted job: its id and the backend spec, which pickles.

    Another process (a restarted notebook, a Dask worker) rebuilds the handle with
    ``Job(job_id, spec)`` and reattaches, on backends whose jobs outlive their submitter.
    ``Job(job_id)`` looks the spec up in the job journal (``JobNotFoundError`` if the
    journal has no such job). Finished jobs of in-process backends (the simulator) are read
    from the journal's stored result.
    """

    job_id: str
    backend_spec: Mapping[str, Any] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.backend_spec is None:
            object.__setattr__(self, "backend_spec", _journal_spec(self.job_id))

    @property
    def backend(self) -> Backend:
        return backend_for(self.backend_spec)

    def status(self) -> JobStatus:
        return run_sync(self.backend.status(self.job_id))

    def wait(self, timeout: float | None = None) -> JobStatus:
        return run_sync(self.backend.wait(self.job_id, timeout=timeout))

    def result(self, timeout: float | None = None) -> ExecutionResult:
        return run_sync(_result_recorded(self.backend, self.job_id, timeout))

    def cancel(self) -> None:
        run_sync(self.backend.cancel(self.job_id))


def _journal_spec(job_id: str) -> dict[str, Any]:
    """The spec the journal recorded for ``job_id``."""
    from hal_workflow import journal
    from hal_workflow.contract.errors import ConfigurationError, JobNotFoundError
    from hal_workflow.contract.secrets import REDACTED

    record = journal.default().get(job_id)
    if record is None:
        raise JobNotFoundError(job_id, f"job {job_id!r} is not in the job journal "
                                       f"({journal.default().path}); pass its backend spec")
    spec = record.spec or ({"name": record.backend} if record.backend else None)
    if spec is None:
        raise JobNotFoundError(job_id, f"job {job_id!r}: the journal has no backend spec; "
                                       f"pass it as Job(job_id, spec)")
    if REDACTED in json.dumps(spec, default=str):
        raise ConfigurationError(f"job {job_id!r}: its recorded spec had secrets (stored "
                                 f"redacted); pass the spec as Job(job_id, spec)")
    return dict(spec)


def submit(
    circuit: Circuit | str | Any,
    backend: BackendSpec | Backend = "sim",
    shots: int = 1000,
    parameters: Mapping[str, float] | None = None,
) -> Job:
    """Submit without waiting; returns a picklable :class:`Job` handle."""
    target = backend_for(backend)
    circuit, parameters = as_circuit(circuit), as_bindings(parameters)
    job_id = run_sync(target.submit(circuit, shots, parameters))
    record_jobs(target, [job_id], circuit, shots, [parameters])
    return Job(job_id, target.spec)
