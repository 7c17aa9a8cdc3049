"""A stand-in for a remote quantum service whose jobs outlive the process that submitted them.

``procsim`` runs each job in a detached process (double fork, so it is re-parented to PID 1
and escapes the batch job's process tree, as a job on a vendor's cloud would: ``scancel``
cannot reach it). Its state lives in a directory per job under ``root``, so any process can
ask for status, result or cancel with the job id alone. ``cancel`` records who asked
(``cancels`` file: one ``pid host`` line per request) before it stops the worker, which lets
the tests tell the login node's cancel from the batch job's SIGTERM handler.

Registered under the entry-point group ``hal_workflow.backends`` by the ``dist-info`` folder
beside this file, so a batch job whose ``PYTHONPATH`` includes this folder resolves it.
Test-only: after ``duration`` seconds it answers with every shot on one bitstring, the
binary of ``round(10 * sum(parameters))`` (all zeros without parameters), so a sweep's
results show whether they came back in input order.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hal_workflow.contract.backend import Backend
from hal_workflow.contract.errors import JobCancelledError, JobFailedError, JobNotFoundError
from hal_workflow.contract.types import (
    AvailabilityStatus,
    BackendAvailability,
    Capabilities,
    ExecutionResult,
    JobId,
    JobState,
    JobStatus,
    ValidationResult,
)

_WORKER = r"""
import json, os, signal, sys, time
path, duration, shots, clbits = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
outcome = int(sys.argv[5])
def stop(*_):
    open(os.path.join(path, "cancelled"), "w").close()
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
with open(os.path.join(path, "pid.tmp"), "w") as f:
    f.write(str(os.getpid()))
os.replace(os.path.join(path, "pid.tmp"), os.path.join(path, "pid"))
deadline = time.time() + duration
while time.time() < deadline:
    time.sleep(0.05)
tmp = os.path.join(path, "result.json.tmp")
with open(tmp, "w") as f:
    json.dump({"counts": {format(outcome, "0%db" % clbits): shots}}, f)
os.replace(tmp, os.path.join(path, "result.json"))
"""

_LAUNCHER = r"""
import subprocess, sys
subprocess.Popen([sys.executable, "-c", sys.argv[1], *sys.argv[2:]], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
"""


def pid_alive(pid: int) -> bool:
    """Whether a live (non-zombie) process with this pid exists."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


class ProcessBackend(Backend):
    """Jobs as detached local processes; spec ``{"name": "procsim", "root": DIR,
    "duration": SECONDS, "cancel_delay": SECONDS}`` (a vendor whose cancel call is slow)."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self._root = Path(spec.get("root") or "/tmp/procsim")
        self._duration = float(spec.get("duration", 1.0))
        self._cancel_delay = float(spec.get("cancel_delay", 0.0))
        super().__init__(spec)

    def _discover_capabilities(self) -> Capabilities:
        return Capabilities(name="procsim", num_qubits=32, simulator=False,
                            gate_set=frozenset({"h", "x", "cx", "rx", "ry", "rz", "measure"}))

    async def availability(self) -> BackendAvailability:
        return BackendAvailability(AvailabilityStatus.ONLINE)

    async def validate(self, circuit: Any, shots: int | None = None) -> ValidationResult:
        return ValidationResult()

    def job_dir(self, job_id: str) -> Path:
        path = self._root / job_id
        if not path.is_dir():
            raise JobNotFoundError(job_id)
        return path

    def worker_pid(self, job_id: str) -> int | None:
        deadline = time.time() + 5
        pid_file = self.job_dir(job_id) / "pid"
        while not pid_file.exists() and time.time() < deadline:
            time.sleep(0.02)
        return int(pid_file.read_text()) if pid_file.exists() else None

    async def submit(self, circuit: Any, shots: int,
                     parameters: Mapping[str, float] | None = None) -> JobId:
        from hal_workflow.circuits import Circuit

        parsed = circuit if isinstance(circuit, Circuit) else Circuit.from_qasm(circuit)
        job_id = uuid.uuid4().hex[:12]
        path = self._root / job_id
        path.mkdir(parents=True)
        (path / "submitted_by").write_text(f"{os.getpid()} {socket.gethostname()}\n")
        outcome = round(10 * sum((parameters or {}).values())) % 2**parsed.num_clbits
        subprocess.run([sys.executable, "-c", _LAUNCHER, _WORKER, str(path),
                        str(self._duration), str(shots), str(parsed.num_clbits), str(outcome)],
                       check=True)
        self.worker_pid(job_id)
        return JobId(job_id)

    async def status(self, job_id: str) -> JobStatus:
        path = self.job_dir(job_id)
        if (path / "result.json").exists():
            return JobStatus(job_id, JobState.COMPLETED)
        if (path / "cancelled").exists():
            return JobStatus(job_id, JobState.CANCELLED)
        pid = self.worker_pid(job_id)
        if pid is not None and pid_alive(pid):
            return JobStatus(job_id, JobState.RUNNING)
        if (path / "result.json").exists():  # it finished between the two looks
            return JobStatus(job_id, JobState.COMPLETED)
        if (path / "cancelled").exists():
            return JobStatus(job_id, JobState.CANCELLED)
        return JobStatus(job_id, JobState.FAILED, "worker vanished")

    async def result(self, job_id: str) -> ExecutionResult:
        status = await self.wait(job_id, poll_interval=0.05, max_poll_interval=0.2)
        if status.state is JobState.CANCELLED:
            raise JobCancelledError(job_id)
        if status.state is JobState.FAILED:
            raise JobFailedError(job_id, status.reason)
        data = json.loads((self.job_dir(job_id) / "result.json").read_text())
        shots = sum(data["counts"].values())
        return ExecutionResult(counts=data["counts"], shots=shots, job_id=job_id,
                               backend="procsim")

    async def cancel(self, job_id: str) -> None:
        path = self.job_dir(job_id)
        await asyncio.sleep(self._cancel_delay)
        with open(path / "cancels", "a") as handle:
            handle.write(f"{os.getpid()} {socket.gethostname()}\n")
        pid = self.worker_pid(job_id)
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not pid_alive(pid):
                    break
                await asyncio.sleep(0.02)


def record_hook(context: Any) -> None:
    """A Python lifecycle hook: appends the event to ``hook-calls.jsonl`` beside the job dir."""
    line = {"event": context.event, "job_id": context.job_id, "state": context.state,
            "job_dir": context.job_dir, "pid": os.getpid()}
    with open(Path(context.job_dir).parent / "hook-calls.jsonl", "a") as handle:
        handle.write(json.dumps(line) + "\n")
