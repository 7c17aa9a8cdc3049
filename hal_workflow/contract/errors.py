"""The contract's error hierarchy. Every public call of a backend raises only these.

Adapters translate their SDK's exceptions into one of these classes and keep the original as
``__cause__`` so nothing is lost for debugging, while callers can rely on a small, stable set of
types. Messages never contain credentials.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hal_workflow.contract.types import ValidationIssue


class HalError(Exception):
    """Root of every error raised through the HAL contract.

    Since contract 1.1 every error says whether trying the same call again may succeed:
    ``retryable`` (a class default that an instance may override) and ``retry_after``, the
    seconds the backend asked the caller to wait first (an HTTP ``Retry-After``), or None.
    Validation, circuit and configuration errors are never retryable; an unreachable backend,
    a rate limit and a timeout are.
    """

    retryable: bool = False
    retry_after: float | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (Dask, Parsl) by pickle. The default rebuilds an
        # exception as ``cls(*args)``, which garbles subclasses whose ``__init__`` takes other
        # arguments than the message; restore args and attributes without calling it.
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[HalError], args: tuple[Any, ...], state: dict[str, Any]) -> HalError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class CircuitError(HalError):
    """A circuit could not be parsed or lowered.

    Carries where (``source`` file name or ``"<string>"``, 1-based ``line``, 0-based
    ``column``) and what (``detail``) went wrong, so the message reads like a compiler's:
    ``bell.qasm:3:4: unknown gate 'hh'``.
    """

    def __init__(
        self,
        detail: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.detail = detail
        self.source = source or "<string>"
        self.line = line
        self.column = column
        where = self.source
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {detail}")


class ValidationError(HalError):
    """A circuit is valid OpenQASM but cannot run on the chosen backend as it is."""

    def __init__(self, issues: Sequence[ValidationIssue], backend: str | None = None) -> None:
        self.issues = tuple(issues)
        self.backend = backend
        reasons = "; ".join(issue.message for issue in self.issues) or "invalid circuit"
        prefix = f"{backend}: " if backend else ""
        super().__init__(f"{prefix}{reasons}")


class UnsupportedExtensionError(HalError):
    """An extension was required but the backend does not offer it."""


class BackendUnavailableError(HalError):
    """The backend cannot be reached or is offline (network, maintenance, missing SDK).

    Retryable (contract 1.1): the same call may succeed once the backend is back.
    """

    retryable = True


class RateLimitedError(BackendUnavailableError):
    """The backend refused a call because too many were made (HTTP 429, throttling).

    Retryable; ``retry_after`` carries the wait the backend asked for, when it gave one.
    Added in contract 1.1.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        if retry_after is not None:
            self.retry_after = float(retry_after)


class SubmissionError(HalError):
    """The backend (or the scheduler in front of it) refused a job it was handed."""


class JobNotFoundError(HalError):
    """No job with this id is known to the backend."""

    def __init__(self, job_id: str, detail: str | None = None) -> None:
        self.job_id = job_id
        super().__init__(detail or f"unknown job id {job_id!r}")


class JobFailedError(HalError):
    """A job reached FAILED; ``reason`` is the backend's explanation."""

    def __init__(self, job_id: str, reason: str | None = None) -> None:
        self.job_id = job_id
        self.reason = reason
        super().__init__(f"job {job_id} failed: {reason or 'no reason given'}")


class JobCancelledError(HalError):
    """A job was cancelled, so it has no result."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id} was cancelled")


class HalTimeoutError(HalError, TimeoutError):
    """A wait ran past its timeout. The job itself keeps running.

    Retryable (contract 1.1): waiting again may see the job finish.
    """

    retryable = True


class ConfigurationError(HalError):
    """A backend spec, site config or option is wrong or incomplete."""


class CredentialsError(ConfigurationError):
    """Credentials are missing or rejected. The message never contains the secret."""


__all__ = [
    "BackendUnavailableError",
    "CircuitError",
    "ConfigurationError",
    "CredentialsError",
    "HalError",
    "HalTimeoutError",
    "JobCancelledError",
    "JobFailedError",
    "JobNotFoundError",
    "RateLimitedError",
    "SubmissionError",
    "UnsupportedExtensionError",
    "ValidationError",
]
