"""Issue 10, on the real cluster: no submitted job is ever lost, a full disk says so, arrays
keep the sweep seeding rule.

Fault injection with real components: ``sbatch`` wrappers earlier on ``PATH`` (slow, or
killing the submitting process right after the real sbatch answered), hooks that SIGKILL the
submitter, and a 64 KiB tmpfs as job root.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scheduler_helpers import BELL, wait_for

import hal_workflow
from hal_workflow.backends.registry import get_backend
from hal_workflow.contract.errors import BackendUnavailableError, JobNotFoundError
from hal_workflow.contract.types import JobState
from hal_workflow.orchestration.jobdir import JobStorageError
from hal_workflow.orchestration.scheduler import SchedulerBackend
from hal_workflow.orchestration.sync import Job

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

REAL_SBATCH = shutil.which("sbatch") or "sbatch"
RX = """OPENQASM 3.0;
include "stdgates.inc";
input float theta;
qubit[2] q;
bit[2] c;
rx(theta) q[0];
cx q[0], q[1];
c = measure q;
"""


def slurm_spec(job_root: Path, **options: Any) -> dict[str, Any]:
    return {"name": "slurm", "site": "ci", "backend": {"name": "sim", "seed": 7},
            "job_root": str(job_root), **options}


def build(spec: dict[str, Any]) -> SchedulerBackend:
    backend = get_backend(spec)
    assert isinstance(backend, SchedulerBackend)
    return backend


@pytest.fixture
def wrap_sbatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install an ``sbatch`` wrapper (a bash body around ``$REAL`` "$@") first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")

    def install(body: str) -> None:
        path = bin_dir / "sbatch"
        path.write_text(f"#!/bin/bash\nREAL={REAL_SBATCH}\n{body}\n")
        path.chmod(0o755)

    return install


def jobs_named(name: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-t", "all", f"--name={name}", "-o", "%F"],
                         capture_output=True, text=True, check=False).stdout
    return sorted(set(out.split()))


# ------------------------------------------------------------------ slow sbatch
def test_sbatch_slower_than_the_timeout_is_adopted_not_lost(job_root: Path,
                                                            wrap_sbatch: Any) -> None:
    """The probe: sbatch over the timeout gave BackendUnavailableError and the directory,
    result included, was deleted, though the job ran. Now the job is adopted."""
    wrap_sbatch('sleep 3\nexec "$REAL" "$@"')  # sleeps, then submits
    backend = build(slurm_spec(job_root, submit_timeout=2))
    job_id = asyncio.run(backend.submit(BELL, 50))
    assert Path(job_id.partition("@")[2]).is_dir()
    result = Job(job_id, backend.spec).result(timeout=120)
    assert result.counts == {"00": 25, "11": 25} or set(result.counts) == {"00", "11"}


def test_sbatch_that_answers_late_is_found_by_name(job_root: Path, wrap_sbatch: Any) -> None:
    """sbatch submits at once but answers after 30 s: the job is found by its name and tag
    (squeue --name, %k) within the grace period, and the hung sbatch is killed."""
    wrap_sbatch('"$REAL" "$@"\nsleep 30')
    backend = build(slurm_spec(job_root, submit_timeout=2))
    start = time.monotonic()
    job_id = asyncio.run(backend.submit(BELL, 40))
    assert time.monotonic() - start < 15
    directory = Path(job_id.partition("@")[2])
    recorded = json.loads((directory / "scheduler_job.json").read_text())
    assert recorded["id"] == job_id.partition("@")[0]
    assert sum(Job(job_id, backend.spec).result(timeout=120).counts.values()) == 40


def test_sbatch_that_never_submits_keeps_the_directory_and_says_so(
        job_root: Path, wrap_sbatch: Any) -> None:
    wrap_sbatch("sleep 60")
    backend = build(slurm_spec(job_root, submit_timeout=1))
    with pytest.raises(BackendUnavailableError, match="nothing was submitted"):
        asyncio.run(backend.submit(BELL, 10))
    [directory] = list(job_root.iterdir())
    assert (directory / "job.json").exists()  # kept: never deleted on a timeout
    with pytest.raises(JobNotFoundError, match="never submitted"):
        backend.recover(directory)
    assert backend.find_jobs() == []


# ------------------------------------------------------------------ SIGKILL mid-submission
SUBMITTER = """
import asyncio, json, sys
from hal_workflow.backends.registry import get_backend
backend = get_backend(json.loads(sys.argv[1]))
print(asyncio.run(backend.submit(sys.argv[2], 30)), flush=True)
"""


def submit_and_get_killed(spec: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-c", SUBMITTER, json.dumps(spec), BELL],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == -9, proc.stderr  # SIGKILL, as the step intended
    return proc


@pytest.mark.parametrize("step", ["before_submit", "after_sbatch", "after_submit"])
def test_sigkill_at_each_step_of_submission_leaves_a_findable_job(
        job_root: Path, wrap_sbatch: Any, step: str) -> None:
    """The probe: a submitter killed between sbatch returning and scheduler_job.json being
    written left a job that ran and could never be reattached."""
    kill = "kill -9 $PPID"
    options: dict[str, Any] = {}
    if step == "after_sbatch":  # the real sbatch answered; the submitter dies before recording
        wrap_sbatch(f'"$REAL" "$@"\n{kill}\nsleep 5')
    else:
        options["hooks"] = {step: {"run": kill}}
    spec = slurm_spec(job_root, **options)
    submit_and_get_killed(spec)
    [directory] = list(job_root.iterdir())
    backend = build(slurm_spec(job_root))
    if step == "before_submit":  # killed before sbatch: there is no job, and it says so
        assert not (directory / "scheduler_job.json").exists()
        with pytest.raises(JobNotFoundError, match="never submitted"):
            backend.recover(directory)
        return
    [job_id] = backend.find_jobs()
    assert job_id.endswith(f"@{directory}")
    result = Job(job_id, backend.spec).result(timeout=120)
    assert sum(result.counts.values()) == 30 and set(result.counts) <= {"00", "11"}
    assert json.loads((directory / "scheduler_job.json").read_text())["id"] == \
        job_id.partition("@")[0]


# ------------------------------------------------------------------ full disk
@pytest.fixture
def tiny_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "tiny"
    root.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs",
                              str(root)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (this test needs root): {mounted.stderr}")
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


def test_full_disk_at_submission_is_one_typed_error_and_leaves_nothing(
        tiny_root: Path) -> None:
    big = BELL.replace("h q[0];", "h q[0];\n" + "// padding\n" * 8000)  # ~90 KB of text
    backend = build(slurm_spec(tiny_root))
    with pytest.raises(JobStorageError) as info:
        asyncio.run(backend.submit(big, 10))
    message = str(info.value)
    assert str(tiny_root) in message and "bytes" in message
    assert info.value.needed > 64 * 1024
    assert list(tiny_root.iterdir()) == []  # no job directory, no partial file


def test_full_disk_on_the_compute_node_fails_the_job_with_the_reason(tiny_root: Path) -> None:
    """A result too large for the job root: FAILED saying so, no ``result.json.tmp.*``,
    ``status()`` never a raw OSError."""
    wide = ("OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[14] q;\nbit[14] c;\n"
            + "".join(f"h q[{i}];\n" for i in range(14)) + "c = measure q;\n")
    backend = build(slurm_spec(tiny_root))
    job_id = asyncio.run(backend.submit(wide, 20000))  # ~16k distinct outcomes: > 64 KiB
    status = asyncio.run(backend.wait(job_id, timeout=120))
    assert status.state is JobState.FAILED
    assert status.reason is not None and "No space left" in status.reason, status.reason
    assert str(tiny_root) in status.reason
    directory = Path(job_id.partition("@")[2])
    assert not list(directory.glob("*.tmp.*")) and not (directory / "result.json").exists()


# ------------------------------------------------------------------ arrays and seeds
def test_array_sweep_gives_the_counts_of_hal_sweep_on_sim(job_root: Path) -> None:
    """The probe: only 1 of 30 array results equalled ``hal.sweep`` on ``sim``."""
    seed = 4242
    bindings = [{"theta": 0.1 * i} for i in range(30)]
    local = hal_workflow.sweep(RX, bindings, backend={"name": "sim", "seed": seed}, shots=200)
    spec = slurm_spec(job_root, backend={"name": "sim", "seed": seed})
    remote = hal_workflow.sweep(RX, bindings, backend=spec, shots=200, timeout=600)
    assert [dict(r.counts) for r in remote] == [dict(r.counts) for r in local]
    assert len({json.dumps(dict(r.counts), sort_keys=True) for r in local}) > 20


def test_sparse_indices_resubmit_elements_as_they_were(job_root: Path) -> None:
    seed = 99
    bindings = [{"theta": 0.3 * i} for i in range(10)]
    local = hal_workflow.sweep(RX, bindings, backend={"name": "sim", "seed": seed}, shots=100)
    backend = build(slurm_spec(job_root, backend={"name": "sim", "seed": seed}))
    chosen = [3, 5, 9]
    ids = asyncio.run(backend.submit_sweep(RX, [bindings[i] for i in chosen], 100,
                                           indices=chosen))
    assert [i.partition("@")[0].rpartition("_")[2] for i in ids] == ["3", "5", "9"]
    results = [Job(i, backend.spec).result(timeout=180) for i in ids]
    assert [dict(r.counts) for r in results] == [dict(local[i].counts) for i in chosen]


def test_requeued_job_shows_in_reason(job_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    backend = build(slurm_spec(job_root, prologue=["sleep 300"], poll_interval=0.2))
    job_id = asyncio.run(backend.submit(BELL, 10))
    sid = job_id.partition("@")[0]
    wait_for(lambda: asyncio.run(backend.status(job_id)).state is JobState.RUNNING, 60,
             "the job to run")
    subprocess.run(["scontrol", "requeue", sid], check=True, capture_output=True)
    status = wait_for(lambda: (s := asyncio.run(backend.status(job_id))).reason and s, 30,
                      "a reason")
    assert status.state is JobState.RUNNING and "requeue" in (status.reason or "").lower()
    assert any("requeue" in r.getMessage().lower() for r in caplog.records)
    subprocess.run(["scancel", sid], check=False)
