"""Backend jobs dispatched as real SLURM batch jobs on the single-node test cluster.

Each test submits through :class:`SlurmBackend`, polls with a timeout (never a fixed sleep)
and leaves nothing behind: the ``job_root`` fixture scancels every job recorded under it.
``procsim`` (tests/scheduler/testkit) stands in for a remote service whose vendor jobs are
separate, detached processes; the simulator tests are in ``test_slurm_simulator.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hal_scheduler_testkit import pid_alive
from scheduler_helpers import BELL, read_json, run_job_processes, squeue_state, wait_for

from hal_workflow.backends.registry import get_backend, register_backend
from hal_workflow.contract.errors import JobCancelledError, JobFailedError, SubmissionError
from hal_workflow.contract.types import JobState
from hal_workflow.orchestration.scheduler import SchedulerBackend

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


@pytest.fixture(autouse=True)
def _procsim() -> None:
    register_backend("procsim", "hal_scheduler_testkit:ProcessBackend")


def procsim_spec(tmp_path: Path, job_root: Path, testkit_env: dict[str, str],
                 duration: float, **options: Any) -> dict[str, Any]:
    return {"name": "slurm", "site": "ci", "job_root": str(job_root), "env": testkit_env,
            "backend": {"name": "procsim", "root": str(tmp_path / "vendor"),
                        "duration": duration}, **options}


def build(spec: dict[str, Any]) -> SchedulerBackend:
    backend = get_backend(spec)
    assert isinstance(backend, SchedulerBackend)
    return backend


def states_until_terminal(backend: SchedulerBackend, job_id: str, timeout: float = 60,
                          on_state: Any = None) -> list[JobState]:
    """Every distinct state observed while polling ``job_id`` to a terminal state."""
    seen: list[JobState] = []

    def poll() -> bool:
        state = asyncio.run(backend.status(job_id)).state
        if not seen or seen[-1] is not state:
            seen.append(state)
            if on_state is not None:
                on_state(state)
        return state.is_terminal

    wait_for(poll, timeout, f"job {job_id} to end", interval=0.05)
    return seen


def job_dir(job_id: str) -> Path:
    return Path(job_id.partition("@")[2])


def scheduler_id(job_id: str) -> str:
    return job_id.partition("@")[0]


def test_status_goes_queued_running_completed(tmp_path: Path, job_root: Path,
                                              testkit_env: dict[str, str]) -> None:
    """Held in the queue, released, running, done: the states arrive in order."""
    backend = build(procsim_spec(tmp_path, job_root, testkit_env, duration=1.5,
                                 extra_directives=["--hold"]))
    job_id = asyncio.run(backend.submit(BELL, 100))
    status = asyncio.run(backend.status(job_id))
    assert (status.state, status.vendor_state) == (JobState.QUEUED, "PENDING")
    subprocess.run(["scontrol", "release", scheduler_id(job_id)], check=True)
    seen = states_until_terminal(backend, job_id)
    assert seen[-2:] == [JobState.RUNNING, JobState.COMPLETED]
    assert seen[0] in (JobState.QUEUED, JobState.RUNNING)
    result = asyncio.run(backend.result(job_id))
    assert result.counts == {"00": 100} and result.job_id == job_id
    assert result.backend == "slurm:procsim"
    assert result.metadata["scheduler_job_id"] == scheduler_id(job_id)
    assert result.metadata["vendor_job_id"] == read_json(job_dir(job_id) / "vendor_job.json")[
        "job_id"]
    assert result.timings["total_s"] >= 1.5


def test_state_changes_reach_the_journal_once_each(tmp_path: Path, job_root: Path,
                                                   testkit_env: dict[str, str]) -> None:
    """The poller's answers, seen through status(), are journaled as they change: QUEUED
    (held), RUNNING, COMPLETED, one record each however many polls saw them."""
    import hal_workflow
    from hal_workflow import journal as journals

    journal = journals.Journal(tmp_path / "journal.sqlite")
    previous = journals.set_default(journal)
    try:
        spec = procsim_spec(tmp_path, job_root, testkit_env, duration=1.5,
                            extra_directives=["--hold"])
        job = hal_workflow.submit(BELL, spec, shots=20)
        assert job.status().state is JobState.QUEUED
        assert job.status().state is JobState.QUEUED
        subprocess.run(["scontrol", "release", scheduler_id(job.job_id)], check=True)

        def running_journaled() -> bool:
            status = job.status()
            record = journal.get(job.job_id)
            assert record is not None
            return status.state is JobState.RUNNING and record.state is JobState.RUNNING

        wait_for(running_journaled, 60, "RUNNING in the journal", interval=0.05)
        seen = states_until_terminal(build(spec), job.job_id)
        for _ in range(3):
            job.status()
        record = journal.get(job.job_id)
    finally:
        journals.set_default(previous)
        journal.close()
    assert seen[-1] is JobState.COMPLETED
    assert record is not None
    assert [state for state, _, _ in record.history] == ["QUEUED", "RUNNING", "COMPLETED"]


def test_cancel_stops_the_batch_job_and_the_vendor_job(tmp_path: Path, job_root: Path,
                                                       testkit_env: dict[str, str]) -> None:
    """cancel() scancels, and cancels the vendor job recorded in the directory: the vendor
    process (detached, out of Slurm's reach) is stopped by hal, not by Slurm."""
    backend = build(procsim_spec(tmp_path, job_root, testkit_env, duration=300))
    job_id = asyncio.run(backend.submit(BELL, 10))
    directory = job_dir(job_id)
    vendor = wait_for(lambda: (directory / "vendor_job.json").exists()
                      and read_json(directory / "vendor_job.json"), 30, "the vendor job id")
    worker = backend.inner.worker_pid(vendor["job_id"])  # type: ignore[attr-defined]
    assert worker is not None and pid_alive(worker)
    asyncio.run(backend.cancel(job_id))
    wait_for(lambda: asyncio.run(backend.status(job_id)).is_terminal, 15, "the job to end")
    assert asyncio.run(backend.status(job_id)).state is JobState.CANCELLED
    assert squeue_state(scheduler_id(job_id)) == "CANCELLED"
    wait_for(lambda: not pid_alive(worker), 10, "the vendor process to stop")
    wait_for(lambda: not run_job_processes(directory), 15, "run-job to exit")
    cancels = (tmp_path / "vendor" / vendor["job_id"] / "cancels").read_text().split()
    assert str(os.getpid()) in cancels  # this (login) process cancelled the vendor job
    assert not (directory / "result.json").exists()
    with pytest.raises(JobCancelledError):
        asyncio.run(backend.result(job_id))
    asyncio.run(backend.cancel(job_id))  # a no-op once ended


def test_plain_scancel_reaches_the_vendor_job_through_sigterm(
    tmp_path: Path, job_root: Path, testkit_env: dict[str, str]
) -> None:
    """Someone runs scancel by hand: run-job's SIGTERM handler cancels the vendor job."""
    backend = build(procsim_spec(tmp_path, job_root, testkit_env, duration=300))
    job_id = asyncio.run(backend.submit(BELL, 10))
    directory = job_dir(job_id)
    vendor = wait_for(lambda: (directory / "vendor_job.json").exists()
                      and read_json(directory / "vendor_job.json"), 30, "the vendor job id")
    worker = backend.inner.worker_pid(vendor["job_id"])  # type: ignore[attr-defined]
    batch_pid = read_json(directory / "started.json")["pid"]
    subprocess.run(["scancel", scheduler_id(job_id)], check=True)
    wait_for(lambda: worker is not None and not pid_alive(worker), 15, "the vendor process")
    cancels = (tmp_path / "vendor" / vendor["job_id"] / "cancels").read_text().split()
    assert str(batch_pid) in cancels and str(os.getpid()) not in cancels
    wait_for(lambda: asyncio.run(backend.status(job_id)).is_terminal, 15, "the job to end")
    assert asyncio.run(backend.status(job_id)).state is JobState.CANCELLED
    assert "SIGTERM" in read_json(directory / "error.json")["reason"]
    assert not (directory / "result.json").exists()


def test_time_limit_kill_is_failed_with_timeout(tmp_path: Path, job_root: Path,
                                               testkit_env: dict[str, str]) -> None:
    """Slurm's minimum limit is a minute, so the test moves the job's end time to now + 1 s
    (``scontrol update EndTime=``); slurmctld then kills it as it would at its limit."""
    backend = build(procsim_spec(tmp_path, job_root, testkit_env, duration=300, time="00:05:00"))
    job_id = asyncio.run(backend.submit(BELL, 10))
    directory = job_dir(job_id)
    wait_for(lambda: (directory / "vendor_job.json").exists(), 30, "the job to start")
    subprocess.run(["scontrol", "update", f"JobId={scheduler_id(job_id)}", "EndTime=now+1"],
                   check=True, capture_output=True)
    states_until_terminal(backend, job_id, timeout=60)
    status = asyncio.run(backend.status(job_id))
    assert (status.state, status.vendor_state) == (JobState.FAILED, "TIMEOUT")
    assert status.reason == "TIMEOUT: time limit reached"
    with pytest.raises(JobFailedError, match="TIMEOUT: time limit reached"):
        asyncio.run(backend.result(job_id))
    assert not (directory / "result.json").exists()
    vendor = read_json(directory / "vendor_job.json")["job_id"]
    assert (tmp_path / "vendor" / vendor / "cancelled").exists()  # the vendor job stopped too


def test_bad_partition_is_a_submission_error_with_sbatchs_words(
    tmp_path: Path, job_root: Path, testkit_env: dict[str, str]
) -> None:
    backend = build(procsim_spec(tmp_path, job_root, testkit_env, duration=1,
                                 partition="no-such-partition"))
    with pytest.raises(SubmissionError) as info:
        asyncio.run(backend.submit(BELL, 10))
    message = str(info.value)
    assert "sbatch refused the job" in message
    assert "invalid partition specified: no-such-partition" in message
    assert info.value.__cause__ is None  # no CalledProcessError behind it
    assert not list(job_root.iterdir())


@pytest.fixture
def short_partition() -> Any:
    """A partition whose MaxTime is 1 minute, created for the test and removed after."""
    node = subprocess.run(["sinfo", "-h", "-o", "%N"], capture_output=True, text=True,
                          check=True).stdout.split()[0]
    name = f"hal-short-{os.getpid()}"
    subprocess.run(["scontrol", "create", f"PartitionName={name}", f"Nodes={node}",
                    "MaxTime=1", "State=UP"], check=True, capture_output=True)
    yield name
    subprocess.run(["scancel", "-p", name], check=False, capture_output=True)
    wait_for(lambda: not subprocess.run(["squeue", "-h", "-p", name], capture_output=True,
                                        text=True).stdout.strip(), 15, "the partition to empty")
    subprocess.run(["scontrol", "delete", f"PartitionName={name}"], check=True,
                   capture_output=True)


def test_time_over_the_partition_limit_is_refused(tmp_path: Path, job_root: Path,
                                                 testkit_env: dict[str, str],
                                                 short_partition: str) -> None:
    backend = build(procsim_spec(tmp_path, job_root, testkit_env, duration=1,
                                 partition=short_partition, time="00:10:00"))
    with pytest.raises(SubmissionError) as info:
        asyncio.run(backend.submit(BELL, 10))
    assert (f"requested time limit 00:10:00 exceeds MaxTime 00:01:00 of partition "
            f"{short_partition}") in str(info.value)
    assert not list(job_root.iterdir())  # nothing was submitted, no job dir is left


REATTACH = """
import asyncio, json, sys
from hal_workflow.backends.registry import get_backend
spec, job_id, action = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
backend = get_backend(spec)
if action == "status":
    print(json.dumps(asyncio.run(backend.status(job_id)).to_dict()))
elif action == "result":
    print(json.dumps(asyncio.run(backend.result(job_id)).to_dict()))
else:
    asyncio.run(backend.cancel(job_id))
    print(json.dumps(asyncio.run(backend.status(job_id)).to_dict()))
"""


def reattach(spec: dict[str, Any], job_id: str, action: str, env: dict[str, str]) -> Any:
    """Run ``action`` on ``job_id`` in a fresh interpreter that knows only the id and spec."""
    proc = subprocess.run([sys.executable, "-c", REATTACH, json.dumps(spec), job_id, action],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_reattach_from_a_fresh_process(tmp_path: Path, job_root: Path,
                                      testkit_env: dict[str, str]) -> None:
    spec = procsim_spec(tmp_path, job_root, testkit_env, duration=1)
    backend = build(spec)
    done_id = asyncio.run(backend.submit(BELL, 42))
    result = reattach(spec, done_id, "result", testkit_env)
    assert result["counts"] == {"00": 42} and result["job_id"] == done_id
    assert reattach(spec, done_id, "status", testkit_env)["state"] == "COMPLETED"
    # cancel from yet another process, while this one also watches the job
    spec_long = {**spec, "backend": {**spec["backend"], "duration": 300}}
    long_id = asyncio.run(build(spec_long).submit(BELL, 42))
    wait_for(lambda: (job_dir(long_id) / "vendor_job.json").exists(), 30, "the job to start")
    after = reattach(spec_long, long_id, "cancel", testkit_env)
    # cancel() returns once scancel accepted; status says so until Slurm reports the end
    assert after["state"] == "CANCELLED" or "cancel requested" in after["reason"]
    wait_for(lambda: asyncio.run(backend.status(long_id)).is_terminal, 30, "the cancel")
    assert asyncio.run(backend.status(long_id)).state is JobState.CANCELLED
    wait_for(lambda: not run_job_processes(job_dir(long_id)), 15, "run-job to exit")


def test_site_config_hooks_and_prologue(tmp_path: Path, job_root: Path,
                                        testkit_env: dict[str, str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A site named by the spec sets partition, prologue and the three hooks."""
    sites = tmp_path / "sites"
    sites.mkdir()
    (sites / "lab.yaml").write_text(f"""\
scheduler: slurm
partition: debug
time: "00:02:00"
prologue:
  - echo "$SLURM_JOB_ID" > prologue-ran
env:
  PYTHONPATH: {testkit_env["PYTHONPATH"]}
hooks:
  before-submit:
    - run: test -f "$HAL_SCRIPT" && echo "$HAL_EVENT" >> {tmp_path}/shell-hooks.log
  after-submit: hal_scheduler_testkit:record_hook
  on-terminal:
    - call: hal_scheduler_testkit:record_hook
    - run: echo "$HAL_EVENT $HAL_JOB_STATE $HAL_JOB_ID" >> {tmp_path}/shell-hooks.log
""")
    monkeypatch.setenv("HAL_WORKFLOW_SITES", str(sites))
    spec = {"name": "slurm", "site": "lab", "job_root": str(job_root),
            "backend": {"name": "procsim", "root": str(tmp_path / "vendor"), "duration": 0.2}}
    backend = build(spec)
    job_id = asyncio.run(backend.submit(BELL, 5))
    directory = job_dir(job_id)
    assert "#SBATCH --time=00:02:00" in (directory / "job.sh").read_text()
    status = asyncio.run(backend.wait(job_id, timeout=60))
    assert status.state is JobState.COMPLETED
    assert (directory / "prologue-ran").read_text().strip() == scheduler_id(job_id)
    asyncio.run(backend.status(job_id))  # observing it again runs no hook twice
    calls = [json.loads(line) for line in (job_root / "hook-calls.jsonl").read_text().splitlines()]
    assert [(c["event"], c["job_id"], c["state"]) for c in calls] == [
        ("after_submit", job_id, None), ("on_terminal", job_id, "COMPLETED")]
    assert (tmp_path / "shell-hooks.log").read_text().splitlines() == [
        "before_submit", f"on_terminal COMPLETED {job_id}"]


def test_run_job_never_overwrites_a_result(tmp_path: Path, job_root: Path,
                                          testkit_env: dict[str, str]) -> None:
    backend = build(procsim_spec(tmp_path, job_root, testkit_env, duration=0.1))
    job_id = asyncio.run(backend.submit(BELL, 7))
    assert asyncio.run(backend.wait(job_id, timeout=60)).state is JobState.COMPLETED
    result_file = job_dir(job_id) / "result.json"
    before = result_file.read_bytes()
    rerun = subprocess.run([sys.executable, "-m", "hal_workflow.cli", "run-job",
                            str(job_dir(job_id))], capture_output=True, text=True, timeout=60,
                           env={**os.environ, **testkit_env})
    assert rerun.returncode == 0 and "already holds a result" in rerun.stderr
    assert result_file.read_bytes() == before


def test_availability_reports_the_cluster(tmp_path: Path, job_root: Path,
                                         testkit_env: dict[str, str]) -> None:
    from hal_workflow.contract.types import AvailabilityStatus

    backend = build(procsim_spec(tmp_path, job_root, testkit_env, duration=1))
    availability = asyncio.run(backend.availability())
    assert availability.status is AvailabilityStatus.ONLINE
    assert isinstance(availability.queue_depth, int) and availability.queue_depth >= 0
    assert (availability.message or "").startswith("slurm answers")


def test_cancel_returns_once_scancel_accepted_and_the_vendor_cancel_shows_later(
        tmp_path: Path, job_root: Path, testkit_env: dict[str, str]) -> None:
    """Issue 11: cancel() blocked up to 30 s on the vendor cancel. With a vendor whose cancel
    call takes 8 s, cancel() returns before that call has finished (its record is not there
    yet); the background cancel then records its outcome and status() shows the end."""
    spec = procsim_spec(tmp_path, job_root, testkit_env, duration=300)
    spec["backend"]["cancel_delay"] = 8
    backend = build(spec)
    job_id = asyncio.run(backend.submit(BELL, 10))
    directory = job_dir(job_id)
    wait_for(lambda: (directory / "vendor_job.json").exists(), 60, "the vendor job")
    asyncio.run(backend.cancel(job_id))
    assert not (directory / "vendor_cancel.json").exists()  # still under way
    status = asyncio.run(backend.status(job_id))
    assert status.state is JobState.CANCELLED or "cancel requested" in (status.reason or "")
    record = wait_for(lambda: (directory / "vendor_cancel.json").exists()
                      and read_json(directory / "vendor_cancel.json"), 30, "the vendor cancel")
    assert record["outcome"] == "cancelled"
    wait_for(lambda: asyncio.run(backend.status(job_id)).is_terminal, 30, "the job to end")
    assert asyncio.run(backend.status(job_id)).state is JobState.CANCELLED
    cancels = (tmp_path / "vendor" / record["job_id"] / "cancels").read_text().split()
    assert str(os.getpid()) in cancels
