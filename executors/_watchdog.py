"""Tear down a Parsl driver's interchange and workers once the driver is gone, however it ended.

Parsl cleans up at a normal exit (``atexit``), but a driver killed with SIGKILL leaves its
HighThroughputExecutor interchange and worker pools running (seen: about 1 GB each, still
there minutes later): they do not watch their parent. :func:`hal_workflow.executors.parsl.load`
therefore starts this module as a small process in its own session::

    python -m hal_workflow.executors._watchdog DRIVER_PID RUN_DIR

While the driver lives it notes, every :data:`INTERVAL` seconds, the driver's descendants
that are Parsl processes and any process whose command line names the driver's run
directory (worker pools started through a provider may have left the driver's process tree).
When the driver is gone it waits :data:`GRACE` seconds (a normal exit is cleaning up), then
terminates what is left of those, and kills what survives :data:`TERM_WAIT` more seconds.
"""

from __future__ import annotations

import sys
import time

import psutil

INTERVAL = 0.5
GRACE = 3.0
TERM_WAIT = 3.0


def _parsl_processes(driver: psutil.Process, run_dir: str) -> dict[int, psutil.Process]:
    found: dict[int, psutil.Process] = {}
    try:
        for child in driver.children(recursive=True):
            try:
                if "parsl" in " ".join(child.cmdline()):
                    found[child.pid] = child
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    except psutil.NoSuchProcess:
        return found
    if run_dir:
        for proc in psutil.process_iter(["cmdline"]):
            if proc.pid != driver.pid and run_dir in " ".join(proc.info.get("cmdline") or ()):
                found[proc.pid] = proc
    return found


def watch(pid: int, run_dir: str) -> int:
    """Watch ``pid``; once it ended, stop its Parsl processes. Returns how many were left."""
    try:
        driver = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return 0
    seen: dict[int, psutil.Process] = {}
    while driver.is_running() and driver.status() != psutil.STATUS_ZOMBIE:
        seen.update(_parsl_processes(driver, run_dir))
        time.sleep(INTERVAL)
    time.sleep(GRACE)
    me = psutil.Process().pid
    left = []
    for proc in seen.values():
        try:
            if proc.pid != me and proc.is_running():
                left.extend([proc, *proc.children(recursive=True)])
        except psutil.NoSuchProcess:
            continue
    for proc in left:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(left, timeout=TERM_WAIT)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    return len(left)


if __name__ == "__main__":
    watch(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "")
