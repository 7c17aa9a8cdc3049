"""How many threads each backend job may use, so workers never oversubscribe the cores.

A worker runs ``slots`` tasks at once and the numba simulator runs each job on its own thread
pool; the product must not exceed the cores, or the threads fight over them. The engines
pass the budget to their workers through the environment (numba and OpenMP read theirs at
start-up; the executors read ``HAL_WORKFLOW_BACKEND_THREADS`` into the backend spec).
"""

from __future__ import annotations

import os
import shlex

THREADS_ENV = "HAL_WORKFLOW_BACKEND_THREADS"
"""Worker environment variable with the threads each backend job may use."""


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_job(slots: int, cores: int | None = None) -> int:
    """Threads each of ``slots`` concurrent jobs may use on ``cores`` cores (at least 1)."""
    return max(1, (cores or available_cores()) // max(1, slots))


def thread_environment(threads: int) -> dict[str, str]:
    """Environment variables that cap numba, OpenMP and BLAS at ``threads`` threads."""
    value = str(int(threads))
    names = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    return {**dict.fromkeys(names, value), THREADS_ENV: value}


def export_lines(env: dict[str, str]) -> list[str]:
    """``export NAME=value`` shell lines for a job script or a Parsl ``worker_init``."""
    return [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
