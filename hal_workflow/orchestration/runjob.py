"""The compute-node side of a scheduler job: ``hal-workflow run-job DIR``.

:func:`run_job_dir` reads the job directory written by
:class:`~hal_workflow.orchestration.scheduler.SchedulerBackend`, runs the job on the wrapped
backend, and leaves the outcome beside the inputs (see :mod:`.jobdir` for the layout). It
records the vendor job id as soon as it is known, so the login node can cancel that job too,
and on SIGTERM (scancel, qdel, a time limit) it cancels the vendor job before exiting.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hal_workflow.backends.registry import get_backend
from hal_workflow.contract.backend import Backend
from hal_workflow.contract.errors import (
    ConfigurationError,
    HalError,
    JobCancelledError,
    JobFailedError,
)
from hal_workflow.contract.types import ExecutionResult, JobState
from hal_workflow.orchestration.jobdir import JobDir, JobStorageError, record_scheduler_job
from hal_workflow.orchestration.schedulers.base import TASK_INDEX_ENV

logger = logging.getLogger(__name__)

STORAGE_EXIT = 3
"""Exit status when the job directory's filesystem is full (read back by ``status``)."""


class _Stopped(Exception):
    """The batch job received SIGTERM/SIGINT (scancel, qdel, time limit)."""


