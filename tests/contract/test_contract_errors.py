"""Every contract error: builds, prints a message naming what went wrong, sits in the tree."""

from __future__ import annotations

import pickle

import pytest

import hal_workflow.contract.errors as errors
from hal_workflow.contract import ValidationCode, ValidationIssue, ValidationResult

ISSUE = ValidationIssue(ValidationCode.TOO_MANY_QUBITS, "circuit uses 6 qubits; dev has 5")

# (error, text its message must contain, attributes it must carry)
CASES: list[tuple[errors.HalError, str, dict[str, object]]] = [
    (errors.HalError("root"), "root", {}),
    (errors.CircuitError("unknown gate 'hh'", source="bell.qasm", line=3, column=4),
     "bell.qasm:3:4: unknown gate 'hh'", {"detail": "unknown gate 'hh'", "line": 3, "column": 4}),
    (errors.ValidationError([ISSUE], backend="dev"), "dev: circuit uses 6 qubits",
     {"issues": (ISSUE,), "backend": "dev"}),
    (errors.UnsupportedExtensionError("dev does not offer 'pulse'"), "'pulse'", {}),
    (errors.BackendUnavailableError("dev is in maintenance"), "maintenance", {}),
    (errors.SubmissionError("queue 'short' is full"), "queue 'short'", {}),
    (errors.JobNotFoundError("job-7"), "'job-7'", {"job_id": "job-7"}),
    (errors.JobFailedError("job-8", "readout timeout"), "job job-8 failed: readout timeout",
     {"job_id": "job-8", "reason": "readout timeout"}),
    (errors.JobCancelledError("job-9"), "job job-9 was cancelled", {"job_id": "job-9"}),
    (errors.HalTimeoutError("job job-1 still RUNNING after 5 s"), "job-1", {}),
    (errors.ConfigurationError("unknown option 'qubitz'"), "'qubitz'", {}),
    (errors.CredentialsError("IQM_TOKEN is not set"), "IQM_TOKEN", {}),
    (errors.RateLimitedError("dev: 429 Too Many Requests", retry_after=7),
     "429", {"retry_after": 7.0, "retryable": True}),
]


def case_id(case: tuple[errors.HalError, str, dict[str, object]]) -> str:
    return type(case[0]).__name__


def test_every_error_class_is_covered() -> None:
    assert {type(e).__name__ for e, _, _ in CASES} == set(errors.__all__)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_message_names_the_thing(case: tuple[errors.HalError, str, dict[str, object]]) -> None:
    error, text, attributes = case
    assert text in str(error)
    for name, value in attributes.items():
        assert getattr(error, name) == value
    with pytest.raises(type(error)):
        raise error


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_all_are_hal_errors(case: tuple[errors.HalError, str, dict[str, object]]) -> None:
    assert isinstance(case[0], errors.HalError)
    assert isinstance(case[0], Exception)


def test_hierarchy() -> None:
    assert issubclass(errors.HalTimeoutError, TimeoutError)
    assert issubclass(errors.CredentialsError, errors.ConfigurationError)
    assert issubclass(errors.RateLimitedError, errors.BackendUnavailableError)
    others = set(errors.__all__) - {"HalError", "CredentialsError", "RateLimitedError"}
    for name in others:  # everything else hangs directly below HalError
        assert getattr(errors, name).__bases__[0] is errors.HalError, name


def test_circuit_error_positions() -> None:
    assert str(errors.CircuitError("bad")) == "<string>: bad"
    assert str(errors.CircuitError("bad", line=2)) == "<string>:2: bad"
    assert str(errors.CircuitError("bad", source="a.qasm", column=5)) == "a.qasm: bad"


def test_validation_error_without_issues_or_backend() -> None:
    assert str(errors.ValidationError([])) == "invalid circuit"
    two = errors.ValidationError([ISSUE, ValidationIssue("SHOTS_OUT_OF_RANGE", "0 shots")])
    assert str(two) == "circuit uses 6 qubits; dev has 5; 0 shots"


def test_raise_for_issues() -> None:
    ValidationResult().raise_for_issues("dev")  # valid: nothing raised
    with pytest.raises(errors.ValidationError) as info:
        ValidationResult((ISSUE,)).raise_for_issues("dev")
    assert info.value.issues == (ISSUE,) and info.value.backend == "dev"


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_errors_pickle_intact(case: tuple[errors.HalError, str, dict[str, object]]) -> None:
    # Errors cross process boundaries (Dask, Parsl) inside failed futures.
    error, _, attributes = case
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert str(again) == str(error) and again.args == error.args
    for name, value in attributes.items():
        assert getattr(again, name) == value


# Contract 1.1: which errors say "try again" (docs/contract-v1.md, section 8.4).
RETRYABLE = {"BackendUnavailableError", "RateLimitedError", "HalTimeoutError"}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_retryable_by_class(case: tuple[errors.HalError, str, dict[str, object]]) -> None:
    error = case[0]
    assert error.retryable is (type(error).__name__ in RETRYABLE)
    if not isinstance(error, errors.RateLimitedError):
        assert error.retry_after is None


def test_retry_fields_per_instance_and_through_pickle() -> None:
    refused = errors.SubmissionError("503 from the gateway")
    refused.retryable, refused.retry_after = True, 2.5
    again = pickle.loads(pickle.dumps(refused))
    assert again.retryable is True and again.retry_after == 2.5
    assert errors.SubmissionError("queue full").retryable is False  # the class default stays
    assert errors.RateLimitedError("slow down").retry_after is None
