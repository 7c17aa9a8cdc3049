"""The abstract ``Backend`` every adapter implements (HAL contract v1).

A backend is built from a picklable *spec* (``{"name": "sim", ...}``); the spec plus a job id
is all another process needs to reattach to a job. Capabilities are computed once, at
construction, and ``capabilities()`` never fails afterwards. All job operations are
coroutines; blocking SDKs are wrapped with :func:`asyncio.to_thread` by the adapter, never run
on the event loop.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from hal_workflow.contract.errors import (
    BackendUnavailableError,
    HalError,
    HalTimeoutError,
    JobCancelledError,
    JobFailedError,
)
from hal_workflow.contract.secrets import (
    SECRET_KEY_PATTERN,
    declare_secret_keys,
    redact,
    wrap_secrets,
)
from hal_workflow.contract.types import (
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

CONTRACT_VERSION = "1.1"


_SECRET_KEY = SECRET_KEY_PATTERN


def redact_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``spec`` safe to print: every :class:`~hal_workflow.contract.secrets.Secret`
    and every value of a secret-looking key becomes ``'***'``, at any depth."""
    return dict(redact(spec))


StatusObserver = Callable[["Backend", str, JobStatus], None]
_STATUS_OBSERVERS: list[StatusObserver] = []


def add_status_observer(observer: StatusObserver) -> None:
    """Call ``observer(backend, job_id, status)`` after every ``status()`` of every backend.

    The one place where job states are seen, whoever asks (``wait``, a poller, the CLI, a
    user): the job journal uses it to record remote jobs' transitions (QUEUED -> RUNNING...).
    An observer must be cheap (it runs on the event loop) and never raise.
    """
    if observer not in _STATUS_OBSERVERS:
        _STATUS_OBSERVERS.append(observer)


def _observed(
    status: Callable[[Any, str], Awaitable[JobStatus]],
) -> Callable[[Any, str], Awaitable[JobStatus]]:
    """``status`` followed by the status observers (a subclass's ``status`` is wrapped once)."""
    if getattr(status, "_hal_observed", False):
        return status

    @functools.wraps(status)
    async def observed(self: Backend, job_id: str) -> JobStatus:
        value = await status(self, job_id)
        for observer in _STATUS_OBSERVERS:
            observer(self, job_id, value)
        return value

    observed._hal_observed = True  # type: ignore[attr-defined]
    return observed


