"""The job state machine: ``JobState.can_become`` and ``LocalJobTable``'s transitions."""

from __future__ import annotations

import asyncio
import itertools
import threading

import pytest

from hal_workflow.backends.local_jobs import JobCancelled, LocalJobTable
from hal_workflow.contract import (
    ExecutionResult,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    JobState,
    SubmissionError,
)

Q, R, C, F, X = (JobState.QUEUED, JobState.RUNNING, JobState.COMPLETED, JobState.FAILED,
                 JobState.CANCELLED)

# docs/contract-v1.md, "Job states": the observations a job may go through, in order.
# Staying in a state is allowed (a later poll sees the same state); terminal states are final.
ALLOWED = {
    (Q, Q), (Q, R), (Q, C), (Q, F), (Q, X),
    (R, R), (R, C), (R, F), (R, X),
    (C, C), (F, F), (X, X),
}
PAIRS = list(itertools.product(JobState, repeat=2))


def pair_id(pair: tuple[JobState, JobState]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_can_become(pair: tuple[JobState, JobState]) -> None:
    old, new = pair
    assert old.can_become(new) is (pair in ALLOWED)


def test_terminal_states() -> None:
    assert {s for s in JobState if s.is_terminal} == {C, F, X}
    assert [s.value for s in JobState] == ["QUEUED", "RUNNING", "COMPLETED", "FAILED",
                                           "CANCELLED"]
    assert JobState("RUNNING") is R


def result_for(job_id: str) -> ExecutionResult:
    return ExecutionResult({"0": 1}, 1, job_id, "table-test")


PATH = {Q: [], R: [R], C: [R, C], F: [R, F], X: [X]}  # allowed routes from QUEUED


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_table_applies_only_allowed_transitions(pair: tuple[JobState, JobState]) -> None:
    old, new = pair
    table = LocalJobTable("t")
    job = table.create()
    for state in PATH[old]:
        assert table._move(job, state)
    assert job.state is old
    applied = table._move(job, new, "why")
    assert applied is (not old.is_terminal and pair in ALLOWED)
    assert job.state is (new if applied else old)
    assert job.done.is_set() is job.state.is_terminal


def test_run_completes_with_result() -> None:
    table = LocalJobTable("t")
    job = table.create()
    seen = []
    table.run(job, lambda j: (seen.append(j.state), result_for(j.job_id))[1])
    assert seen == [R]  # the work runs while the job is RUNNING
    assert table.status(job.job_id).state is C
    assert asyncio.run(table.result(job.job_id)).job_id == job.job_id
    assert job.started_at is not None and job.finished_at is not None


@pytest.mark.parametrize(
    ("error", "reason"),
    [(SubmissionError("device refused it"), "device refused it"),
     (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero")],
)
def test_run_failure_becomes_failed_with_reason(error: Exception, reason: str) -> None:
    table = LocalJobTable("t")
    job = table.create()

    def work(job: object) -> ExecutionResult:
        raise error

    table.run(job, work)
    status = table.status(job.job_id)
    assert (status.state, status.reason) == (F, reason)
    with pytest.raises(JobFailedError, match=reason) as info:
        asyncio.run(table.result(job.job_id))
    assert info.value.job_id == job.job_id


def test_cancel_while_queued_never_runs_the_work() -> None:
    table = LocalJobTable("t")
    job = table.create()
    table.cancel(job.job_id)
    assert table.status(job.job_id).state is X
    ran = []
    table.run(job, lambda j: ran.append(j) or result_for(j.job_id))
    assert ran == [] and table.status(job.job_id).state is X
    with pytest.raises(JobCancelledError):
        asyncio.run(table.result(job.job_id))


def test_cancel_while_running_reaches_the_work() -> None:
    table = LocalJobTable("t")
    job = table.create()
    started = threading.Event()

    def work(job: object) -> ExecutionResult:
        started.set()
        while not job.cancel_event.wait(0.001):  # type: ignore[attr-defined]
            pass
        raise JobCancelled

    table.start_in_thread(job, work)
    assert started.wait(5)
    assert table.status(job.job_id).state is R
    table.cancel(job.job_id)
    assert job.done.wait(5)
    assert table.status(job.job_id).state is X


def test_cancel_noticed_only_after_the_work_returned() -> None:
    table = LocalJobTable("t")
    job = table.create()

    def work(job: object) -> ExecutionResult:
        table.cancel(job.job_id)  # type: ignore[attr-defined]
        return result_for(job.job_id)  # type: ignore[attr-defined]

    table.run(job, work)
    assert table.status(job.job_id).state is X


def test_cancel_after_completion_is_a_noop() -> None:
    table = LocalJobTable("t")
    job = table.create()
    table.run(job, lambda j: result_for(j.job_id))
    table.cancel(job.job_id)
    assert table.status(job.job_id).state is C
    assert asyncio.run(table.result(job.job_id)).counts == {"0": 1}


def test_result_waits_for_a_running_job() -> None:
    table = LocalJobTable("t")
    job = table.create()
    release = threading.Event()

    def work(job: object) -> ExecutionResult:
        release.wait(5)
        return result_for(job.job_id)  # type: ignore[attr-defined]

    table.start_in_thread(job, work)

    async def main() -> ExecutionResult:
        pending = asyncio.ensure_future(table.result(job.job_id))
        await asyncio.sleep(0.05)
        assert not pending.done()
        release.set()
        return await pending

    assert asyncio.run(main()).job_id == job.job_id


@pytest.mark.parametrize("job_id", ["t-0-404", "", None])
def test_unknown_ids(job_id: object) -> None:
    table = LocalJobTable("t")
    for call in (table.status, table.cancel, table.get):
        with pytest.raises(JobNotFoundError):
            call(job_id)
    table.forget(job_id)  # forgetting an unknown job is harmless
    with pytest.raises(JobNotFoundError):
        asyncio.run(table.result(job_id))  # type: ignore[arg-type]


def test_ids_are_unique_and_prefixed() -> None:
    table = LocalJobTable("pfx")
    ids = [table.create().job_id for _ in range(50)]
    assert len(set(ids)) == 50 and all(i.startswith("pfx-") for i in ids)


def test_forget_drops_only_terminal_jobs() -> None:
    table = LocalJobTable("t")
    queued, done = table.create(), table.create()
    table.run(done, lambda j: result_for(j.job_id))
    table.forget(queued.job_id)
    table.forget(done.job_id)
    assert table.status(queued.job_id).state is Q
    with pytest.raises(JobNotFoundError):
        table.status(done.job_id)
