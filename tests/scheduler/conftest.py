"""Fixtures for the scheduler tests: the test cluster, job roots, and sure cleanup.

Modules marked ``slurm`` use the ``slurm_cluster`` fixture: the single-node Slurm cluster
that ``.ci/run`` starts with ``CI_SLURM_PBS_WRAPPERS=1 bash ../shared/recipes/start-slurm.sh``
(qsub/qstat/qdel wrappers included). With ``CI`` set, a cluster that is down FAILS the
session; elsewhere those tests are skipped with a message saying how to start it.

Every job a test submits lives under the test's ``tmp_path``; the ``job_root`` fixture's
finalizer cancels each scheduler job recorded there, and kills any ``procsim`` worker left.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from scheduler_helpers import kill_leftovers

HERE = Path(__file__).resolve().parent
TESTKIT = HERE / "testkit"
START_HINT = "CI_SLURM_PBS_WRAPPERS=1 bash ../shared/recipes/start-slurm.sh (as root)"

if str(TESTKIT) not in sys.path:
    sys.path.insert(0, str(TESTKIT))


def _cluster_problem() -> str | None:
    """None when slurmctld answers and the node can take jobs, else what is wrong."""
    for tool in ("scontrol", "sinfo", "sbatch", "squeue", "scancel", "qsub", "qstat", "qdel"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
        if "is UP" not in ping.stdout:
            return f"slurmctld is not up: {(ping.stdout + ping.stderr).strip()}"
        info = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                              timeout=10)
    except subprocess.TimeoutExpired:
        return "slurmctld does not answer"
    states = set(info.stdout.split())
    if not states & {"idle", "mixed", "allocated", "completing"}:
        return f"no usable node (sinfo says {sorted(states) or 'nothing'})"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """The test cluster is up; fails under CI when it is not, skips elsewhere."""
    problem = _cluster_problem()
    if problem is None:
        return
    message = f"the Slurm test cluster is not usable: {problem}; start it with {START_HINT}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def job_root(tmp_path: Path) -> Iterator[Path]:
    """A job root under tmp_path; its jobs are cancelled when the test ends."""
    root = tmp_path / "jobs"
    root.mkdir()
    yield root
    kill_leftovers(tmp_path)


@pytest.fixture
def testkit_env() -> dict[str, str]:
    """``env`` for a spec whose batch job must import the testkit (``procsim``, hooks)."""
    path = os.pathsep.join(p for p in (str(TESTKIT), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path}
