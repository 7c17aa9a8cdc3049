"""PBS (PBS Pro / OpenPBS, and Torque): ``#PBS`` header, ``qsub``/``qdel``, ``qstat`` parsing.

Two flavours differ only where the schedulers do:

- ``pbspro``: ``qsub -J`` arrays (``123[].server``), ``-l select=1:ncpus=N:mem=...``, and
  ``qstat -x -f -F json`` (finished jobs included, machine-readable).
- ``torque``: ``qsub -t`` arrays, ``-l nodes=1:ppn=N`` and ``-l mem=``, and the text of
  ``qstat -f`` (``key = value`` lines, long values continued on indented lines). Slurm's
  ``slurm-wlm-torque`` wrappers speak this dialect too.

PBS's end states (``F``, ``X``, Torque's ``C``) cover success, failure and qdel alike; only
``Exit_status`` tells some endings apart (walltime, memory), so for the rest the backend reads
the job directory (result, error, cancel marker).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from hal_workflow.contract.errors import BackendUnavailableError, ConfigurationError
from hal_workflow.contract.types import JobState
from hal_workflow.orchestration.schedulers.base import (
    CommandResult,
    JobOptions,
    Phase,
    Scheduler,
    SchedulerCommandError,
    SchedulerState,
    array_spec,
    call,
    format_hms,
)

logger = logging.getLogger(__name__)

_Q, _R, _E = Phase.QUEUED, Phase.RUNNING, Phase.ENDED

STATE_TABLE: dict[str, Phase] = {
    "Q": _Q,  # queued
    "H": _Q,  # held
    "W": _Q,  # waiting for its start time
    "T": _Q,  # being moved to a new location
    "M": _Q,  # moved to another server
    "R": _R,  # running
    "B": _R,  # array job: at least one subjob has begun
    "E": _R,  # exiting after having run
    "S": _R,  # suspended (it ran before)
    "U": _R,  # suspended: workstation busy (it ran before)
    "F": _E,  # finished (PBS Pro, with qstat -x)
    "X": _E,  # subjob finished (PBS Pro)
    "C": _E,  # completed (Torque), whatever the ending
}
"""PBS single-letter job state -> phase."""

EXIT_REASONS: dict[str, dict[int, str]] = {
    "pbspro": {
        -29: "TIMEOUT: walltime exceeded",
        -27: "OUT_OF_MEMORY: memory limit exceeded",
        -26: "OUT_OF_MEMORY: virtual memory limit exceeded",
        -25: "RESOURCE_LIMIT: ncpus sum exceeded",
        -24: "RESOURCE_LIMIT: ncpus burst exceeded",
    },
    "torque": {
        -11: "TIMEOUT: walltime exceeded",
        -10: "OUT_OF_MEMORY: memory limit exceeded",
        -12: "RESOURCE_LIMIT: cpu time exceeded",
    },
}
"""Negative ``Exit_status`` values the server sets when it kills a job over a limit."""

_warned: set[str] = set()


def _attr(record: Mapping[str, Any], name: str) -> Any:
    """An attribute by case-insensitive name (PBS Pro ``Exit_status``, Torque ``exit_status``)."""
    lowered = name.lower()
    for key, value in record.items():
        if key.lower() == lowered:
            return value
    return None


def translate(job_id: str, record: Mapping[str, Any], flavor: str) -> SchedulerState:
    """A :class:`SchedulerState` for one job's ``qstat -f`` attributes."""
    letter = str(_attr(record, "job_state") or "?").strip().upper()
    phase = STATE_TABLE.get(letter)
    if phase is None:
        if letter not in _warned:
            _warned.add(letter)
            logger.warning("unknown PBS job state %r (job %s): treated as queued", letter, job_id)
        phase = _Q
    exit_raw = _attr(record, "Exit_status")
    try:
        exit_status = int(exit_raw) if exit_raw is not None else None
    except (TypeError, ValueError):
        exit_status = None
    outcome: JobState | None = None
    reason: str | None = None
    if phase is _E and exit_status is not None:
        reason = EXIT_REASONS[flavor].get(exit_status)
        if reason is not None:
            outcome = JobState.FAILED
        elif exit_status != 0:
            reason = f"Exit_status {exit_status}"
        comment = _attr(record, "comment")
        if reason and comment:
            reason = f"{reason} ({comment})"
    return SchedulerState(job_id, letter, phase, outcome, reason, exit_status)


