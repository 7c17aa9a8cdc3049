"""The one retry policy: schedule, classification, Retry-After, caps, configuration."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from hal_workflow import config
from hal_workflow.backends.retry import NO_RETRY, RetryPolicy, is_retryable, retry_after_of
from hal_workflow.contract.errors import (
    BackendUnavailableError,
    CircuitError,
    ConfigurationError,
    HalTimeoutError,
    RateLimitedError,
    SubmissionError,
    ValidationError,
)

FAST = RetryPolicy(max_attempts=4, initial_delay=0.001, max_delay=0.004, jitter=0.0)


class Flaky:
    """Raises the given errors in turn, then returns ``"ok"``; counts its calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class HTTPError(Exception):
    """Shaped like requests.HTTPError: a response with status_code and headers."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.response = type("R", (), {"status_code": status, "headers": headers or {}})()


class ClientError(Exception):
    """Shaped like botocore's ClientError: a response mapping."""

    def __init__(self, code: str, status: int | None = None) -> None:
        super().__init__(code)
        meta = {"HTTPStatusCode": status} if status else {}
        self.response = {"Error": {"Code": code}, "ResponseMetadata": meta}


@pytest.mark.parametrize(("error", "expected"), [
    (BackendUnavailableError("down"), True),
    (RateLimitedError("slow down", 3), True),
    (HalTimeoutError("late"), True),
    (SubmissionError("refused"), False),
    (ValidationError([]), False),
    (CircuitError("bad"), False),
    (ConfigurationError("bad"), False),
    (TimeoutError(), True),
    (ConnectionResetError(), True),
    (HTTPError(429), True),
    (HTTPError(503), True),
    (HTTPError(500), True),
    (HTTPError(400), False),
    (HTTPError(401), False),
    (HTTPError(404), False),
    (ClientError("ThrottlingException"), True),
    (ClientError("ValidationException", 400), False),
    (ClientError("Whatever", 503), True),
    (ValueError("x"), False),
    (type("ConnectTimeout", (OSError,), {})(), True),  # requests' transport errors, by name
])
def test_classification(error: BaseException, expected: bool) -> None:
    assert is_retryable(error) is expected


def test_retry_after_sources() -> None:
    assert retry_after_of(RateLimitedError("x", retry_after=4)) == 4.0
    assert retry_after_of(HTTPError(429, {"Retry-After": "7"})) == 7.0
    assert retry_after_of(HTTPError(429, {"retry-after": "garbage"})) is None
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 < retry_after_of(HTTPError(503, {"Retry-After": date})) <= 31  # type: ignore[operator]
    wrapped = BackendUnavailableError("503")
    wrapped.__cause__ = HTTPError(503, {"Retry-After": "2"})
    assert retry_after_of(wrapped) == 2.0
    assert retry_after_of(ValueError()) is None


