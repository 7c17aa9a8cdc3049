"""Task bodies that run on Dask and Parsl workers, shared by both engines.

Every function here takes plain data only (a backend spec, OpenQASM text or a ``Circuit``,
shots, bindings), so the engines can pickle the call. On the worker the backend is rebuilt
from the spec with :func:`~hal_workflow.orchestration.sync.backend_for` (once per process and
spec), the jobs are submitted, and the task waits for their results. A ``should_stop`` callable
lets an engine ask for cancellation: while waiting, the task checks it every
:data:`DEFAULT_POLL` seconds and cancels the backend jobs, so cancelling the engine's future
stops the quantum job too.

Every job a task starts is written to a per-process journal (:func:`worker_jobs`), which a
Dask client can read from each worker with ``client.run``; :func:`job_status` asks the
worker's backend for a job's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hal_workflow.backends.registry import BackendSpec, normalize_spec
from hal_workflow.contract.errors import (
    HalTimeoutError,
    JobCancelledError,
    UnsupportedExtensionError,
)
from hal_workflow.executors._resources import THREADS_ENV
from hal_workflow.orchestration.sync import (
    backend_for,
    record_jobs,
    record_results,
    run_sync,
    submit_seeded,
)

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit
    from hal_workflow.contract.backend import Backend
    from hal_workflow.contract.types import ExecutionResult, JobId, JobState

THREADED_BACKENDS = frozenset({"sim"})
"""Backends whose spec takes ``threads`` (the numba statevector simulator)."""

DEFAULT_POLL = 0.05
"""Seconds between cancellation checks while a task waits for its jobs."""

CANCEL_GRACE = 5.0
"""Seconds a cancelled task waits for its backend jobs to reach a terminal state."""


@dataclass
class JobRecord:
    """One backend job started by a task on this worker process."""

    task: str | None
    job_id: str
    spec: dict[str, Any]
    outcome: str = "RUNNING"  # COMPLETED / FAILED / CANCELLED once the task saw it end


_journal: deque[JobRecord] = deque(maxlen=10_000)
_journal_lock = threading.Lock()


def worker_jobs(task: str | None = None) -> list[dict[str, Any]]:
    """The jobs started on this process (all, or those of ``task``), oldest first."""
    with _journal_lock:
        records = [r for r in _journal if task is None or r.task == task]
    return [dict(task=r.task, job_id=r.job_id, spec=r.spec, outcome=r.outcome) for r in records]


def job_status(spec: BackendSpec, job_id: str) -> JobState:
    """The backend's own view of ``job_id``, from this process's backend for ``spec``."""
    return run_sync(backend_for(worker_spec(spec)).status(job_id)).state


def worker_spec(spec: BackendSpec) -> dict[str, Any]:
    """``spec`` with the thread budget of this worker filled in where the backend takes one.

    A worker started by :func:`~hal_workflow.executors.dask.local_cluster` or a site config
    has ``HAL_WORKFLOW_BACKEND_THREADS`` in its environment, so the simulator's threads times
    the worker's task slots fit the cores. An explicit ``threads`` in the spec wins.
    """
    normalised = normalize_spec(spec)
    threads = os.environ.get(THREADS_ENV)
    if threads and normalised["name"] in THREADED_BACKENDS and "threads" not in normalised:
        normalised["threads"] = int(threads)
    return normalised


def offers_batch(spec: BackendSpec) -> bool:
    """Whether the backend for ``spec`` offers the ``batch`` extension."""
    return "batch" in backend_for(worker_spec(spec)).capabilities().extensions


def run_circuit(
    spec: BackendSpec,
    circuit: Circuit | str,
    shots: int,
    parameters: Mapping[str, float] | None = None,
    *,
    should_stop: Callable[[], bool] | None = None,
    task: str | None = None,
) -> ExecutionResult:
    """Run one circuit on the worker's backend for ``spec`` and return its result."""
    return _execute(
        spec, lambda b: _submit_one(b, circuit, shots, parameters), should_stop, task
    )[0]


def run_sweep(
    spec: BackendSpec,
    circuit: Circuit | str,
    bindings: Sequence[Mapping[str, float]],
    shots: int,
    *,
    first_index: int = 0,
    base_seed: int | None = None,
    should_stop: Callable[[], bool] | None = None,
    task: str | None = None,
) -> list[ExecutionResult]:
    """Run ``circuit`` once per binding (the batch extension where offered), in order.

    ``bindings`` are elements ``first_index, first_index + 1, ...`` of a whole sweep. With a
    ``seed`` in the spec, element ``i`` of the sweep is sampled with seed ``seed + i``
    (:func:`sweep_seed`), so a sweep gives the same counts however it is cut into chunks
    and whichever worker runs (or reruns) a chunk. ``base_seed`` (a resumed sweep's recorded
    seed) replaces the spec's.
    """
    seed = sweep_seed(spec, first_index) if base_seed is None else base_seed + first_index
    return _execute(
        spec, lambda b: _submit_sweep(b, circuit, list(bindings), shots, seed), should_stop, task
    )


