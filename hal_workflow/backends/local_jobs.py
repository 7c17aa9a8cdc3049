"""Job bookkeeping for backends whose jobs run inside this process.

The simulator and the local modes of vendor SDKs (Braket's LocalSimulator, QDMI's DDSIM
device) run work in this process: :class:`LocalJobTable` gives them the contract's semantics in
one place: unique ids, monotonic state transitions, FAILED with a reason, cancellation that
reaches the running work through a :class:`Flag` (a light ``threading.Event``).

Memory stays bounded: the table keeps live jobs and the last ``journal.cache-size`` finished
ones; every job is written to the job journal (:mod:`hal_workflow.journal`) when it ends (and
when it is queued, unless it runs inside ``submit``), and a finished job that left the cache,
or one from another process, is read back from the journal. A job whose process died before
it finished reads as FAILED. After retention pruned it, its status is ``JobNotFoundError``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hal_workflow.contract.errors import (
    HalError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
)
from hal_workflow.contract.types import ExecutionResult, JobState, JobStatus

if TYPE_CHECKING:
    from hal_workflow.journal import JobRecord, Journal

FOREIGN_POLL = 0.2
"""Seconds between journal reads while waiting for a job that runs in another process."""
UNREAD_FACTOR = 16
"""Finished jobs whose result was not read yet are kept up to this times ``cache-size``."""
_HOST = socket.gethostname()


class JobCancelled(Exception):
    """Raised by work that noticed its cancel event; ends the job CANCELLED."""


_FLAG_LOCK = threading.Lock()


class Flag:
    """A :class:`threading.Event` that allocates its condition only when someone waits.

    Two flags per job: a ``threading.Event`` builds a Condition, a lock and a deque each,
    which for thousands of short jobs is garbage the collector must walk (its pauses showed
    as 100 ms holds of the event loop). ``set`` before reading the condition, and waiters
    re-check the value under it, so no wake-up is lost.
    """

    __slots__ = ("_cond", "_value")

    def __init__(self) -> None:
        self._value = False
        self._cond: threading.Condition | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        self._value = True
        cond = self._cond
        if cond is not None:
            with cond:
                cond.notify_all()

    def clear(self) -> None:
        self._value = False

    def wait(self, timeout: float | None = None) -> bool:
        if self._value:
            return True
        with _FLAG_LOCK:
            if self._cond is None:
                self._cond = threading.Condition(threading.Lock())
            cond = self._cond
        with cond:
            return cond.wait_for(self.is_set, timeout)


@dataclass(slots=True)
class LocalJob:
    job_id: str
    state: JobState = JobState.QUEUED
    reason: str | None = None
    result: ExecutionResult | None = None
    cancel_event: Flag = field(default_factory=Flag)
    done: Flag = field(default_factory=Flag)
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    info: tuple[Any, ...] | None = None  # what the journal records: spec, program, shots...
    recorded: bool = False  # its submission is in the journal
    foreign: bool = False   # read from the journal: it ran (or runs) in another process

    def history(self) -> list[tuple[str, float, str | None]]:
        """Its transitions so far as ``(state, time, reason)``."""
        steps: list[tuple[str, float, str | None]] = [("QUEUED", self.submitted_at, None)]
        if self.started_at is not None:
            steps.append(("RUNNING", self.started_at, None))
        if self.state.is_terminal:
            steps.append((self.state.value, self.finished_at or time.time(), self.reason))
        return steps


class LocalJobTable:
    """Thread-safe table of in-process jobs, keyed by id (``PREFIX-PIDTAG-N``).

    ``spec`` is the backend spec recorded with each job (redacted by the journal), so
    ``hal_workflow.Job(job_id)`` can find the backend from any process; a backend that
    gives its spec should set ``records_jobs = True`` (then ``hal_workflow.run`` and the
    engines do not record its jobs again). Without a spec the table records nothing and the
    sync helpers and engines record the jobs they submit. ``journal`` defaults
    to :func:`hal_workflow.journal.default`; ``False`` records nothing. ``cache_size``
    (default ``journal.cache-size``) finished jobs stay in memory.
    """

    def __init__(self, prefix: str, spec: Mapping[str, Any] | None = None, *,
                 journal: Journal | bool | None = None, cache_size: int | None = None) -> None:
        # pid + random tag: ids stay unique across tables and processes sharing a prefix
        self._prefix = f"{prefix}-{os.getpid():x}{secrets.token_hex(3)}"
        self._counter = itertools.count(1)
        self._jobs: dict[str, LocalJob] = {}
        self._done: OrderedDict[str, LocalJob] = OrderedDict()    # finished, result read
        self._unread: OrderedDict[str, LocalJob] = OrderedDict()  # finished, not read yet
        self._lock = threading.Lock()
        self._journal_choice = journal
        self._spec_text: str | None = None
        self.spec = spec
        from hal_workflow import config

        if journal is None and not config.get("journal.enabled", True):
            self._journal_choice = False
        if cache_size is None:
            cache_size = int(config.get("journal.cache-size", 256))
        self._cache_size = max(0, cache_size)

    @property
    def spec(self) -> Mapping[str, Any] | None:
        """The backend spec recorded with new jobs."""
        return self._spec

    @spec.setter
    def spec(self, spec: Mapping[str, Any] | None) -> None:
        from hal_workflow.journal import spec_json

        self._spec = dict(spec) if spec is not None else None
        self._spec_text = spec_json(spec)
        self._backend_name = str(spec["name"]) if spec and "name" in spec else None

    @property
    def journal(self) -> Journal | None:
        """The journal this table writes to and reads finished jobs from (None: off).
        By default the process's current :func:`~hal_workflow.journal.default`."""
        choice = self._journal_choice
        if choice is False:
            return None
        if choice is None or choice is True:
            from hal_workflow import journal

            return journal.default()
        return choice  # type: ignore[return-value]

    def _journal_ok(self) -> bool:
        journal = self.journal
        return journal is not None and not journal.broken

    def create(self, *, circuit: str | None = None, shots: int | None = None,
               parameters: Mapping[str, float] | None = None, publish: bool = True) -> LocalJob:
        """A new QUEUED job. ``circuit`` (program text), ``shots`` and ``parameters`` go to
        the journal; ``publish=False`` records the job only when it ends (for work that runs
        inside ``submit``: one journal write instead of several)."""
        job = LocalJob(job_id=f"{self._prefix}-{next(self._counter)}",
                       info=(circuit, shots, parameters))
        with self._lock:
            self._jobs[job.job_id] = job
        if publish:
            self._record_submit(job)
        return job

    def _record_submit(self, job: LocalJob) -> None:
        journal = self.journal
        if journal is None or job.recorded or self._spec_text is None:
            return  # without a spec the job could not be reattached: sync records it
        job.recorded = True
        circuit, shots, parameters = job.info or (None, None, None)
        journal.record_submit(job.job_id, self._backend_name, self._spec_text, circuit=circuit,
                              shots=shots, parameters=parameters, history=job.history(),
                              result=job.result if job.state is JobState.COMPLETED else None)

    def _record_end(self, job: LocalJob) -> None:
        journal = self.journal
        if journal is None:
            return
        if not job.recorded:  # one write with everything
            self._record_submit(job)
            return
        if job.result is not None:
            journal.record_result(job.job_id, job.result)
        journal.record_state(job.job_id, job.state, job.reason, at=job.finished_at)

    def get(self, job_id: str) -> LocalJob:
        """The job ``job_id``: live, cached, or read from the journal."""
        job = self._jobs.get(job_id) if isinstance(job_id, str) else None
        if job is None and isinstance(job_id, str):
            job = self._unread.get(job_id) or self._done.get(job_id)
        if job is None:
            job = self._from_journal(job_id)
        if job is None:
            raise JobNotFoundError(str(job_id))
        return job

    def _from_journal(self, job_id: object) -> LocalJob | None:
        journal = self.journal
        if journal is None or not isinstance(job_id, str):
            return None
        record = journal.get(job_id)
        if record is None or (self._backend_name is not None
                              and record.backend not in (None, self._backend_name)):
            return None
        return _journal_job(record)

    def refresh(self, job: LocalJob) -> LocalJob:
        """For a job of another process: its current record (itself if it ended)."""
        if not job.foreign or job.done.is_set():
            return job
        return self._from_journal(job.job_id) or job

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
                self._retire(job)
        if state.is_terminal:
            self._record_end(job)
            job.done.set()
        elif job.recorded and self.journal is not None:
            self.journal.record_state(job.job_id, state, at=job.started_at)
        return True

    def _retire(self, job: LocalJob) -> None:
        """Move an ended job from the live table to the caches (lock held).

        Its result waits in ``_unread`` (up to :data:`UNREAD_FACTOR` times the cache size,
        so a batch is read back from memory, not the journal), then in the cache of read
        jobs. With the journal off or broken nothing is evicted unread: it would be lost.
        """
        self._jobs.pop(job.job_id, None)
        self._unread[job.job_id] = job
        if len(self._unread) > self._cache_size * UNREAD_FACTOR and self._journal_ok():
            self._unread.popitem(last=False)

    def _mark_read(self, job: LocalJob) -> None:
        with self._lock:
            if self._unread.pop(job.job_id, None) is None:
                return
            if self._cache_size:
                self._done[job.job_id] = job
                if len(self._done) > self._cache_size:
                    self._done.popitem(last=False)

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
        if not self._move(job, JobState.COMPLETED):
            job.result = None

    def start_in_thread(self, job: LocalJob, work: Callable[[LocalJob], ExecutionResult]) -> None:
        """Run ``work`` on a daemon thread so the event loop stays free."""
        self._record_submit(job)
        threading.Thread(
            target=self.run, args=(job, work), name=f"hal-{job.job_id}", daemon=True
        ).start()

    def status(self, job_id: str) -> JobStatus:
        job = self.refresh(self.get(job_id))
        return JobStatus(job_id=job.job_id, state=job.state, reason=job.reason,
                         vendor_state=job.state.value)

    def cancel(self, job_id: str) -> None:
        """Stop the job (a no-op once it ended, and for a job running in another process,
        which this process cannot reach)."""
        job = self.get(job_id)
        if job.foreign:
            return
        job.cancel_event.set()
        if job.state is JobState.QUEUED:
            self._move(job, JobState.CANCELLED, "cancelled before it started")

    async def result(self, job_id: str) -> ExecutionResult:
        job = await self.until_done(self.get(job_id), None)
        if job.state is JobState.FAILED:
            raise JobFailedError(job_id, job.reason)
        if job.state is JobState.CANCELLED:
            raise JobCancelledError(job_id)
        if job.result is None and job.foreign and self.journal is not None:
            job.result = self.journal.result(job_id)
        if job.result is None:
            raise JobNotFoundError(job_id, f"job {job_id}: its result is no longer stored")
        self._mark_read(job)
        return job.result

    async def until_done(self, job: LocalJob, timeout: float | None) -> LocalJob:
        """``job`` once it ended, or as it is after ``timeout`` seconds. A job of another
        process is followed through the journal every :data:`FOREIGN_POLL` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while job.foreign and not job.done.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return job
            await asyncio.sleep(FOREIGN_POLL)
            job = self.refresh(job)
        if not job.done.is_set():
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            await asyncio.to_thread(job.done.wait, remaining)
        return job

    def forget(self, job_id: str) -> None:
        """Drop a finished job from memory (the journal still has it)."""
        with self._lock:
            self._done.pop(job_id, None)
            self._unread.pop(job_id, None)

    def __len__(self) -> int:
        """Jobs held in memory: live ones and the caches of finished ones."""
        return len(self._jobs) + len(self._done) + len(self._unread)


def _alive(record: JobRecord) -> bool:
    """Whether the process that ran ``record`` may still be running (unknowable elsewhere)."""
    if record.host != _HOST or record.pid is None:
        return True
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _journal_job(record: JobRecord) -> LocalJob:
    """A read-only :class:`LocalJob` for a journal record (``foreign``)."""
    job = LocalJob(job_id=record.job_id, state=record.state, reason=record.reason,
                   submitted_at=record.submitted_at, recorded=True, foreign=True)
    if not record.state.is_terminal and not _alive(record):
        job.state = JobState.FAILED
        job.reason = (f"the process that ran it (pid {record.pid} on {record.host}) ended "
                      f"before the job finished")
    if job.state.is_terminal:
        job.finished_at = record.updated_at
        job.done.set()
    return job
