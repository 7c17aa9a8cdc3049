"""The job journal: every job submitted through hal-workflow, in one SQLite file per user.

Each job is one row: its backend spec (secrets redacted), circuit digest, shots, parameters,
backend and vendor job ids, every state transition with its time, and its result (counts as
compact JSON; results over :data:`BLOB_THRESHOLD` bytes zlib-compressed into a blob; program
text stored once per digest). Sweeps run with a ``sweep_id`` keep their element results in
``sweep_elements`` so a rerun reuses them (see :mod:`hal_workflow.orchestration.sync`).

Why it is cheap: the recording calls only append a tuple to an in-memory list; one writer
thread per process serialises and commits them in batches (every :data:`FLUSH_INTERVAL`
seconds), so a 5-qubit ``hal.run`` costs a few hundred nanoseconds more. Reads (``get``,
``list_jobs``...) first wait for this process's pending writes, so a process always reads
its own writes. A SIGKILLed process loses at most the last ``FLUSH_INTERVAL`` of records.

Why it is safe with several processes (Dask and Parsl workers, a CLI, notebooks on one node):
WAL mode (readers never block the writer), a busy timeout, short ``BEGIN IMMEDIATE``
transactions, and a new connection per process after ``fork``. SQLite needs working POSIX
locks: on a shared filesystem without them, point ``journal.path`` at node-local storage.

Retention (``journal.max-age``, ``max-jobs``, ``max-bytes``) prunes finished jobs, oldest
first, every :data:`PRUNE_EVERY` writes and on :meth:`Journal.prune`; a pruned job's status is
then ``JobNotFoundError``. If the file cannot be written, the journal logs one warning and
drops records: jobs never fail because of it.

    >>> from hal_workflow import journal
    >>> j = journal.default()
    >>> j.list_jobs(state="COMPLETED", limit=5)     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import zlib
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hal_workflow.contract.errors import HalError
from hal_workflow.contract.secrets import redact
from hal_workflow.contract.types import ExecutionResult, JobState

__all__ = [
    "BLOB_THRESHOLD",
    "JobRecord",
    "Journal",
    "JournalError",
    "SweepElement",
    "circuit_digest",
    "default",
    "set_default",
    "spec_json",
]

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.1
"""Seconds between the writer thread's commits (the most a killed process can lose)."""
MAX_PENDING = 20_000
"""Records queued before a recording call waits for the writer (bounds memory)."""
PRUNE_EVERY = 20_000
"""Writes between two retention passes of the writer thread."""
BLOB_THRESHOLD = 64 * 1024
"""Results whose JSON is larger than this are stored zlib-compressed in a blob."""
_DIGEST_CACHE = 256
_OBSERVED_JOBS = 4096
"""Jobs whose last observed state :meth:`Journal.observe` remembers (oldest forgotten)."""
_PROGRAM_REF = "$program"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    backend TEXT,
    spec TEXT,
    vendor_job_id TEXT,
    circuit_digest TEXT,
    shots INTEGER,
    parameters TEXT,
    state TEXT NOT NULL,
    reason TEXT,
    submitted_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    history TEXT NOT NULL,
    result TEXT,
    result_blob BLOB,
    result_bytes INTEGER NOT NULL DEFAULT 0,
    sweep_id TEXT,
    sweep_index INTEGER,
    host TEXT,
    pid INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_vendor ON jobs (vendor_job_id) WHERE vendor_job_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS programs (digest TEXT PRIMARY KEY, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sweeps (
    sweep_id TEXT PRIMARY KEY,
    seed INTEGER,
    size INTEGER,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sweep_elements (
    sweep_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    digest TEXT NOT NULL,
    job_id TEXT,
    result TEXT,
    result_blob BLOB,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (sweep_id, idx)
);
"""


_INSERT_JOB = (
    "INSERT OR REPLACE INTO jobs (job_id, backend, spec, vendor_job_id, circuit_digest, shots,"
    " parameters, state, reason, submitted_at, updated_at, history, result, result_blob,"
    " result_bytes, sweep_id, sweep_index, host, pid) VALUES (" + ",".join("?" * 19) + ")"
)


class JournalError(HalError):
    """The journal file cannot be opened or read (path, permissions, corruption)."""


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def circuit_digest(text: str) -> str:
    """The digest the journal records for a program: SHA-256 of its text, hex, 32 chars."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _jsonable(value: Any) -> Any:
    """``json.dumps`` fallback: mappings, numpy scalars and arrays, enums, sets; else str."""
    if isinstance(value, Mapping):
        return dict(value)
    for attr in ("tolist", "item"):  # numpy arrays and scalars
        method = getattr(value, attr, None)
        if callable(method):
            return method()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    enum_value = getattr(value, "value", None)
    return enum_value if isinstance(enum_value, (str, int)) else str(value)


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_jsonable)
_dumps = _ENCODER.encode


def _history_json(history: Sequence[tuple[str, float, str | None]]) -> str:
    """``history`` as JSON, written by hand: it is encoded once per job on the hot path."""
    return "[" + ",".join(
        f'["{state}",{at!r},{"null" if reason is None else _dumps(reason)}]'
        for state, at, reason in history) + "]"


def spec_json(spec: Mapping[str, Any] | None) -> str | None:
    """``spec`` as the journal stores it: secrets redacted, compact JSON, keys sorted."""
    if spec is None:
        return None
    return json.dumps(redact(dict(spec)), sort_keys=True, separators=(",", ":"),
                      default=_jsonable)


def _encode_result(result: ExecutionResult, digest: str | None) -> tuple[str | None, bytes | None]:
    data: dict[str, Any] = {
        "counts": result.counts, "shots": result.shots, "job_id": result.job_id,
        "backend": result.backend, "timings": result.timings, "metadata": result.metadata,
    }
    if result.executed_program is not None:
        data["executed_program"] = ({_PROGRAM_REF: digest} if digest is not None
                                    else result.executed_program)
    if result.calibration is not None:
        data["calibration"] = result.calibration.to_dict()
    text = _dumps(data)
    if len(text) > BLOB_THRESHOLD:
        return None, zlib.compress(text.encode(), 6)
    return text, None


def _decode_result(text: str | None, blob: bytes | None,
                   program: Any = None) -> ExecutionResult | None:
    if text is None and blob is None:
        return None
    data = json.loads(text if text is not None else zlib.decompress(blob or b"").decode())
    executed = data.get("executed_program")
    if isinstance(executed, Mapping) and _PROGRAM_REF in executed:
        data["executed_program"] = program(executed[_PROGRAM_REF]) if program else None
    return ExecutionResult.from_dict(data)


# ------------------------------------------------------------------------------------------
# records
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobRecord:
    """One job as the journal knows it (results are read separately: :meth:`Journal.result`).

    ``history`` lists every transition as ``(state, unix time, reason)``, oldest first.
    """

    job_id: str
    backend: str | None
    spec: Mapping[str, Any] | None
    state: JobState
    reason: str | None
    submitted_at: float
    updated_at: float
    history: tuple[tuple[str, float, str | None], ...] = ()
    vendor_job_id: str | None = None
    circuit_digest: str | None = None
    shots: int | None = None
    parameters: Mapping[str, float] | None = None
    has_result: bool = False
    result_bytes: int = 0
    sweep_id: str | None = None
    sweep_index: int | None = None
    host: str | None = None
    pid: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``state`` as its string value, ``history`` as lists)."""
        return {
            "job_id": self.job_id, "backend": self.backend,
            "spec": dict(self.spec) if self.spec is not None else None,
            "state": self.state.value, "reason": self.reason,
            "submitted_at": self.submitted_at, "updated_at": self.updated_at,
            "history": [list(h) for h in self.history],
            "vendor_job_id": self.vendor_job_id, "circuit_digest": self.circuit_digest,
            "shots": self.shots,
            "parameters": dict(self.parameters) if self.parameters is not None else None,
            "has_result": self.has_result, "result_bytes": self.result_bytes,
            "sweep_id": self.sweep_id, "sweep_index": self.sweep_index,
            "host": self.host, "pid": self.pid,
        }


@dataclass(frozen=True)
class SweepElement:
    """A stored sweep element: its index, input digest and result."""

    index: int
    digest: str
    result: ExecutionResult
    job_id: str | None = None


_COLUMNS = ("job_id, backend, spec, state, reason, submitted_at, updated_at, history, "
            "vendor_job_id, circuit_digest, shots, parameters, "
            "result IS NOT NULL OR result_blob IS NOT NULL, result_bytes, sweep_id, sweep_index, "
            "host, pid")


def _record(row: Sequence[Any]) -> JobRecord:
    return JobRecord(
        job_id=row[0], backend=row[1], spec=json.loads(row[2]) if row[2] else None,
        state=JobState(row[3]), reason=row[4], submitted_at=row[5], updated_at=row[6],
        history=tuple(tuple(h) for h in json.loads(row[7])),  # type: ignore[misc]
        vendor_job_id=row[8], circuit_digest=row[9], shots=row[10],
        parameters=json.loads(row[11]) if row[11] else None, has_result=bool(row[12]),
        result_bytes=row[13], sweep_id=row[14], sweep_index=row[15], host=row[16], pid=row[17],
    )


# ------------------------------------------------------------------------------------------
# the journal
# ------------------------------------------------------------------------------------------


@dataclass
class _Retention:
    max_age: float | None = None
    max_jobs: int | None = None
    max_bytes: int | None = None


class Journal:
    """The job journal at ``path`` (created on first use). Thread-safe; one per process
    and path is enough (:func:`default`)."""

    def __init__(self, path: str | os.PathLike[str], *, max_age: float | None = None,
                 max_jobs: int | None = None, max_bytes: int | None = None,
                 flush_interval: float = FLUSH_INTERVAL) -> None:
        self.path = Path(path).expanduser()
        self.retention = _Retention(max_age, max_jobs, max_bytes)
        self._flush_interval = flush_interval
        self._pending: deque[tuple[Any, ...]] = deque()
        self._wake = threading.Event()
        self._start_lock = threading.Lock()
        self._since_prune = 0
        self._busy = False  # the writer holds items it took from the queue
        self._thread: threading.Thread | None = None
        self._local = threading.local()
        self._owner_pid = self._pid = os.getpid()
        self._broken = False
        self._closed = False
        self._host = socket.gethostname()
        self._digests: dict[str, str] = {}
        self._observed: OrderedDict[str, tuple[str, str | None]] = OrderedDict()
        self._ensure_schema()

    def __repr__(self) -> str:
        return f"<Journal {str(self.path)!r}>"

    @property
    def broken(self) -> bool:
        """Whether writing failed (records are then dropped) or the journal was closed."""
        return self._broken or self._closed

    # -- connections ------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"journal {self.path}: cannot open: {exc}") from None
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = self._local.conn = self._connect()
            self._local.pid = os.getpid()
        return conn

    def _ensure_schema(self) -> None:
        conn = self._reader()
        try:
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.path}: cannot create tables: {exc}") from None

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        self.flush()
        try:
            return self._reader().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.path}: {exc}") from None

    # -- the writer -------------------------------------------------------------------------
    def _enqueue(self, item: tuple[Any, ...]) -> None:
        if self._broken or self._closed:
            return
        if self._owner_pid != os.getpid():  # forked: the parent's writer thread is not here
            self._after_fork()
        pending = self._pending
        pending.append(item)  # deque.append is atomic: no lock on the hot path
        if self._thread is None:
            self._start_writer()
        elif len(pending) > MAX_PENDING:
            self.flush()

    def _after_fork(self) -> None:
        self._owner_pid = self._pid = os.getpid()
        self._pending = deque()
        self._wake = threading.Event()
        self._thread = None
        self._local = threading.local()

    def _start_writer(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._writer, name="hal-journal",
                                                daemon=True)
                self._thread.start()

    def _writer(self) -> None:
        conn: sqlite3.Connection | None = None
        pending = self._pending
        while True:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            self._busy = True
            items: list[tuple[Any, ...]] = []
            markers: list[threading.Event] = []
            for _ in range(len(pending)):
                item = pending.popleft()
                if isinstance(item, threading.Event):
                    markers.append(item)
                else:
                    items.append(item)
            if items and not self._broken:
                try:
                    if conn is None:
                        conn = self._connect()
                    self._apply(conn, items)
                except (JournalError, sqlite3.Error) as exc:
                    self._broken = True
                    logger.warning("job journal %s is not writable (%s); jobs are no longer "
                                   "recorded in this process", self.path, exc)
            self._busy = False
            for marker in markers:
                marker.set()
            if self._closed and not pending:
                break
        if conn is not None:
            conn.close()

    def flush(self, timeout: float | None = 30.0) -> None:
        """Wait until every record made so far in this process is committed."""
        if self._thread is None or self._owner_pid != os.getpid() or not self._thread.is_alive():
            return
        if not self._pending and not self._busy:
            return
        marker = threading.Event()
        self._pending.append(marker)  # type: ignore[arg-type]
        self._wake.set()
        marker.wait(timeout)

    def close(self) -> None:
        """Commit what is pending and stop the writer thread."""
        self.flush()
        self._closed = True
        self._wake.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(5.0)
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _apply(self, conn: sqlite3.Connection, items: list[tuple[Any, ...]]) -> None:
        """Commit ``items`` in one transaction; runs of new jobs go in one ``executemany``."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows: list[tuple[Any, ...]] = []
            for item in items:
                if item[0] == "submit":
                    rows.append(self._submit_row(conn, *item[1:]))
                    continue
                if item[0] == "finished":
                    rows.append(self._finished_row(conn, *item[1:]))
                    continue
                if rows:
                    conn.executemany(_INSERT_JOB, rows)
                    rows = []
                getattr(self, "_do_" + item[0])(conn, *item[1:])
            if rows:
                conn.executemany(_INSERT_JOB, rows)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        self._since_prune += len(items)
        if self._since_prune >= PRUNE_EVERY:
            self._since_prune = 0
            self._prune(conn)

    def _program_digest(self, conn: sqlite3.Connection, text: str | None) -> str | None:
        if text is None:
            return None
        digest = self._digests.get(text)
        if digest is None:  # first time in this process: store the text once per digest
            if len(self._digests) >= _DIGEST_CACHE:
                self._digests.clear()
            digest = self._digests[text] = circuit_digest(text)
            conn.execute("INSERT OR IGNORE INTO programs VALUES (?, ?)", (digest, text))
        return digest

    def _submit_row(self, conn: sqlite3.Connection, job_id: str, backend: str | None,
                    spec: str | None, program: str | None, digest: str | None,
                    shots: int | None, parameters: Mapping[str, float] | None,
                    vendor: str | None, sweep_id: str | None, sweep_index: int | None,
                    history: list[tuple[str, float, str | None]],
                    result: ExecutionResult | None, pid: int) -> tuple[Any, ...]:
        if digest is None:
            digest = self._program_digest(conn, program)
        text = blob = None
        size = 0
        if result is not None:
            text, blob = _encode_result(result, self._program_digest(conn,
                                                                     result.executed_program))
            size = len(text) if text is not None else len(blob or b"")
        state, at, reason = history[-1]
        return (job_id, backend, spec, vendor, digest, shots,
                _dumps(dict(parameters)) if parameters else None, state, reason, history[0][1],
                at, _history_json(history), text, blob, size, sweep_id, sweep_index, self._host,
                pid)

    def _finished_row(self, conn: sqlite3.Connection, job_id: str, backend: str | None,
                      spec: str | None, program: str | None, shots: int | None,
                      parameters: Mapping[str, float] | None, submitted_at: float,
                      started_at: float | None, finished_at: float, state: JobState,
                      reason: str | None, result: ExecutionResult | None,
                      pid: int) -> tuple[Any, ...]:
        history: list[tuple[str, float, str | None]] = [("QUEUED", submitted_at, None)]
        if started_at is not None:
            history.append(("RUNNING", started_at, None))
        history.append((state.value, finished_at, reason))
        return self._submit_row(conn, job_id, backend, spec, program, None, shots, parameters,
                                None, None, None, history, result, pid)

    def _do_state(self, conn: sqlite3.Connection, job_id: str, state: str, at: float,
                  reason: str | None, vendor: str | None) -> None:
        # a state already recorded (a second process observing the same job, the sync
        # helpers recording the end the status path saw) adds nothing to the history
        conn.execute(
            "UPDATE jobs SET state = ?, reason = ?, updated_at = ?,"
            " vendor_job_id = COALESCE(?, vendor_job_id),"
            " history = json_insert(history, '$[#]', json(?)) WHERE job_id = ?"
            " AND (state IS NOT ? OR reason IS NOT ? OR ? IS NOT NULL)",
            (state, reason, at, vendor, _dumps([state, at, reason]), job_id, state, reason,
             vendor))

    def _do_result(self, conn: sqlite3.Connection, job_id: str,
                   result: ExecutionResult) -> None:
        ref = (self._program_digest(conn, result.executed_program)
               if result.executed_program is not None else None)
        text, blob = _encode_result(result, ref)
        size = len(text) if text is not None else len(blob or b"")
        conn.execute("UPDATE jobs SET result = ?, result_blob = ?, result_bytes = ?"
                     " WHERE job_id = ?", (text, blob, size, job_id))

    def _do_sweep(self, conn: sqlite3.Connection, sweep_id: str,
                  elements: list[tuple[int, str, ExecutionResult]], at: float) -> None:
        rows = []
        for index, digest, result in elements:
            text, blob = _encode_result(result, None)
            rows.append((sweep_id, index, digest, result.job_id, text, blob, at))
        conn.executemany("INSERT OR REPLACE INTO sweep_elements VALUES (?,?,?,?,?,?,?)", rows)
        # the element's job, where this journal has it, is found by list_jobs(sweep_id=...)
        conn.executemany("UPDATE jobs SET sweep_id = ?, sweep_index = ? WHERE job_id = ?",
                         [(sweep_id, index, result.job_id) for index, _, result in elements])
        conn.execute("UPDATE sweeps SET updated_at = ? WHERE sweep_id = ?", (at, sweep_id))

    # -- recording --------------------------------------------------------------------------
    def record_submit(
        self,
        job_id: str,
        backend: str | None,
        spec: Mapping[str, Any] | str | None = None,
        *,
        circuit: str | None = None,
        circuit_digest: str | None = None,
        shots: int | None = None,
        parameters: Mapping[str, float] | None = None,
        vendor_job_id: str | None = None,
        sweep_id: str | None = None,
        sweep_index: int | None = None,
        state: JobState | str = JobState.QUEUED,
        history: Sequence[tuple[str, float, str | None]] | None = None,
        result: ExecutionResult | None = None,
        at: float | None = None,
    ) -> None:
        """Record a new job (or replace the record of ``job_id``).

        ``spec`` is redacted here (a string is taken as already-redacted JSON from
        :func:`spec_json`). ``circuit`` is the program text: its digest is recorded and the
        text stored once per digest. A job that already ended (an in-process job that ran
        inside ``submit``) is recorded in one call by passing its ``history`` and
        ``result``.
        """
        spec_text = spec if isinstance(spec, str) or spec is None else spec_json(spec)
        if history is None:
            history = [(JobState(state).value, time.time() if at is None else at, None)]
        self._seen(job_id, history[-1][0], history[-1][2])
        self._enqueue(("submit", job_id, backend, spec_text, circuit, circuit_digest, shots,
                       parameters, vendor_job_id, sweep_id, sweep_index, list(history), result,
                       os.getpid()))

    def record_finished(self, job_id: str, backend: str | None, spec: str | None,
                        program: str | None, shots: int | None,
                        parameters: Mapping[str, float] | None, submitted_at: float,
                        started_at: float | None, finished_at: float, state: JobState,
                        reason: str | None, result: ExecutionResult | None) -> None:
        """Record, in one write, a job that already ended (the hot path of in-process jobs
        that run inside ``submit``): positional, ``spec`` already as :func:`spec_json`, the
        history built by the writer from the three times."""
        self._enqueue(("finished", job_id, backend, spec, program, shots, parameters,
                       submitted_at, started_at, finished_at, state, reason, result, self._pid))

    def record_state(self, job_id: str, state: JobState | str, reason: str | None = None, *,
                     at: float | None = None, vendor_job_id: str | None = None) -> None:
        """Record a transition of ``job_id`` to ``state`` (appended to its history)."""
        self._enqueue(("state", job_id, JobState(state).value,
                       time.time() if at is None else at, reason, vendor_job_id))

    def observe(self, job_id: str, state: JobState | str, reason: str | None = None) -> None:
        """Record ``state`` if it is news for ``job_id``: what ``status()`` calls (through
        :func:`_observe_status`) on every poll. The last state seen per job is kept in memory
        (:data:`_OBSERVED_JOBS` jobs), so polls that change nothing write nothing."""
        value = JobState(state).value
        if self._observed.get(job_id) == (value, reason):
            return
        self._seen(job_id, value, reason)
        self._enqueue(("state", job_id, value, time.time(), reason, None))

    def _seen(self, job_id: str, state: str, reason: str | None) -> None:
        observed = self._observed
        observed[job_id] = (state, reason)
        observed.move_to_end(job_id)
        if len(observed) > _OBSERVED_JOBS:
            observed.popitem(last=False)

    def record_result(self, job_id: str, result: ExecutionResult) -> None:
        """Store ``job_id``'s result (does not change its state: record that too)."""
        self._enqueue(("result", job_id, result))

    # -- reading ----------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord | None:
        """The record of ``job_id``, or None when the journal has none (or pruned it)."""
        rows = self._query(f"SELECT {_COLUMNS} FROM jobs WHERE job_id = ?", (job_id,))
        return _record(rows[0]) if rows else None

    def find_vendor(self, vendor_job_id: str) -> JobRecord | None:
        """The newest record whose vendor job id is ``vendor_job_id``."""
        rows = self._query(f"SELECT {_COLUMNS} FROM jobs WHERE vendor_job_id = ?"
                           " ORDER BY submitted_at DESC LIMIT 1", (vendor_job_id,))
        return _record(rows[0]) if rows else None

    def result(self, job_id: str) -> ExecutionResult | None:
        """The stored result of ``job_id``, or None when there is none."""
        rows = self._query("SELECT result, result_blob FROM jobs WHERE job_id = ?", (job_id,))
        if not rows:
            return None
        return _decode_result(rows[0][0], rows[0][1], self.program)

    def program(self, digest: str) -> str | None:
        """The program text recorded under ``digest``."""
        rows = self._query("SELECT text FROM programs WHERE digest = ?", (digest,))
        return rows[0][0] if rows else None

    def list_jobs(self, state: JobState | str | Iterable[JobState | str] | None = None,
                  backend: str | None = None, since: float | None = None,
                  limit: int | None = 100, sweep_id: str | None = None) -> list[JobRecord]:
        """Records, newest first (in the order they were recorded): only ``state`` (one or
        several), ``backend`` (its name), submitted at or after ``since`` (unix time), of
        ``sweep_id``; at most ``limit``."""
        clauses: list[str] = []
        args: list[Any] = []
        if state is not None:
            states = [state] if isinstance(state, (str, JobState)) else list(state)
            values = [JobState(s).value for s in states]
            clauses.append(f"state IN ({','.join('?' * len(values))})")
            args += values
        if backend is not None:
            clauses.append("backend = ?")
            args.append(backend)
        if since is not None:
            clauses.append("submitted_at >= ?")
            args.append(float(since))
        if sweep_id is not None:
            clauses.append("sweep_id = ?")
            args.append(sweep_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = " LIMIT ?" if limit is not None else ""
        if limit is not None:
            args.append(int(limit))
        # rowid order is recording order: newest first without an index to maintain
        rows = self._query(f"SELECT {_COLUMNS} FROM jobs{where} ORDER BY rowid DESC{tail}",
                           args)
        return [_record(r) for r in rows]

    def count(self) -> int:
        """How many jobs the journal holds."""
        return int(self._query("SELECT COUNT(*) FROM jobs")[0][0])

    # -- sweeps -----------------------------------------------------------------------------
    def begin_sweep(self, sweep_id: str, seed: int | None, size: int) -> int | None:
        """Register ``sweep_id`` (or find it) and return its base seed.

        The first run records ``seed``; a rerun gets the recorded seed back, so elements
        computed after a resume use the same ``seed + i`` as an uninterrupted run. An
        explicit ``seed`` different from the recorded one replaces it (its elements then no
        longer match and are recomputed, because the seed is part of their digest).
        """
        self.flush()
        now = time.time()
        conn = self._reader()
        try:
            conn.execute("BEGIN IMMEDIATE")
            row = conn.execute("SELECT seed FROM sweeps WHERE sweep_id = ?",
                               (sweep_id,)).fetchone()
            if row is None or (seed is not None and row[0] != seed):
                conn.execute("INSERT OR REPLACE INTO sweeps VALUES (?, ?, ?, ?, ?)",
                             (sweep_id, seed, size, now, now))
                stored = seed
            else:
                stored = row[0]
                conn.execute("UPDATE sweeps SET size = ?, updated_at = ? WHERE sweep_id = ?",
                             (size, now, sweep_id))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise JournalError(f"journal {self.path}: {exc}") from None
        return stored if stored is None else int(stored)

    def sweep_elements(self, sweep_id: str,
                       digests: Mapping[int, str] | None = None) -> dict[int, SweepElement]:
        """Stored elements of ``sweep_id`` by index; with ``digests``, only those whose
        recorded input digest equals ``digests[index]`` (elements with other inputs are
        not reused)."""
        rows = self._query("SELECT idx, digest, job_id, result, result_blob"
                           " FROM sweep_elements WHERE sweep_id = ?", (sweep_id,))
        found: dict[int, SweepElement] = {}
        for index, digest, job_id, text, blob in rows:
            if digests is not None and digests.get(index) != digest:
                continue
            result = _decode_result(text, blob)
            if result is not None:
                found[index] = SweepElement(index, digest, result, job_id)
        return found

    def record_sweep_elements(self, sweep_id: str,
                              elements: Sequence[tuple[int, str, ExecutionResult]]) -> None:
        """Store ``(index, input digest, result)`` elements of ``sweep_id`` (committed by the
        writer within :data:`FLUSH_INTERVAL`)."""
        if elements:
            self._enqueue(("sweep", sweep_id, list(elements), time.time()))

    def sweeps(self) -> list[dict[str, Any]]:
        """Every recorded sweep: id, seed, size, stored elements, times; newest first."""
        rows = self._query(
            "SELECT s.sweep_id, s.seed, s.size, s.created_at, s.updated_at,"
            " (SELECT COUNT(*) FROM sweep_elements e WHERE e.sweep_id = s.sweep_id)"
            " FROM sweeps s ORDER BY s.updated_at DESC")
        return [dict(sweep_id=r[0], seed=r[1], size=r[2], created_at=r[3], updated_at=r[4],
                     stored=r[5]) for r in rows]

    def forget_sweep(self, sweep_id: str) -> None:
        """Delete ``sweep_id`` and its stored elements."""
        self.flush()
        conn = self._reader()
        conn.execute("DELETE FROM sweep_elements WHERE sweep_id = ?", (sweep_id,))
        conn.execute("DELETE FROM sweeps WHERE sweep_id = ?", (sweep_id,))

    # -- retention --------------------------------------------------------------------------
    def prune(self) -> int:
        """Apply the retention settings now; returns how many jobs were deleted."""
        self.flush()
        return self._prune(self._reader())

    def _prune(self, conn: sqlite3.Connection) -> int:
        terminal = "state IN ('COMPLETED', 'FAILED', 'CANCELLED')"
        before = conn.total_changes
        r = self.retention
        if r.max_age is not None:
            conn.execute(f"DELETE FROM jobs WHERE {terminal} AND updated_at < ?",
                         (time.time() - r.max_age,))
            conn.execute("DELETE FROM sweep_elements WHERE recorded_at < ?",
                         (time.time() - r.max_age,))
        if r.max_jobs is not None:
            excess = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] - r.max_jobs
            if excess > 0:
                conn.execute(f"DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs WHERE"
                             f" {terminal} ORDER BY rowid LIMIT ?)", (excess,))
        if r.max_bytes is not None:
            total = conn.execute("SELECT COALESCE(SUM(result_bytes), 0) FROM jobs").fetchone()[0]
            if total > r.max_bytes:
                # oldest first, until what remains fits
                conn.execute(
                    f"DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM (SELECT rowid,"
                    f" SUM(result_bytes) OVER (ORDER BY rowid) AS run FROM jobs"
                    f" WHERE {terminal}) WHERE run <= ?)", (total - r.max_bytes,))
                conn.execute(
                    f"DELETE FROM jobs WHERE rowid = (SELECT rowid FROM jobs WHERE {terminal}"
                    f" ORDER BY rowid LIMIT 1) AND (SELECT SUM(result_bytes)"
                    f" FROM jobs) > ?", (r.max_bytes,))
        return conn.total_changes - before


