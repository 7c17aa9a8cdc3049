"""Helpers shared by the scheduler tests (polling, /proc, squeue)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

DATA = Path(__file__).resolve().parent / "data"
BELL = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
cx q[0], q[1];
c = measure q;
"""
_T = TypeVar("_T")


def wait_for(predicate: Callable[[], _T], timeout: float = 30.0, what: str = "condition",
             interval: float = 0.05) -> _T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def squeue_state(scheduler_id: str) -> str | None:
    """Slurm's state name for a job id (``squeue -t all``), or None when unknown."""
    out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", scheduler_id, "-o", "%T"],
                         capture_output=True, text=True, check=False).stdout.split()
    return out[0] if out else None


def run_job_processes(job_dir: Path) -> list[int]:
    """Pids of live ``run-job`` processes working on ``job_dir`` (read from /proc)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            status = (proc / "status").read_text()
        except OSError:
            continue
        if b"run-job" in argv and str(job_dir).encode() in argv and "\nState:\tZ" not in status:
            pids.append(int(proc.name))
    return pids


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def kill_leftovers(root: Path) -> None:
    """scancel every scheduler job recorded under ``root``; stop detached procsim workers."""
    ids = [json.loads(p.read_text()).get("id") for p in root.rglob("scheduler_job.json")]
    ids = [str(i) for i in ids if i]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30, check=False)
    for pid_file in root.rglob("pid"):
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (ValueError, ProcessLookupError, PermissionError):
            pass
