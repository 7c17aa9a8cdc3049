"""Quantum jobs as Parsl apps: run circuits, sweep parameters, build VQE loops as DAGs.

The apps are defined here, at module level, so HighThroughputExecutor workers import them by
name instead of receiving pickled closures. They take plain data (a backend spec, OpenQASM
text or a ``Circuit``, shots, bindings) and may take futures for any argument: Parsl waits
for those before the app runs, which is how iterations chain into a DAG::

    import parsl
    from hal_workflow.executors import parsl as hal_parsl

    with parsl.load(config):
        energy = hal_parsl.run_circuit(ansatz, "sim", 1000, parameters=theta_future)

Load a config first (``parsl.load``; ready ones in ``configs/parsl`` through
:func:`hal_workflow.executors.config.parsl_config`). Workers build their backend from the
spec, once per process.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Literal

import parsl
from parsl import python_app
from parsl.config import Config
from parsl.dataflow.dflow import DataFlowKernel

from hal_workflow.backends.registry import BackendSpec, normalize_spec
from hal_workflow.circuits.conversion import as_bindings, as_circuit
from hal_workflow.circuits.observables import as_observable
from hal_workflow.contract.backend import Backend
from hal_workflow.contract.errors import ConfigurationError, HalError
from hal_workflow.executors import _tasks
from hal_workflow.executors._plan import chunk_ranges, chunk_size_for
from hal_workflow.executors._resources import available_cores
from hal_workflow.orchestration.sweeps import plan_sweep, progress_bar
from hal_workflow.orchestration.sync import spec_key

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit
    from hal_workflow.contract.types import ExecutionResult

__all__ = [
    "DEFAULT_RETRIES",
    "estimate",
    "load",
    "local_app",
    "quantum_app",
    "run_circuit",
    "run_estimates",
    "run_items",
    "run_sweep",
    "sweep",
]


DEFAULT_RETRIES = 2
"""Retries of each app when the loaded config sets none: a worker lost with its process
(killed, out of memory, node failure) costs a rerun of its chunk, not the sweep."""


def _spec(backend: BackendSpec | Backend) -> dict[str, Any]:
    return backend.spec if isinstance(backend, Backend) else normalize_spec(backend)


def load(config: Config | str, watchdog: bool = True, **overrides: Any) -> DataFlowKernel:
    """``parsl.load`` with hal-workflow's care: a site name or a ``Config``; ``retries`` set
    to :data:`DEFAULT_RETRIES` where the config has none; and, with ``watchdog``, a small
    process (:mod:`~hal_workflow.executors._watchdog`) that stops the interchange and the
    workers if this driver dies without cleaning up (SIGKILL, OOM killer). Parsl itself
    cleans up at a normal exit (``atexit``) and when the returned kernel is used in a
    ``with`` block or ``dfk.cleanup()`` is called.
    """
    if isinstance(config, str):
        from hal_workflow.executors.config import parsl_config

        loaded: Config = parsl_config(config, **overrides)
    elif overrides:
        raise ConfigurationError("load: overrides apply to a site name, not to a Config")
    else:
        loaded = config
    if not loaded.retries:
        loaded.retries = DEFAULT_RETRIES
    dfk = parsl.load(loaded)
    if watchdog:
        subprocess.Popen(
            [sys.executable, "-m", "hal_workflow.executors._watchdog", str(os.getpid()),
             os.path.abspath(dfk.run_dir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
    return dfk


# -- task bodies (module-level functions, so workers import them by reference) ---------------
def run_circuit_task(
    circuit: Circuit | str,
    backend: BackendSpec = "sim",
    shots: int = 1000,
    parameters: Mapping[str, float] | None = None,
) -> ExecutionResult:
    """Run one circuit; the body of :data:`run_circuit`."""
    return _tasks.run_circuit(_spec(backend), circuit, shots, parameters)


def run_sweep_task(
    circuit: Circuit | str,
    bindings: Sequence[Mapping[str, float]],
    backend: BackendSpec = "sim",
    shots: int = 1000,
    first_index: int = 0,
    base_seed: int | None = None,
) -> list[ExecutionResult]:
    """Run one circuit over bindings (batch extension where offered); body of :data:`run_sweep`.

    ``first_index``: the position of ``bindings[0]`` in the whole sweep (for seeding);
    ``base_seed``: the sweep's seed when it is not the spec's (a resumed sweep)."""
    return _tasks.run_sweep(_spec(backend), circuit, bindings, shots, first_index=first_index,
                            base_seed=base_seed)


def run_sweep_packed_task(
    circuit: Circuit | str,
    bindings: Sequence[Mapping[str, float]],
    backend: BackendSpec = "sim",
    shots: int = 1000,
    first_index: int = 0,
    base_seed: int | None = None,
) -> bytes:
    """:func:`run_sweep_task`, results packed by :func:`~._tasks.pack_results` (faster)."""
    return _tasks.pack_results(run_sweep_task(circuit, bindings, backend, shots, first_index,
                                              base_seed))


def run_items_task(
    items: Any,
    backend: BackendSpec = "sim",
    shots: int = 1000,
) -> ExecutionResult | list[ExecutionResult]:
    """Run what a circuit-building function returned; body of :data:`run_items`.

    ``items`` is a circuit, a ``(circuit, parameters)`` pair, or a list of either: a single
    item gives a single result, a list gives a list in the same order.
    """
    single = not isinstance(items, list)
    pairs = [_as_pair(item) for item in ([items] if single else items)]
    results = _tasks.run_items(_spec(backend), pairs, shots)
    return results[0] if single else results


def run_estimates_task(
    circuit: Circuit | str,
    observable: Any,
    bindings: Sequence[Mapping[str, float]],
    backend: BackendSpec = "sim",
    shots: int = 1000,
    exact: bool | None = None,
    first_index: int = 0,
) -> list[float]:
    """``<observable>`` at each binding; the body of :data:`run_estimates`."""
    return _tasks.run_estimates(_spec(backend), circuit, observable, bindings, shots, exact,
                                first_index=first_index)


def _converted(circuit: Any) -> Any:
    """A framework circuit converted here, once (a future is left for the app to resolve;
    the worker's backend converts what it yields)."""
    return circuit if isinstance(circuit, Future) else as_circuit(circuit)


def _as_pair(item: Any) -> tuple[Circuit | str, Mapping[str, float] | None]:
    if isinstance(item, tuple) and len(item) == 2:
        if item[1] is None or isinstance(item[1], Mapping):
            return item[0], item[1]
    return item, None


# -- the apps --------------------------------------------------------------------------------
run_circuit = python_app(run_circuit_task)
"""App: ``run_circuit(circuit, backend="sim", shots=1000, parameters=None)`` -> AppFuture of
an ``ExecutionResult``. Any argument may be a future (e.g. parameters from an optimiser step).
"""

run_sweep = python_app(run_sweep_task)
"""App: ``run_sweep(circuit, bindings, backend="sim", shots=1000, first_index=0)`` ->
AppFuture of the list of results (one task for all bindings; :func:`sweep` splits a sweep
over several)."""

run_items = python_app(run_items_task)
"""App: ``run_items(items, backend="sim", shots=1000)`` for circuits or ``(circuit,
parameters)`` pairs, or a list of them."""

run_estimates = python_app(run_estimates_task)
"""App: ``run_estimates(circuit, observable, bindings, backend="sim", shots=1000,
exact=None)`` -> AppFuture of the list of ``<observable>`` values, one per binding (exact
from the statevector extension where offered). ``bindings`` may be a future."""

_run_sweep_packed = python_app(run_sweep_packed_task)

LOCAL_EXECUTOR = "_parsl_internal"
"""Parsl's in-process thread pool, which it uses for its own join apps and lookups."""


def local_app(func: Callable[..., Any]) -> Any:
    """A Parsl app that runs in *this* process once its input futures resolve.

    For cheap glue between quantum steps (an optimiser update, summing energy terms): it
    may use this module's globals and is never pickled, unlike apps sent to HTEX workers.
    """
    return python_app(func, executors=[LOCAL_EXECUTOR])


def quantum_app(
    function: Callable[..., Any] | None = None,
    *,
    backend: BackendSpec | Backend = "sim",
    shots: int = 1000,
    executors: list[str] | Literal["all"] = "all",
) -> Any:
    """Turn a function that *builds* circuits into a Parsl app that *runs* them.

    The function returns a circuit, a ``(circuit, parameters)`` pair, or a list of either;
    the app's future resolves to the result, or the list of results in the same order. Its
    arguments may be futures, as for any Parsl app. Once they resolve the function runs in
    this process (a :func:`local_app`: it may use globals), and its circuits run as one
    :data:`run_items` app on ``executors``, whose contract errors reach the returned future
    with their type::

        @quantum_app(shots=2000)
        def rotated(theta):
            return ANSATZ, {"theta": theta}

        result = rotated(previous_step_future).result()
    """
    spec = _spec(backend)
    runner = python_app(run_items_task, executors=executors)

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        build = local_app(func)

        @functools.wraps(func)
        def launch(*args: Any, **kwargs: Any) -> Future[Any]:
            return runner(build(*args, **kwargs), spec, shots)  # type: ignore[no-any-return]

        return launch

    return decorate(function) if function is not None else decorate


# -- sweeps over the loaded executors --------------------------------------------------------
def sweep(
    circuit: Circuit | str,
    bindings: Sequence[Mapping[str, float]],
    backend: BackendSpec | Backend = "sim",
    shots: int = 1000,
    chunk_size: int | None = None,
    *,
    seed: int | None = None,
    sweep_id: str | None = None,
    progress: bool | None = None,
) -> list[Future[ExecutionResult]]:
    """Run ``circuit`` once per binding as Parsl apps; one future per binding, in input order.

    With the backend's batch extension, bindings go in chunks (a few per task slot of the
    loaded executors) and each chunk is one app; without it, one app per binding. The
    returned futures may be passed to other apps as inputs. Element ``i`` is sampled with
    ``seed + i`` (``seed`` defaults to the spec's). With ``sweep_id`` each chunk is written
    to the job journal as it completes, and a rerun with the same id returns the stored
    elements as completed futures (``metadata["reused"] = True``) and runs only the rest.
    ``progress`` draws a bar that advances as chunks complete (None: on a terminal only).
    """
    spec = _spec(backend)
    circuit = _converted(circuit)
    bindings = [as_bindings(b) or {} for b in bindings]
    plan = plan_sweep(spec, circuit, bindings, shots, seed, sweep_id)
    if chunk_size is None:
        chunk_size = chunk_size_for(len(plan.missing), _slots(),
                                    _offers_batch_cached(spec_key(spec)))
    futures: list[Future[ExecutionResult]] = [Future() for _ in bindings]
    for index, result in plan.done.items():
        futures[index].set_result(result)
    ranges = plan.ranges(chunk_size)
    bar = progress_bar(len(bindings), progress, initial=plan.reused, reused=plan.reused)
    remaining = [len(ranges)]
    lock = threading.Lock()

    def arrived(start: int, done: Future[Any]) -> None:
        if done.exception() is None:
            with contextlib.suppress(Exception):  # a bad chunk fails its futures, not this
                plan.store(start, _tasks.unpack_results(done.result()))
        with lock:
            bar.update(0 if done.exception() else len(futures_of[start]))
            remaining[0] -= 1
            if remaining[0] == 0:
                bar.close()

    futures_of: dict[int, list[Future[ExecutionResult]]] = {}
    for indices in ranges:
        chunk = _run_sweep_packed(circuit, bindings[indices.start : indices.stop], spec, shots,
                                  indices.start, plan.seed)
        parts = _split(chunk, len(indices), _tasks.unpack_results)
        futures_of[indices.start] = parts
        futures[indices.start : indices.stop] = parts
        chunk.add_done_callback(functools.partial(arrived, indices.start))
    if not ranges:
        bar.close()
    return futures


def estimate(
    circuit: Circuit | str,
    observable: Any,
    bindings: Sequence[Mapping[str, float]],
    backend: BackendSpec | Backend = "sim",
    shots: int = 1000,
    exact: bool | None = None,
    chunk_size: int | None = None,
) -> list[Future[float]]:
    """``<observable>`` at each binding as chunked :data:`run_estimates` apps; one future
    per binding, in input order."""
    spec = _spec(backend)
    circuit = _converted(circuit)
    pauli = as_observable(observable)
    bindings = [as_bindings(b) or {} for b in bindings]
    size = chunk_size or chunk_size_for(len(bindings), _slots(), batch=True)
    futures: list[Future[float]] = []
    for indices in chunk_ranges(len(bindings), size):
        part = bindings[indices.start : indices.stop]
        values = run_estimates(circuit, pauli, part, spec, shots, exact, indices.start)
        futures.extend(_split(values, len(indices)))
    return futures


def _slots() -> int:
    """Task slots of the loaded DFK's executors (best effort; cores when unknown)."""
    total = 0
    for label, executor in parsl.dfk().executors.items():
        if label.startswith("_parsl"):  # Parsl's internal executor for its own tasks
            continue
        threads = getattr(executor, "max_threads", None)
        if isinstance(threads, int):
            total += threads
            continue
        per_node = getattr(executor, "max_workers_per_node", None)
        if isinstance(per_node, (int, float)) and per_node != float("inf"):
            provider = getattr(executor, "provider", None)
            blocks = getattr(provider, "max_blocks", 1) * getattr(provider, "nodes_per_block", 1)
            total += int(per_node) * max(1, blocks)
        else:
            total += available_cores()
    return total or available_cores()


@functools.lru_cache(maxsize=64)
def _offers_batch_cached(spec_json: str) -> bool:
    """Whether the backend offers ``batch``, asked of a backend built here (once per spec)."""
    try:
        return _tasks.offers_batch(json.loads(spec_json))
    except HalError:  # cannot build it here (e.g. no credentials): one task per binding
        return False


def _split(chunk: Future[Any], size: int, unpack: Callable[[Any], list[Any]] = list
           ) -> list[Future[Any]]:
    """One future per element of the list that ``unpack(chunk.result())`` gives."""
    parts: list[Future[Any]] = [Future() for _ in range(size)]

    def distribute(done: Future[Any]) -> None:
        error = done.exception()
        if error is None:
            try:
                values = unpack(done.result())
            except Exception as exc:  # it belongs on the parts, not lost in a callback
                error = exc
        for index, part in enumerate(parts):
            if error is not None:
                part.set_exception(error)
            else:
                part.set_result(values[index])

    chunk.add_done_callback(distribute)
    return parts
