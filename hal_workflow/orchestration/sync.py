"""Blocking helpers for scripts and notebooks: ``run``, ``sweep``, ``submit`` and ``Job``.

The contract is async; these wrap it for code that is not. They work with no event loop
(scripts, Dask and Parsl workers: a persistent per-thread loop, so a call costs microseconds)
and inside a running loop (Jupyter: the coroutine runs on a helper thread's loop while the
caller blocks). Backends are built once per process and spec, then reused.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from hal_workflow.backends.registry import BackendSpec, get_backend, normalize_spec
from hal_workflow.contract.extensions import run_many

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit
    from hal_workflow.contract.backend import Backend
    from hal_workflow.contract.types import ExecutionResult, JobStatus, ValidationResult

_T = TypeVar("_T")
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
    circuit: Circuit | str,
    backend: BackendSpec | Backend = "sim",
    shots: int = 1000,
    parameters: Mapping[str, float] | None = None,
    timeout: float | None = None,
) -> ExecutionResult:
    """Run ``circuit`` on ``backend`` and return its result (blocking)."""
    return run_sync(backend_for(backend).run(circuit, shots, parameters, timeout=timeout))


def sweep(
    circuit: Circuit | str,
    bindings: Sequence[Mapping[str, float]],
    backend: BackendSpec | Backend = "sim",
    shots: int = 1000,
    timeout: float | None = None,
) -> list[ExecutionResult]:
    """Run ``circuit`` once per binding (batch extension where offered), results in order."""
    return run_sync(run_many(backend_for(backend), circuit, shots, bindings, timeout=timeout))


def validate(
    circuit: Circuit | str, backend: BackendSpec | Backend = "sim", shots: int | None = None
) -> ValidationResult:
    """Whether ``circuit`` can run on ``backend`` as given, with every reason it cannot."""
    return run_sync(backend_for(backend).validate(circuit, shots))


@dataclass(frozen=True)
class Job:
    """A handle on a submitted job: its id and the backend spec, which pickles.

    Another process (a restarted notebook, a Dask worker) rebuilds the handle with
    ``Job(job_id, spec)`` and reattaches, on backends whose jobs outlive their submitter.
    """

    job_id: str
    backend_spec: Mapping[str, Any]

    @property
    def backend(self) -> Backend:
        return backend_for(self.backend_spec)

    def status(self) -> JobStatus:
        return run_sync(self.backend.status(self.job_id))

    def wait(self, timeout: float | None = None) -> JobStatus:
        return run_sync(self.backend.wait(self.job_id, timeout=timeout))

    def result(self, timeout: float | None = None) -> ExecutionResult:
        return run_sync(self.backend.result_when_done(self.job_id, timeout=timeout))

    def cancel(self) -> None:
        run_sync(self.backend.cancel(self.job_id))


def submit(
    circuit: Circuit | str,
    backend: BackendSpec | Backend = "sim",
    shots: int = 1000,
    parameters: Mapping[str, float] | None = None,
) -> Job:
    """Submit without waiting; returns a picklable :class:`Job` handle."""
    target = backend_for(backend)
    job_id = run_sync(target.submit(circuit, shots, parameters))
    return Job(job_id, target.spec)