def pack_results(results: list[ExecutionResult]) -> bytes:
    """Results as one C-pickled blob, for the trip from worker to client.

    Both engines are slow with thousands of small objects in one return value: Parsl
    serialises them with dill, written in Python (~0.2 s for 1250 results, against 7 ms with
    ``pickle``), and Dask spends about as long again on its own bookkeeping of the list. A
    chunk of a batched sweep therefore travels as bytes (measured: 2x the circuits/s).
    """
    return pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL)


def unpack_results(blob: bytes) -> list[ExecutionResult]:
    """The inverse of :func:`pack_results` (blobs come only from our own workers)."""
    return pickle.loads(blob)  # type: ignore[no-any-return]


def sweep_seed(spec: BackendSpec, first_index: int) -> int | None:
    """The seed of sweep element ``first_index``: the spec's ``seed`` plus the index."""
    seed = normalize_spec(spec).get("seed")
    return None if seed is None else int(seed) + first_index


async def _submit_sweep(
    backend: Backend,
    circuit: Circuit | str,
    bindings: list[Mapping[str, float]],
    shots: int,
    seed: int | None,
) -> list[JobId]:
    """:func:`~hal_workflow.orchestration.sync.submit_seeded`: element ``j`` of the chunk
    with seed ``seed + j`` where the backend takes seeds."""
    return await submit_seeded(backend, circuit, bindings, shots, seed)


def run_items(
    spec: BackendSpec,
    items: Sequence[tuple[Circuit | str, Mapping[str, float] | None]],
    shots: int,
    *,
    should_stop: Callable[[], bool] | None = None,
    task: str | None = None,
) -> list[ExecutionResult]:
    """Run a list of ``(circuit, parameters)`` pairs, results in order."""

    async def submit_all(backend: Backend) -> list[JobId]:
        return [await backend.submit(c, shots, p) for c, p in items]

    return _execute(spec, submit_all, should_stop, task)


def run_estimates(
    spec: BackendSpec,
    circuit: Circuit | str,
    observable: Any,
    bindings: Sequence[Mapping[str, float]],
    shots: int,
    exact: bool | None = None,
    *,
    first_index: int = 0,
    should_stop: Callable[[], bool] | None = None,
    task: str | None = None,
) -> list[float]:
    """``<observable>`` after ``circuit`` at each binding, in order.

    ``exact=True`` asks the backend's ``statevector`` extension (the simulator's
    ``expectation``: no shot noise); ``exact=False`` measures one circuit per basis with
    ``shots`` shots (see :mod:`~hal_workflow.executors.observables`); ``None`` picks exact
    where the backend offers it. ``first_index`` as in :func:`run_sweep`.
    """
    values, _ = run_expectations(spec, circuit, [observable], bindings, shots, exact,
                                 first_index=first_index, should_stop=should_stop, task=task)
    return [float(v) for v in values[:, 0]]


