"""Building blocks for the site configs in ``configs/parsl/`` (one place, not one per site).

A site module's ``make_config(**overrides)`` takes each setting from, in order: the explicit
argument (a site file's keys arrive this way, see ``executors/config.py``), the deprecated
environment variable ``HAL_WORKFLOW_<SITE>_<KEY>`` (with a FutureWarning), then a default.
Every HighThroughputExecutor built here finds Parsl's scripts next to this Python (so a
non-activated virtualenv works) and caps the simulator's threads in its workers' environment.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

from hal_workflow.executors._resources import export_lines, thread_environment

SITE_FILE_KEYS = {"partition": "partition", "queue": "queue", "walltime": "walltime",
                  "account": "account", "qos": "qos", "cores_per_node": "cores",
                  "cpus_per_node": "cores", "mem_per_node": "memory",
                  "worker_init": "prologue", "worker_init_lines": "prologue"}
"""Keyword arguments of the Parsl sites -> the site-file key that now holds each."""


def setting(site: str, key: str, value: Any = None, default: Any = None) -> Any:
    """``value`` if given, else ``$HAL_WORKFLOW_<SITE>_<KEY>`` (deprecated: a FutureWarning
    names the site-file key that replaces it), else ``default``."""
    if value is not None:
        return value
    variable = f"HAL_WORKFLOW_{site}_{key}".upper()
    from_env = os.environ.get(variable)
    if from_env in (None, ""):
        return default
    new = SITE_FILE_KEYS.get(key.lower())
    instead = (f"the key '{new}' of a site file (sites/NAME.yaml, see configs/README.md)"
               if new else f"the {key.lower()}= argument or the site file's 'parsl:' section")
    warnings.warn(f"{variable} is deprecated and will be removed in the next release; use "
                  f"{instead}", FutureWarning, stacklevel=3)
    return from_env


def worker_init(extra: str | None, backend_threads: int) -> str:
    """Shell lines run before a worker starts: this Python's scripts on PATH, thread caps,
    then the site's own lines (``module load``, ``source venv/bin/activate``...)."""
    lines = [f'export PATH={_bin_dir()}:"$PATH"']
    lines += export_lines(thread_environment(backend_threads))
    if extra:
        lines.append(extra)
    return "\n".join(lines)


def _bin_dir() -> str:
    return str(Path(sys.executable).parent)


def interchange_command() -> list[str]:
    """How to start Parsl's interchange when ``interchange.py`` is not on PATH."""
    found = shutil.which("interchange.py")
    return [found] if found else [sys.executable, str(Path(_bin_dir()) / "interchange.py")]


def htex(label: str, provider: Any, *, address: str | None, cores_per_worker: float = 1.0,
         max_workers_per_node: int | None = None, **kwargs: Any) -> Any:
    """A HighThroughputExecutor with the interchange found as described above."""
    from parsl.executors import HighThroughputExecutor

    if address is not None:
        kwargs["address"] = address
        if address.startswith("127."):
            kwargs.setdefault("loopback_address", address)
    return HighThroughputExecutor(
        label=label,
        provider=provider,
        cores_per_worker=cores_per_worker,
        max_workers_per_node=max_workers_per_node,
        interchange_launch_cmd=interchange_command(),
        **kwargs,
    )