def _task_index() -> int | None:
    """The array index the batch script set, removed from the environment so that nothing
    this job starts (a nested submission, a subprocess) inherits it."""
    text = os.environ.pop(TASK_INDEX_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise ConfigurationError(f"{TASK_INDEX_ENV}={text!r} is not an array index")
    return int(text)


def run_job_dir(path: str) -> int:
    """Run the job in ``path`` on this (compute) node; return the process exit code.

    What ``hal-workflow run-job DIR`` calls. Builds the inner backend from the directory's
    spec, submits, records the vendor job id (``vendor_job.json``) as soon as it is known,
    waits, and writes ``result.json`` atomically (never over an existing one); on failure it
    writes ``error.json`` with the reason. On SIGTERM or SIGINT (scancel, qdel, a time limit)
    it cancels the vendor job and exits ``128 + signal`` with no result. Array tasks read
    their index from ``$HAL_WORKFLOW_TASK_INDEX``. Exit codes: 0 done (or a result already
    there), 1 the job failed, 2 not a usable job directory, 3 the job directory's
    filesystem is full (``error.json`` says so, written into space reserved at the start),
    128+N stopped by signal N.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        index = _task_index()
        directory = JobDir(path)
        job = directory.job()
        task = directory.task(index)
    except HalError as exc:
        logger.error("run-job %s: %s", path, exc)
        return 2
    if directory.has("result", index):
        logger.warning("%s already holds a result; not running the job again", path)
        return 0
    scheduler_job_id = os.environ.get("PBS_JOBID") or os.environ.get("SLURM_JOB_ID")
    reserve = directory.file(".reserve", index, "")
    try:
        # room for error.json should the filesystem fill up while the job runs
        directory.write_text(reserve.name, " " * RESERVE_BYTES)
        if job.get("scheduler") == "slurm" and not directory.has("scheduler_job"):
            # the submitter died before recording the id: record it from here
            array_id = os.environ.get("SLURM_ARRAY_JOB_ID") if job.get("array") else None
            own = array_id or scheduler_job_id
            if own:
                record_scheduler_job(directory, own, "run-job")
        directory.write("started", {"host": socket.gethostname(), "pid": os.getpid(),
                                    "started_at": time.time(),
                                    "scheduler_job_id": scheduler_job_id}, index)
        return asyncio.run(_execute(directory, job, task, index, scheduler_job_id, reserve))
    except JobStorageError as exc:
        return _storage_full(directory, index, reserve, exc)
    finally:
        reserve.unlink(missing_ok=True)


RESERVE_BYTES = 8192


def _storage_full(directory: JobDir, index: int | None, reserve: Path,
                  exc: JobStorageError) -> int:
    """Free the reserved bytes, say why in ``error.json`` and exit :data:`STORAGE_EXIT`."""
    logger.error("the job directory is full: %s", exc)
    reserve.unlink(missing_ok=True)
    try:
        directory.write("error", {"reason": f"the job failed: {exc}", "type": "JobStorageError"},
                        index)
    except JobStorageError:
        logger.error("could not record the error either")
    return STORAGE_EXIT


async def _execute(directory: JobDir, job: Mapping[str, Any], task: Mapping[str, Any],
                   index: int | None, scheduler_job_id: str | None, reserve: Path) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)

    inner: Backend | None = None
    vendor_id: str | None = None
    try:
        inner = get_backend(job["backend"])
        vendor_id = await _submit_task(inner, task, int(job["shots"]))
        directory.write("vendor_job", {"job_id": vendor_id, "backend": inner.name,
                                       "recorded_at": time.time()}, index)
        logger.info("vendor job %s started on %s", vendor_id, inner.name)
        status = await _wait_or_stop(inner.wait(vendor_id), stop)
        if status.state is JobState.FAILED:
            raise JobFailedError(vendor_id, status.reason)
        if status.state is JobState.CANCELLED:
            raise JobCancelledError(vendor_id)
        result = await _wait_or_stop(inner.result(vendor_id), stop)
        record = _result_record(directory, index, result, scheduler_job_id)
        written = directory.write("result", record, index, overwrite=False)
        if not written:
            logger.warning("a result was already there; it was kept")
        return 0
    except _Stopped:
        name = signal.Signals(received[0]).name
        logger.warning("received %s: cancelling vendor job %s", name, vendor_id)
        if inner is not None and vendor_id is not None:
            try:
                await inner.cancel(vendor_id)
            except HalError as exc:
                logger.error("could not cancel vendor job %s: %s", vendor_id, exc)
        directory.write("error", {"reason": f"stopped by {name} (scancel, qdel or a time limit)",
                                  "signal": received[0], "vendor_job_id": vendor_id}, index)
        return 128 + received[0]
    except JobStorageError as exc:
        return _storage_full(directory, index, reserve, exc)
    except Exception as exc:
        reason = str(exc) if isinstance(exc, HalError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, HalError):
            logger.exception("the job failed")
        else:
            logger.error("the job failed: %s", reason)
        directory.write("error", {"reason": reason, "type": type(exc).__name__,
                                  "vendor_job_id": vendor_id}, index)
        return 1
    finally:
        if inner is not None:
            await inner.aclose()


async def _submit_task(inner: Backend, task: Mapping[str, Any], shots: int) -> str:
    """Submit one task, with its seed where the task has one and the backend takes one."""
    seed = task.get("seed")
    if seed is not None and "seed" in inspect.signature(inner.submit).parameters:
        return await inner.submit(task["qasm"], shots, task.get("parameters"),  # type: ignore[call-arg]
                                  seed=int(seed))
    return await inner.submit(task["qasm"], shots, task.get("parameters"))


async def _wait_or_stop(work: Any, stop: asyncio.Event) -> Any:
    """Await ``work`` unless ``stop`` is set first (then raise :class:`_Stopped`)."""
    if stop.is_set():
        work.close()
        raise _Stopped
    work_task = asyncio.ensure_future(work)
    stop_task = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({work_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    if work_task not in done:
        work_task.cancel()
        raise _Stopped
    stop_task.cancel()
    return work_task.result()


def _result_record(directory: JobDir, index: int | None, result: ExecutionResult,
                   scheduler_job_id: str | None) -> dict[str, Any]:
    """The inner result with the batch job's timings and provenance added: ``batch_queued_s``
    (waiting for the scheduler) and ``total_s`` (from submission to result)."""
    record = result.to_dict()
    timings = dict(result.timings)
    submitted = (directory.read("scheduler_job") or {}).get("submitted_at")
    started = (directory.read("started", index) or {}).get("started_at")
    if isinstance(submitted, (int, float)):
        timings["total_s"] = time.time() - submitted
        if isinstance(started, (int, float)):
            timings["batch_queued_s"] = max(0.0, started - submitted)
    record["timings"] = timings
    record["metadata"] = {**dict(result.metadata), "vendor_job_id": result.job_id,
                          "vendor_backend": result.backend, "scheduler_job_id": scheduler_job_id,
                          "host": socket.gethostname(), "job_dir": str(directory.path)}
    return record
