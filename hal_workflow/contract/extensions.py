"""Optional extensions of contract v1 and the helper that falls back when one is missing.

Callers discover an extension with ``backend.extension(name)``; it returns the extension
object or None. Never assume one: :func:`submit_many` shows the pattern of using ``batch`` when
offered and plain ``submit`` otherwise.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from hal_workflow.contract.types import CalibrationSnapshot, ExecutionResult, JobId

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit
    from hal_workflow.contract.backend import Backend


@runtime_checkable
class BatchExtension(Protocol):
    """Submit many circuits, or one parametrised circuit with many bindings, at once.

    Each element becomes its own job id (queried with the backend's ``status``/``result``),
    returned in input order.
    """

    async def submit_batch(
        self, circuits: Sequence[Circuit | str], shots: int
    ) -> list[JobId]: ...

    async def submit_sweep(
        self, circuit: Circuit | str, bindings: Sequence[Mapping[str, float]], shots: int
    ) -> list[JobId]: ...


@runtime_checkable
class Session(Protocol):
    """A reservation kept across iterations (a VQE loop); jobs go through ``submit``."""

    @property
    def session_id(self) -> str: ...

    async def submit(
        self, circuit: Circuit | str, shots: int, parameters: Mapping[str, float] | None = None
    ) -> JobId: ...


@runtime_checkable
class SessionExtension(Protocol):
    """Open a session: ``async with ext.session() as s: await s.submit(...)``."""

    def session(self, max_time_s: float | None = None) -> AbstractAsyncContextManager[Session]: ...


@runtime_checkable
class CalibrationExtension(Protocol):
    """The device's current qubit and gate error data."""

    async def snapshot(self) -> CalibrationSnapshot: ...


@runtime_checkable
class PulseExtension(Protocol):
    """Pass a vendor pulse payload through unchanged (``formats`` names what is accepted)."""

    @property
    def formats(self) -> frozenset[str]: ...

    async def submit_pulse(self, payload: bytes | str | Mapping[str, Any], shots: int) -> JobId: ...


async def submit_many(
    backend: Backend,
    circuit: Circuit | str | Sequence[Circuit | str],
    shots: int,
    bindings: Sequence[Mapping[str, float]] | None = None,
) -> list[JobId]:
    """Submit a list of circuits, or one circuit over ``bindings``, in input order.

    Uses the backend's ``batch`` extension where it is offered and falls back to one
    ``submit`` per element otherwise.
    """
    batch = backend.extension("batch")
    if bindings is not None:
        if isinstance(circuit, Sequence) and not isinstance(circuit, str):
            raise TypeError("pass one circuit together with bindings")
        if batch is not None:
            return list(await batch.submit_sweep(circuit, bindings, shots))
        return [await backend.submit(circuit, shots, b) for b in bindings]
    if isinstance(circuit, str) or not isinstance(circuit, Sequence):
        circuits: list[Circuit | str] = [circuit]
    else:
        circuits = list(circuit)
    if batch is not None:
        return list(await batch.submit_batch(circuits, shots))
    return [await backend.submit(c, shots) for c in circuits]


async def run_many(
    backend: Backend,
    circuit: Circuit | str | Sequence[Circuit | str],
    shots: int,
    bindings: Sequence[Mapping[str, float]] | None = None,
    timeout: float | None = None,
) -> list[ExecutionResult]:
    """:func:`submit_many`, then every result in input order."""
    job_ids = await submit_many(backend, circuit, shots, bindings)
    return [await backend.result_when_done(j, timeout=timeout) for j in job_ids]


async def iter_results(
    backend: Backend, job_ids: Sequence[str], timeout: float | None = None
) -> AsyncIterator[ExecutionResult]:
    """Yield the results of ``job_ids`` in order."""
    for job_id in job_ids:
        yield await backend.result_when_done(job_id, timeout=timeout)
