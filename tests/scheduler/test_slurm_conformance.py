"""The HAL contract conformance kit, run on ``{"name": "slurm", "backend": "sim"}``.

Every promise the kit checks for a backend holds for simulator jobs dispatched as SLURM batch
jobs, including reattaching from a rebuilt backend (``jobs_outlive_process``) and cancelling a
job the scheduler holds QUEUED (``sbatch --hold``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from scheduler_helpers import kill_leftovers

from hal_workflow.backends.registry import get_backend
from hal_workflow.testing import ConformanceSuite

JOB_ROOT = Path(tempfile.mkdtemp(prefix="hal-slurm-conformance-"))


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.skipif(importlib.util.find_spec("hal_workflow.simulator.backend") is None,
                    reason="hal_workflow.simulator.backend does not exist yet")
class TestSlurmSimulator(ConformanceSuite):
    backend_spec: ClassVar[dict[str, Any]] = {
        "name": "slurm", "backend": "sim", "site": "ci", "job_root": str(JOB_ROOT / "jobs")}
    jobs_outlive_process = True
    timeout = 90.0
    poll_interval = 0.05

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _cancel_leftovers(cls) -> Iterator[None]:
        yield
        kill_leftovers(JOB_ROOT)
        shutil.rmtree(JOB_ROOT, ignore_errors=True)

    @contextlib.asynccontextmanager
    async def queued_job(self, backend: Any) -> AsyncIterator[str | None]:
        held = get_backend({**self.backend_spec, "extra_directives": ["--hold"]})
        job_id = await held.submit(self.bell_circuit, 10)
        try:
            yield job_id
        finally:
            await held.cancel(job_id)