class Backend(abc.ABC):
    """A quantum backend behind the HAL contract v1.

    Subclasses implement :meth:`_discover_capabilities` and the abstract coroutines. They
    receive the normalised spec (a dict with at least ``"name"``) and must call
    ``super().__init__(spec)`` once their own state is ready, since that is when capabilities
    are discovered and cached.
    """

    contract_version: ClassVar[str] = CONTRACT_VERSION
    secret_keys: ClassVar[frozenset[str]] = frozenset()
    """Spec keys of this adapter that hold credentials beyond the usual names (``token``,
    ``password``, ``*secret*``, ...); their values are held as ``Secret`` (since 1.1)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declare_secret_keys(cls.secret_keys)
        if "status" in cls.__dict__ and not getattr(cls.status, "__isabstractmethod__", False):
            cls.status = _observed(cls.__dict__["status"])  # type: ignore[method-assign,assignment]

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self._spec: dict[str, Any] = wrap_secrets(dict(spec))
        try:
            capabilities = self._discover_capabilities()
        except HalError:
            raise
        except Exception as exc:  # an SDK failing while describing its device
            raise BackendUnavailableError(
                f"{self._spec.get('name', type(self).__name__)}: cannot read capabilities: {exc}"
            ) from exc
        self._capabilities = capabilities

    # -- identity -----------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The backend's name (as in its capabilities)."""
        return self._capabilities.name

    @property
    def spec(self) -> dict[str, Any]:
        """The picklable spec that rebuilds an equivalent backend in another process."""
        return dict(self._spec)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {redact_spec(self._spec)!r}>"

    # -- capabilities and extensions ------------------------------------------------------
    @abc.abstractmethod
    def _discover_capabilities(self) -> Capabilities:
        """Describe the device. Called once, from ``__init__``."""

    def capabilities(self) -> Capabilities:
        """What this backend can run (cached at construction; never raises)."""
        return self._capabilities

    def _extensions(self) -> Mapping[str, object]:
        """The extension objects this backend offers, by name. Override to offer some."""
        return {}

    def extension(self, name: str) -> Any | None:
        """The extension object called ``name``, or None when the backend does not offer it."""
        if name not in self._capabilities.extensions:
            return None
        return self._extensions().get(name)

    # -- the job operations --------------------------------------------------------------
    @abc.abstractmethod
    async def availability(self) -> BackendAvailability:
        """Whether the backend accepts jobs now, its queue depth and expected wait."""

    @abc.abstractmethod
    async def validate(
        self, circuit: Circuit | str, shots: int | None = None
    ) -> ValidationResult:
        """Check, without running it, whether ``circuit`` (and ``shots``) can run as given.

        Returns every reason it cannot. Raises ``CircuitError`` only for text that does not
        parse. ``submit`` must reject exactly what this reports as invalid.
        """

    @abc.abstractmethod
    async def submit(
        self,
        circuit: Circuit | str,
        shots: int,
        parameters: Mapping[str, float] | None = None,
    ) -> JobId:
        """Validate, then start a job; ``parameters`` binds the circuit's ``input float``s."""

    @abc.abstractmethod
    async def status(self, job_id: str) -> JobStatus:
        """The job's current state (``JobNotFoundError`` for an unknown id)."""

    @abc.abstractmethod
    async def result(self, job_id: str) -> ExecutionResult:
        """The result of a COMPLETED job.

        Waits for a job that is not terminal yet; raises ``JobFailedError`` or
        ``JobCancelledError`` for a job that ended without a result.
        """

    @abc.abstractmethod
    async def cancel(self, job_id: str) -> None:
        """Ask the backend to stop the job. A no-op on a job that already ended."""

    # -- provided helpers ----------------------------------------------------------------
    async def wait(
        self,
        job_id: str,
        timeout: float | None = None,
        poll_interval: float = 0.01,
        max_poll_interval: float = 2.0,
        backoff: float = 1.5,
    ) -> JobStatus:
        """Poll ``status`` until the job is terminal; return that status.

        The interval grows by ``backoff`` from ``poll_interval`` up to ``max_poll_interval``.
        Raises ``HalTimeoutError`` after ``timeout`` seconds (the job keeps running).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = poll_interval
        while True:
            status = await self.status(job_id)
            if status.is_terminal:
                return status
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise HalTimeoutError(
                        f"job {job_id} still {status.state.value} after {timeout} s"
                    )
                interval = min(interval, remaining)
            await asyncio.sleep(interval)
            interval = min(interval * backoff, max_poll_interval)

    async def run(
        self,
        circuit: Circuit | str,
        shots: int,
        parameters: Mapping[str, float] | None = None,
        timeout: float | None = None,
    ) -> ExecutionResult:
        """Submit, wait and fetch the result in one call."""
        job_id = await self.submit(circuit, shots, parameters)
        return await self.result_when_done(job_id, timeout=timeout)

    async def result_when_done(self, job_id: str, timeout: float | None = None) -> ExecutionResult:
        """Wait for ``job_id`` and return its result, raising the contract error if it ended
        FAILED or CANCELLED."""
        status = await self.wait(job_id, timeout=timeout)
        if status.state is JobState.FAILED:
            raise JobFailedError(job_id, status.reason)
        if status.state is JobState.CANCELLED:
            raise JobCancelledError(job_id)
        return await self.result(job_id)

    async def aclose(self) -> None:  # noqa: B027 - optional hook, deliberately not abstract
        """Release connections or worker pools. The default has nothing to release."""

    async def __aenter__(self) -> Backend:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
