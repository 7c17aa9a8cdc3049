"""The abstract ``Backend``: construction, extensions, redaction, and the provided ``wait``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from contract_backends import BatchingBackend, ClassicalBackend, ScheduledBackend

import hal_workflow.contract.backend as backend_module
from hal_workflow.contract import (
    BackendUnavailableError,
    Capabilities,
    CredentialsError,
    HalTimeoutError,
    JobCancelledError,
    JobFailedError,
    JobState,
    redact_spec,
)


def test_capabilities_discovered_once_and_cached() -> None:
    backend = ClassicalBackend({"name": "classical"})
    first = backend.capabilities()
    assert backend.capabilities() is first and backend.discoveries == 1
    assert backend.name == "classical" == first.name


def test_spec_is_a_copy() -> None:
    spec = {"name": "classical", "num_qubits": 2}
    backend = ClassicalBackend(spec)
    backend.spec["num_qubits"] = 99
    spec["num_qubits"] = 98
    assert backend.spec == {"name": "classical", "num_qubits": 2}


class Failing(ClassicalBackend):
    def __init__(self, spec: Mapping[str, Any], error: Exception) -> None:
        self.error = error
        super().__init__(spec)

    def _discover_capabilities(self) -> Capabilities:
        raise self.error


def test_sdk_failure_while_describing_is_backend_unavailable() -> None:
    cause = ConnectionError("device description endpoint timed out")
    with pytest.raises(BackendUnavailableError, match="dev: cannot read capabilities") as info:
        Failing({"name": "dev"}, cause)
    assert info.value.__cause__ is cause


def test_contract_error_while_describing_passes_through() -> None:
    with pytest.raises(CredentialsError, match="DEV_TOKEN"):
        Failing({"name": "dev"}, CredentialsError("DEV_TOKEN is not set"))


class Offers(ClassicalBackend):
    """Advertises ``advertised``; its ``_extensions`` holds ``objects``."""

    def __init__(self, advertised: set[str], objects: dict[str, object]) -> None:
        self.advertised, self.objects = frozenset(advertised), objects
        super().__init__({"name": "offers"})

    def offered(self) -> frozenset[str]:
        return self.advertised

    def _extensions(self) -> Mapping[str, object]:
        return self.objects


def test_extension_negotiation() -> None:
    batch, pulse = object(), object()
    backend = Offers({"batch", "calibration"}, {"batch": batch, "pulse": pulse})
    assert backend.extension("batch") is batch
    assert backend.extension("pulse") is None  # present but not advertised
    assert backend.extension("calibration") is None  # advertised but missing: None, no crash
    assert backend.extension("nonexistent") is None
    assert ClassicalBackend({"name": "c"}).extension("batch") is None
    assert BatchingBackend({"name": "b"}).extension("batch") is not None


@pytest.mark.parametrize(
    "key", ["token", "IQM_TOKEN", "api_key", "api-key", "ApiKey", "password", "passwd",
            "client_secret", "credentials", "aws_secret_access_key", "aws_session_token"],
)
def test_redact_spec_hides_secret_keys(key: str) -> None:
    spec = {"name": "dev", key: "s3cr3t-value", "shots": 10}
    redacted = redact_spec(spec)
    assert redacted == {"name": "dev", key: "***", "shots": 10}
    assert spec[key] == "s3cr3t-value"  # the input is left alone


def test_backend_repr_never_shows_a_token() -> None:
    backend = ClassicalBackend({"name": "classical", "token": "tok-123456"})
    for text in (repr(backend), str(backend), f"{backend}"):
        assert "tok-123456" not in text and "classical" in text and "***" in text
    assert backend.spec["token"].get() == "tok-123456"  # held as a Secret, still usable


@pytest.mark.parametrize(
    "key", ["tokens_file", "token_env", "aws_credential_file", "aws_profile", "ibm_account"])
def test_keys_that_name_a_credentials_location_stay_readable(key: str) -> None:
    # A path, a variable or an account name is what a job file must keep so that the worker
    # can find the credential again; it is not the credential (docs/contract-v1.md, 11).
    spec = {"name": "dev", key: "~/.where/it-is"}
    assert redact_spec(spec) == spec


@pytest.fixture
def recorded_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the intervals ``Backend.wait`` sleeps for, without sleeping."""
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float) -> None:
        sleeps.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(backend_module.asyncio, "sleep", fake_sleep)
    return sleeps


