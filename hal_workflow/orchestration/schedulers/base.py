"""The scheduler-agnostic part of a batch job: options, script template, shell-outs, states.

Modelled on dask-jobqueue's generic ``Job`` with thin subclasses: a :class:`Scheduler` owns the
four-slot script template (shebang, header, prologue, command), the one shell-out helper
:func:`call`, and the shape of a status answer (:class:`SchedulerState`). ``slurm.py`` and
``pbs.py`` supply only what differs: directive lines, submit/cancel/status commands and the
translation of the scheduler's state codes (one table each, as in Parsl's providers).

Everything here is synchronous (these are subprocess calls); the backend runs them in a
thread so the event loop stays free.
"""

from __future__ import annotations

import abc
import enum
import logging
import math
import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from hal_workflow.contract.errors import (
    BackendUnavailableError,
    ConfigurationError,
    HalError,
    SubmissionError,
)
from hal_workflow.contract.types import JobState

logger = logging.getLogger(__name__)

TASK_INDEX_ENV = "HAL_WORKFLOW_TASK_INDEX"
"""Environment variable through which a batch script tells ``run-job`` its array index."""


# ------------------------------------------------------------------------------ shell-out
@dataclass(frozen=True)
class CommandResult:
    """What a scheduler command printed, and its exit status."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def message(self) -> str:
        """The scheduler's own words: stderr, or stdout when stderr is empty (qsub wrappers)."""
        return (self.stderr.strip() or self.stdout.strip()).replace("\n", " | ")


class SchedulerCommandError(SubmissionError):
    """A scheduler command (``sbatch``, ``qsub``, ...) refused what it was given.

    Keeps the evidence, as Parsl's ``SubmitException`` does: ``command``, ``returncode``,
    ``stdout`` and ``stderr``. The message is the scheduler's own, on one line.
    """

    def __init__(self, result: CommandResult, what: str) -> None:
        self.command = shlex.join(result.args)
        self.returncode = result.returncode
        self.stdout = result.stdout
        self.stderr = result.stderr
        super().__init__(
            f"{what}: {result.args[0]} exited with status {result.returncode}: {result.message}"
        )


def call(
    args: Sequence[str],
    *,
    what: str,
    check: bool = True,
    error: type[HalError] | None = None,
    timeout: float = 60.0,
    cwd: str | None = None,
) -> CommandResult:
    """Run one scheduler command, log it, and return what it printed.

    With ``check``, a non-zero exit raises :class:`SchedulerCommandError` (a
    ``SubmissionError``) or, when given, ``error`` with the scheduler's message; never a
    ``CalledProcessError``. A command that is missing or hangs raises
    ``BackendUnavailableError``: the scheduler cannot be reached from here.
    """
    argv = tuple(str(a) for a in args)
    logger.debug("running %s", shlex.join(argv))
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
        )
    except FileNotFoundError:
        raise BackendUnavailableError(
            f"{what}: {argv[0]!r} is not on PATH; run this on a login node of the cluster"
        ) from None
    except subprocess.TimeoutExpired:
        raise BackendUnavailableError(
            f"{what}: {shlex.join(argv)} did not answer within {timeout:g} s"
        ) from None
    result = CommandResult(argv, proc.returncode, proc.stdout, proc.stderr)
    if result.returncode != 0:
        logger.debug("%s exited %d: %s", argv[0], result.returncode, result.message)
        if check:
            if error is None:
                raise SchedulerCommandError(result, what)
            raise error(f"{what}: {argv[0]} exited with status {result.returncode}: "
                        f"{result.message}")
    return result


# ------------------------------------------------------------------------------ options
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


