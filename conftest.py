"""Test-suite-wide: a test run keeps its data (job journal, job directories, budgets) in a
directory of its own, not the user's. (At the repository root, not in tests/: a conftest puts
its directory on sys.path, and tests/qiskit, tests/cirq ... would then shadow the frameworks.)

Every job a test submits is journaled; pointing ``data-dir`` (here and in the subprocesses and
batch jobs the tests start, which inherit the environment) at a temporary directory keeps a
run from filling, or reading back, the data of the person running it. Tests that need their
own still set theirs (``HAL_WORKFLOW__DATA_DIR`` in a subprocess, ``config.set``).

The one check that the SLURM test cluster is up: every test marked ``slurm`` runs only when
it is (the ``slurm_cluster`` fixture does the same for fixtures that need it). With ``CI``
set, a cluster that is down FAILS those tests; elsewhere they are skipped with a message
saying how to start it. ``.ci/run`` deselects them (``-m "not slurm"``) for a user who is
not root and has no cluster running.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

START_HINT = "CI_SLURM_PBS_WRAPPERS=1 bash .ci/slurm/start-slurm.sh (as root), or .ci/run"


def pytest_configure(config: pytest.Config) -> None:
    if "HAL_WORKFLOW__DATA_DIR" not in os.environ:
        os.environ["HAL_WORKFLOW__DATA_DIR"] = tempfile.mkdtemp(prefix="hal-test-data-")
        from hal_workflow import config as settings

        settings.refresh()


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """The CLI configures logging for its process (level of ``hal_workflow``, a root handler):
    tests that run it in the test process must not change what later tests' ``caplog`` sees."""
    logger, root = logging.getLogger("hal_workflow"), logging.getLogger()
    level, handlers = logger.level, list(root.handlers)
    yield
    logger.setLevel(level)
    root.handlers[:] = handlers


@functools.cache
def slurm_problem() -> str | None:
    """None when slurmctld answers and the node can take jobs, else what is wrong (checked
    once per test session)."""
    for tool in ("scontrol", "sinfo", "sbatch", "squeue", "scancel", "qsub", "qstat", "qdel"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=20)
        if "is UP" not in ping.stdout:
            return f"slurmctld is not up: {(ping.stdout + ping.stderr).strip()}"
        info = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                              timeout=20)
    except subprocess.TimeoutExpired:
        return "slurmctld does not answer"
    states = set(info.stdout.split())
    if not states & {"idle", "mixed", "allocated", "completing"}:
        return f"no usable node (sinfo says {sorted(states) or 'nothing'})"
    return None


def require_slurm() -> None:
    """Skip (fail under ``CI``) unless the SLURM test cluster is up."""
    problem = slurm_problem()
    if problem is None:
        return
    message = f"the Slurm test cluster is not usable: {problem}; start it with {START_HINT}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """The SLURM test cluster is up (see :func:`require_slurm`)."""
    require_slurm()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("slurm") is not None:
        require_slurm()