def parse_qstat_json(text: str) -> dict[str, dict[str, Any]]:
    """Jobs of ``qstat -f -F json`` output, by full job id.

    ``strict=False``: PBS Pro prints control characters from job environments unescaped.
    """
    data = json.loads(text, strict=False)
    jobs = data.get("Jobs") or {}
    return {str(k): dict(v) for k, v in jobs.items()}


_JOB_ID_LINE = re.compile(r"^Job Id:\s*(\S+)")
_ATTR_LINE = re.compile(r"^\s+([A-Za-z_][\w.]*)\s=\s?(.*)$")


def parse_qstat_full(text: str) -> dict[str, dict[str, str]]:
    """Jobs of plain ``qstat -f`` output (Torque, PBS Pro without ``-F``), by job id.

    Attributes are indented ``key = value`` lines; a long value continues on the next,
    tab-indented lines, which hold no `` = `` (Torque wraps ``Variable_List`` so).
    """
    jobs: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    last_key: str | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _JOB_ID_LINE.match(line)
        if match:
            current = jobs.setdefault(match.group(1), {})
            last_key = None
            continue
        if current is None:
            continue
        match = _ATTR_LINE.match(line)
        if match:
            last_key = match.group(1)
            current[last_key] = match.group(2).strip()
        elif last_key is not None:  # continuation of a wrapped value
            current[last_key] += line.strip()
    return jobs


def _short(job_id: str) -> str:
    """``123[4].server.domain`` -> ``123[4]``: qstat may print a longer server name."""
    return job_id.split(".", 1)[0]