def parse_time(value: str | int | float | None) -> int | None:
    """A time limit in seconds, read the way ``sbatch --time`` reads it.

    Accepts ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM`` and ``D-HH:MM:SS``; a number
    counts minutes (Slurm's convention).

    >>> parse_time("00:10:00"), parse_time("1-00:00:00"), parse_time(5), parse_time("2:30")
    (600, 86400, 300, 150)
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigurationError(f"time limit must be a duration, not {value!r}")
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ConfigurationError(f"time limit must be positive, got {value!r}")
        return math.ceil(value * 60)
    text = str(value).strip()
    match = _TIME.match(text)
    if not match:
        raise ConfigurationError(
            f"cannot read time limit {value!r}; use HH:MM:SS, D-HH:MM:SS or minutes"
        )
    days, a, b, c = match.groups()
    numbers = [int(x) for x in (a, b, c) if x is not None]
    if days is not None:  # D-HH[:MM[:SS]]
        hours, minutes, seconds = [*numbers, 0, 0][:3]
        total = ((int(days) * 24 + hours) * 60 + minutes) * 60 + seconds
    elif len(numbers) == 1:  # MM
        total = numbers[0] * 60
    elif len(numbers) == 2:  # MM:SS
        total = numbers[0] * 60 + numbers[1]
    else:  # HH:MM:SS
        total = (numbers[0] * 60 + numbers[1]) * 60 + numbers[2]
    if total <= 0:
        raise ConfigurationError(f"time limit must be positive, got {value!r}")
    return total


def format_hms(seconds: int) -> str:
    """``HH:MM:SS`` with as many hours as needed (both ``sbatch`` and PBS read it).

    >>> format_hms(90), format_hms(90000)
    ('00:01:30', '25:00:00')
    """
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"


_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_MEMORY_MIB = {"": 1 / 2**20, "k": 1 / 1024, "m": 1, "g": 1024, "t": 1024**2}


def parse_memory(value: str | int | None) -> int | None:
    """Memory in MiB, rounded up. Plain numbers are bytes, as in dask-jobqueue.

    >>> parse_memory("1GB"), parse_memory("512M"), parse_memory("1.5g"), parse_memory(2**30)
    (1024, 512, 1536, 1024)
    """
    if value is None:
        return None
    match = _MEMORY.match(str(value))
    if not match:
        raise ConfigurationError(f"cannot read memory {value!r}; use e.g. '4GB' or '512MB'")
    number, unit = float(match.group(1)), match.group(2).lower()
    return max(1, math.ceil(number * _MEMORY_MIB[unit]))


@dataclass(frozen=True)
class JobOptions:
    """Resolved options of one batch job (defaults < site config < explicit spec keys)."""

    job_name: str = "hal-job"
    queue: str | None = None
    time_s: int | None = None
    account: str | None = None
    qos: str | None = None
    cpus: int = 1
    memory_mib: int | None = None
    extra_directives: tuple[str, ...] = ()
    prologue: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------ states
class Phase(str, enum.Enum):
    """Where a scheduler job is: waiting, holding nodes, or gone from them."""

    QUEUED = "queued"
    RUNNING = "running"
    ENDED = "ended"


@dataclass(frozen=True)
class SchedulerState:
    """What the scheduler says about one job.

    ``outcome`` is the contract state the scheduler vouches for once the job has ended
    (Slurm's COMPLETED/FAILED/TIMEOUT/CANCELLED...), or None when the scheduler cannot tell
    (PBS's ``F``/``C`` cover every ending); the backend then reads the job directory.
    ``reason`` explains a failure in the scheduler's terms ("TIMEOUT: time limit reached").
    """

    job_id: str
    vendor_state: str
    phase: Phase
    outcome: JobState | None = None
    reason: str | None = None
    exit_status: int | None = None


# ------------------------------------------------------------------------------ scheduler
SCRIPT_TEMPLATE = """\
#!/usr/bin/env bash
{header}
# hal-workflow job {job_dir}
set -e
cd {job_dir_q}
{prologue}{env}set +e
exec {command}
"""
"""The four slots of a batch script: shebang, header, prologue (plus env), command.

``exec`` makes ``run-job`` the job's main process, so the scheduler's SIGTERM (scancel, qdel,
time limit) reaches it directly and it can cancel the vendor job before it exits.
"""


class Scheduler(abc.ABC):
    """A batch scheduler's commands and vocabulary. Subclasses hold no job state."""

    name: ClassVar[str]
    directive_prefix: ClassVar[str]
    array_index_expression: ClassVar[str]
    """Shell expression that expands to the array index inside a batch job."""

    # -- script ---------------------------------------------------------------------------
    @abc.abstractmethod
    def header_lines(self, options: JobOptions) -> list[str]:
        """The directive lines (without extra directives) for ``options``."""

    def directive(self, text: str) -> str:
        """One extra directive: ``--constraint=x`` becomes ``#SBATCH --constraint=x``;
        a line that already starts with ``#`` is kept as it is."""
        text = text.strip()
        return text if text.startswith("#") else f"{self.directive_prefix} {text}"

    def job_script(
        self, options: JobOptions, command: Sequence[str], job_dir: str, array: bool
    ) -> str:
        """Render the batch script that runs ``command`` (a dry run shows exactly this)."""
        header = self.header_lines(options) + [self.directive(d) for d in
                                               options.extra_directives]
        prologue = "".join(f"{line}\n" for line in options.prologue)
        env = dict(options.env)
        exports = "".join(f"export {k}={shlex.quote(str(v))}\n" for k, v in env.items())
        if array:
            exports += f'export {TASK_INDEX_ENV}="{self.array_index_expression}"\n'
        return SCRIPT_TEMPLATE.format(
            header="\n".join(header),
            job_dir=job_dir,
            job_dir_q=shlex.quote(job_dir),
            prologue=prologue,
            env=exports,
            command=shlex.join(command),
        )

    # -- commands -------------------------------------------------------------------------
    def check(self, options: JobOptions) -> None:
        """Refuse, before submitting, a job the scheduler would accept but never start.

        The default checks nothing; the scheduler's own refusal comes from :meth:`submit`.
        """
        return None

    @abc.abstractmethod
    def submit(self, script: str, job_dir: str, array_size: int | None) -> str:
        """Submit ``script`` (a path); return the scheduler's job id. Raises
        ``SubmissionError`` with the scheduler's message when it refuses the job."""

    @abc.abstractmethod
    def cancel(self, scheduler_ids: Sequence[str]) -> None:
        """Ask the scheduler to stop these jobs (no error for jobs that already ended)."""

    @abc.abstractmethod
    def query(self, scheduler_ids: Sequence[str]) -> dict[str, SchedulerState]:
        """The states of those of ``scheduler_ids`` the scheduler still knows."""

    @abc.abstractmethod
    def task_id(self, array_id: str, index: int) -> str:
        """The scheduler's id of one task of an array job."""

    @abc.abstractmethod
    def ping(self) -> str | None:
        """None when the scheduler answers, else what went wrong."""

    def pending_count(self) -> int | None:
        """How many jobs wait in the queue (None when unknown)."""
        return None
