"""The job directory: what a scheduler job runs and what it leaves, on the shared filesystem.

The login node writes the inputs; the compute node writes progress and the outcome; any later
process reads them back with nothing but the path. Layout (``-N`` suffixes for array tasks)::

    job.json                inputs: scheduler, inner spec (redacted), shots, tasks (index,
                            circuit, parameters, seed), the name/tag it is submitted under
    circuit-K.qasm          OpenQASM 3 text of circuit K (tasks name theirs)
    job.sh                  the rendered batch script
    scheduler_job.json      the scheduler's job id: written as soon as sbatch/qsub answers,
                            or by run-job or a recovery lookup when the submitter died first
    started[-N].json        written by run-job when it starts: host, pid, scheduler ids
    vendor_job[-N].json     the inner (vendor) job id, as soon as it is known
    result[-N].json         the ExecutionResult; written atomically, never overwritten
    error[-N].json          why a job failed (or was stopped) without a result
    cancel[-N].json         cancel() was asked for (tells PBS's ambiguous ends apart)
    final[-N].json          the first terminal status observed (states never go back)
    vendor_cancel[-N].json  how the login node's background cancel of the vendor job went

Everything above exists before the job is submitted, up to ``job.sh``. Writes are atomic (a
temporary file, then a rename or a hard link), so a reader never sees half a file, and a
result, once written, stays as it is. The root is created 0700 and every file 0600, whatever
the umask. A full filesystem raises :class:`JobStorageError` (the file, the bytes it needed,
the bytes free) and leaves no temporary file behind.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hal_workflow.contract.errors import ConfigurationError, JobNotFoundError, SubmissionError

JOB_ROOT_ENV = "HAL_WORKFLOW_JOB_ROOT"
FORMAT_VERSION = 2
FILE_MODE = 0o600
DIR_MODE = 0o700
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class JobStorageError(SubmissionError):
    """A job file could not be written: the filesystem is full (or over quota).

    ``path`` is the file, ``needed`` the bytes it needed, ``free`` what was left.
    """

    def __init__(self, path: Path, needed: int, cause: OSError) -> None:
        self.path, self.needed = path, needed
        try:
            self.free: int | None = shutil.disk_usage(path.parent).free
        except OSError:
            self.free = None
        left = f", {self.free} bytes free" if self.free is not None else ""
        super().__init__(f"cannot write {path}: {os.strerror(cause.errno or 0)} "
                         f"(it needs {needed} bytes{left}); free space there or point "
                         f"scheduler.job-root elsewhere")


def default_job_root() -> Path:
    """Where job directories go: the configuration's ``scheduler.job-root`` (which the old
    ``$HAL_WORKFLOW_JOB_ROOT`` still sets, with a FutureWarning naming the key), else
    ``{data-dir}/jobs``. It must be on a filesystem the compute nodes see."""
    from hal_workflow import config

    configured = config.get("scheduler.job-root", None)
    if configured:
        return Path(os.path.expandvars(str(configured))).expanduser()
    return config.data_dir() / "jobs"


def spec_for_job_file(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The backend spec as ``job.json`` stores it: credentials by reference, never by value.

    The one place that decides what of a spec reaches the shared filesystem (the compute
    node rebuilds the backend from it, so a credential must come from where the spec names
    it: an environment variable, a file, an account; a credential given by value is refused
    with ``CredentialsError`` before anything is submitted).
    """
    from hal_workflow.contract.secrets import to_storable

    return dict(to_storable(dict(spec)))


def _write_private(path: Path, data: bytes, *, overwrite: bool = True) -> bool:
    """Write ``data`` to ``path`` atomically, mode 0600 whatever the umask.

    A temporary file, then a rename (or a hard link with ``overwrite=False``: an existing
    file wins and nothing is written). Returns whether this call wrote the file. A full
    filesystem raises :class:`JobStorageError` and leaves no temporary file behind.
    """
    tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}.{secrets.token_hex(3)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if overwrite:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # fails if path exists: never over an existing file
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno in _FULL:
                raise
            if path.exists():  # a filesystem without hard links
                return False
            os.replace(tmp, path)
        return True
    except OSError as exc:
        if exc.errno in _FULL:
            raise JobStorageError(path, len(data), exc) from None
        raise
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def write_json(path: Path, data: Mapping[str, Any], *, overwrite: bool = True) -> bool:
    """Write ``data`` as JSON atomically and privately (see :func:`_write_private`)."""
    text = json.dumps(data, indent=1, sort_keys=True, default=str)
    return _write_private(path, text.encode("utf-8"), overwrite=overwrite)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when there is none (yet)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{path}: unreadable job file: {exc}") from exc
    return data if isinstance(data, dict) else None


def make_root(root: str | os.PathLike[str] | None) -> Path:
    """The job root (see :func:`default_job_root`), created 0700 if it does not exist."""
    base = Path(root).expanduser() if root else default_job_root()
    text = str(base)
    if not text or any(ord(c) < 32 or c in "%\x7f" for c in text):
        raise ConfigurationError(f"job_root {text!r} is not allowed: use a path without "
                                 "control characters or %")
    if not base.is_dir():
        try:
            base.mkdir(parents=True, mode=DIR_MODE, exist_ok=True)
            os.chmod(base, DIR_MODE)
        except OSError as exc:
            if exc.errno in _FULL:
                raise JobStorageError(base, 4096, exc) from None
            raise ConfigurationError(f"job_root {text}: cannot create it: {exc}") from exc
    return base.absolute()


def scan(root: str | os.PathLike[str] | None = None) -> Iterator[JobDir]:
    """Every job directory under ``root`` (default: :func:`default_job_root`), oldest first.

    Includes directories whose submission was interrupted: what the CLI lists as jobs.
    """
    base = Path(root).expanduser() if root else default_job_root()
    if not base.is_dir():
        return
    for path in sorted(base.iterdir()):
        if path.name.startswith("hal-") and (path / "job.json").is_file():
            yield JobDir(path)


class Task:
    """One task of a job: its array ``index`` (its position in the caller's sweep), the
    circuit it runs, its parameters and the ``seed`` it is sampled with (None: the inner
    backend's own)."""

    __slots__ = ("circuit", "index", "parameters", "seed")

    def __init__(self, index: int, circuit: int, parameters: Mapping[str, float] | None,
                 seed: int | None = None) -> None:
        self.index, self.circuit, self.seed = index, circuit, seed
        self.parameters = dict(parameters) if parameters else None

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "circuit": f"circuit-{self.circuit}.qasm",
                "parameters": self.parameters, "seed": self.seed}


