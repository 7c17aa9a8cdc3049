"""One poll loop per scheduler per process: every tracked job shares each scheduler call.

A status check asks :meth:`Poller.states` for a few ids. When the answers held for them are
younger than the current interval they are returned as they are; otherwise one *round*
refreshes every id this process tracks at once (one ``squeue``, then one ``sacct`` for the
ids that left it, in :meth:`Scheduler.query`). Rounds are spaced by an interval that starts at
``scheduler.poll-interval`` (or the spec's ``poll_interval``), stretched by the square root
of the number of tasks tracked beyond 30, and grows by half after every round in which no
watched job changed, up to ``scheduler.max-poll-interval``; a change brings it back down.
An id stops being tracked when its job is recorded as ended (:meth:`forget`) or when nobody
asked about it for a while. Like Parsl's ``status_polling_interval``, this makes
the scheduler's load independent of how many jobs a workflow watches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence

from hal_workflow.orchestration.schedulers.base import Scheduler, SchedulerState

logger = logging.getLogger(__name__)

BACKOFF = 1.5
SMALL = 30
"""Tracked tasks up to which the interval is not stretched."""


def _key(state: SchedulerState | None) -> tuple[str, str | None] | None:
    return None if state is None else (state.vendor_state, state.reason)


class Poller:
    """Shared, cached scheduler answers for one scheduler (see the module docstring)."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self._lock = threading.Lock()
        self._answers: dict[str, tuple[float, SchedulerState | None]] = {}
        self._live: dict[str, float] = {}  # id -> when it was last asked about
        self._interval: float | None = None
        self.rounds = 0

    def states(self, ids: Sequence[str], interval: float, max_interval: float
               ) -> dict[str, SchedulerState]:
        """The scheduler's answers for ``ids`` (those it knows), at most one interval old."""
        with self._lock:
            now = time.monotonic()
            if any(job_id not in self._live and job_id not in self._answers for job_id in ids):
                self._interval = None  # a job never seen: its first changes come soon
            for job_id in ids:
                self._live[job_id] = now
            current = min(self._interval or self._base(interval), max_interval)
            stale = [i for i in ids if now - self._answers.get(i, (-1e9, None))[0] >= current]
            if stale:
                self._round(now, interval, max_interval)
            return {i: s for i in ids if (s := self._answers.get(i, (0.0, None))[1])}

    def _base(self, interval: float) -> float:
        """The shortest interval: ``interval``, stretched by the square root of the number of
        tasks answered beyond :data:`SMALL` (a 1,000-task array: about 6 s), so that the
        calls per task fall as arrays grow."""
        tasks = len({id(state) for _, state in self._answers.values() if state is not None})
        return interval * max(1.0, (tasks / SMALL) ** 0.5)

    def expire(self, ids: Iterable[str]) -> None:
        """Ask the scheduler again at the next check (after a cancel, say), from the
        shortest interval."""
        with self._lock:
            for job_id in ids:
                self._answers.pop(job_id, None)
            self._interval = None

    def forget(self, ids: Iterable[str]) -> None:
        """Stop tracking ``ids`` (their jobs ended and that is recorded)."""
        with self._lock:
            for job_id in ids:
                self._live.pop(job_id, None)
                self._answers.pop(job_id, None)

    def _round(self, now: float, interval: float, max_interval: float) -> None:
        idle = max(60.0, 4 * max_interval)
        for job_id in [i for i, asked in self._live.items() if now - asked > idle]:
            del self._live[job_id]
            self._answers.pop(job_id, None)
        wanted = list(self._live)
        answers = self.scheduler.query(wanted)
        self.rounds += 1
        stamp = time.monotonic()
        before = {i: self._answers.get(i, (0.0, None))[1] for i in wanted}
        self._answers = {}
        for job_id, state in answers.items():
            self._answers[job_id] = (stamp, state)
        for job_id in wanted:
            if job_id not in answers:
                self._answers[job_id] = (stamp, None)
        # only the jobs someone watches count as changes; the other tasks of their arrays
        # are answered (for free) but would otherwise keep the interval short forever
        changed = any(_key(before[i]) != _key(self._answers[i][1]) for i in wanted)
        base = self._base(interval)
        previous = self._interval or base
        self._interval = base if changed else min(previous * BACKOFF, max_interval)


_pollers: dict[tuple[str, ...], Poller] = {}
_pollers_lock = threading.Lock()


def poller_for(scheduler: Scheduler) -> Poller:
    """The process's poller for ``scheduler`` (one per kind and flavour of scheduler)."""
    key = scheduler.identity()
    with _pollers_lock:
        poller = _pollers.get(key)
        if poller is None:
            poller = _pollers[key] = Poller(scheduler)
        return poller
