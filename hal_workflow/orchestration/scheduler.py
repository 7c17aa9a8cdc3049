"""Backend jobs dispatched as SLURM or PBS batch jobs: ``{"name": "slurm", "backend": "sim"}``.

:class:`SchedulerBackend` wraps any backend spec. ``submit`` validates the circuit with the
wrapped (inner) backend on the login node, writes circuit, parameters, shots and the inner
spec into a fresh job directory on the shared filesystem (:mod:`.jobdir`), renders a batch
script whose command is ``python -m hal_workflow.cli run-job DIR``, and submits it with
``sbatch``/``qsub``. On the compute node :func:`run_job_dir` builds the inner backend, runs
the job there, records the vendor job id as soon as it is known and writes the result
atomically. Any process can reattach: the job id is ``<scheduler id>@<job dir>`` (array tasks
``<array id>_<index>@<job dir>``), so the id plus the spec is all ``status``, ``result`` and
``cancel`` need.

Status combines the scheduler (authoritative for queued, running, and how a job ended:
TIMEOUT, NODE_FAIL, cancellation) with the directory (authoritative for whether a result
exists). A scheduler that has forgotten a job is never read as COMPLETED: only a result file
makes a job COMPLETED.

::

    login node                         shared filesystem            compute node
    submit() --validate (inner)
             --write inputs ---------> job.json, circuit-0.qasm
             --sbatch/qsub job.sh ---> scheduler_job.json  ----->  run-job DIR
                                                                    inner.submit()
                                       vendor_job.json  <--------   (vendor id)
                                       result.json / error.json <-  inner.result()
    status() --squeue/qstat + files
    cancel() --scancel/qdel ------------------------------------->  SIGTERM: inner.cancel()
             --inner.cancel(vendor id) (remote services)
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from hal_workflow.backends.registry import get_backend, normalize_spec
from hal_workflow.circuits.conversion import as_bindings
from hal_workflow.contract.backend import Backend
from hal_workflow.contract.errors import (
    ConfigurationError,
    HalTimeoutError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    ValidationError,
)
from hal_workflow.contract.types import (
    AvailabilityStatus,
    BackendAvailability,
    Capabilities,
    ExecutionResult,
    JobId,
    JobState,
    JobStatus,
    ValidationCode,
    ValidationIssue,
    ValidationResult,
)
from hal_workflow.orchestration.hooks import HookContext, parse_hooks, run_hooks
from hal_workflow.orchestration.jobdir import JobDir
from hal_workflow.orchestration.runjob import run_job_dir
from hal_workflow.orchestration.schedulers.base import (
    JobOptions,
    Phase,
    Scheduler,
    SchedulerState,
    parse_memory,
    parse_time,
)
from hal_workflow.orchestration.schedulers.pbs import PBS
from hal_workflow.orchestration.schedulers.slurm import Slurm
from hal_workflow.orchestration.sites import load_site, snake_keys

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit

logger = logging.getLogger(__name__)

__all__ = ["PBSBackend", "SchedulerBackend", "SlurmBackend", "run_job_dir"]

OPTION_KEYS = frozenset({
    "partition", "queue", "time", "account", "qos", "cpus", "memory", "extra_directives",
    "prologue", "env", "job_root", "job_name", "python", "hooks", "flavor", "poll_interval",
})
"""Settings a spec or a site config may give (besides ``name``, ``backend`` and ``site``)."""

DEFAULTS: dict[str, Any] = {"cpus": 1, "poll_interval": 2.0}
CANCEL_SETTLE_S = 30.0
"""How long ``cancel`` waits for the scheduler to report the job ended."""


# ------------------------------------------------------------------------------ settings
def resolve_settings(spec: Mapping[str, Any], scheduler: str) -> dict[str, Any]:
    """Defaults, overridden by the spec's site config, overridden by explicit spec keys."""
    explicit = snake_keys({k: v for k, v in spec.items() if k not in ("name", "backend", "site")})
    unknown = sorted(set(explicit) - OPTION_KEYS)
    if unknown:
        raise ConfigurationError(
            f"{scheduler}: unknown option(s) {', '.join(unknown)}; "
            f"allowed: name, backend, site, {', '.join(sorted(OPTION_KEYS))}"
        )
    site: dict[str, Any] = {}
    if spec.get("site"):
        site = load_site(str(spec["site"]))
        source = site.pop("_source")
        site_scheduler = site.pop("scheduler", None)
        if site_scheduler not in (None, scheduler):
            raise ConfigurationError(
                f"site {spec['site']!r} ({source}) is for {site_scheduler!r}, not {scheduler!r}"
            )
        bad = sorted(set(site) - OPTION_KEYS)
        if bad:
            raise ConfigurationError(f"site {spec['site']!r} ({source}): unknown key(s) "
                                     f"{', '.join(bad)}")
    return {**DEFAULTS, **site, **explicit}


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigurationError(f"{key} must be a string or a list of strings, got {value!r}")


