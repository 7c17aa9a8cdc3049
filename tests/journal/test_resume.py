"""Resumable sweeps: a driver SIGKILLed mid-sweep, then rerun with the same sweep_id, gives
results identical to an uninterrupted run and reuses what reached the journal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hal_workflow as hal
from hal_workflow.journal import Journal

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import sweep_driver  # noqa: E402

N = 3000


def _driver(engine: str, sweep_id: str, delay: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "sweep_driver.py"), engine, sweep_id, str(N), str(delay)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
        start_new_session=True)


def _kill_mid_sweep(journal: Journal, proc: subprocess.Popen[str], sweep_id: str) -> int:
    """SIGKILL the driver once some elements (not all) are in the journal; return how many."""
    deadline = time.monotonic() + 240
    stored = 0
    while time.monotonic() < deadline and proc.poll() is None:
        sweeps = {s["sweep_id"]: s for s in journal.sweeps()}
        stored = sweeps.get(sweep_id, {}).get("stored", 0)
        if stored >= 200:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"driver ended before the kill: {proc.communicate()[1][-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    with __import__("contextlib").suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # workers a killed Dask driver left behind
    time.sleep(0.5)
    stored = {s["sweep_id"]: s for s in journal.sweeps()}[sweep_id]["stored"]
    assert 0 < stored < N
    return int(stored)


def _reference() -> list[dict[str, int]]:
    """The uninterrupted sweep in one process (element i sampled with seed + i)."""
    results = hal.sweep(sweep_driver.PROGRAM, sweep_driver.bindings(N),
                        {"name": "sim", "threads": 1}, sweep_driver.SHOTS, seed=sweep_driver.SEED,
                        progress=False)
    return [dict(r.counts) for r in results]


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_killed_sweep_resumes_identically(journal: Journal, engine: str) -> None:
    sweep_id = f"resume-{engine}"
    stored = _kill_mid_sweep(journal, _driver(engine, sweep_id, 0.02), sweep_id)
    rerun = _driver(engine, sweep_id, 0.0)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err[-3000:]
    data = json.loads(out.strip().splitlines()[-1])
    assert data["reused"] == stored  # everything that reached the journal, nothing more
    assert data["counts"] == _reference()


def test_in_process_resume_reuses_and_marks(journal: Journal) -> None:
    bindings = sweep_driver.bindings(200)
    spec = {"name": "sim", "threads": 1}
    first = hal.sweep(sweep_driver.PROGRAM, bindings[:120], spec, 100, seed=7, sweep_id="grow",
                      progress=False)
    assert not any(r.metadata.get("reused") for r in first)
    whole = hal.sweep(sweep_driver.PROGRAM, bindings, spec, 100, sweep_id="grow",
                      progress=False)  # the recorded seed (7) is used
    assert sum(bool(r.metadata.get("reused")) for r in whole) == 120
    reference = hal.sweep(sweep_driver.PROGRAM, bindings, spec, 100, seed=7, progress=False)
    assert [r.counts for r in whole] == [r.counts for r in reference]
    # other inputs under the same id are recomputed, not reused
    more_shots = hal.sweep(sweep_driver.PROGRAM, bindings, spec, 50, sweep_id="grow",
                           progress=False)
    assert not any(r.metadata.get("reused") for r in more_shots)
    assert all(r.shots == 50 for r in more_shots)


def test_progress_bar_counts_reused(journal: Journal, capsys: pytest.CaptureFixture[str]) -> None:
    bindings = sweep_driver.bindings(40)
    hal.sweep(sweep_driver.PROGRAM, bindings[:30], "sim", 10, sweep_id="bar", progress=False)
    capsys.readouterr()
    hal.sweep(sweep_driver.PROGRAM, bindings, "sim", 10, sweep_id="bar", progress=True)
    err = capsys.readouterr().err
    assert "40/40" in err and "reused=30" in err
    hal.sweep(sweep_driver.PROGRAM, bindings, "sim", 10, sweep_id="bar")  # not a TTY: no bar
    assert capsys.readouterr().err == ""


def test_bad_sweep_id_is_a_configuration_error(journal: Journal) -> None:
    from hal_workflow.contract.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="sweep_id"):
        hal.sweep(sweep_driver.PROGRAM, sweep_driver.bindings(2), "sim", 10, sweep_id="")
