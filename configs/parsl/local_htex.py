"""Parsl's HighThroughputExecutor with worker processes on this machine (LocalProvider).

The same executor that runs on clusters, started locally: each app runs in a separate
worker process, so apps must be importable (hal-workflow's are) and arguments pickle.
Workers listen on loopback only. Worker count times simulator threads fits the cores.
"""

from __future__ import annotations

from typing import Any

from parsl.config import Config
from parsl.launchers import SingleNodeLauncher
from parsl.providers import LocalProvider

from hal_workflow.executors._resources import available_cores, threads_per_job
from hal_workflow.executors._sites import htex, worker_init


def make_config(
    max_workers: int | None = None,
    backend_threads: int | None = None,
    run_dir: str = "runinfo",
    label: str = "htex_local",
    address: str = "127.0.0.1",
    init: str | None = None,
    **config_kwargs: Any,
) -> Config:
    """``max_workers`` defaults to the cores; ``backend_threads`` to what is left per worker;
    ``init`` adds shell lines to run before the workers start."""
    workers = max_workers or available_cores()
    threads = backend_threads or threads_per_job(workers)
    provider = LocalProvider(
        init_blocks=1, min_blocks=0, max_blocks=1, launcher=SingleNodeLauncher(),
        worker_init=worker_init(init, threads),
    )
    executor = htex(label, provider, address=address, max_workers_per_node=workers,
                    heartbeat_period=2, heartbeat_threshold=10, poll_period=10)
    config_kwargs.setdefault("strategy", "none")
    return Config(executors=[executor], run_dir=run_dir, **config_kwargs)
