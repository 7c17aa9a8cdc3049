"""Job bookkeeping for backends whose jobs run inside this process.

The simulator and the local modes of vendor SDKs (Braket's LocalSimulator, QDMI's DDSIM
device) run work in this process: :class:`LocalJobTable` gives them the contract's semantics in
one place: unique ids, monotonic state transitions, FAILED with a reason, cancellation that
reaches the running work through a :class:`threading.Event`, and results kept until read.
Jobs of this kind do not outlive the process that submitted them.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from hal_workflow.contract.errors import (
    HalError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
)
from hal_workflow.contract.types import ExecutionResult, JobState, JobStatus


class JobCancelled(Exception):
    """Raised by work that noticed its cancel event; ends the job CANCELLED."""


@dataclass
class LocalJob:
    job_id: str
    state: JobState = JobState.QUEUED
    reason: str | None = None
    result: ExecutionResult | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None


class LocalJobTable:
    """Thread-safe table of in-process jobs, keyed by id (``PREFIX-PIDTAG-N``)."""

    def __init__(self, prefix: str) -> None:
        # pid + random tag: ids stay unique across tables and processes sharing a prefix
        self._prefix = f"{prefix}-{os.getpid():x}{secrets.token_hex(3)}"
        self._counter = itertools.count(1)
        self._jobs: dict[str, LocalJob] = {}
        self._lock = threading.Lock()

    def create(self) -> LocalJob:
        job = LocalJob(job_id=f"{self._prefix}-{next(self._counter)}")
        with self._lock:
            self._jobs[job.job_id] = job
        return job

    def get(self, job_id: str) -> LocalJob:
        try:
            return self._jobs[job_id]
        except (KeyError, TypeError):
            raise JobNotFoundError(str(job_id)) from None

    def _move(self, job: LocalJob, state: JobState, reason: str | None = None) -> bool:
        """Apply a transition if the state machine allows it; report whether it applied."""
        with self._lock:
            if job.state.is_terminal or not job.state.can_become(state):
                return False
            job.state = state
            if state is JobState.RUNNING:
                job.started_at = time.time()
            if state.is_terminal:
                job.reason = reason
                job.finished_at = time.time()
                job.done.set()
            return True

    def run(self, job: LocalJob, work: Callable[[LocalJob], ExecutionResult]) -> None:
        """Run ``work`` for ``job`` here and now, recording the outcome.

        ``work`` should check ``job.cancel_event`` between steps and raise
        :class:`JobCancelled` when it is set. A ``HalError`` or any other exception ends the
        job FAILED with the error's message as the reason; nothing escapes.
        """
        if not self._move(job, JobState.RUNNING):
            return  # cancelled while queued
        try:
            result = work(job)
        except JobCancelled:
            self._move(job, JobState.CANCELLED, "cancelled by request")
            return
        except HalError as exc:
            self._move(job, JobState.FAILED, str(exc))
            return
        except Exception as exc:
            self._move(job, JobState.FAILED, f"{type(exc).__name__}: {exc}")
            return
        if job.cancel_event.is_set():
            self._move(job, JobState.CANCELLED, "cancelled by request")
            return
        job.result = result
        self._move(job, JobState.COMPLETED)

    def start_in_thread(self, job: LocalJob, work: Callable[[LocalJob], ExecutionResult]) -> None:
        """Run ``work`` on a daemon thread so the event loop stays free."""
        threading.Thread(
            target=self.run, args=(job, work), name=f"hal-{job.job_id}", daemon=True
        ).start()

    def status(self, job_id: str) -> JobStatus:
        job = self.get(job_id)
        return JobStatus(job_id=job.job_id, state=job.state, reason=job.reason,
                         vendor_state=job.state.value)

    def cancel(self, job_id: str) -> None:
        job = self.get(job_id)
        job.cancel_event.set()
        if job.state is JobState.QUEUED:
            self._move(job, JobState.CANCELLED, "cancelled before it started")

    async def result(self, job_id: str) -> ExecutionResult:
        job = self.get(job_id)
        if not job.done.is_set():
            await asyncio.to_thread(job.done.wait)
        if job.state is JobState.FAILED:
            raise JobFailedError(job_id, job.reason)
        if job.state is JobState.CANCELLED:
            raise JobCancelledError(job_id)
        assert job.result is not None
        return job.result

    def forget(self, job_id: str) -> None:
        """Drop a terminal job's record (its result is gone afterwards)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job.state.is_terminal:
                del self._jobs[job_id]