class JobDir:
    """One job's directory. ``index`` arguments select an array task (None: a single job)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).absolute()

    def __repr__(self) -> str:
        return f"JobDir({str(self.path)!r})"

    @classmethod
    def create(cls, root: str | os.PathLike[str] | None = None) -> JobDir:
        """A fresh, uniquely named directory under ``root`` (see :func:`default_job_root`)."""
        base = make_root(root)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        while True:
            path = base / f"hal-{stamp}-{secrets.token_hex(4)}"
            try:
                path.mkdir(mode=DIR_MODE)  # inputs may name credentials
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno in _FULL:
                    raise JobStorageError(path, 4096, exc) from None
                raise
            os.chmod(path, DIR_MODE)
            return cls(path)

    @property
    def token(self) -> str:
        """The short random part of the name (used for scheduler job names)."""
        return self.path.name.rsplit("-", 1)[-1]

    def file(self, stem: str, index: int | None = None, suffix: str = ".json") -> Path:
        """``stem.json`` for a single job, ``stem-N.json`` for task N of an array."""
        return self.path / (f"{stem}{suffix}" if index is None else f"{stem}-{index}{suffix}")

    # -- inputs (login node) --------------------------------------------------------------
    def write_inputs(
        self,
        scheduler: str,
        backend: Mapping[str, Any],
        shots: int,
        circuits: Sequence[str],
        tasks: Sequence[Task],
        array: bool,
        submit: Mapping[str, Any],
    ) -> None:
        """Write the circuits and ``job.json`` (before anything is submitted).

        ``tasks`` are :class:`Task` records (index, circuit number, parameters, seed);
        ``submit`` says how the scheduler job can be found again if its id is lost (the job
        name and comment it is submitted with, the submitting host and pid).
        """
        for number, text in enumerate(circuits):
            self.write_text(f"circuit-{number}.qasm", text)
        write_json(self.path / "job.json", {
            "format": FORMAT_VERSION,
            "scheduler": scheduler,
            "backend": spec_for_job_file(backend),
            "shots": int(shots),
            "array": array,
            "tasks": [t.to_dict() for t in tasks],
            "submit": dict(submit),
            "created_at": time.time(),
        })

    def write_text(self, name: str, text: str) -> None:
        """A private text file in this directory (atomic, 0600)."""
        _write_private(self.path / name, text.encode("utf-8"))

    def job(self) -> dict[str, Any]:
        """``job.json``; ``JobNotFoundError`` when this is not a job directory."""
        data = read_json(self.path / "job.json") if self.path.is_dir() else None
        if data is None:
            raise JobNotFoundError(str(self.path), f"no hal-workflow job directory at {self.path}")
        return data

    def indices(self) -> list[int]:
        """The array indices of this job's tasks (``[]`` for a single job)."""
        job = self.job()
        if not job.get("array"):
            return []
        return [int(t.get("index", n)) for n, t in enumerate(job["tasks"])]

    def task(self, index: int | None) -> dict[str, Any]:
        """Task ``index`` of ``job.json`` (None for a single job), with its circuit text."""
        job = self.job()
        tasks = job["tasks"]
        found = None
        if (index is None) == bool(job.get("array")):
            found = None
        elif index is None:
            found = tasks[0] if tasks else None
        else:
            found = next((t for n, t in enumerate(tasks) if int(t.get("index", n)) == index),
                         None)
        if found is None:
            raise JobNotFoundError(f"{self.path}[{index}]", f"{self.path} has no task {index}")
        task = dict(found)
        task["qasm"] = (self.path / task["circuit"]).read_text(encoding="utf-8")
        return task

    # -- per-task records -------------------------------------------------------------------
    def read(self, stem: str, index: int | None = None) -> dict[str, Any] | None:
        return read_json(self.file(stem, index))

    def write(
        self, stem: str, data: Mapping[str, Any], index: int | None = None,
        *, overwrite: bool = True,
    ) -> bool:
        return write_json(self.file(stem, index), data, overwrite=overwrite)

    def has(self, stem: str, index: int | None = None) -> bool:
        return self.file(stem, index).exists()


def record_scheduler_job(directory: JobDir, scheduler_id: str, by: str) -> None:
    """Record the scheduler's id of ``directory``'s job (atomically, first writer wins): by
    the submitter as soon as the submit command answers, by ``run-job`` when it starts
    and finds none (its submitter died), or by a recovery lookup."""
    job = directory.job()
    directory.write("scheduler_job", {
        "id": str(scheduler_id), "recorded_by": by, "submitted_at": job.get("created_at"),
        "recorded_at": time.time(), "tasks": len(job["tasks"]) if job.get("array") else None,
    }, overwrite=False)
