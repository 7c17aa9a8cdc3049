"""Parsl runs that survive what kills long runs: a worker process dying mid-chunk (retries
rerun its chunk) and a driver killed with SIGKILL (the watchdog stops the interchange and the
workers it left behind)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

import hal_workflow as hal

PROGRAM = """OPENQASM 3.0;
include "stdgates.inc";
input float theta;
qubit[13] q;
bit[13] c;
h q;
for int i in [0:11] { rz(theta) q[i]; cx q[i], q[i + 1]; ry(theta) q[i + 1]; }
for int i in [0:11] { rx(theta) q[i]; cx q[i + 1], q[i]; }
c = measure q;
"""
SPEC = {"name": "sim", "threads": 1}
BINDINGS = [{"theta": 2 * math.pi * i / 96} for i in range(96)]


def test_worker_death_does_not_lose_a_chunk(tmp_path: Path) -> None:
    from hal_workflow.executors import parsl as hal_parsl

    reference = hal.sweep(PROGRAM, BINDINGS, SPEC, 200, seed=5, progress=False)
    dfk = hal_parsl.load("local_htex", max_workers=2, run_dir=str(tmp_path / "runinfo"))
    try:
        assert dfk.config.retries == hal_parsl.DEFAULT_RETRIES
        futures = hal_parsl.sweep(PROGRAM, BINDINGS, SPEC, 200, chunk_size=12, seed=5,
                                  progress=False)
        killed: list[int] = []

        def kill_one_worker() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not killed:
                if any(f.done() for f in futures):  # workers are busy with chunks
                    pools = [p for p in psutil.process_iter(["cmdline"])
                             if "process_worker_pool" in " ".join(p.info.get("cmdline") or ())
                             and str(tmp_path) in " ".join(p.info.get("cmdline") or ())]
                    workers = [c for pool in pools for c in pool.children()]
                    if workers:
                        workers[0].send_signal(signal.SIGKILL)
                        killed.append(workers[0].pid)
                        return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_one_worker)
        killer.start()
        results = [f.result(timeout=600) for f in futures]
        killer.join()
        assert killed, "no worker was killed: the test did not test anything"
        assert [r.counts for r in results] == [r.counts for r in reference]
    finally:
        dfk.cleanup()
        import parsl
        parsl.clear()


DRIVER = """
import sys, time, json, psutil
from hal_workflow.executors import parsl as hal_parsl
dfk = hal_parsl.load("local_htex", max_workers=2, run_dir=sys.argv[1])
hal_parsl.run_circuit("OPENQASM 3.0; qubit[1] q; bit[1] c; c = measure q;", "sim", 10).result()
me = psutil.Process()
kids = [p.pid for p in psutil.process_iter(["cmdline"])
        if sys.argv[1] in " ".join(p.info.get("cmdline") or ())]
kids += [c.pid for c in me.children(recursive=True) if "parsl" in " ".join(c.cmdline())]
print(json.dumps(sorted(set(kids))), flush=True)
time.sleep(600)
"""


def test_killed_driver_leaves_no_parsl_process(tmp_path: Path) -> None:
    run_dir = str(tmp_path / "runinfo")
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, run_dir], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        line = driver.stdout.readline()  # type: ignore[union-attr]
        assert line, driver.stderr.read()[-3000:]  # type: ignore[union-attr]
        pids = json.loads(line)
        assert len(pids) >= 2  # the interchange and at least one worker pool
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
        deadline = time.monotonic() + 30  # bounded: watchdog interval + grace + term wait
        while time.monotonic() < deadline:
            alive = [p for p in pids if psutil.pid_exists(p)
                     and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
            if not alive:
                break
            time.sleep(0.5)
        assert not alive, f"Parsl processes still running 30 s after the driver died: {alive}"
    finally:
        if driver.poll() is None:
            driver.kill()
        for proc in psutil.process_iter(["cmdline"]):  # never leave anything behind
            if run_dir in " ".join(proc.info.get("cmdline") or ()):
                proc.kill()
