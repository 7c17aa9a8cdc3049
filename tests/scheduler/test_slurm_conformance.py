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


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm_cluster")
@pytest.mark.skipif(importlib.util.find_spec("hal_workflow.simulator.backend") is None,
                    reason="hal_workflow.simulator.backend does not exist yet")
class TestSlurmSimulator(ConformanceSuite):
    backend_spec: ClassVar[dict[str, Any]] = {"name": "slurm", "backend": "sim", "site": "ci"}
    jobs_outlive_process = True
    timeout = 90.0
    poll_interval = 0.05
    # One array task per binding: every task is a batch job with its own Python, so the
    # event-loop check's sweep is 16 bindings here (200 took minutes on the 2-CPU cluster).
    loop_sweep_size = 16
    job_root: ClassVar[Path | None] = None  # a temporary directory, made on first use

    def make_backend(self, spec: Any = None) -> Any:
        cls = type(self)
        if cls.job_root is None:
            cls.job_root = Path(tempfile.mkdtemp(prefix="hal-slurm-conformance-"))
        return get_backend({"job_root": str(cls.job_root / "jobs"),
                            **dict(spec or self.backend_spec)})

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _cancel_leftovers(cls) -> Iterator[None]:
        yield
        if cls.job_root is not None:
            kill_leftovers(cls.job_root)
            shutil.rmtree(cls.job_root, ignore_errors=True)
            cls.job_root = None

    @contextlib.asynccontextmanager
    async def queued_job(self, backend: Any) -> AsyncIterator[str | None]:
        held = get_backend({**backend.spec, "extra_directives": ["--hold"]})
        job_id = await held.submit(self.bell_circuit, 10)
        try:
            yield job_id
        finally:
            await held.cancel(job_id)
