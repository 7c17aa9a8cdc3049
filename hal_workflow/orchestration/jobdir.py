"""The job directory: what a scheduler job runs and what it leaves, on the shared filesystem.

The login node writes the inputs; the compute node writes progress and the outcome; any later
process reads them back with nothing but the path. Layout (``-N`` suffixes for array tasks)::

    job.json                inputs: scheduler, inner backend spec, shots, tasks
    circuit-K.qasm          OpenQASM 3 text of circuit K (tasks name theirs)
    job.sh                  the rendered batch script
    scheduler_job.json      the scheduler's job id, written right after submission
    started[-N].json        written by run-job when it starts: host, pid, scheduler ids
    vendor_job[-N].json     the inner (vendor) job id, as soon as it is known
    result[-N].json         the ExecutionResult; written atomically, never overwritten
    error[-N].json          why a job failed (or was stopped) without a result
    cancel[-N].json         cancel() was asked for (tells PBS's ambiguous ends apart)
    final[-N].json          the first terminal status observed (states never go back)

Writes are atomic (a temporary file, then a rename or a hard link), so a reader never sees
half a file, and a result, once written, stays as it is.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hal_workflow.contract.errors import ConfigurationError, JobNotFoundError

JOB_ROOT_ENV = "HAL_WORKFLOW_JOB_ROOT"
FORMAT_VERSION = 1


def default_job_root() -> Path:
    """``$HAL_WORKFLOW_JOB_ROOT``, else ``~/.hal-jobs`` (on the shared home filesystem)."""
    return Path(os.environ.get(JOB_ROOT_ENV) or Path.home() / ".hal-jobs")


def write_json(path: Path, data: Mapping[str, Any], *, overwrite: bool = True) -> bool:
    """Write ``data`` as JSON atomically. With ``overwrite=False`` an existing file wins and
    nothing is written; returns whether this call wrote the file."""
    tmp = path.with_name(f"{path.name}.tmp.{os.getpid()}.{secrets.token_hex(3)}")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True, default=str)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        if overwrite:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)  # fails if path exists: never over an existing file
        except FileExistsError:
            return False
        except OSError:  # a filesystem without hard links
            if path.exists():
                return False
            os.replace(tmp, path)
        return True
    finally:
        tmp.unlink(missing_ok=True)


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


class JobDir:
    """One job's directory. ``index`` arguments select an array task (None: a single job)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).absolute()

    def __repr__(self) -> str:
        return f"JobDir({str(self.path)!r})"

    @classmethod
    def create(cls, root: str | os.PathLike[str] | None = None) -> JobDir:
        """A fresh, uniquely named directory under ``root`` (see :func:`default_job_root`)."""
        base = Path(root).expanduser() if root else default_job_root()
        base.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        while True:
            path = base / f"hal-{stamp}-{secrets.token_hex(4)}"
            try:
                path.mkdir(mode=0o700)  # inputs may name credentials
            except FileExistsError:
                continue
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
        circuits: list[str],
        tasks: list[tuple[int, Mapping[str, float] | None]],
        array: bool,
    ) -> None:
        """Write the circuits and ``job.json``; ``tasks`` are (circuit number, parameters)."""
        from hal_workflow.contract.secrets import to_storable

        for number, text in enumerate(circuits):
            (self.path / f"circuit-{number}.qasm").write_text(text, encoding="utf-8")
        write_json(self.path / "job.json", {
            "format": FORMAT_VERSION,
            "scheduler": scheduler,
            "backend": to_storable(backend),  # credentials by reference, never by value
            "shots": int(shots),
            "array": array,
            "tasks": [{"circuit": f"circuit-{c}.qasm", "parameters": dict(p) if p else None}
                      for c, p in tasks],
            "created_at": time.time(),
        })

    def job(self) -> dict[str, Any]:
        """``job.json``; ``JobNotFoundError`` when this is not a job directory."""
        data = read_json(self.path / "job.json") if self.path.is_dir() else None
        if data is None:
            raise JobNotFoundError(str(self.path), f"no hal-workflow job directory at {self.path}")
        return data

    def task(self, index: int | None) -> dict[str, Any]:
        """Task ``index`` of ``job.json`` (0 for a single job), with its circuit text."""
        job = self.job()
        tasks = job["tasks"]
        position = 0 if index is None else index
        if not 0 <= position < len(tasks) or (index is None) == bool(job.get("array")):
            raise JobNotFoundError(f"{self.path}[{index}]", f"{self.path} has no task {index}")
        task = dict(tasks[position])
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