def test_schedule_is_exponential_capped_and_jittered() -> None:
    policy = RetryPolicy(initial_delay=1.0, max_delay=5.0, multiplier=2.0, jitter=0.5)
    assert [policy.delay(n, rand=0.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.delay(2, rand=0.999) == pytest.approx(2.0 * (1 - 0.5 * 0.999))
    draws = {policy.delay(3) for _ in range(50)}
    assert len(draws) > 1 and all(2.0 <= d <= 4.0 for d in draws)
    # Retry-After is a lower bound, even above max-delay.
    assert policy.delay(1, RateLimitedError("x", retry_after=12.0), rand=0.0) == 12.0
    assert policy.delay(4, RateLimitedError("x", retry_after=0.1), rand=0.0) == 5.0


def test_transient_errors_are_retried_until_success() -> None:
    flaky = Flaky(HTTPError(503), TimeoutError(), RateLimitedError("429"))
    assert FAST.call(flaky, 1, key="v") == "ok"
    assert flaky.calls == 4


def test_permanent_error_is_raised_at_once() -> None:
    flaky = Flaky(ValidationError([]), HTTPError(503))
    with pytest.raises(ValidationError):
        FAST.call(flaky)
    assert flaky.calls == 1


def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    flaky = Flaky(*(BackendUnavailableError(f"down {i}") for i in range(10)))
    with pytest.raises(BackendUnavailableError, match="down 3"):
        FAST.call(flaky)
    assert flaky.calls == FAST.max_attempts == 4
    one = Flaky(TimeoutError())
    with pytest.raises(TimeoutError):
        NO_RETRY.call(one)
    assert one.calls == 1


def test_total_timeout_and_retry_after_beyond_it_stop_early() -> None:
    policy = RetryPolicy(max_attempts=100, initial_delay=0.02, max_delay=0.02, jitter=0.0,
                         total_timeout=0.1)
    flaky = Flaky(*(TimeoutError() for _ in range(100)))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        policy.call(flaky)
    assert time.monotonic() - started < 0.5
    assert 2 <= flaky.calls <= 6  # 0.1 s of 0.02 s waits, not 100 attempts
    # A Retry-After longer than the remaining budget: give up now, do not sleep 60 s.
    patient = Flaky(RateLimitedError("429", retry_after=60))
    started = time.monotonic()
    with pytest.raises(RateLimitedError):
        policy.call(patient)
    assert patient.calls == 1 and time.monotonic() - started < 0.5


def test_retry_after_is_waited() -> None:
    flaky = Flaky(RateLimitedError("429", retry_after=0.2))
    started = time.monotonic()
    assert FAST.call(flaky) == "ok"
    assert time.monotonic() - started >= 0.2


def test_async_and_thread_forms(caplog: pytest.LogCaptureFixture) -> None:
    flaky = Flaky(HTTPError(502), ConnectionResetError())

    async def coroutine() -> str:
        return flaky()

    async def main() -> tuple[str, str]:
        first = await FAST.named("test: coroutine").acall(coroutine)
        flaky.errors = [TimeoutError()]
        return first, await FAST.call_in_thread(flaky)

    with caplog.at_level(logging.INFO, logger="hal_workflow.backends.retry"):
        assert asyncio.run(main()) == ("ok", "ok")
    assert flaky.calls == 5
    assert "test: coroutine failed (HTTPError: HTTP 502), attempt 1 of 4" in caplog.text


def test_from_config_and_spec_overrides() -> None:
    assert RetryPolicy.from_config() == RetryPolicy(
        max_attempts=config.get("retry.max-attempts"),
        initial_delay=config.get("retry.initial-delay"), max_delay=config.get("retry.max-delay"),
        total_timeout=config.get("retry.total-timeout"), jitter=config.get("retry.jitter"))
    with config.set({"retry.max-attempts": 9}):
        assert RetryPolicy.from_spec({"name": "iqm"}).max_attempts == 9
        spec = {"name": "iqm", "retry": {"max_attempts": 2, "initial-delay": 0.1}}
        policy = RetryPolicy.from_spec(spec)
        assert (policy.max_attempts, policy.initial_delay) == (2, 0.1)
        assert RetryPolicy.from_spec({"name": "iqm", "retry": False}).max_attempts == 1
        assert RetryPolicy.from_spec({"name": "iqm", "retry": True}).max_attempts == 9
    assert RetryPolicy.from_config(FAST.to_dict()) == FAST


@pytest.mark.parametrize(("retry", "named"), [
    ({"attempts": 3}, "'attempts'"),
    ({"max-attempts": 0}, "retry.max-attempts"),
    ({"max-attempts": 2.5}, "retry.max-attempts"),
    ({"max-attempts": True}, "retry.max-attempts"),
    ({"initial-delay": -1}, "retry.initial-delay"),
    ({"max-delay": "10"}, "retry.max-delay"),
    ({"jitter": 2}, "retry.jitter"),
    ({"multiplier": 0.5}, "retry.multiplier"),
    ("often", "'retry'"),
])
def test_bad_retry_options_name_the_key(retry: Any, named: str) -> None:
    with pytest.raises(ConfigurationError, match=named.replace(".", r"\.")):
        RetryPolicy.from_spec({"name": "iqm", "retry": retry})
