"""Batch schedulers behind :class:`~hal_workflow.orchestration.scheduler.SchedulerBackend`.

``base`` holds the scheduler-agnostic job (options, script template, shell-outs, states);
``slurm`` and ``pbs`` hold what differs: directives, commands and state tables.
"""

from __future__ import annotations

from hal_workflow.orchestration.schedulers.base import (
    JobOptions,
    Phase,
    Scheduler,
    SchedulerCommandError,
    SchedulerState,
)
from hal_workflow.orchestration.schedulers.pbs import PBS
from hal_workflow.orchestration.schedulers.slurm import Slurm

__all__ = ["PBS", "JobOptions", "Phase", "Scheduler", "SchedulerCommandError", "SchedulerState",
           "Slurm"]
