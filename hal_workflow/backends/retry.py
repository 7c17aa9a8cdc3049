"""The one retry policy: every remote call of every adapter goes through :class:`RetryPolicy`.

Exponential backoff with jitter, a cap on the number of attempts and on the total time, and
the backend's ``Retry-After`` honoured. Defaults come from the configuration section
``retry:`` (``hal_workflow/config.yaml``); a spec overrides any of them with a ``"retry"``
mapping (``{"name": "iqm", "retry": {"max-attempts": 3}}``), or turns retries off with
``"retry": false``.

    >>> policy = RetryPolicy.from_spec({"name": "iqm", "retry": {"max-attempts": 3}})
    >>> result = policy.call(fetch_counts, job_id)                      # blocking SDK call
    >>> result = await policy.call_in_thread(fetch_counts, job_id)     # same, off the loop
    >>> result = await policy.acall(client.get, url)                    # a coroutine function

Only errors that say so are retried (:func:`is_retryable`): contract errors by their
``retryable`` attribute, and raw SDK errors that are timeouts, lost connections, HTTP 408,
425, 429 and 5xx, or AWS throttling. Anything else is raised at once; when the policy gives up,
the last error is raised unchanged, so the adapter translates it as it would without retries.

A retried *submit* must not create a second vendor job: the adapter passes an idempotency
token the vendor honours (Braket's ``clientToken``), or tags the job and, before each further
attempt, looks the tag up (IQM, IBM); see the adapters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from hal_workflow.contract.errors import ConfigurationError, HalError

__all__ = ["NO_RETRY", "RetryPolicy", "is_retryable", "retry_after_of"]

log = logging.getLogger(__name__)
T = TypeVar("T")

# HTTP statuses that mean "try again": timeout, too early, rate limit, server-side trouble.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# Exception class names (anywhere in the MRO) of transport errors in requests, urllib3,
# httpx, botocore and aiohttp, matched by name so that no SDK is imported here.
_TRANSIENT_NAMES = frozenset({
    "ConnectionError", "Timeout", "ConnectTimeout", "ReadTimeout", "TimeoutException",
    "ProtocolError", "EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError",
    "ConnectionClosedError", "ServerDisconnectedError", "RemoteProtocolError",
})
# AWS error codes for throttling and server-side trouble.
_AWS_TRANSIENT_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "RequestThrottled", "SlowDown", "ServiceUnavailable",
    "ServiceUnavailableException", "InternalServerException", "InternalFailure",
    "InternalServerError",
})


def _status_code(exc: BaseException) -> int | None:
    """The HTTP status an SDK error carries (requests/httpx ``response``, IBM
    ``status_code``, botocore ``response['ResponseMetadata']``), or None."""
    for attribute in ("status_code", "status"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):  # botocore ClientError
        value = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return value if isinstance(value, int) else None
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def _headers(exc: BaseException) -> Mapping[str, Any]:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        return response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) or {}
    headers = getattr(response, "headers", None) or getattr(exc, "headers", None)
    return headers if isinstance(headers, Mapping) else {}


def retry_after_of(exc: BaseException) -> float | None:
    """Seconds the backend asked to wait before trying again, or None.

    From ``HalError.retry_after``, else the error's HTTP ``Retry-After`` header (seconds or an
    HTTP date).
    """
    if isinstance(exc, HalError):
        if exc.retry_after is not None:
            return exc.retry_after
        cause = exc.__cause__
        return retry_after_of(cause) if cause is not None and cause is not exc else None
    headers = _headers(exc)
    value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def is_retryable(exc: BaseException) -> bool:
    """Whether the call that raised ``exc`` may succeed if made again unchanged."""
    if isinstance(exc, HalError):
        return exc.retryable
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    status = _status_code(exc)
    if status is not None:
        return status in RETRYABLE_STATUS
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        return response.get("Error", {}).get("Code") in _AWS_TRANSIENT_CODES
    return any(klass.__name__ in _TRANSIENT_NAMES for klass in type(exc).__mro__)


_KEYS = {
    "max-attempts": "max_attempts",
    "initial-delay": "initial_delay",
    "max-delay": "max_delay",
    "total-timeout": "total_timeout",
    "jitter": "jitter",
    "multiplier": "multiplier",
}


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, capped in attempts and in total time.

    Attempt ``n`` (1-based) that fails retryably is followed, after
    ``min(max_delay, initial_delay * multiplier**(n-1))`` seconds less a random fraction up to
    ``jitter`` of it, by attempt ``n + 1``; a ``retry_after`` the backend gave is waited at
    least. The policy gives up after ``max_attempts`` attempts or when the next wait would end
    past ``total_timeout`` seconds from the first attempt.
    """

    max_attempts: int = 5
    initial_delay: float = 0.5
    max_delay: float = 30.0
    total_timeout: float = 300.0
    jitter: float = 0.5
    multiplier: float = 2.0
    _what: str = dataclasses.field(default="remote call", compare=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) \
                or self.max_attempts < 1:
            raise ConfigurationError(
                f"retry.max-attempts must be an integer >= 1, got {self.max_attempts!r}")
        for key, attribute in _KEYS.items():
            value = getattr(self, attribute)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigurationError(f"retry.{key} must be a number >= 0, got {value!r}")
        if self.jitter > 1:
            raise ConfigurationError(f"retry.jitter must be from 0 to 1, got {self.jitter!r}")
        if self.multiplier < 1:
            raise ConfigurationError(f"retry.multiplier must be >= 1, got {self.multiplier!r}")

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_config(cls, override: Mapping[str, Any] | bool | None = None) -> RetryPolicy:
        """The configured policy (section ``retry:``), with ``override``'s keys replaced.

        ``override`` is a spec's ``"retry"`` value: a mapping of config keys (dashes or
        underscores), ``False`` (one attempt, no retries), or ``None``/``True`` (as configured).
        """
        from hal_workflow import config

        values = dict(cls._parse(config.get("retry", {}) or {}, "configuration"))
        if override is False:
            values["max_attempts"] = 1
        elif isinstance(override, Mapping):
            values.update(cls._parse(override, "spec"))
        elif override not in (None, True):
            raise ConfigurationError(
                f"spec option 'retry' must be a mapping or a boolean, got {override!r}")
        return cls(**values)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> RetryPolicy:
        """The policy for a backend spec: the configuration, overridden by ``spec["retry"]``."""
        return cls.from_config(spec.get("retry"))

    @staticmethod
    def _parse(values: Mapping[str, Any], where: str) -> dict[str, Any]:
        out = {}
        for key, value in values.items():
            name = str(key).replace("_", "-")
            if name not in _KEYS:
                raise ConfigurationError(
                    f"unknown retry option {key!r} in the {where}; known: {', '.join(_KEYS)}")
            out[_KEYS[name]] = value
        return out

    def to_dict(self) -> dict[str, Any]:
        """The policy as a spec's ``"retry"`` mapping (config key spelling)."""
        return {key: getattr(self, attribute) for key, attribute in _KEYS.items()}

    def replace(self, **changes: Any) -> RetryPolicy:
        """A copy with some fields changed (``policy.replace(max_attempts=1)``)."""
        return dataclasses.replace(self, **changes)

    # -- the schedule ----------------------------------------------------------------------
    def delay(self, attempt: int, error: BaseException | None = None,
              rand: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one.

        ``rand`` in [0, 1) replaces the random draw (for tests); ``error``'s ``retry_after``
        is honoured as a lower bound.
        """
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))
        draw = random.random() if rand is None else rand
        wait = base * (1.0 - self.jitter * draw)
        hinted = retry_after_of(error) if error is not None else None
        return max(wait, hinted) if hinted is not None else wait

    def _next_wait(self, attempt: int, error: BaseException, started: float) -> float | None:
        """The wait before another attempt, or None when the policy gives up."""
        if attempt >= self.max_attempts or not is_retryable(error):
            return None
        wait = self.delay(attempt, error)
        if time.monotonic() - started + wait > self.total_timeout:
            return None
        log.info("%s failed (%s: %s), attempt %d of %d; retrying in %.2f s", self._what,
                 type(error).__name__, error, attempt, self.max_attempts, wait)
        return wait

    def named(self, what: str) -> RetryPolicy:
        """The same policy, naming the call in its log lines (``"iqm: submit"``)."""
        return dataclasses.replace(self, _what=what)

    # -- running calls ---------------------------------------------------------------------
    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``, retried by this policy (blocking; sleeps between tries)."""
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn(*args, **kwargs)
            except Exception as error:
                wait = self._next_wait(attempt, error, started)
                if wait is None:
                    raise
            time.sleep(wait)

    async def acall(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """``await fn(*args, **kwargs)``, retried by this policy (sleeps without the loop)."""
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await fn(*args, **kwargs)
            except Exception as error:
                wait = self._next_wait(attempt, error, started)
                if wait is None:
                    raise
            await asyncio.sleep(wait)

    async def call_in_thread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A blocking ``fn(*args, **kwargs)`` run by :func:`asyncio.to_thread`, retried."""
        return await self.acall(asyncio.to_thread, fn, *args, **kwargs)


NO_RETRY = RetryPolicy(max_attempts=1)
"""One attempt: errors are raised at once."""