def run_expectations(
    spec: BackendSpec,
    circuit: Any,
    observables: Sequence[Any],
    bindings: Sequence[Mapping[str, float]],
    shots: int,
    exact: bool | None = None,
    *,
    first_index: int = 0,
    should_stop: Callable[[], bool] | None = None,
    task: str | None = None,
    from_states: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``<observables[o]>`` at every binding and the variance of each estimate: two
    ``(len(bindings), len(observables))`` float64 arrays (variances are 0 when exact).

    The exact route computes every value in one call of the ``statevector`` extension. The
    measured route groups the terms of *all* observables into qubit-wise commuting bases, so
    each basis is one sweep over the bindings (the batch extension where offered), element
    ``i`` seeded ``seed + first_index + i`` per basis, whatever the chunking. A backend whose
    ``statevector`` extension has ``measured_expectations`` (the simulator) samples every
    basis from each state instead of running one circuit per basis (same distribution, other
    samples: element ``i`` draws all its bases from seed ``seed + first_index + i``);
    ``from_states=False`` runs the basis circuits anyway.
    """
    from hal_workflow.circuits.conversion import as_bindings, as_circuit
    from hal_workflow.circuits.ir import MeasureOp
    from hal_workflow.circuits.observables import group_labels
    from hal_workflow.contract.errors import ValidationError
    from hal_workflow.contract.types import ValidationCode
    from hal_workflow.executors import observables as obs

    program = as_circuit(circuit)
    paulis = [obs.check_observable(o, program.num_qubits) for o in observables]
    named = [as_bindings(b) or {} for b in bindings]
    normalised = worker_spec(spec)
    statevector = backend_for(normalised).extension("statevector")
    if exact is None:
        exact = statevector is not None
    if exact:
        if statevector is None:
            raise UnsupportedExtensionError(
                f"backend {normalised['name']!r} offers no statevector extension; "
                f"estimate from measurements with exact=False"
            )
        values = run_sync(statevector.expectations(program, paulis, named))
        return values, np.zeros_like(values)
    if from_states and statevector is not None and \
            hasattr(statevector, "measured_expectations") and \
            not any(isinstance(op, MeasureOp) for op in program.lowered.operations):
        # the simulator samples each basis from the state instead of evolving it per basis
        try:
            seed = sweep_seed(normalised, first_index)
            return run_sync(statevector.measured_expectations(program, paulis, named, shots,
                                                              seed=seed))
        except ValidationError as exc:  # no single final state (mid-circuit reset, if)
            if not any(i.code is ValidationCode.UNSUPPORTED_FEATURE for i in exc.issues):
                raise
    labels = [label for pauli in paulis for label in pauli.labels]
    grouping = group_labels(labels)
    per_basis = [
        run_sweep(_basis_spec(normalised, k), obs.in_basis(program, basis), named, shots,
                  first_index=first_index, should_stop=should_stop, task=task)
        for k, basis in enumerate(grouping.bases)
    ]
    means = np.zeros((len(named), len(paulis)))
    variances = np.zeros_like(means)
    offset = 0
    for o, pauli in enumerate(paulis):
        members: dict[int, list[int]] = {}
        for k in range(len(pauli.terms)):
            members.setdefault(grouping.term_basis[offset + k], []).append(k)
        offset += len(pauli.terms)
        for basis, terms in members.items():
            term_labels = [pauli.terms[k][0] for k in terms]
            coefficients = [pauli.terms[k][1] for k in terms]
            for i, result in enumerate(per_basis[basis]):
                mean, variance = obs.basis_statistics(result.counts, term_labels, coefficients,
                                                      program.num_clbits)
                means[i, o] += mean
                variances[i, o] += variance
    return means, variances


def _basis_spec(spec: dict[str, Any], k: int) -> dict[str, Any]:
    """``spec`` whose seed starts basis ``k``'s own stream: with one seed for every basis the
    bases' samples would be correlated, and their variances would not add."""
    if spec.get("seed") is None:
        return spec
    from hal_workflow.circuits.observables import BASIS_SEED_STRIDE

    return {**spec, "seed": int(spec["seed"]) + k * BASIS_SEED_STRIDE}


async def _submit_one(
    backend: Backend, circuit: Circuit | str, shots: int, parameters: Mapping[str, float] | None
) -> list[JobId]:
    return [await backend.submit(circuit, shots, parameters)]


def _execute(
    spec: BackendSpec,
    submit: Callable[[Backend], Any],
    should_stop: Callable[[], bool] | None,
    task: str | None,
) -> list[ExecutionResult]:
    """Submit with ``submit(backend)``, record the jobs, then wait for every result."""
    normalised = worker_spec(spec)
    backend = backend_for(normalised)
    return run_sync(_submit_and_collect(backend, normalised, submit, should_stop, task))


async def _submit_and_collect(
    backend: Backend,
    spec: dict[str, Any],
    submit: Callable[[Backend], Any],
    should_stop: Callable[[], bool] | None,
    task: str | None,
) -> list[ExecutionResult]:
    job_ids: list[JobId] = await submit(backend)
    record_jobs(backend, job_ids)  # in the job journal, unless the backend journals its own
    records = [JobRecord(task, j, spec) for j in job_ids]
    with _journal_lock:
        _journal.extend(records)
    try:
        results = await _collect(backend, job_ids, should_stop)
    except JobCancelledError:
        _finish(records, "CANCELLED")
        raise
    except Exception:
        _finish(records, "FAILED")
        raise
    _finish(records, "COMPLETED")
    record_results(backend, job_ids, results)
    return results


async def _collect(
    backend: Backend, job_ids: Sequence[JobId], should_stop: Callable[[], bool] | None
) -> list[ExecutionResult]:
    """Every job's result in order; cancel them all if ``should_stop()`` becomes true."""

    async def in_order() -> list[ExecutionResult]:
        return [await backend.result(j) for j in job_ids]

    if should_stop is None:
        return await in_order()
    waiting = asyncio.ensure_future(in_order())
    while True:
        done, _ = await asyncio.wait({waiting}, timeout=DEFAULT_POLL)
        if done:
            return waiting.result()
        if should_stop():
            waiting.cancel()
            for job_id in job_ids:
                await backend.cancel(job_id)  # a no-op on jobs that already ended
            for job_id in job_ids:  # let them settle, so the journal and status agree
                with contextlib.suppress(HalTimeoutError):
                    await backend.wait(job_id, timeout=CANCEL_GRACE)
            raise JobCancelledError(job_ids[0] if len(job_ids) == 1 else ",".join(job_ids))


def _finish(records: Sequence[JobRecord], outcome: str) -> None:
    with _journal_lock:
        for record in records:
            record.outcome = outcome
