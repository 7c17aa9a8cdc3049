"""Fixtures for the scheduler tests: the test cluster, job roots, and sure cleanup.

Modules marked ``slurm`` need the single-node Slurm cluster that ``.ci/run`` starts (qsub/
qstat/qdel wrappers included): the marker's check is the repository's ``conftest.py``.

Every job a test submits lives under the test's ``tmp_path``; the ``job_root`` fixture's
finalizer cancels each scheduler job recorded there, and kills any ``procsim`` worker left.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from scheduler_helpers import kill_leftovers

HERE = Path(__file__).resolve().parent
TESTKIT = HERE / "testkit"

if str(TESTKIT) not in sys.path:
    sys.path.insert(0, str(TESTKIT))


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