class PBS(Scheduler):
    """``qsub``, ``qdel`` and ``qstat`` of PBS Pro/OpenPBS (``pbspro``) or Torque."""

    name = "pbs"
    directive_prefix = "#PBS"
    flavors: ClassVar[tuple[str, ...]] = ("pbspro", "torque")
    # PBS Pro, then Torque, then Slurm's Torque wrappers (which run the script under sbatch)
    array_index_expression = "${PBS_ARRAY_INDEX:-${PBS_ARRAYID:-${SLURM_ARRAY_TASK_ID:-}}}"

    def __init__(self, flavor: str = "pbspro") -> None:
        if flavor not in self.flavors:
            raise ConfigurationError(
                f"unknown PBS flavor {flavor!r}; use one of {', '.join(self.flavors)}"
            )
        self.flavor = flavor

    def header_lines(self, options: JobOptions) -> list[str]:
        d = self.directive_prefix
        lines = [f"{d} -N {options.job_name}"]
        if options.queue:
            lines.append(f"{d} -q {options.queue}")
        if options.account:
            lines.append(f"{d} -A {options.account}")
        if options.time_s:
            lines.append(f"{d} -l walltime={format_hms(options.time_s)}")
        if self.flavor == "pbspro":
            select = f"1:ncpus={options.cpus}"
            if options.memory_mib:
                select += f":mem={options.memory_mib}mb"
            lines.append(f"{d} -l select={select}")
        else:
            lines.append(f"{d} -l nodes=1:ppn={options.cpus}")
            if options.memory_mib:
                lines.append(f"{d} -l mem={options.memory_mib}mb")
        return lines

    def submit_args(self, script: str, job_dir: str, indices: Sequence[int] | None,
                    tag: str) -> list[str]:
        # -V: the job sees the submitter's environment, as sbatch's default --export=ALL.
        # -o/-e on the command line: Slurm's qsub wrapper ignores '#PBS -o'.
        # PBS Pro names subjob files with ^array_index^; Torque appends the index itself.
        suffix = ".^array_index^" if indices is not None and self.flavor == "pbspro" else ""
        args = ["qsub", "-V", "-o", f"{job_dir}/pbs.out{suffix}",
                "-e", f"{job_dir}/pbs.err{suffix}"]
        if indices is not None:
            spec = array_spec(indices)
            if self.flavor == "pbspro" and ("," in spec or "-" not in spec):
                raise ConfigurationError(
                    f"pbs (pbspro): qsub -J takes a range of two or more indices, not {spec}; "
                    "submit these elements as separate jobs")
            args += ["-J" if self.flavor == "pbspro" else "-t", spec]
        return [*args, script]

    def parse_submit(self, result: CommandResult) -> str:
        words = result.stdout.split()
        if not words:
            raise BackendUnavailableError(f"qsub printed no job id: {result.message!r}")
        return words[-1]

    def find(self, job_name: str, job_dir: str, tag: str) -> str | None:
        """The job whose name is ``job_name`` and whose output goes to ``job_dir``."""
        args = ["qstat", "-x", "-f", "-F", "json"] if self.flavor == "pbspro" else ["qstat", "-f"]
        result = call(args, what="qstat", check=False, timeout=30)
        try:
            records = (parse_qstat_json(result.stdout) if self.flavor == "pbspro"
                       else parse_qstat_full(result.stdout)) if result.stdout.strip() else {}
        except ValueError:
            return None
        for job_id, record in records.items():
            output = str(_attr(record, "Output_Path") or "")
            if _attr(record, "Job_Name") == job_name and (not output or job_dir in output):
                return job_id
        return None

    def cancel(self, scheduler_ids: Sequence[str]) -> None:
        if not scheduler_ids:
            return
        result = call(["qdel", *scheduler_ids], what="qdel failed", check=False)
        if result.returncode != 0 and not _already_gone(result):
            raise SchedulerCommandError(result, "qdel failed")

    def identity(self) -> tuple[str, ...]:
        return (self.name, self.flavor)

    def task_id(self, array_id: str, index: int) -> str:
        if "[]" in array_id:
            return array_id.replace("[]", f"[{index}]", 1)
        return f"{array_id}[{index}]"

    def query(self, scheduler_ids: Sequence[str]) -> dict[str, SchedulerState]:
        wanted = list(dict.fromkeys(scheduler_ids))
        if self.flavor == "pbspro":
            args = ["qstat", "-x", "-f", "-F", "json", *wanted]
        else:
            args = ["qstat", "-f", *wanted]
        result = call(args, what="qstat failed", check=False)
        records: dict[str, dict[str, Any]] = {}
        if result.stdout.strip():
            try:
                records = (parse_qstat_json(result.stdout) if self.flavor == "pbspro"
                           else parse_qstat_full(result.stdout))
            except ValueError as exc:
                raise BackendUnavailableError(f"cannot read qstat output: {exc}") from exc
        elif result.returncode != 0 and not _already_gone(result):
            raise BackendUnavailableError(f"qstat failed: {result.message}")
        by_short = {_short(k): v for k, v in records.items()}
        states: dict[str, SchedulerState] = {}
        for job_id in wanted:
            record = records.get(job_id) or by_short.get(_short(job_id))
            if record is not None:
                states[job_id] = translate(job_id, record, self.flavor)
        return states

    def ping(self) -> str | None:
        try:
            result = call(["qstat", "-q"], what="qstat -q", check=False, timeout=15)
        except BackendUnavailableError as exc:
            return str(exc)
        return None if result.returncode == 0 else f"qstat -q failed: {result.message}"


def _already_gone(result: CommandResult) -> bool:
    """qstat/qdel said the job is unknown or finished (Slurm's wrappers say nothing)."""
    text = result.message.lower()
    return (result.returncode in (1, 35, 153) and not text) or any(
        s in text for s in ("unknown job", "has finished", "invalid for state", "job has completed")
    )
