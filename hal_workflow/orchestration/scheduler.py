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
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from hal_workflow import config
from hal_workflow.backends.registry import get_backend, normalize_spec
from hal_workflow.circuits.conversion import as_bindings
from hal_workflow.contract.backend import Backend
from hal_workflow.contract.errors import (
    ConfigurationError,
    CredentialsError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    ValidationError,
)
from hal_workflow.contract.secrets import Secret
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
from hal_workflow.orchestration.jobdir import (
    JobDir,
    JobStorageError,
    Task,
    record_scheduler_job,
    scan,
    spec_for_job_file,
)
from hal_workflow.orchestration.runjob import STORAGE_EXIT, run_job_dir
from hal_workflow.orchestration.schedulers.base import (
    INTERNAL_ENV,
    JobOptions,
    Phase,
    Scheduler,
    SchedulerCommandError,
    SchedulerState,
    check_value,
    parse_memory,
    parse_time,
)
from hal_workflow.orchestration.schedulers.pbs import PBS
from hal_workflow.orchestration.schedulers.poller import poller_for
from hal_workflow.orchestration.schedulers.slurm import Slurm
from hal_workflow.orchestration.sites import load_site, snake_keys

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit

logger = logging.getLogger(__name__)

__all__ = ["PBSBackend", "SchedulerBackend", "SlurmBackend", "run_job_dir"]

OPTION_KEYS = frozenset({
    "partition", "queue", "time", "account", "qos", "cpus", "memory", "extra_directives",
    "prologue", "env", "job_root", "job_name", "python", "hooks", "flavor", "poll_interval",
    "max_poll_interval", "submit_timeout", "seed", "array_limit",
})
"""Settings a spec or a site config may give (besides ``name``, ``backend`` and ``site``)."""

DEFAULTS: dict[str, Any] = {"cpus": 1}
SCHEDULER_BACKENDS = frozenset({"slurm", "pbs"})


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
    settings = {**DEFAULTS, **site, **explicit}
    for key, config_key in (("poll_interval", "scheduler.poll-interval"),
                            ("max_poll_interval", "scheduler.max-poll-interval"),
                            ("submit_timeout", "scheduler.submit-timeout")):
        settings[key] = _seconds(settings.get(key, config.get(config_key)), key)
    settings["max_poll_interval"] = max(settings["max_poll_interval"], settings["poll_interval"])
    if settings.get("job_root") is not None:
        check_value("job_root", settings["job_root"], "path")
    if "seed" in settings and (isinstance(settings["seed"], bool)
                               or not isinstance(settings["seed"], int)):
        raise ConfigurationError(f"{scheduler}: seed must be an integer, "
                                 f"got {settings['seed']!r}")
    for key in ("job_root", "python", "flavor", "job_name"):
        if settings.get(key) is not None and not isinstance(settings[key], str):
            raise ConfigurationError(f"{scheduler}: {key} must be a string, "
                                     f"got {type(settings[key]).__name__}")
    return settings


