"""Routing to a SLURM-wrapped simulator on the real test cluster.

The route is decided on this (login) node; the chosen candidate's job runs in a batch job.
Job roots live under ``/tmp/route-*`` and every Slurm job a test starts is cancelled after it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from routing_helpers import BELL

import hal_workflow as hal
from hal_workflow import config
from hal_workflow.backends.registry import get_backend
from hal_workflow.contract import JobState
from hal_workflow.orchestration.sync import run_sync

pytestmark = pytest.mark.slurm


@pytest.fixture
def job_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="route-", dir="/tmp"))
    yield root
    ids = [str(json.loads(p.read_text()).get("id")) for p in root.rglob("scheduler_job.json")]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30, check=False)
    shutil.rmtree(root, ignore_errors=True)


def slurm(root: Path, **options: Any) -> dict[str, Any]:
    return {"name": "slurm", "backend": "sim", "site": "ci", "job_root": str(root), **options}


def test_first_fit_runs_the_job_in_a_batch_job(job_root: Path) -> None:
    spec = {"name": "route", "policy": "first-fit", "seed": 5,
            "candidates": [slurm(job_root), "sim"]}
    result = hal.run(BELL, spec, shots=400, timeout=240)
    assert result.backend == "slurm:sim" == result.metadata["routing"]["chosen"]
    assert set(result.counts) <= {"00", "11"} and sum(result.counts.values()) == 400
    assert list(job_root.rglob("result.json"))  # it really went through the job directory


def test_cancel_reaches_the_slurm_job(job_root: Path) -> None:
    backend = get_backend({"name": "route",
                           "candidates": [slurm(job_root, prologue=["sleep 300"]), "sim"]})
    job_id = run_sync(backend.submit(BELL, 10))
    scheduler_id = job_id.split(":", 3)[3].partition("@")[0]
    run_sync(backend.cancel(job_id))
    status = run_sync(backend.wait(job_id, timeout=120, poll_interval=0.5))
    assert status.state is JobState.CANCELLED
    deadline = time.monotonic() + 60
    while True:  # Slurm itself has the job cancelled
        state = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", scheduler_id,
                                "-o", "%T"], capture_output=True, text=True, check=False).stdout
        if "CANCELLED" in state or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert "CANCELLED" in state, state


def test_shortest_wait_avoids_a_queue_with_pending_jobs(job_root: Path) -> None:
    held = subprocess.run(
        ["sbatch", "--parsable", "--hold", "-p", "debug", "-J", "route-held",
         "-o", str(job_root / "held.out"), "--wrap", "true"],
        capture_output=True, text=True, timeout=30, check=True).stdout.strip().split(";")[0]
    try:
        spec = {"name": "route", "policy": "shortest-wait", "seed": 6,
                "candidates": [slurm(job_root), "sim"]}
        result = hal.run(BELL, spec, shots=50)
        record = result.metadata["routing"]
        queued = record["candidates"][0]
        assert queued["queue_depth"] >= 1  # at least our held job
        assert queued["wait_s"] == queued["queue_depth"] * config.get(
            "route.seconds-per-queued-job")
        assert result.backend == "sim"
    finally:
        subprocess.run(["scancel", held], capture_output=True, timeout=30, check=False)
