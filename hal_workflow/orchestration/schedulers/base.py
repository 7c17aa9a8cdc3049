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
import os
import re
import shlex
import signal
import subprocess
import time
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

INTERNAL_ENV = (TASK_INDEX_ENV,)
"""Variables set for one batch job only: removed from the environment of every command this
package starts, so that a job never passes them on to a job it submits."""


def clean_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``env`` (default ``os.environ``) without the :data:`INTERNAL_ENV` variables."""
    source = os.environ if env is None else env
    return {k: v for k, v in source.items() if k not in INTERNAL_ENV}


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
            argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False,
            env=clean_environment(), umask=0o077,  # job output files are private too
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


def _stop(proc: subprocess.Popen[str]) -> None:
    """Kill a submit command (and what it started) that is no longer waited for."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.communicate()


def array_spec(indices: Sequence[int]) -> str:
    """Array indices as ranges and lists: ``[0, 1, 2, 5, 7, 8]`` -> ``0-2,5,7-8``.

    >>> array_spec(range(30)), array_spec([3, 5, 9])
    ('0-29', '3,5,9')
    """
    ordered = sorted(set(indices))
    if not ordered or ordered[0] < 0:
        raise ConfigurationError(f"array indices must be non-negative, got {list(indices)!r}")
    parts: list[str] = []
    start = prev = ordered[0]
    for i in [*ordered[1:], None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    return ",".join(parts)


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


_PATTERNS: dict[str, tuple[re.Pattern[str], str]] = {
    "job_name": (re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}$"),
                 "letters, digits and . _ + - (at most 128, not starting with . + -)"),
    "queue": (re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
                         r"(?:@[A-Za-z0-9._-]{1,255})?(?:,[A-Za-z0-9_][A-Za-z0-9._-]{0,127})*$"),
              "names of letters, digits and . _ - (a comma-separated list, or queue@server)"),
    "account": (re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$"),
                "letters, digits and . _ - (at most 128)"),
    "env_key": (re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,255}$"),
                "a shell variable name: a letter or _, then letters, digits, _"),
    "line": (re.compile(r"^[^\x00-\x08\x0a-\x1f\x7f]*$"),
             "one line of printable text (no newline or control character)"),
    "value": (re.compile(r"^[^\x00]*$"), "text without NUL characters"),
    "path": (re.compile(r"^[^\x00-\x1f\x7f%]+$"),
             "a path without control characters or % (sbatch expands %)"),
}
"""What each kind of value that reaches a batch script may look like. Values are refused,
not escaped: a scheduler reads its directive lines itself, and a name it would mangle is a
mistake better reported at once."""


