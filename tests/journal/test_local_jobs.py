"""In-process jobs through the journal: bounded memory, reading back from another process,
retention ending in JobNotFoundError, a job whose process died."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

import hal_workflow as hal
from hal_workflow.backends.local_jobs import UNREAD_FACTOR, LocalJobTable
from hal_workflow.circuits import ghz
from hal_workflow.contract.errors import JobNotFoundError
from hal_workflow.contract.types import ExecutionResult, JobState
from hal_workflow.journal import Journal
from hal_workflow.simulator.backend import SimulatorBackend


def _ok(job: object) -> ExecutionResult:
    return ExecutionResult(counts={"1": 5}, shots=5, job_id="x", backend="toy")


def test_table_keeps_live_jobs_and_a_bounded_cache(journal: Journal) -> None:
    table = LocalJobTable("toy", {"name": "toy"}, journal=journal, cache_size=8)
    ids = []
    for _ in range(200):
        job = table.create(circuit="OPENQASM 3.0;", shots=5)
        table.run(job, _ok)
        asyncio.run(table.result(job.job_id))
        ids.append(job.job_id)
    live = table.create()
    assert len(table) == 9  # 8 finished + 1 live, not 201
    for _ in range(1000):  # results never read: kept longer, but still bounded
        table.run(table.create(), _ok)
    assert len(table) <= 8 + 8 * UNREAD_FACTOR + 1
    # the first job left memory but is read back from the journal
    assert table.status(ids[0]).state is JobState.COMPLETED
    assert asyncio.run(table.result(ids[0])).counts == {"1": 5}
    assert table.status(live.job_id).state is JobState.QUEUED
    record = journal.get(ids[0])
    assert record is not None and record.backend == "toy" and record.shots == 5
    assert [h[0] for h in record.history] == ["QUEUED", "RUNNING", "COMPLETED"]


def test_sim_memory_is_bounded_and_old_jobs_read_back(journal: Journal) -> None:
    backend = SimulatorBackend({"name": "sim", "seed": 5})
    first = hal.run(ghz(3), backend=backend, shots=64)
    for _ in range(600):
        hal.run(ghz(3), backend=backend, shots=64)
    assert len(backend._jobs) <= 256
    again = hal.Job(first.job_id).result()
    assert again.counts == first.counts and again.metadata["seed"] == 5


READER = """
import sys, json
import hal_workflow as hal
job = hal.Job(sys.argv[1])
print(json.dumps({"state": job.status().state.value, "counts": dict(job.result().counts),
                  "spec": job.backend_spec}))
"""


def test_fresh_process_reads_a_sim_job_by_id(journal: Journal) -> None:
    result = hal.run(ghz(4), backend={"name": "sim", "seed": 11}, shots=200)
    journal.flush()
    out = subprocess.run([sys.executable, "-c", READER, result.job_id], capture_output=True,
                         text=True, timeout=300, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    import json
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["state"] == "COMPLETED" and data["counts"] == dict(result.counts)
    assert data["spec"]["name"] == "sim" and data["spec"]["seed"] == 11


def test_unknown_and_pruned_jobs_are_not_found(journal: Journal) -> None:
    with pytest.raises(JobNotFoundError):
        hal.Job("sim-nonexistent-1")
    table = LocalJobTable("toy", {"name": "toy"}, journal=journal, cache_size=0)
    job = table.create()
    table.run(job, _ok)
    assert table.status(job.job_id).state is JobState.COMPLETED
    journal.retention.max_jobs = 0
    assert journal.prune() == 1
    with pytest.raises(JobNotFoundError):
        table.status(job.job_id)


def test_job_of_a_dead_process_reads_failed(journal: Journal) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    journal.record_submit("toy-dead-1", "toy", {"name": "toy"}, state="RUNNING")
    journal.flush()
    # rewrite its pid to the finished process's
    journal._reader().execute("UPDATE jobs SET pid = ? WHERE job_id = ?", (dead.pid, "toy-dead-1"))
    table = LocalJobTable("toy", {"name": "toy"}, journal=journal)
    status = table.status("toy-dead-1")
    assert status.state is JobState.FAILED and str(dead.pid) in (status.reason or "")


def test_job_of_another_backend_is_not_claimed(journal: Journal) -> None:
    journal.record_submit("ibm-xyz", "ibm", {"name": "ibm"}, state="COMPLETED")
    table = LocalJobTable("sim", {"name": "sim"}, journal=journal)
    with pytest.raises(JobNotFoundError):
        table.status("ibm-xyz")


class _Unjournaled(SimulatorBackend):
    """A backend that does not journal its own jobs (as a remote adapter)."""

    records_jobs = False

    def __init__(self, spec: dict) -> None:
        super().__init__({k: v for k, v in spec.items() if k != "name"} | {"name": "sim"})
        self._jobs = LocalJobTable("norec", None, journal=False)
        self._spec = dict(spec)


def test_sync_records_jobs_of_backends_that_do_not(journal: Journal) -> None:
    from hal_workflow.backends.registry import register_backend

    register_backend("norec-test", _Unjournaled)
    spec = {"name": "norec-test", "seed": 4}
    result = hal.run(ghz(2), backend=spec, shots=50)
    job = hal.submit(ghz(3), backend=spec, shots=60)
    swept = hal.sweep("OPENQASM 3.0; input float t; qubit[1] q; bit[1] c; rx(t) q[0];"
                      " c = measure q;", [{"t": 0.1}, {"t": 0.2}], spec, 70, progress=False)
    journal.flush()
    first = journal.get(result.job_id)
    assert first is not None and first.state is JobState.COMPLETED and first.spec == spec
    assert journal.result(result.job_id).counts == result.counts  # type: ignore[union-attr]
    queued = journal.get(job.job_id)
    assert queued is not None and queued.shots == 60
    assert hal.Job(job.job_id).result().shots == 60  # spec found in the journal
    assert journal.get(job.job_id).state is JobState.COMPLETED  # type: ignore[union-attr]
    assert [journal.get(r.job_id).parameters for r in swept] == [  # type: ignore[union-attr]
        {"t": 0.1}, {"t": 0.2}]
