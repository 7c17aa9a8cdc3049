"""Parsl on a PBS cluster: HighThroughputExecutor workers in ``qsub`` jobs.

``variant="pbspro"`` (default) uses Parsl's PBSProProvider (``#PBS -l select=...``, status by
``qstat -f -F json``); ``variant="torque"`` uses TorqueProvider (``#PBS -l nodes=N:ppn=C``),
which also drives Slurm's Torque-compatible ``qsub``/``qstat``/``qdel`` wrappers. Settings come
from the argument, else ``HAL_WORKFLOW_PBS_<KEY>`` (``QUEUE``, ``ACCOUNT``, ``WALLTIME``,
``SELECT_OPTIONS``, ``WORKER_INIT``, ``ADDRESS``...), else the default below.
"""

from __future__ import annotations

from typing import Any

from parsl.config import Config
from parsl.launchers import MpiExecLauncher, SingleNodeLauncher
from parsl.providers import PBSProProvider, TorqueProvider

from hal_workflow.executors._resources import threads_per_job
from hal_workflow.executors._sites import htex, setting, worker_init

SITE = "pbs"


def make_config(
    variant: str | None = None,
    queue: str | None = None,
    account: str | None = None,
    walltime: str | None = None,
    worker_init_lines: str | None = None,
    nodes_per_block: int | None = None,
    cpus_per_node: int | None = None,
    select_options: str | None = None,
    max_blocks: int | None = None,
    max_workers_per_node: int | None = None,
    backend_threads: int | None = None,
    scheduler_options: str | None = None,
    address: str | None = None,
    run_dir: str = "runinfo",
    label: str = "pbs_htex",
    **config_kwargs: Any,
) -> Config:
    """A Parsl config for PBS Pro (or Torque with ``variant="torque"``).

    Args:
        variant: ``"pbspro"`` or ``"torque"``; env ``HAL_WORKFLOW_PBS_VARIANT``.
        queue, account, walltime: the ``#PBS -q``/``-A``/``-l walltime=`` values.
        worker_init_lines: shell lines before workers start; env ``HAL_WORKFLOW_PBS_WORKER_INIT``.
        nodes_per_block, cpus_per_node, max_blocks: job shape and count.
        select_options: extra ``select`` resources for PBS Pro (``mem=4gb:ngpus=1``).
        max_workers_per_node: workers per node (default: cpus_per_node).
        backend_threads: simulator threads per worker (default: cpus left per worker).
        scheduler_options: extra ``#PBS`` lines, verbatim.
        address: the interchange address workers connect to.
    """
    chosen = setting(SITE, "variant", variant, "pbspro")
    if chosen not in ("pbspro", "torque"):
        from hal_workflow.contract.errors import ConfigurationError

        raise ConfigurationError(f"pbs variant must be 'pbspro' or 'torque', not {chosen!r}")
    cpus = int(setting(SITE, "cpus_per_node", cpus_per_node, 1))
    workers = int(setting(SITE, "max_workers_per_node", max_workers_per_node, cpus))
    nodes = int(setting(SITE, "nodes_per_block", nodes_per_block, 1))
    threads = backend_threads or threads_per_job(workers, cpus)
    common: dict[str, Any] = dict(
        queue=setting(SITE, "queue", queue),
        account=setting(SITE, "account", account),
        walltime=setting(SITE, "walltime", walltime, "00:30:00"),
        scheduler_options=setting(SITE, "scheduler_options", scheduler_options, ""),
        worker_init=worker_init(setting(SITE, "worker_init", worker_init_lines), threads),
        nodes_per_block=nodes,
        init_blocks=1,
        min_blocks=0,
        max_blocks=int(setting(SITE, "max_blocks", max_blocks, 1)),
        launcher=MpiExecLauncher() if nodes > 1 else SingleNodeLauncher(),
    )
    if chosen == "pbspro":
        provider: Any = PBSProProvider(
            cpus_per_node=cpus,
            select_options=setting(SITE, "select_options", select_options, ""),
            **common,
        )
    else:  # Torque writes "-l nodes=N:ppn=1" itself (one worker pool per node)
        provider = TorqueProvider(**common)
    executor = htex(label, provider, address=setting(SITE, "address", address),
                    max_workers_per_node=workers)
    return Config(executors=[executor], run_dir=run_dir, **config_kwargs)
