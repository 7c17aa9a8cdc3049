"""Parsl on a Slurm cluster: HighThroughputExecutor workers in ``sbatch`` jobs (SlurmProvider).

Every setting comes from the argument, else ``HAL_WORKFLOW_SLURM_<KEY>`` in the environment
(``PARTITION``, ``ACCOUNT``, ``QOS``, ``WALLTIME``, ``WORKER_INIT``, ``ADDRESS``...), else the
default below. ``address`` is where workers reach the interchange: the login node's address
on a real cluster (Parsl finds one when unset), ``127.0.0.1`` for a single-node test cluster.
"""

from __future__ import annotations

from typing import Any

from parsl.config import Config
from parsl.launchers import SingleNodeLauncher, SrunLauncher
from parsl.providers import SlurmProvider

from hal_workflow.executors._resources import threads_per_job
from hal_workflow.executors._sites import htex, setting, worker_init

SITE = "slurm"


def make_config(
    partition: str | None = None,
    account: str | None = None,
    qos: str | None = None,
    walltime: str | None = None,
    worker_init_lines: str | None = None,
    nodes_per_block: int | None = None,
    cores_per_node: int | None = None,
    mem_per_node: int | None = None,
    max_blocks: int | None = None,
    max_workers_per_node: int | None = None,
    backend_threads: int | None = None,
    scheduler_options: str | None = None,
    launcher: str | None = None,
    address: str | None = None,
    exclusive: bool = False,
    run_dir: str = "runinfo",
    label: str = "slurm_htex",
    **config_kwargs: Any,
) -> Config:
    """A Parsl config for Slurm.

    Args:
        partition, account, qos, walltime: the ``#SBATCH`` values (walltime ``HH:MM:SS``).
        worker_init_lines: shell lines for the job before workers start (``module load``,
            ``source venv/bin/activate``); env ``HAL_WORKFLOW_SLURM_WORKER_INIT``.
        nodes_per_block, cores_per_node, mem_per_node (GB), max_blocks: job shape and count.
        max_workers_per_node: workers per node (default: cores_per_node, else 1).
        backend_threads: simulator threads per worker (default: cores left per worker).
        scheduler_options: extra ``#SBATCH`` lines, verbatim.
        launcher: ``"srun"`` (default for multi-node blocks) or ``"single"``.
        address: the interchange address workers connect to.
        exclusive: ask for whole nodes (``--exclusive``).
    """
    cores = _int(setting(SITE, "cores_per_node", cores_per_node))
    workers = _int(setting(SITE, "max_workers_per_node", max_workers_per_node)) or cores or 1
    nodes = _int(setting(SITE, "nodes_per_block", nodes_per_block)) or 1
    threads = backend_threads or threads_per_job(workers, cores or workers)
    chosen = setting(SITE, "launcher", launcher, "srun" if nodes > 1 else "single")
    provider = SlurmProvider(
        partition=setting(SITE, "partition", partition),
        account=setting(SITE, "account", account),
        qos=setting(SITE, "qos", qos),
        walltime=setting(SITE, "walltime", walltime, "00:30:00"),
        nodes_per_block=nodes,
        cores_per_node=cores,
        mem_per_node=_int(setting(SITE, "mem_per_node", mem_per_node)),
        init_blocks=1,
        min_blocks=0,
        max_blocks=_int(setting(SITE, "max_blocks", max_blocks)) or 1,
        scheduler_options=setting(SITE, "scheduler_options", scheduler_options, ""),
        worker_init=worker_init(setting(SITE, "worker_init", worker_init_lines), threads),
        exclusive=exclusive,
        launcher=SrunLauncher() if chosen == "srun" else SingleNodeLauncher(),
    )
    executor = htex(label, provider, address=setting(SITE, "address", address),
                    max_workers_per_node=workers)
    return Config(executors=[executor], run_dir=run_dir, **config_kwargs)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