# ------------------------------------------------------------------------------------------
# the process-wide journal
# ------------------------------------------------------------------------------------------

_default: Journal | None = None
_default_lock = threading.Lock()


def default_path() -> Path:
    """``journal.path`` from the configuration, else ``{data_dir}/journal.sqlite``."""
    from hal_workflow import config

    configured = config.get("journal.path", None)
    if configured:
        return Path(os.path.expandvars(str(configured))).expanduser()
    return config.data_dir() / "journal.sqlite"


def _setting(key: str) -> Any:
    from hal_workflow import config

    return config.get(f"journal.{key}", None)


def default() -> Journal:
    """This process's journal, opened at :func:`default_path` on first use (settings read
    then: change ``journal.*`` before the first job, or call :func:`set_default`)."""
    global _default
    journal = _default
    if journal is not None and journal._owner_pid == os.getpid():
        return journal
    with _default_lock:
        if _default is None:
            _default = Journal(default_path(), max_age=_setting("max-age"),
                               max_jobs=_setting("max-jobs"), max_bytes=_setting("max-bytes"))
        return _default


def set_default(journal: Journal | None) -> Journal | None:
    """Make ``journal`` this process's journal (None: reopen from the configuration on next
    use); returns the previous one, which is flushed."""
    global _default
    with _default_lock:
        previous, _default = _default, journal
    if previous is not None:
        previous.flush()
    return previous


def _flush_at_exit() -> None:
    if _default is not None and _default._owner_pid == os.getpid():
        with contextlib.suppress(Exception):
            _default.flush(timeout=10.0)


def _observe_status(backend: Any, job_id: str, status: Any) -> None:
    """The status observer (see ``add_status_observer``): a remote job's transitions reach
    the journal wherever its status is read. Backends that journal their own jobs
    (``records_jobs``) and a disabled journal are left alone; the journal never fails a
    ``status()`` call."""
    if getattr(backend, "records_jobs", False):
        return
    from hal_workflow import config

    if not config.get("journal.enabled", True):
        return
    try:
        default().observe(job_id, status.state, status.reason)
    except Exception as exc:  # a journal that cannot open: the job goes on
        logger.debug("journal: cannot record the state of %s: %s", job_id, exc)


import atexit  # noqa: E402 - registered once the module is complete

from hal_workflow.contract.backend import add_status_observer  # noqa: E402

atexit.register(_flush_at_exit)
add_status_observer(_observe_status)
