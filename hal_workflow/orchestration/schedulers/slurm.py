"""SLURM: ``#SBATCH`` header, ``sbatch``/``scancel``, and state codes from squeue and sacct.

``squeue -t all`` knows a finished job only for ``MinJobAge`` seconds (300 by default), so a
job missing from it is never taken as COMPLETED: :meth:`Slurm.query` asks ``sacct`` (with
slurmdbd) and then ``sacct -c`` (the job-completion file, when there is no slurmdbd).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import ClassVar

from hal_workflow.contract.errors import BackendUnavailableError, SubmissionError
from hal_workflow.contract.types import JobState
from hal_workflow.orchestration.schedulers.base import (
    CommandResult,
    JobOptions,
    Phase,
    Scheduler,
    SchedulerState,
    array_spec,
    call,
    format_hms,
    parse_time,
)

logger = logging.getLogger(__name__)

_Q, _R, _E = Phase.QUEUED, Phase.RUNNING, Phase.ENDED

TRANSLATE_TABLE: dict[str, tuple[Phase, JobState | None, str | None]] = {
    # waiting
    "PENDING": (_Q, None, None),
    "REQUEUED": (_Q, None, "REQUEUED: Slurm requeued the job"),
    "REQUEUE_HOLD": (_Q, None, "REQUEUE_HOLD: Slurm requeued the job and holds it"),
    "REQUEUE_FED": (_Q, None, "REQUEUE_FED: the job was requeued by its federation"),
    "RESV_DEL_HOLD": (_Q, None, None),
    # holding nodes (a suspended job keeps its place: it has run, and states only go forward)
    "CONFIGURING": (_R, None, None),
    "RUNNING": (_R, None, None),
    "COMPLETING": (_R, None, None),
    "SUSPENDED": (_R, None, None),
    "STOPPED": (_R, None, None),
    "RESIZING": (_R, None, None),
    "SIGNALING": (_R, None, None),
    "STAGE_OUT": (_R, None, None),
    # ended
    "COMPLETED": (_E, JobState.COMPLETED, None),
    "CANCELLED": (_E, JobState.CANCELLED, None),
    "REVOKED": (_E, JobState.CANCELLED, "REVOKED: the job ran on another cluster"),
    "FAILED": (_E, JobState.FAILED, "FAILED: the job exited with a non-zero status"),
    "TIMEOUT": (_E, JobState.FAILED, "TIMEOUT: time limit reached"),
    "NODE_FAIL": (_E, JobState.FAILED, "NODE_FAIL: a node of the job failed"),
    "OUT_OF_MEMORY": (_E, JobState.FAILED, "OUT_OF_MEMORY: the job ran out of memory"),
    "BOOT_FAIL": (_E, JobState.FAILED, "BOOT_FAIL: a node of the job failed to boot"),
    "DEADLINE": (_E, JobState.FAILED, "DEADLINE: the job's deadline passed"),
    "PREEMPTED": (_E, JobState.FAILED, "PREEMPTED: a higher-priority job took the nodes"),
    "SPECIAL_EXIT": (_E, JobState.FAILED, "SPECIAL_EXIT: the job ended in a special state"),
}
"""Slurm job state -> (phase, contract outcome once ended, failure reason)."""

_warned: set[str] = set()


NODE_REASONS = frozenset({"NodeDown", "ReqNodeNotAvail", "BadConstraints", "NodeFail",
                          "launch_failed_requeued_held", "JobHeldAdmin"})
"""Pending reasons (squeue ``%r``) that say a node is down or the job cannot be placed."""


def translate(job_id: str, vendor_state: str, exit_status: int | None = None,
              pending_reason: str = "") -> SchedulerState:
    """A :class:`SchedulerState` for one Slurm state name (``CANCELLED by 0`` included).

    An unknown state warns once and counts as still queued, so a new Slurm release cannot
    end a job by accident.
    """
    state = vendor_state.split()[0].rstrip("+").upper() if vendor_state.strip() else "UNKNOWN"
    entry = TRANSLATE_TABLE.get(state)
    if entry is None:
        if state not in _warned:
            _warned.add(state)
            logger.warning("unknown Slurm job state %r (job %s): treated as queued", state, job_id)
        entry = (_Q, None, None)
    phase, outcome, reason = entry
    why = pending_reason.strip()
    if state.startswith("REQUEUE") and why and why != "None":
        reason = f"{reason} ({why})"
    elif phase is _Q and why.split(",")[0].split("(")[0].strip() in NODE_REASONS:
        reason = f"waiting: {why} (a node it needs is down or unavailable)"
    return SchedulerState(job_id, state, phase, outcome, reason, exit_status)


def _exit_status(text: str) -> int | None:
    code, _, _signal = text.partition(":")
    return int(code) if code.strip().isdigit() else None


class Slurm(Scheduler):
    """``sbatch --parsable``, ``scancel``, ``squeue -t all``, ``sacct``/``sacct -c``."""

    name = "slurm"
    _source: ClassVar[list[str] | None] = None
    directive_prefix = "#SBATCH"
    array_index_expression = "${SLURM_ARRAY_TASK_ID}"

    def header_lines(self, options: JobOptions) -> list[str]:
        d = self.directive_prefix
        lines = [f"{d} --job-name={options.job_name}", f"{d} --ntasks=1",
                 f"{d} --cpus-per-task={options.cpus}"]
        if options.queue:
            lines.append(f"{d} --partition={options.queue}")
        if options.time_s:
            lines.append(f"{d} --time={format_hms(options.time_s)}")
        if options.account:
            lines.append(f"{d} --account={options.account}")
        if options.qos:
            lines.append(f"{d} --qos={options.qos}")
        if options.memory_mib:
            lines.append(f"{d} --mem={options.memory_mib}M")
        return lines

    def check(self, options: JobOptions) -> None:
        """A time limit over the partition's MaxTime: with ``EnforcePartLimits=NO`` (Slurm's
        default) sbatch accepts such a job and it pends forever (``PartitionTimeLimit``), so
        refuse it here, as sbatch does under ``EnforcePartLimits=ALL``."""
        if not options.time_s:
            return
        args = ["scontrol", "show", "partition", "-o"]
        if options.queue:
            args.insert(3, options.queue)
        result = call(args, what="scontrol show partition", check=False, timeout=15)
        if result.returncode != 0:
            return  # an unknown partition: sbatch says so in its own words
        for line in result.stdout.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            if not options.queue and fields.get("Default") != "YES":
                continue
            limit = fields.get("MaxTime", "UNLIMITED")
            if limit not in ("UNLIMITED", "INFINITE") and options.time_s > (parse_time(limit) or 0):
                raise SubmissionError(
                    f"not submitted: requested time limit {format_hms(options.time_s)} exceeds "
                    f"MaxTime {limit} of partition {fields.get('PartitionName')} (scontrol show "
                    "partition); Slurm would hold the job forever (PartitionTimeLimit)"
                )

    def submit_args(self, script: str, job_dir: str, indices: Sequence[int] | None,
                    tag: str) -> list[str]:
        output = "slurm-%A_%a.out" if indices is not None else "slurm-%j.out"
        args = ["sbatch", "--parsable", f"--output={job_dir}/{output}", f"--comment={tag}"]
        if indices is not None:
            args.append(f"--array={array_spec(indices)}")
        return [*args, script]

    def parse_submit(self, result: CommandResult) -> str:
        # --parsable prints "ID" or "ID;CLUSTER"
        lines = result.stdout.strip().splitlines()
        job_id = lines[-1].split(";")[0].strip() if lines else ""
        if not job_id:
            raise BackendUnavailableError(f"sbatch printed no job id: {result.message!r}")
        return job_id

    def find(self, job_name: str, job_dir: str, tag: str) -> str | None:
        result = call(["squeue", "-h", "-t", "all", f"--name={job_name}", "-o", "%F|%k"],
                      what="squeue", check=False, timeout=30)
        for line in result.stdout.splitlines():
            job_id, _, comment = line.strip().partition("|")
            if comment == tag and job_id:
                return job_id
        result = call(["sacct", "-c", "-X", "-n", "-P", f"--name={job_name}", "-o", "JobID"],
                      what="sacct", check=False, timeout=30)
        ids = {line.strip().split("_")[0] for line in result.stdout.splitlines() if line.strip()}
        return ids.pop() if len(ids) == 1 else None

    def cancel(self, scheduler_ids: Sequence[str]) -> None:
        if scheduler_ids:
            call(["scancel", *scheduler_ids], what="scancel failed")

    def task_id(self, array_id: str, index: int) -> str:
        return f"{array_id}_{index}"

    def query(self, scheduler_ids: Sequence[str]) -> dict[str, SchedulerState]:
        """One ``squeue`` for all ids, then one ``sacct`` for those that left it.

        ``squeue -j 56_0,57 -r`` prints only ``56_0``, so squeue is asked for the base ids
        (``56,57``) with every task listed (``-r``), and answers are matched by the task id
        (``%i``, ``56_0``) and by the task's own job id (``%A``), which is how the
        job-completion log (``sacct -c``) knows array tasks.
        """
        wanted = list(dict.fromkeys(scheduler_ids))
        if not wanted:
            return {}
        found = self._squeue(wanted)
        missing = [i for i in wanted if i not in found]
        if missing:
            found.update(self._sacct(missing))
        return found

    def _squeue(self, ids: Sequence[str]) -> dict[str, SchedulerState]:
        bases = ",".join(dict.fromkeys(i.split("_")[0] for i in ids))
        result = call(["squeue", "-h", "-r", "-t", "all", "-j", bases, "-o", "%i|%T|%r|%A"],
                      what="squeue failed", check=False)
        if result.returncode != 0:
            if "invalid job id" in result.message.lower():
                return {}  # none of them is still in the controller's memory
            raise BackendUnavailableError(f"squeue failed: {result.message}")
        states: dict[str, SchedulerState] = {}
        for line in result.stdout.splitlines():
            task_id, state, why, own = ([*line.strip().split("|"), "", "", ""])[:4]
            answer = translate(task_id, state, pending_reason=why)
            for job_id in {task_id, own} - {""}:  # every task: the poller keeps them all
                states[job_id] = answer
        return states

    def _sacct(self, ids: Sequence[str]) -> dict[str, SchedulerState]:
        """One ``sacct`` call: accounting (slurmdbd) if it answers, else the job-completion
        file (``sacct -c``); which of them works is remembered."""
        sources = [self._source] if self._source is not None else [[], ["-c"]]
        for extra in sources:
            result = call(["sacct", *extra, "-X", "-n", "-P", "-j", ",".join(ids),
                           "-o", "JobID,State,ExitCode"], what="sacct failed", check=False)
            if result.returncode != 0 or "disabled" in result.stderr:
                continue  # "accounting storage is disabled", or no completion file
            Slurm._source = extra
            states: dict[str, SchedulerState] = {}
            for line in result.stdout.splitlines():
                parts = line.strip().split("|")
                if len(parts) >= 3 and parts[0] in ids:
                    # the last record wins: a requeued job is listed once per run
                    states[parts[0]] = translate(parts[0], parts[1], _exit_status(parts[2]))
            return states
        return {}

    def ping(self) -> str | None:
        try:
            result = call(["scontrol", "ping"], what="scontrol ping", check=False, timeout=15)
        except BackendUnavailableError as exc:
            return str(exc)
        if result.returncode != 0 or "is UP" not in result.stdout:
            return f"slurmctld does not answer: {result.message}"
        return None

    def pending_count(self) -> int | None:
        result = call(["squeue", "-h", "-t", "PENDING", "-o", "%i"], what="squeue",
                      check=False, timeout=15)
        return len(result.stdout.split()) if result.returncode == 0 else None
