"""The PBS code path end to end: PBS commands over Slurm.

No PBS server can be installed here (see shared/recipes/slurm.md), so these tests drive
:class:`PBSBackend` (``flavor: torque``, site ``ci-pbs``) through Slurm's Torque-style
``qsub``/``qstat``/``qdel`` wrappers (``slurm-wlm-torque``). What they prove: our ``#PBS``
header is honoured, ``qsub``/``qstat -f``/``qdel`` are called and parsed correctly, arrays go
through ``qsub -t``, and the job directory settles what PBS's single end state ``C`` leaves
open. PBS Pro's JSON ``qstat`` and its exit codes are covered by ``test_pbs_parsing.py``.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest
from scheduler_helpers import BELL, read_json, run_job_processes, wait_for

from hal_workflow.backends.registry import get_backend, register_backend
from hal_workflow.contract.errors import SubmissionError
from hal_workflow.contract.types import JobState
from hal_workflow.orchestration.scheduler import SchedulerBackend

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

SWEEP = BELL.replace("qubit[2] q;", "input float t;\nqubit[2] q;").replace("h q[0];",
                                                                            "rx(t) q[0];")


@pytest.fixture(autouse=True)
def _procsim() -> None:
    register_backend("procsim", "hal_scheduler_testkit:ProcessBackend")


def pbs_backend(tmp_path: Path, job_root: Path, env: dict[str, str], duration: float,
                **options: Any) -> SchedulerBackend:
    spec = {"name": "pbs", "site": "ci-pbs", "job_root": str(job_root), "env": env,
            "backend": {"name": "procsim", "root": str(tmp_path / "vendor"),
                        "duration": duration}, **options}
    backend = get_backend(spec)
    assert isinstance(backend, SchedulerBackend)
    return backend


def test_pbs_commands_over_slurm_run_to_completion(tmp_path: Path, job_root: Path,
                                                   testkit_env: dict[str, str]) -> None:
    # RUNNING must outlast a poll: a 3 s job, polled at most 1 s apart (the default backoff
    # grows to 30 s while the job waits, and a 1 s job could pass unseen)
    backend = pbs_backend(tmp_path, job_root, testkit_env, duration=3.0, time="00:03:00",
                          max_poll_interval=1.0)
    job_id = asyncio.run(backend.submit(BELL, 64))
    scheduler_id, _, path = job_id.partition("@")
    assert scheduler_id.isdigit()  # the wrappers' qsub prints Slurm's bare id
    script = (Path(path) / "job.sh").read_text()
    assert "#PBS -q debug" in script and "#PBS -l walltime=00:03:00" in script
    limit = subprocess.run(["scontrol", "show", "job", scheduler_id], capture_output=True,
                           text=True, check=True).stdout
    assert "TimeLimit=00:03:00" in limit and "Partition=debug" in limit  # #PBS lines honoured
    seen: list[JobState] = []

    def poll() -> bool:
        status = asyncio.run(backend.status(job_id))
        if not seen or seen[-1] is not status.state:
            seen.append(status.state)
        return status.is_terminal

    wait_for(poll, 60, "the PBS job to end")
    assert JobState.RUNNING in seen and seen[-1] is JobState.COMPLETED
    assert asyncio.run(backend.status(job_id)).vendor_state == "C"
    result = asyncio.run(backend.result(job_id))
    assert result.counts == {"00": 64} and result.backend == "pbs:procsim"
    assert (Path(path) / "pbs.out").exists()  # qsub -o on the command line worked


def test_pbs_commands_over_slurm_cancel(tmp_path: Path, job_root: Path,
                                        testkit_env: dict[str, str]) -> None:
    backend = pbs_backend(tmp_path, job_root, testkit_env, duration=300)
    job_id = asyncio.run(backend.submit(BELL, 8))
    directory = Path(job_id.partition("@")[2])
    vendor = wait_for(lambda: (directory / "vendor_job.json").exists()
                      and read_json(directory / "vendor_job.json"), 30, "the vendor job")
    asyncio.run(backend.cancel(job_id))  # qdel; 'C' + our cancel marker = CANCELLED
    status = wait_for(lambda: (s := asyncio.run(backend.status(job_id))).is_terminal and s,
                      30, "the cancel to show")
    assert (status.state, status.vendor_state) == (JobState.CANCELLED, "C")
    wait_for(lambda: not run_job_processes(directory), 15, "run-job to exit")
    assert (tmp_path / "vendor" / vendor["job_id"] / "cancelled").exists()
    assert not (directory / "result.json").exists()


def test_pbs_commands_over_slurm_array_sweep(tmp_path: Path, job_root: Path,
                                             testkit_env: dict[str, str]) -> None:
    """``qsub -t 0-2``: one submission, three tasks, results gathered in input order.

    The wrappers' qstat cannot name array tasks (``123[1]``), so a task's status comes from
    the Slurm id it recorded when it started, and before that from its array."""
    backend = pbs_backend(tmp_path, job_root, testkit_env, duration=0.3)
    ids = asyncio.run(backend.submit_sweep(SWEEP, [{"t": 0.1}, {"t": 0.2}, {"t": 0.3}], 16))
    array_id = ids[0].partition("@")[0].rpartition("_")[0]
    assert [i.partition("@")[0] for i in ids] == [f"{array_id}_{n}" for n in range(3)]
    assert len({i.partition("@")[2] for i in ids}) == 1  # one job directory, one qsub
    results = [asyncio.run(backend.result(i)) for i in ids]
    directory = Path(ids[0].partition("@")[2])
    assert [r.job_id for r in results] == ids
    for index in range(3):
        started = read_json(directory / f"started-{index}.json")
        assert started["scheduler_job_id"]  # the Slurm id of the task
    # procsim answers binding t on the bitstring of round(10 t): 1, 2, 3 in input order
    assert [r.counts for r in results] == [{"01": 16}, {"10": 16}, {"11": 16}]


def test_pbs_commands_over_slurm_bad_queue(tmp_path: Path, job_root: Path,
                                           testkit_env: dict[str, str]) -> None:
    backend = pbs_backend(tmp_path, job_root, testkit_env, duration=1, queue="no-such-queue")
    with pytest.raises(SubmissionError) as info:
        asyncio.run(backend.submit(BELL, 8))
    assert "qsub refused the job" in str(info.value)
    assert "invalid partition specified: no-such-queue" in str(info.value)


def test_pbs_submitter_killed_after_qsub_leaves_a_findable_job(
        tmp_path: Path, job_root: Path, testkit_env: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """qsub answered, the submitter died before recording the id: ``find_jobs`` finds the
    job by its name in ``qstat -f`` and records it (PBS has no comment to tag it with)."""
    import json
    import os
    import shutil
    import sys

    real = shutil.which("qsub")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "qsub").write_text(f'#!/bin/bash\n{real} "$@"\nkill -9 $PPID\nsleep 5\n')
    (bin_dir / "qsub").chmod(0o755)
    spec = {"name": "pbs", "site": "ci-pbs", "job_root": str(job_root), "env": testkit_env,
            "backend": {"name": "procsim", "root": str(tmp_path / "vendor"), "duration": 0.5}}
    code = ("import asyncio, json, sys\nfrom hal_workflow.backends.registry import "
            "get_backend, register_backend\nregister_backend('procsim', "
            "'hal_scheduler_testkit:ProcessBackend')\nb = get_backend(json.loads(sys.argv[1]))"
            "\nprint(asyncio.run(b.submit(sys.argv[2], 16)))\n")
    env = {**os.environ, **testkit_env, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(spec), BELL], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == -9, proc.stderr
    [directory] = list(job_root.iterdir())
    assert not (directory / "scheduler_job.json").exists()
    backend = pbs_backend(tmp_path, job_root, testkit_env, duration=0.5)
    [job_id] = backend.find_jobs()
    assert job_id.endswith(f"@{directory}")
    assert asyncio.run(backend.result(job_id)).counts == {"00": 16}
