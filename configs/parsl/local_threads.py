"""Parsl with a thread pool in this process: no workers to start, the lowest per-task cost.

Apps share this process, so there is no worker environment to cap the simulator's threads:
give ``"threads"`` in the backend spec if several large simulations run at once.
"""

from __future__ import annotations

from typing import Any

from parsl.config import Config
from parsl.executors import ThreadPoolExecutor

from hal_workflow.executors._resources import available_cores


def make_config(
    max_threads: int | None = None, run_dir: str = "runinfo", label: str = "threads",
    **config_kwargs: Any,
) -> Config:
    """``max_threads`` defaults to the cores this process may use."""
    executor = ThreadPoolExecutor(label=label, max_threads=max_threads or available_cores())
    return Config(executors=[executor], run_dir=run_dir, **config_kwargs)