def job_options(settings: Mapping[str, Any], scheduler: str, job_name: str) -> JobOptions:
    """Check ``settings`` and turn them into :class:`JobOptions`."""
    queue = settings.get("partition")
    alias = settings.get("queue")
    if queue and alias and queue != alias:
        raise ConfigurationError(f"{scheduler}: partition {queue!r} and queue {alias!r} differ; "
                                 "give one of them")
    if settings.get("qos") and scheduler == "pbs":
        raise ConfigurationError("pbs: PBS has no QOS; drop 'qos' or pass it as an "
                                 "extra directive your site understands")
    cpus = settings.get("cpus", 1)
    if isinstance(cpus, bool) or not isinstance(cpus, int) or cpus < 1:
        raise ConfigurationError(f"cpus must be a positive integer, got {cpus!r}")
    env = settings.get("env") or {}
    if not isinstance(env, Mapping):
        raise ConfigurationError(f"env must be a mapping of variables, got {env!r}")
    return JobOptions(
        job_name=str(settings.get("job_name") or job_name),
        queue=str(queue or alias) if (queue or alias) else None,
        time_s=parse_time(settings.get("time")),
        account=settings.get("account") or None,
        qos=settings.get("qos") or None,
        cpus=cpus,
        memory_mib=parse_memory(settings.get("memory")),
        extra_directives=_strings(settings.get("extra_directives"), "extra_directives"),
        prologue=_strings(settings.get("prologue"), "prologue"),
        env={str(k): str(v) for k, v in env.items()},
    )


# ------------------------------------------------------------------------------ job ids
@dataclass(frozen=True)
class JobRef:
    """A parsed job id: the scheduler's id of the job (or array), the task index, the dir."""

    job_id: str
    scheduler_id: str
    index: int | None
    directory: JobDir

    @property
    def is_task(self) -> bool:
        return self.index is not None


def make_job_id(scheduler_id: str, directory: JobDir, index: int | None = None) -> JobId:
    task = "" if index is None else f"_{index}"
    return JobId(f"{scheduler_id}{task}@{directory.path}")


def parse_job_id(job_id: str, scheduler: str) -> JobRef:
    """Split ``ID[_N]@DIR`` and check it against the directory's records."""
    head, sep, path = str(job_id).partition("@")
    if not sep or not head or not path:
        raise JobNotFoundError(str(job_id), f"not a {scheduler} job id: {job_id!r} "
                                            "(expected SCHEDULER_ID@JOB_DIR)")
    directory = JobDir(path)
    job = directory.job()
    if job.get("scheduler") != scheduler:
        raise JobNotFoundError(job_id, f"{path} holds a {job.get('scheduler')} job, "
                                       f"not a {scheduler} job")
    index: int | None = None
    scheduler_id = head
    if job.get("array"):
        scheduler_id, _, number = head.rpartition("_")
        if not number.isdigit() or not 0 <= int(number) < len(job["tasks"]):
            raise JobNotFoundError(job_id, f"{job_id!r}: no such task in array {path}")
        index = int(number)
    recorded = (directory.read("scheduler_job") or {}).get("id")
    if recorded != scheduler_id:
        raise JobNotFoundError(job_id, f"{path} belongs to scheduler job {recorded!r}, "
                                       f"not {scheduler_id!r}")
    return JobRef(str(job_id), scheduler_id, index, directory)