def _seconds(value: Any, key: str) -> float:
    """A positive, finite number of seconds, or a ``ConfigurationError`` naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 < value < 10**7:
        raise ConfigurationError(f"{key} must be a positive number of seconds, got {value!r}")
    return float(value)


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(check_value(key, v, "line") for v in value)
    raise ConfigurationError(f"{key} must be a string or a list of strings, got {value!r}")


def _optional(settings: Mapping[str, Any], key: str, kind: str) -> str | None:
    value = settings.get(key)
    return None if value is None or value == "" else check_value(key, value, kind)


def job_options(settings: Mapping[str, Any], scheduler: str, job_name: str) -> JobOptions:
    """Check ``settings`` and turn them into :class:`JobOptions`.

    Every value that reaches the batch script is checked against a strict pattern
    (:func:`~.schedulers.base.check_value`): a bad one is a ``ConfigurationError`` naming its
    key, raised before anything is written or submitted.
    """
    queue = _optional(settings, "partition", "queue")
    alias = _optional(settings, "queue", "queue")
    if queue and alias and queue != alias:
        raise ConfigurationError(f"{scheduler}: partition {queue!r} and queue {alias!r} differ; "
                                 "give one of them")
    if settings.get("qos") and scheduler == "pbs":
        raise ConfigurationError("pbs: PBS has no QOS; drop 'qos' or pass it as an "
                                 "extra directive your site understands")
    cpus = settings.get("cpus", 1)
    if isinstance(cpus, bool) or not isinstance(cpus, int) or not 1 <= cpus <= 100_000:
        raise ConfigurationError(f"cpus must be a positive integer, got {cpus!r}")
    env = settings.get("env") or {}
    if not isinstance(env, Mapping):
        raise ConfigurationError(f"env must be a mapping of variables, got {env!r}")
    variables: dict[str, str] = {}
    for key, value in env.items():
        name = check_value("env", key, "env_key")
        if name in INTERNAL_ENV:
            raise ConfigurationError(f"env: {name} is set by hal-workflow itself")
        if isinstance(value, Secret):  # a batch script is a file on the shared filesystem
            raise CredentialsError(
                f"env[{name}] holds a credential, which is never written into a batch script; "
                "set it in the compute nodes' environment, or give the backend's credential by "
                "reference ({'env': VARIABLE} or {'file': PATH})")
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigurationError(f"env[{name}] must be text or a number")
        variables[name] = check_value(f"env[{name}]", str(value), "value", show=False)
    python = settings.get("python")
    if python is not None:
        check_value("python", python, "path")
    limit = settings.get("array_limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or not 1 <= limit <= 1_000_000):
        raise ConfigurationError(f"array_limit must be a positive integer, got {limit!r}")
    return JobOptions(
        job_name=check_value("job_name", settings.get("job_name") or job_name, "job_name"),
        queue=queue or alias,
        time_s=parse_time(settings.get("time")),
        account=_optional(settings, "account", "account"),
        qos=_optional(settings, "qos", "account"),
        cpus=cpus,
        memory_mib=parse_memory(settings.get("memory")),
        extra_directives=_strings(settings.get("extra_directives"), "extra_directives"),
        prologue=_strings(settings.get("prologue"), "prologue"),
        env=variables,
        array_limit=limit,
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
        if not number.isdigit() or int(number) not in directory.indices():
            raise JobNotFoundError(job_id, f"{job_id!r}: no such task in array {path}")
        index = int(number)
    recorded = (directory.read("scheduler_job") or {}).get("id")
    if recorded is None:  # the submitter could not record it (it died, or a full disk)
        try:
            record_scheduler_job(directory, scheduler_id, "reattach")
        except JobStorageError:
            pass
        recorded = (directory.read("scheduler_job") or {}).get("id", scheduler_id)
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
    ``job_name``, ``python``, ``hooks``, ``poll_interval``, ``max_poll_interval``,
    ``submit_timeout``, ``seed`` (of sweep element 0), ``array_limit`` (tasks of an array
    running at once), and ``flavor`` for PBS).
    Offers the ``batch`` extension: a sweep is one array job.
    """

    scheduler_name: ClassVar[str]

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self._settings = resolve_settings(spec, self.scheduler_name)
        self._scheduler = self._make_scheduler(self._settings)
        job_options(self._settings, self.scheduler_name, "hal-check")  # fail early on bad input
        self._hooks = parse_hooks(self._settings.get("hooks"))
        self._inner_spec = normalize_spec(spec.get("backend", "sim"))
        if self._inner_spec["name"] in SCHEDULER_BACKENDS:
            raise ConfigurationError(self._nested_message())
        self._inner = get_backend(self._inner_spec)
        if isinstance(self._inner, SchedulerBackend):
            raise ConfigurationError(self._nested_message())
        self._poller = poller_for(self._scheduler)
        self._last: dict[str, JobStatus] = {}
        super().__init__(spec)

    def _nested_message(self) -> str:
        return (f"{self.scheduler_name}: the wrapped backend {self._inner_spec['name']!r} is "
                "itself a batch scheduler; a batch job would hold its allocation while the "
                "inner job waits in the queue. Submit to the inner scheduler directly")

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
        self, circuit: Circuit | str, shots: int, parameters: Mapping[str, float] | None = None,
        seed: int | None = None,
    ) -> JobId:
        """One batch job. ``seed`` (else the wrapped spec's ``seed``) is passed to the wrapped
        backend's ``submit`` where it takes one."""
        task = Task(0, 0, as_bindings(parameters), self._seed(seed, 0))
        [job_id] = await self._submit([circuit], [task], shots, array=False)
        return job_id

    async def submit_sweep(
        self, circuit: Circuit | str, bindings: Sequence[Mapping[str, float]], shots: int,
        seed: int | None = None, indices: Sequence[int] | None = None,
    ) -> list[JobId]:
        """One array job with a task per binding; ids in input order.

        Element ``i`` is sampled with ``seed + i`` (``seed`` defaults to the wrapped spec's
        ``seed``), the rule every engine follows, so the counts equal ``hal.sweep`` on the
        wrapped spec. ``indices`` gives the elements' positions in a larger sweep (a sparse
        ``--array=3,5,9``): task ``indices[k]`` runs ``bindings[k]`` with ``seed +
        indices[k]``, and its job id ends in ``_{indices[k]}``, so a sweep can resubmit only
        the elements it lacks, each as it was.
        """
        positions = self._indices(indices, len(bindings))
        tasks = [Task(i, 0, as_bindings(b), self._seed(seed, i))
                 for i, b in zip(positions, bindings, strict=True)]
        if len(tasks) == 1 and indices is None:  # PBS Pro refuses one-element arrays
            return await self._submit([circuit], tasks, shots, array=False)
        return await self._submit([circuit], tasks, shots, array=True)

    async def submit_batch(self, circuits: Sequence[Circuit | str], shots: int,
                           seed: int | None = None) -> list[JobId]:
        """One array job with a task per circuit (task ``i`` seeded ``seed + i``)."""
        tasks = [Task(i, i, None, self._seed(seed, i)) for i in range(len(circuits))]
        if len(tasks) <= 1:
            return await self._submit(list(circuits), tasks, shots, array=False) \
                if tasks else []
        return await self._submit(list(circuits), tasks, shots, array=True)

    def _seed(self, seed: int | None, index: int) -> int | None:
        """``seed + index``; ``seed`` defaults to the spec's ``seed`` (which the Dask and
        Parsl engines also read), then the wrapped spec's."""
        if seed is None:
            seed = self._settings.get("seed", self._inner_spec.get("seed"))
        base = seed
        if base is None:
            return None
        if isinstance(base, bool) or not isinstance(base, int):
            raise ConfigurationError(f"seed must be an integer, got {base!r}")
        return base + index

    @staticmethod
    def _indices(indices: Sequence[int] | None, count: int) -> list[int]:
        if indices is None:
            return list(range(count))
        positions = list(indices)
        if len(positions) != count:
            raise ConfigurationError(f"indices: {len(positions)} indices for {count} bindings")
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in positions) \
                or len(set(positions)) != count:
            raise ConfigurationError("indices must be distinct non-negative integers")
        return positions

    async def _validated_texts(
        self, circuits: Sequence[Circuit | str], tasks: Sequence[Task], shots: int
    ) -> list[str]:
        """OpenQASM text of each circuit, after the inner backend accepted every task."""
        from hal_workflow.circuits.conversion import as_circuit

        if isinstance(shots, bool) or not isinstance(shots, int):  # the range: inner validate
            issue = ValidationIssue(ValidationCode.SHOTS_OUT_OF_RANGE,
                                    f"shots must be an integer, got {shots!r}")
            raise ValidationError([issue], self.name)
        parsed = [as_circuit(c) for c in circuits]
        checked: set[tuple[int, frozenset[str]]] = set()
        for task in tasks:
            params = task.parameters
            bound = parsed[task.circuit].bind(params) if params else parsed[task.circuit]
            key = (task.circuit, frozenset(params or ()))
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
        self, circuits: Sequence[Circuit | str], tasks: list[Task], shots: int, array: bool
    ) -> list[JobId]:
        """Write the job directory, then submit; never lose a job the scheduler accepted.

        Order: inputs and ``job.json`` (with the name and tag the job is submitted under),
        ``job.sh``, ``before_submit`` hooks, then the submit command and at once the
        ``scheduler_job.json`` record, in one thread call that finishes even if the caller
        is cancelled. A directory is removed only when nothing was submitted for certain
        (an error before the submit command, or the scheduler's refusal); otherwise it
        stays, and :meth:`recover` finds its job by name.
        """
        texts = await self._validated_texts(circuits, tasks, shots)
        directory = await asyncio.to_thread(JobDir.create, self._settings.get("job_root"))
        indices = [t.index for t in tasks] if array else None
        script = directory.path / "job.sh"
        context = HookContext("before_submit", self.name, self.scheduler_name,
                              str(directory.path), str(script), spec=self._public_spec())
        try:
            options = job_options(self._settings, self.scheduler_name, f"hal-{directory.token}")
            submit_record = {"job_name": options.job_name, "host": socket.gethostname(),
                             "tag": f"hal-workflow:{directory.token}", "pid": os.getpid()}
            directory.write_inputs(self.scheduler_name, self._inner_spec, shots, texts, tasks,
                                   array, submit_record)
            directory.write_text("job.sh", self._scheduler.job_script(
                options, self._command(str(directory.path)), str(directory.path), array))
            await asyncio.to_thread(run_hooks, self._hooks["before_submit"], context)
            await asyncio.to_thread(self._scheduler.check, options)
        except BaseException:
            shutil.rmtree(directory.path, ignore_errors=True)  # nothing was submitted
            raise
        scheduler_id = await asyncio.shield(asyncio.to_thread(
            self._submit_and_record, directory, str(script), indices, submit_record,
            options.array_limit))
        ids = ([make_job_id(scheduler_id, directory, i) for i in indices] if indices is not None
               else [make_job_id(scheduler_id, directory)])
        logger.info("submitted %s job %s (%d task(s)) from %s", self.scheduler_name,
                    scheduler_id, len(tasks), directory.path)
        after = replace(context, event="after_submit", job_id=ids[0], job_ids=tuple(ids))
        await asyncio.to_thread(run_hooks, self._hooks["after_submit"], after)
        return ids

    def _submit_and_record(self, directory: JobDir, script: str, indices: list[int] | None,
                           submit: Mapping[str, Any], array_limit: int | None) -> str:
        try:
            scheduler_id = self._scheduler.submit(
                script, str(directory.path), indices, job_name=submit["job_name"],
                tag=submit["tag"], timeout=self._settings["submit_timeout"],
                array_limit=array_limit)
        except SchedulerCommandError:
            shutil.rmtree(directory.path, ignore_errors=True)  # refused: there is no job
            raise
        except BaseException as exc:
            logger.error("submission from %s may not have happened (%s); the directory is "
                         "kept so that recover() can find the job", directory.path, exc)
            raise
        try:
            record_scheduler_job(directory, scheduler_id, "submit")
        except JobStorageError as exc:  # the job exists: give its id; run-job records it
            logger.error("job %s was submitted but its id is not recorded: %s", scheduler_id,
                         exc)
        return scheduler_id

    # -- finding jobs again ---------------------------------------------------------------
    def recover(self, path: str | os.PathLike[str]) -> list[JobId]:
        """The job ids of the job directory ``path``, even when its submitter died before
        recording the scheduler's id (the job is then found by the name and tag it was
        submitted with, and the id recorded). ``JobNotFoundError`` when the scheduler never
        received the job."""
        directory = JobDir(path)
        job = directory.job()
        if job.get("scheduler") != self.scheduler_name:
            raise JobNotFoundError(str(path), f"{path} holds a {job.get('scheduler')} job")
        record = directory.read("scheduler_job")
        if record is None:
            submit = job.get("submit") or {}
            found = self._scheduler.find(str(submit.get("job_name")), str(directory.path),
                                         str(submit.get("tag")))
            if found is None:
                raise JobNotFoundError(str(path), f"{path}: {self.scheduler_name} knows no job "
                                                  f"named {submit.get('job_name')}; it was "
                                                  "never submitted")
            record_scheduler_job(directory, found, "recover")
            record = directory.read("scheduler_job") or {"id": found}
        scheduler_id = str(record["id"])
        if not job.get("array"):
            return [make_job_id(scheduler_id, directory)]
        return [make_job_id(scheduler_id, directory, i) for i in directory.indices()]

    def find_jobs(self, root: str | os.PathLike[str] | None = None) -> list[JobId]:
        """Every job id under the job root (default: this backend's), oldest first, including
        jobs whose submitter was killed after the scheduler accepted them."""
        ids: list[JobId] = []
        for directory in scan(root or self._settings.get("job_root")):
            try:
                ids.extend(self.recover(directory.path))
            except JobNotFoundError as exc:
                logger.debug("skipping %s: %s", directory.path, exc)
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
            status = await asyncio.to_thread(self._observe, ref)
            if status.is_terminal:
                status = await asyncio.to_thread(self._record_final, ref, status)
        self._last[job_id] = status
        return status

    def _observe(self, ref: JobRef) -> JobStatus:
        """Scheduler answer plus job directory (files and a subprocess: run in a thread)."""
        return self._monotonic(self._combine(ref, self._scheduler_state(ref)))

    def _target(self, ref: JobRef) -> str:
        """The scheduler's own id of the job or array task that ``ref`` names."""
        if ref.index is None:
            return ref.scheduler_id
        return self._scheduler.task_id(ref.scheduler_id, ref.index)

    def _scheduler_state(self, ref: JobRef) -> SchedulerState | None:
        """What the scheduler knows, through this process's shared poller: by the task's id,
        then by the id the running job saw (the job-completion log knows array tasks by
        their own job ids), then, for a task that has not started, by its array (PBS
        wrappers cannot name tasks)."""
        ids = [self._target(ref)]
        started = ref.directory.read("started", ref.index)
        seen = started.get("scheduler_job_id") if started else None
        if seen and str(seen) not in ids:
            ids.append(str(seen))
        parent = ref.scheduler_id if ref.is_task and started is None else None
        states = self._poller.states([*ids, *([parent] if parent else [])],
                                     self._settings["poll_interval"],
                                     self._settings["max_poll_interval"])
        for candidate in ids:
            if candidate in states:
                return states[candidate]
        array = states.get(parent) if parent else None
        if array is not None and array.phase is not Phase.ENDED:
            return replace(array, job_id=ids[0], phase=Phase.QUEUED)
        return None

    def _combine(self, ref: JobRef, state: SchedulerState | None) -> JobStatus:
        """The contract status from the scheduler's answer and the job directory."""
        vendor = state.vendor_state if state is not None else "UNKNOWN"
        if state is not None and state.phase is not Phase.ENDED:
            live = JobState.QUEUED if state.phase is Phase.QUEUED else JobState.RUNNING
            return JobStatus(ref.job_id, live, self._live_reason(ref, state), vendor)
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

    def _live_reason(self, ref: JobRef, state: SchedulerState) -> str | None:
        """Why a queued or running job is where it is: requeued, a node down, a cancel under
        way. Logged (a warning) the first time this process sees each new reason."""
        reason = state.reason
        previous = self._last.get(ref.job_id)
        if state.phase is Phase.QUEUED and previous is not None \
                and previous.state is JobState.RUNNING:
            reason = f"requeued by {self.scheduler_name} after it started" + (
                f" ({reason})" if reason else "")
        cancel = ref.directory.read("cancel", ref.index)
        if cancel is not None:
            reason = f"cancel requested; {self.scheduler_name} is stopping the job" + (
                f"; {reason}" if reason else "")
            vendor = ref.directory.read("vendor_cancel", ref.index)
            if vendor is not None:
                reason += f"; vendor job {vendor.get('job_id')}: {vendor.get('outcome')}"
        if reason and (previous is None or previous.reason != reason) and cancel is None:
            logger.warning("%s job %s: %s", self.scheduler_name, ref.job_id, reason)
        return reason

    def _no_result_reason(self, ref: JobRef, state: SchedulerState | None,
                          error: Mapping[str, Any] | None) -> str:
        if error and error.get("reason"):
            return str(error["reason"])
        logs = f"see the job's output in {ref.directory.path}"
        free = _free_bytes(ref.directory.path)
        if (state is not None and state.exit_status == STORAGE_EXIT) or \
                (free is not None and free < 64 * 1024):
            return (f"the job could not write to its directory {ref.directory.path}: the "
                    f"filesystem is full ({free} bytes free); free space and resubmit")
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
            return replace(status, state=previous.state,
                           reason=status.reason or previous.reason)
        return status

    def _record_final(self, ref: JobRef, status: JobStatus) -> JobStatus:
        """Keep the first terminal status seen by any process; run the on_terminal hooks once."""
        record = {**status.to_dict(), "job_id": ref.job_id}
        self._poller.forget([self._target(ref)])
        try:
            written = ref.directory.write("final", record, ref.index, overwrite=False)
        except JobStorageError as exc:
            logger.warning("%s: %s (the status is reported, not recorded)", ref.job_id, exc)
            return status
        if not written:
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
        """As :meth:`Backend.wait`, from 0.1 s up to the ``poll_interval`` setting. Checks
        are cheap: the scheduler itself is asked by the shared poller, at most once per
        interval for all the jobs of this process."""
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
        """``scancel``/``qdel`` the job and return once the scheduler accepted the request.

        The batch job cancels its vendor job itself when it receives SIGTERM; cancelling it
        from here as well (in a background thread, which the process waits for at exit)
        covers a batch job killed before it could (SIGKILL, node failure). Until the
        scheduler reports the end, :meth:`status` says the cancel is under way (and how the
        vendor cancel went, once it has).
        """
        status = await self.status(job_id)
        if status.is_terminal:
            return
        ref = parse_job_id(job_id, self.scheduler_name)
        try:
            ref.directory.write("cancel", {"requested_at": time.time(),
                                           "host": socket.gethostname(), "pid": os.getpid()},
                                ref.index)
        except JobStorageError as exc:
            logger.warning("%s: cancel marker not written: %s", job_id, exc)
        await asyncio.to_thread(self._scheduler.cancel, [self._target(ref)])
        self._poller.expire([self._target(ref)])
        vendor = ref.directory.read("vendor_job", ref.index)
        if vendor and vendor.get("job_id"):
            threading.Thread(target=self._cancel_vendor, args=(ref, str(vendor["job_id"])),
                             name=f"hal-cancel-{vendor['job_id']}", daemon=False).start()

    def _cancel_vendor(self, ref: JobRef, vendor_id: str) -> None:
        """Cancel the vendor job (in its own thread and event loop); record how it went."""
        stored = ref.directory.job()["backend"]
        # job.json holds the spec with secrets redacted; this process has the real one
        spec = self._inner_spec if spec_for_job_file(self._inner_spec) == stored else stored
        outcome = "cancelled"
        try:
            asyncio.run(_cancel_on(spec, vendor_id))
        except JobNotFoundError:
            # an in-process backend (the simulator): its job ended with the batch job
            outcome = "ended with the batch job"
        except Exception as exc:
            outcome = f"cancel failed: {exc}"
            logger.warning("vendor job %s of %s: %s", vendor_id, ref.job_id, outcome)
        else:
            logger.info("cancelled vendor job %s of %s", vendor_id, ref.job_id)
        try:
            ref.directory.write("vendor_cancel", {"job_id": vendor_id, "outcome": outcome,
                                                  "at": time.time()}, ref.index)
        except (JobStorageError, OSError) as exc:
            logger.warning("%s: %s", ref.job_id, exc)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _cancel_on(spec: Mapping[str, Any], vendor_id: str) -> None:
    backend = get_backend(spec)
    try:
        await backend.cancel(vendor_id)
    finally:
        await backend.aclose()


def _free_bytes(path: os.PathLike[str] | str) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


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
