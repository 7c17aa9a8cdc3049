"""Quantum jobs as Dask futures: submit circuits, sweep parameters, cancel, size clusters.

Only plain data crosses the wire: the backend *spec* (``"sim"``, ``{"name": "ibm", ...}``),
the circuit (OpenQASM text, or a ``Circuit``, which pickles as its text), shots and bindings.
Each worker builds its own backend from the spec (once per process) and returns
:class:`~hal_workflow.contract.types.ExecutionResult` objects.

Cancelling a future cancels the backend job: when the client cancels (or drops) a future,
the scheduler releases its key and the worker marks the running task ``cancelled``; the task,
which waits for its jobs in short polls, sees that in its worker's own state (no round trip)
and calls the backend's ``cancel`` for every job it started.

Example::

    from distributed import Client
    from hal_workflow.executors.dask import local_cluster, sweep

    with local_cluster() as cluster, Client(cluster) as client:
        results = sweep(client, qasm, [{"theta": t} for t in thetas], shots=1000)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from distributed import Client, Future, LocalCluster, as_completed, get_worker

from hal_workflow.backends.registry import BackendSpec, normalize_spec
from hal_workflow.circuits.conversion import as_bindings, as_circuit
from hal_workflow.circuits.observables import as_observable
from hal_workflow.contract.backend import Backend
from hal_workflow.contract.errors import ConfigurationError
from hal_workflow.executors import _tasks
from hal_workflow.executors._plan import chunk_ranges, chunk_size_for
from hal_workflow.executors._resources import (
    available_cores,
    thread_environment,
    threads_per_job,
)
from hal_workflow.executors._tasks import job_status, worker_jobs
from hal_workflow.orchestration.sweeps import SweepPlan, plan_sweep, progress_bar
from hal_workflow.orchestration.sync import spec_key

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit
    from hal_workflow.contract.types import ExecutionResult

__all__ = [
    "cancel",
    "estimate",
    "iter_sweep",
    "job_status",
    "local_cluster",
    "map_circuits",
    "submit_circuit",
    "submit_sweep",
    "sweep",
    "worker_jobs",
]

_batch_offered: dict[tuple[str, str], bool] = {}


# -- worker side -----------------------------------------------------------------------------
def _released() -> bool:
    """Whether the scheduler released the task running on this thread (it was cancelled)."""
    worker = get_worker()
    state = worker.state.tasks.get(worker.get_current_task())
    return state is None or state.state in ("cancelled", "released")


def run_circuit_task(
    spec: dict[str, Any],
    circuit: Circuit | str,
    shots: int,
    parameters: Mapping[str, float] | None,
) -> ExecutionResult:
    """The task behind :func:`submit_circuit` (runs on a worker)."""
    key = get_worker().get_current_task()
    return _tasks.run_circuit(
        spec, circuit, shots, parameters, should_stop=_released, task=str(key)
    )


def run_sweep_task(
    spec: dict[str, Any],
    circuit: Circuit | str,
    bindings: Sequence[Mapping[str, float]],
    shots: int,
    first_index: int = 0,
    base_seed: int | None = None,
) -> list[ExecutionResult]:
    """The task behind one chunk of :func:`sweep` (runs on a worker)."""
    key = get_worker().get_current_task()
    return _tasks.run_sweep(spec, circuit, bindings, shots, first_index=first_index,
                            base_seed=base_seed, should_stop=_released, task=str(key))


def run_sweep_packed_task(
    spec: dict[str, Any],
    circuit: Circuit | str,
    bindings: Sequence[Mapping[str, float]],
    shots: int,
    first_index: int = 0,
    base_seed: int | None = None,
) -> bytes:
    """:func:`run_sweep_task`, results packed by :func:`~._tasks.pack_results` (faster)."""
    return _tasks.pack_results(run_sweep_task(spec, circuit, bindings, shots, first_index,
                                              base_seed))


def run_estimates_task(
    spec: dict[str, Any],
    circuit: Circuit | str,
    observable: Any,
    bindings: Sequence[Mapping[str, float]],
    shots: int,
    exact: bool | None,
    first_index: int = 0,
) -> list[float]:
    """The task behind one chunk of :func:`estimate` (runs on a worker)."""
    key = get_worker().get_current_task()
    return _tasks.run_estimates(spec, circuit, observable, bindings, shots, exact,
                                first_index=first_index, should_stop=_released, task=str(key))


# -- client side -----------------------------------------------------------------------------
def _spec(backend: BackendSpec | Backend) -> dict[str, Any]:
    return backend.spec if isinstance(backend, Backend) else normalize_spec(backend)


def _key(kind: str) -> str:
    return f"hal-{kind}-{uuid.uuid4().hex}"


def submit_circuit(
    client: Client,
    circuit: Circuit | str,
    backend: BackendSpec | Backend = "sim",
    shots: int = 1000,
    parameters: Mapping[str, float] | None = None,
    **submit_kwargs: Any,
) -> Future:
    """Run ``circuit`` on a worker; the future resolves to its ``ExecutionResult``.

    ``submit_kwargs`` go to ``client.submit`` (``retries``, ``workers``, ``priority``...).
    Each call is a new job (``pure=False``): two submissions of the same circuit sample twice.
    A contract error (``ValidationError``, ``JobFailedError``...) is raised by
    ``future.result()`` with its type and fields intact.
    """
    submit_kwargs.setdefault("key", _key("circuit"))
    submit_kwargs.setdefault("pure", False)
    return client.submit(
        run_circuit_task, _spec(backend), as_circuit(circuit), shots, as_bindings(parameters),
        **submit_kwargs
    )


def map_circuits(
    client: Client,
    circuits: Sequence[Circuit | str],
    backend: BackendSpec | Backend = "sim",
    shots: int = 1000,
    parameters: Sequence[Mapping[str, float] | None] | None = None,
    **submit_kwargs: Any,
) -> list[Future]:
    """One future per circuit (``parameters[i]`` binds ``circuits[i]``), in input order."""
    if parameters is not None and len(parameters) != len(circuits):
        raise ConfigurationError(
            f"map_circuits: {len(parameters)} parameter sets for {len(circuits)} circuits"
        )
    bound = parameters if parameters is not None else [None] * len(circuits)
    return [
        submit_circuit(client, c, backend, shots, p, **submit_kwargs)
        for c, p in zip(circuits, bound, strict=True)
    ]


def _offers_batch(client: Client, spec: dict[str, Any]) -> bool:
    """Ask a worker (once per client and spec) whether the backend offers ``batch``."""
    cache_key = (client.id, spec_key(spec))
    if cache_key not in _batch_offered:
        future = client.submit(_tasks.offers_batch, spec, key=_key("capabilities"), pure=False)
        _batch_offered[cache_key] = bool(future.result())
    return _batch_offered[cache_key]


def _submit_chunks(
    client: Client,
    task: Any,
    bindings: Sequence[Mapping[str, float]],
    ranges: Sequence[range],
    arguments: Callable[[list[Mapping[str, float]]], tuple[Any, ...]],
    submit_kwargs: dict[str, Any],
    extra: tuple[Any, ...] = (),
) -> list[tuple[range, Future]]:
    """One ``task(*arguments(chunk), indices.start, *extra)`` per range of ``bindings``:
    ``(indices, future)`` pairs."""
    submit_kwargs.setdefault("pure", False)
    token = uuid.uuid4().hex
    name = task.__name__.removeprefix("run_").removesuffix("_task").removesuffix("_packed")
    return [
        (indices, client.submit(task, *arguments(list(bindings[indices.start : indices.stop])),
                                indices.start, *extra, key=f"hal-{name}-{token}-{indices.start}",
                                **submit_kwargs))
        for indices in ranges
    ]


def _slots(client: Client) -> int:
    return sum(client.nthreads().values())


def submit_sweep(
    client: Client,
    circuit: Circuit | str,
    bindings: Sequence[Mapping[str, float]],
    backend: BackendSpec | Backend = "sim",
    shots: int = 1000,
    chunk_size: int | None = None,
    **submit_kwargs: Any,
) -> list[tuple[range, Future]]:
    """Submit a sweep without waiting: ``(indices, future)`` per chunk, in input order.

    Each future resolves to the results of its ``indices`` of ``bindings``, in order. With
    the backend's batch extension a chunk holds several bindings (by default a few chunks per
    worker thread); without it, one binding per task.
    """
    spec = _spec(backend)
    circuit, bindings = _converted(circuit, bindings)
    plan = plan_sweep(spec, circuit, bindings, shots)
    return _submit_sweep_chunks(client, run_sweep_task, circuit, bindings, spec, shots,
                                chunk_size, submit_kwargs, plan)


def _converted(circuit: Any, bindings: Sequence[Any]) -> tuple[Circuit, list[dict[str, float]]]:
    """The circuit through the conversion registry (once, here: a ``Circuit`` travels to the
    workers as its text) and bindings keyed by input name."""
    return as_circuit(circuit), [as_bindings(b) or {} for b in bindings]


def _submit_sweep_chunks(
    client: Client,
    task: Any,
    circuit: Circuit | str,
    bindings: Sequence[Mapping[str, float]],
    spec: dict[str, Any],
    shots: int,
    chunk_size: int | None,
    submit_kwargs: dict[str, Any],
    plan: SweepPlan,
) -> list[tuple[range, Future]]:
    """The chunks of ``plan``'s missing elements, each seeded from the plan's base seed."""
    if chunk_size is None:
        chunk_size = chunk_size_for(len(plan.missing), _slots(client),
                                    _offers_batch(client, spec))
    return _submit_chunks(client, task, bindings, plan.ranges(chunk_size),
                          lambda part: (spec, circuit, part, shots), submit_kwargs,
                          (plan.seed,))


def iter_sweep(
    client: Client,
    circuit: Circuit | str,
    bindings: Sequence[Mapping[str, float]],
    backend: BackendSpec | Backend = "sim",
    shots: int = 1000,
    chunk_size: int | None = None,
    progress: bool | None = None,
    *,
    seed: int | None = None,
    sweep_id: str | None = None,
    **submit_kwargs: Any,
) -> Iterator[tuple[int, ExecutionResult]]:
    """Yield ``(index, result)`` as results arrive (completion order), with a progress bar
    (``progress=None``: on a terminal only).

    Element ``i`` is sampled with ``seed + i`` (``seed`` defaults to the spec's). With
    ``sweep_id`` every chunk is written to the job journal as it arrives, and a rerun with
    the same id first yields the stored elements (``metadata["reused"] = True``), then
    computes only the others (see :mod:`hal_workflow.orchestration.sweeps`). The first
    failed chunk raises its contract error here; the chunks still pending are then
    cancelled, as they are when the caller stops iterating early.
    """
    spec = _spec(backend)
    circuit, bindings = _converted(circuit, bindings)
    plan = plan_sweep(spec, circuit, bindings, shots, seed, sweep_id)
    bar = progress_bar(len(bindings), progress, initial=plan.reused, reused=plan.reused)
    futures: list[Future] = []
    try:
        yield from sorted(plan.done.items())
        chunks = _submit_sweep_chunks(client, run_sweep_packed_task, circuit, bindings, spec,
                                      shots, chunk_size, submit_kwargs, plan)
        start_of = {future.key: indices.start for indices, future in chunks}
        futures = [future for _, future in chunks]
        for future in as_completed(futures):
            results = _tasks.unpack_results(future.result())
            start = start_of[future.key]
            plan.store(start, results)
            bar.update(len(results))
            for offset, result in enumerate(results):
                yield start + offset, result
    finally:
        bar.close()
        cancel([f for f in futures if not f.done()], client)


def sweep(
    client: Client,
    circuit: Circuit | str,
    bindings: Sequence[Mapping[str, float]],
    backend: BackendSpec | Backend = "sim",
    shots: int = 1000,
    chunk_size: int | None = None,
    progress: bool | None = None,
    *,
    seed: int | None = None,
    sweep_id: str | None = None,
    **submit_kwargs: Any,
) -> list[ExecutionResult]:
    """Run ``circuit`` once per binding on the cluster; results in input order.

    Results stream back as chunks finish (see :func:`iter_sweep`, also for ``seed`` and
    ``sweep_id``: a sweep resumed after its driver was killed reuses what reached the
    journal). A chunk lost with its worker is recomputed by Dask on another worker, so a
    dying worker costs time, not results.
    """
    results: list[ExecutionResult | None] = [None] * len(bindings)
    for index, result in iter_sweep(
        client, circuit, bindings, backend, shots, chunk_size, progress, seed=seed,
        sweep_id=sweep_id, **submit_kwargs
    ):
        results[index] = result
    return results  # type: ignore[return-value]


def estimate(
    client: Client,
    circuit: Circuit | str,
    observable: Any,
    bindings: Sequence[Mapping[str, float]],
    backend: BackendSpec | Backend = "sim",
    shots: int = 1000,
    exact: bool | None = None,
    chunk_size: int | None = None,
    **submit_kwargs: Any,
) -> list[float]:
    """``<observable>`` after ``circuit`` at each binding, computed in chunks on the cluster.

    ``observable`` is any form :func:`~hal_workflow.circuits.observables.as_observable`
    reads (a ``SparsePauliOp``, ``(label, coeff)`` pairs...); ``exact`` as in
    :func:`hal_workflow.executors._tasks.run_estimates` (statevector where offered, else
    measured with ``shots``). Values come back in input order.
    """
    spec = _spec(backend)
    circuit = as_circuit(circuit)
    pauli = as_observable(observable, circuit.num_qubits)
    bindings = [as_bindings(b) or {} for b in bindings]
    if chunk_size is None:
        chunk_size = chunk_size_for(len(bindings), _slots(client), batch=True)
    chunks = _submit_chunks(client, run_estimates_task, bindings,
                            chunk_ranges(len(bindings), chunk_size),
                            lambda part: (spec, circuit, pauli, part, shots, exact),
                            submit_kwargs)
    futures = [future for _, future in chunks]
    try:
        return [value for values in client.gather(futures) for value in values]
    finally:
        cancel([f for f in futures if not f.done()], client)


def cancel(futures: Future | Sequence[Future], client: Client | None = None,
           force: bool = False) -> None:
    """Cancel futures and, through them, their backend jobs.

    Cancelling releases each key on the scheduler, which tells the worker running it; the
    task notices within :data:`~hal_workflow.executors._tasks.DEFAULT_POLL` seconds and calls
    the backend's ``cancel``. ``force`` cancels keys that other clients also hold.
    """
    futures = [futures] if isinstance(futures, Future) else list(futures)
    if not futures:
        return
    (client or futures[0].client).cancel(futures, force=force)


def local_cluster(
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    backend_threads: int | None = None,
    processes: bool = True,
    **kwargs: Any,
) -> LocalCluster:
    """A ``LocalCluster`` whose backend threads times task slots fit this machine's cores.

    ``n_workers`` defaults to one per ``threads_per_worker`` cores; ``backend_threads``
    (the threads each simulator job may use) to what the remaining cores allow. Worker
    processes get ``NUMBA_NUM_THREADS``, ``OMP_NUM_THREADS`` and
    ``HAL_WORKFLOW_BACKEND_THREADS`` in their environment (only theirs, not this process's),
    and tasks put ``threads`` into ``sim`` specs that lack it. With ``processes=False`` there
    is no worker environment: give ``threads`` in the spec yourself. Other ``kwargs`` go to
    ``LocalCluster`` (``dashboard_address=None`` for tests).
    """
    cores = available_cores()
    if n_workers is None:
        n_workers = max(1, cores // max(1, threads_per_worker))
    if backend_threads is None:
        backend_threads = threads_per_job(n_workers * threads_per_worker, cores)
    if processes:
        env = {**thread_environment(backend_threads), **kwargs.pop("env", {})}
        kwargs["env"] = env
    return LocalCluster(
        n_workers=n_workers, threads_per_worker=threads_per_worker, processes=processes, **kwargs
    )