# ------------------------------------------------------------------------------ backend
class SchedulerBackend(Backend):
    """A backend whose jobs run as batch jobs of a scheduler (see the module docstring).

    Spec keys: ``backend`` (the wrapped spec, default ``"sim"``), ``site`` (a site config),
    and the settings of :data:`OPTION_KEYS` (``partition``/``queue``, ``time``, ``account``,
    ``qos``, ``cpus``, ``memory``, ``extra_directives``, ``prologue``, ``env``, ``job_root``,
    ``job_name``, ``python``, ``hooks``, ``poll_interval``, and ``flavor`` for PBS).
    Offers the ``batch`` extension: a sweep is one array job.
    """

    scheduler_name: ClassVar[str]

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self._settings = resolve_settings(spec, self.scheduler_name)
        self._scheduler = self._make_scheduler(self._settings)
        job_options(self._settings, self.scheduler_name, "hal-check")  # fail early on bad input
        self._hooks = parse_hooks(self._settings.get("hooks"))
        self._inner_spec = normalize_spec(spec.get("backend", "sim"))
        self._inner = get_backend(self._inner_spec)
        self._last: dict[str, JobStatus] = {}
        super().__init__(spec)

    @classmethod
    def _make_scheduler(cls, settings: Mapping[str, Any]) -> Scheduler:
        raise NotImplementedError

    def _discover_capabilities(self) -> Capabilities:
        inner = self._inner.capabilities()
        return replace(inner, name=f"{self.scheduler_name}:{inner.name}",
                       extensions=frozenset({"batch"}))

    def _extensions(self) -> Mapping[str, object]:
        return {"batch": self}

    @property
    def inner(self) -> Backend:
        """The wrapped backend, as built on this (login) node."""
        return self._inner

    @property
    def scheduler(self) -> Scheduler:
        return self._scheduler

    # -- dry run --------------------------------------------------------------------------
    def job_script(self, job_dir: str = "JOB_DIR", array: bool = False,
                   job_name: str = "hal-job") -> str:
        """The batch script a submission would use, without submitting anything."""
        options = job_options(self._settings, self.scheduler_name, job_name)
        return self._scheduler.job_script(options, self._command(job_dir), job_dir, array)

    def _command(self, job_dir: str) -> list[str]:
        python = str(self._settings.get("python") or sys.executable)
        return [python, "-m", "hal_workflow.cli", "run-job", job_dir]

    # -- contract -------------------------------------------------------------------------
    async def availability(self) -> BackendAvailability:
        problem = await asyncio.to_thread(self._scheduler.ping)
        if problem is not None:
            return BackendAvailability(AvailabilityStatus.OFFLINE, message=problem)
        inner = await self._inner.availability()
        pending = await asyncio.to_thread(self._scheduler.pending_count)
        message = f"{self.scheduler_name} answers; {inner.message or inner.status.value}"
        return BackendAvailability(inner.status, queue_depth=pending, message=message)

    async def validate(self, circuit: Circuit | str, shots: int | None = None) -> ValidationResult:
        return await self._inner.validate(circuit, shots)

    async def submit(
        self, circuit: Circuit | str, shots: int, parameters: Mapping[str, float] | None = None
    ) -> JobId:
        [job_id] = await self._submit([circuit], [(0, as_bindings(parameters))], shots,
                                      array=False)
        return job_id

    async def submit_sweep(
        self, circuit: Circuit | str, bindings: Sequence[Mapping[str, float]], shots: int
    ) -> list[JobId]:
        """One array job with a task per binding; ids in input order."""
        if len(bindings) <= 1:  # PBS Pro refuses one-element arrays; a plain job is the same
            return [await self.submit(circuit, shots, b) for b in bindings]
        return await self._submit([circuit], [(0, as_bindings(b)) for b in bindings], shots,
                                  array=True)

    async def submit_batch(self, circuits: Sequence[Circuit | str], shots: int) -> list[JobId]:
        """One array job with a task per circuit; ids in input order."""
        if len(circuits) <= 1:
            return [await self.submit(c, shots) for c in circuits]
        return await self._submit(list(circuits), [(i, None) for i in range(len(circuits))],
                                  shots, array=True)

    async def _validated_texts(
        self, circuits: Sequence[Circuit | str], tasks: Sequence[tuple[int, Any]], shots: int
    ) -> list[str]:
        """OpenQASM text of each circuit, after the inner backend accepted every task."""
        from hal_workflow.circuits.conversion import as_circuit

        parsed = [as_circuit(c) for c in circuits]
        checked: set[tuple[int, frozenset[str]]] = set()
        for number, params in tasks:
            bound = parsed[number].bind(params) if params else parsed[number]
            key = (number, frozenset(params or ()))
            if key in checked:  # same circuit, same free names: same answer
                continue
            checked.add(key)
            if bound.parameters:  # found here, not an hour later on a compute node
                issue = ValidationIssue(
                    ValidationCode.UNBOUND_PARAMETERS,
                    f"parameters without a value: {', '.join(bound.parameters)}")
                raise ValidationError([issue], self.name)
            report = await self._inner.validate(bound, shots)
            report.raise_for_issues(self.name)
        return [c.qasm for c in parsed]

    async def _submit(
        self,
        circuits: Sequence[Circuit | str],
        tasks: list[tuple[int, Mapping[str, float] | None]],
        shots: int,
        array: bool,
    ) -> list[JobId]:
        texts = await self._validated_texts(circuits, tasks, shots)
        directory = JobDir.create(self._settings.get("job_root"))
        options = job_options(self._settings, self.scheduler_name, f"hal-{directory.token}")
        directory.write_inputs(self.scheduler_name, self._inner_spec, shots, texts, tasks, array)
        script = directory.path / "job.sh"
        script.write_text(self._scheduler.job_script(
            options, self._command(str(directory.path)), str(directory.path), array))
        context = HookContext("before_submit", self.name, self.scheduler_name,
                              str(directory.path), str(script), spec=self._public_spec())
        try:
            await asyncio.to_thread(run_hooks, self._hooks["before_submit"], context)
            await asyncio.to_thread(self._scheduler.check, options)
            scheduler_id = await asyncio.to_thread(
                self._scheduler.submit, str(script), str(directory.path),
                len(tasks) if array else None)
        except BaseException:
            shutil.rmtree(directory.path, ignore_errors=True)  # nothing was submitted
            raise
        directory.write("scheduler_job", {"id": scheduler_id, "submitted_at": time.time(),
                                          "tasks": len(tasks) if array else None})
        ids = ([make_job_id(scheduler_id, directory, i) for i in range(len(tasks))] if array
               else [make_job_id(scheduler_id, directory)])
        logger.info("submitted %s job %s (%d task(s)) from %s", self.scheduler_name,
                    scheduler_id, len(tasks), directory.path)
        after = replace(context, event="after_submit", job_id=ids[0], job_ids=tuple(ids))
        await asyncio.to_thread(run_hooks, self._hooks["after_submit"], after)
        return ids

    def _public_spec(self) -> dict[str, Any]:
        from hal_workflow.contract.backend import redact_spec

        return redact_spec(self.spec)

    # -- status ---------------------------------------------------------------------------
    async def status(self, job_id: str) -> JobStatus:
        known = self._last.get(job_id)
        if known is not None and known.is_terminal:
            return known
        ref = await asyncio.to_thread(parse_job_id, job_id, self.scheduler_name)
        final = ref.directory.read("final", ref.index)
        if final is not None:
            status = replace(JobStatus.from_dict(final), job_id=job_id)
        else:
            state = await asyncio.to_thread(self._scheduler_state, ref)
            status = self._monotonic(self._combine(ref, state))
            if status.is_terminal:
                status = await asyncio.to_thread(self._record_final, ref, status)
        self._last[job_id] = status
        return status

    def _target(self, ref: JobRef) -> str:
        """The scheduler's own id of the job or array task that ``ref`` names."""
        if ref.index is None:
            return ref.scheduler_id
        return self._scheduler.task_id(ref.scheduler_id, ref.index)

    def _scheduler_state(self, ref: JobRef) -> SchedulerState | None:
        """What the scheduler knows: by the task's id, then by the id the running job saw
        (array tasks have their own), then, for a task that has not started, its array."""
        scheduler = self._scheduler
        ids = [self._target(ref)]
        started = ref.directory.read("started", ref.index)
        seen = started.get("scheduler_job_id") if started else None
        if seen and seen not in ids:
            ids.append(str(seen))
        states = scheduler.query(ids)
        for candidate in ids:
            if candidate in states:
                return states[candidate]
        if ref.is_task and started is None:
            parent = scheduler.query([ref.scheduler_id]).get(ref.scheduler_id)
            if parent is not None and parent.phase is not Phase.ENDED:
                return replace(parent, job_id=ids[0], phase=Phase.QUEUED)
        return None

    def _combine(self, ref: JobRef, state: SchedulerState | None) -> JobStatus:
        """The contract status from the scheduler's answer and the job directory."""
        vendor = state.vendor_state if state is not None else "UNKNOWN"
        if state is not None and state.phase is Phase.QUEUED:
            return JobStatus(ref.job_id, JobState.QUEUED, vendor_state=vendor)
        if state is not None and state.phase is Phase.RUNNING:
            return JobStatus(ref.job_id, JobState.RUNNING, vendor_state=vendor)
        directory, index = ref.directory, ref.index
        outcome = state.outcome if state is not None else None
        error = directory.read("error", index)
        own_reason = error.get("reason") if error and not error.get("signal") else None
        if outcome is JobState.CANCELLED:
            return JobStatus(ref.job_id, JobState.CANCELLED, "cancelled", vendor)
        if outcome is JobState.FAILED:
            reason = own_reason or (state.reason if state is not None else None)
            return JobStatus(ref.job_id, JobState.FAILED, reason, vendor)
        if directory.has("result", index):
            return JobStatus(ref.job_id, JobState.COMPLETED, None, vendor)
        if outcome is None and directory.has("cancel", index):
            return JobStatus(ref.job_id, JobState.CANCELLED, "cancelled", vendor)
        return JobStatus(ref.job_id, JobState.FAILED, self._no_result_reason(ref, state, error),
                         vendor)

    def _no_result_reason(self, ref: JobRef, state: SchedulerState | None,
                          error: Mapping[str, Any] | None) -> str:
        if error and error.get("reason"):
            return str(error["reason"])
        logs = f"see the job's output in {ref.directory.path}"
        if state is None:
            return (f"{self.scheduler_name} no longer knows job {ref.job_id.partition('@')[0]} "
                    f"and it left no result; {logs}")
        detail = f", {state.reason}" if state.reason else ""
        return (f"the job ended without writing a result ({self.scheduler_name} state "
                f"{state.vendor_state}{detail}); {logs}")

    def _monotonic(self, status: JobStatus) -> JobStatus:
        """Never report a state before one already reported (a requeued job stays RUNNING)."""
        previous = self._last.get(status.job_id)
        if previous is not None and not previous.state.can_become(status.state):
            return replace(status, state=previous.state, reason=previous.reason)
        return status

    def _record_final(self, ref: JobRef, status: JobStatus) -> JobStatus:
        """Keep the first terminal status seen by any process; run the on_terminal hooks once."""
        record = {**status.to_dict(), "job_id": ref.job_id}
        if not ref.directory.write("final", record, ref.index, overwrite=False):
            existing = ref.directory.read("final", ref.index)
            return replace(JobStatus.from_dict(existing), job_id=ref.job_id) if existing \
                else status
        context = HookContext("on_terminal", self.name, self.scheduler_name,
                              str(ref.directory.path), str(ref.directory.path / "job.sh"),
                              job_id=ref.job_id, state=status.state.value, reason=status.reason,
                              spec=self._public_spec())
        run_hooks(self._hooks["on_terminal"], context)
        return status

    async def wait(
        self,
        job_id: str,
        timeout: float | None = None,
        poll_interval: float = 0.1,
        max_poll_interval: float | None = None,
        backoff: float = 1.5,
    ) -> JobStatus:
        """As :meth:`Backend.wait`, polling the scheduler more gently: from 0.1 s up to the
        ``poll_interval`` setting (2 s unless the spec or site says otherwise)."""
        longest = float(self._settings["poll_interval"]) if max_poll_interval is None \
            else max_poll_interval
        return await super().wait(job_id, timeout, poll_interval, longest, backoff)

    # -- result and cancel ----------------------------------------------------------------
    async def result(self, job_id: str) -> ExecutionResult:
        status = await self.wait(job_id)
        if status.state is JobState.FAILED:
            raise JobFailedError(job_id, status.reason)
        if status.state is JobState.CANCELLED:
            raise JobCancelledError(job_id)
        ref = parse_job_id(job_id, self.scheduler_name)
        data = ref.directory.read("result", ref.index)
        if data is None:
            raise JobFailedError(job_id, f"no result file in {ref.directory.path}")
        return replace(ExecutionResult.from_dict(data), job_id=job_id, backend=self.name)

    async def cancel(self, job_id: str) -> None:
        """``scancel``/``qdel`` the job; then cancel the vendor job it started, if any.

        The batch job cancels its vendor job itself when it receives SIGTERM; doing it from
        here as well covers a batch job killed before it could (SIGKILL, node failure).
        Returns once the scheduler reports the job ended (at most ``CANCEL_SETTLE_S``).
        """
        status = await self.status(job_id)
        if status.is_terminal:
            return
        ref = parse_job_id(job_id, self.scheduler_name)
        ref.directory.write("cancel", {"requested_at": time.time(), "host": socket.gethostname(),
                                       "pid": os.getpid()}, ref.index)
        await asyncio.to_thread(self._scheduler.cancel, [self._target(ref)])
        vendor = ref.directory.read("vendor_job", ref.index)
        if vendor and vendor.get("job_id"):
            await self._cancel_vendor(ref, str(vendor["job_id"]))
        try:  # scancel returns before slurmctld records the end; report it once it has
            await self.wait(job_id, timeout=CANCEL_SETTLE_S, poll_interval=0.05,
                            max_poll_interval=0.5)
        except HalTimeoutError:
            logger.warning("%s still not ended %g s after %s", job_id, CANCEL_SETTLE_S,
                           "scancel" if self.scheduler_name == "slurm" else "qdel")

    async def _cancel_vendor(self, ref: JobRef, vendor_id: str) -> None:
        spec = ref.directory.job()["backend"]
        inner = self._inner if spec == self._inner_spec else get_backend(spec)
        try:
            await inner.cancel(vendor_id)
        except JobNotFoundError:
            # an in-process backend (the simulator): its job ended with the batch job
            logger.debug("vendor job %s is not known here; it lived in the batch job", vendor_id)
        else:
            logger.info("cancelled vendor job %s of %s", vendor_id, ref.job_id)

    async def aclose(self) -> None:
        await self._inner.aclose()


class SlurmBackend(SchedulerBackend):
    """Jobs as SLURM batch jobs (``sbatch``, ``squeue``/``sacct``, ``scancel``)."""

    scheduler_name = "slurm"

    @classmethod
    def _make_scheduler(cls, settings: Mapping[str, Any]) -> Scheduler:
        if settings.get("flavor"):
            raise ConfigurationError("slurm: 'flavor' is a PBS setting (pbspro or torque)")
        return Slurm()


class PBSBackend(SchedulerBackend):
    """Jobs as PBS batch jobs (``qsub``, ``qstat``, ``qdel``); ``flavor``: pbspro or torque."""

    scheduler_name = "pbs"

    @classmethod
    def _make_scheduler(cls, settings: Mapping[str, Any]) -> Scheduler:
        return PBS(str(settings.get("flavor") or "pbspro"))