def test_wait_polls_with_backoff_until_terminal(recorded_sleeps: list[float]) -> None:
    schedule = ["QUEUED"] * 3 + ["RUNNING"] * 3 + ["COMPLETED"]
    backend = ScheduledBackend({"name": "scheduled"}, schedule)

    async def main() -> Any:
        job_id = await backend.submit("x", 1)
        return job_id, await backend.wait(job_id, poll_interval=0.01, backoff=2.0,
                                          max_poll_interval=0.05)

    job_id, status = asyncio.run(main())
    assert status.state is JobState.COMPLETED and status.job_id == job_id
    assert backend.polls[job_id] == len(schedule)  # stopped at the first terminal state
    assert recorded_sleeps == pytest.approx([0.01, 0.02, 0.04, 0.05, 0.05, 0.05])


def test_wait_timeout_leaves_the_job_alone(recorded_sleeps: list[float]) -> None:
    backend = ScheduledBackend({"name": "scheduled"}, ["RUNNING"])

    async def main() -> str:
        job_id = await backend.submit("x", 1)
        with pytest.raises(HalTimeoutError, match=f"job {job_id} still RUNNING") as info:
            await backend.wait(job_id, timeout=0.2, poll_interval=1.0)
        assert isinstance(info.value, TimeoutError)
        assert (await backend.status(job_id)).state is JobState.RUNNING
        return job_id

    asyncio.run(main())
    assert recorded_sleeps and all(s <= 0.2 for s in recorded_sleeps)  # never past the deadline


def test_wait_timeout_zero_checks_once() -> None:
    backend = ScheduledBackend({"name": "scheduled"}, ["QUEUED"])

    async def main() -> str:
        job_id = await backend.submit("x", 1)
        with pytest.raises(HalTimeoutError):
            await backend.wait(job_id, timeout=0)
        return job_id

    assert backend.polls[asyncio.run(main())] == 1


@pytest.mark.parametrize(
    ("final", "error"), [("FAILED", JobFailedError), ("CANCELLED", JobCancelledError)]
)
def test_result_when_done_raises_for_jobs_without_result(final: str, error: type) -> None:
    backend = ScheduledBackend({"name": "scheduled"}, ["RUNNING", final], reason="qubit 3 lost")

    async def main() -> None:
        job_id = await backend.submit("x", 1)
        with pytest.raises(error) as info:
            await backend.result_when_done(job_id, timeout=5)
        assert info.value.job_id == job_id
        if final == "FAILED":
            assert info.value.reason == "qubit 3 lost"

    asyncio.run(main())


def test_run_submits_waits_and_returns_the_result() -> None:
    async def main() -> Any:
        async with ClassicalBackend({"name": "classical", "num_qubits": 3}) as backend:
            program = "qubit[3] q;\nbit[3] c;\nx q[0];\ncx q[0], q[2];\n" + "".join(
                f"c[{i}] = measure q[{i}];\n" for i in range(3)
            )
            return await backend.run(program, 5, timeout=5)

    result = asyncio.run(main())
    assert result.counts == {"101": 5} and result.shots == 5 and result.backend == "classical"


def test_async_context_manager_calls_aclose() -> None:
    closed = []

    class Closing(ClassicalBackend):
        async def aclose(self) -> None:
            closed.append(True)

    async def main() -> None:
        async with Closing({"name": "c"}) as backend:
            assert isinstance(backend, Closing) and not closed

    asyncio.run(main())
    assert closed == [True]