def check_value(key: str, value: object, kind: str, *, show: bool = True) -> str:
    """``value`` as text when it matches the pattern of ``kind``; else a
    ``ConfigurationError`` naming ``key`` (and showing the value unless ``show`` is False,
    for values that may be credentials)."""
    pattern, allowed = _PATTERNS[kind]
    text = value if isinstance(value, str) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        text = str(value)
    if text is None or not pattern.fullmatch(text):
        shown = f" {value!r}" if show else ""
        raise ConfigurationError(f"{key}{shown} is not allowed: use {allowed}")
    return text


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
# hal-workflow job {job_dir_q}
set -e
umask 077
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
        for line in header:  # every value was checked; this guards the template itself
            check_value("directive", line, "line")
        check_value("job_root", job_dir, "path")
        prologue = "".join(f"{check_value('prologue', line, 'line')}\n"
                           for line in options.prologue)
        exports = "".join(
            f"export {check_value('env', k, 'env_key')}="
            f"{shlex.quote(check_value(f'env[{k}]', str(v), 'value', show=False))}\n"
            for k, v in options.env.items())
        if array:
            exports += f'export {TASK_INDEX_ENV}="{self.array_index_expression}"\n'
        else:  # never one inherited from the submitter's environment
            exports += f"unset {TASK_INDEX_ENV}\n"
        return SCRIPT_TEMPLATE.format(
            header="\n".join(header),
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
    def submit_args(self, script: str, job_dir: str, indices: Sequence[int] | None,
                    tag: str) -> list[str]:
        """The command that submits ``script`` (an array of ``indices`` when given), tagged
        with ``tag`` where the scheduler keeps one (a comment) so :meth:`find` can tell it."""

    @abc.abstractmethod
    def parse_submit(self, result: CommandResult) -> str:
        """The job id in what the submit command printed."""

    @abc.abstractmethod
    def find(self, job_name: str, job_dir: str, tag: str) -> str | None:
        """The id of the job submitted from ``job_dir`` under ``job_name`` (and ``tag``), or
        None when the scheduler knows no such job: how a job whose submit command timed out,
        or whose submitter died before recording the id, is found again."""

    def submit(self, script: str, job_dir: str, indices: Sequence[int] | None, *,
               job_name: str, tag: str, timeout: float) -> str:
        """Submit ``script``; return the scheduler's job id.

        A refusal raises :class:`SchedulerCommandError` with the scheduler's words. A submit
        command still running after ``timeout`` seconds is not a refusal: the controller may
        have the job already. It is given as long again while the job is looked up by name
        (:meth:`find`) and adopted once seen; only when neither happens is it killed, and a
        last lookup decides. ``BackendUnavailableError`` then means nothing was submitted.
        """
        args = self.submit_args(script, job_dir, indices, tag)
        logger.debug("running %s", shlex.join(args))
        try:
            proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, cwd=job_dir, env=clean_environment(),
                                    umask=0o077, start_new_session=True)
        except FileNotFoundError:
            raise BackendUnavailableError(
                f"{args[0]!r} is not on PATH; run this on a login node of the cluster"
            ) from None
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            return self._adopt(proc, args, job_name, job_dir, tag, timeout)
        return self._submitted(CommandResult(tuple(args), proc.returncode, out, err))

    def _submitted(self, result: CommandResult) -> str:
        if result.returncode != 0:
            raise SchedulerCommandError(result, f"{result.args[0]} refused the job")
        return self.parse_submit(result)

    def _adopt(self, proc: subprocess.Popen[str], args: Sequence[str], job_name: str,
               job_dir: str, tag: str, timeout: float) -> str:
        logger.warning("%s did not answer within %g s; looking the job up by its name %s",
                       args[0], timeout, job_name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out, err = proc.communicate()
                return self._submitted(CommandResult(tuple(args), proc.returncode, out, err))
            found = self.find(job_name, job_dir, tag)
            if found is not None:
                logger.warning("adopted job %s (named %s): %s had not answered", found,
                               job_name, args[0])
                _stop(proc)
                return found
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        _stop(proc)
        found = self.find(job_name, job_dir, tag)
        if found is not None:
            return found
        raise BackendUnavailableError(
            f"{args[0]} did not answer within {2 * timeout:g} s and no job named {job_name} "
            f"exists: nothing was submitted (scheduler.submit-timeout sets the wait)")

    @abc.abstractmethod
    def cancel(self, scheduler_ids: Sequence[str]) -> None:
        """Ask the scheduler to stop these jobs (no error for jobs that already ended)."""

    @abc.abstractmethod
    def query(self, scheduler_ids: Sequence[str]) -> dict[str, SchedulerState]:
        """The states of those of ``scheduler_ids`` the scheduler still knows."""

    def identity(self) -> tuple[str, ...]:
        """What tells two schedulers of this process apart (one poller each)."""
        return (self.name,)

    @abc.abstractmethod
    def task_id(self, array_id: str, index: int) -> str:
        """The scheduler's id of one task of an array job."""

    @abc.abstractmethod
    def ping(self) -> str | None:
        """None when the scheduler answers, else what went wrong."""

    def pending_count(self) -> int | None:
        """How many jobs wait in the queue (None when unknown)."""
        return None
