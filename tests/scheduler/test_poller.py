"""The shared poller, without a cluster: one scheduler query per round for every tracked id,
answers reused within the interval, backoff while nothing changes, reset on change."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from hal_workflow.orchestration.schedulers.base import Phase, SchedulerState
from hal_workflow.orchestration.schedulers.poller import Poller
from hal_workflow.orchestration.schedulers.slurm import Slurm


class CountingSlurm(Slurm):
    """Slurm whose ``query`` answers from a table and counts its calls; like ``squeue -r``
    on base ids, it answers every task of the arrays asked for."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.table: dict[str, str] = {}

    def query(self, scheduler_ids: Sequence[str]) -> dict[str, SchedulerState]:
        self.calls.append(list(scheduler_ids))
        bases = {i.split("_")[0] for i in scheduler_ids}
        return {i: SchedulerState(i, s, Phase.RUNNING) for i, s in self.table.items()
                if i.split("_")[0] in bases}


def test_one_query_per_round_for_all_tracked_ids() -> None:
    scheduler = CountingSlurm()
    scheduler.table = {f"5_{i}": "RUNNING" for i in range(30)}
    poller = Poller(scheduler)
    for i in range(30):  # 30 jobs, each checked once, within one interval
        assert poller.states([f"5_{i}"], 60.0, 60.0)[f"5_{i}"].vendor_state == "RUNNING"
    assert len(scheduler.calls) == 1  # the first round answered every task of the array
    for _ in range(5):
        for i in range(30):
            poller.states([f"5_{i}"], 60.0, 60.0)
    assert len(scheduler.calls) == 1


def test_backoff_while_unchanged_and_reset_on_change(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr("hal_workflow.orchestration.schedulers.poller.time.monotonic",
                        lambda: clock[0])
    scheduler = CountingSlurm()
    scheduler.table = {"7": "RUNNING"}
    poller = Poller(scheduler)
    asked = []
    for _ in range(400):  # 40 s of checks every 0.1 s
        poller.states(["7"], 1.0, 8.0)
        asked.append(len(scheduler.calls))
        clock[0] += 0.1
    rounds = len(scheduler.calls)
    assert 6 <= rounds <= 14  # 1, 1.5, 2.25, ... capped at 8 s: not 40 rounds of 1 s
    scheduler.table = {"7": "COMPLETING"}
    clock[0] += 8.0
    poller.states(["7"], 1.0, 8.0)  # sees the change: back to 1 s
    clock[0] += 1.05
    poller.states(["7"], 1.0, 8.0)
    assert len(scheduler.calls) == rounds + 2


def test_concurrent_checks_share_rounds() -> None:
    scheduler = CountingSlurm()
    scheduler.table = {str(i): "PENDING" for i in range(50)}
    poller = Poller(scheduler)
    poller.states([str(i) for i in range(50)], 60.0, 60.0)
    threads = [threading.Thread(target=poller.states, args=([str(i)], 60.0, 60.0))
               for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(scheduler.calls) == 1


def test_slurm_query_asks_squeue_for_base_ids(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``squeue -j 56_0,57 -r`` prints only ``56_0``: the query names base ids instead, and
    maps tasks by ``%i`` and by their own job id ``%A``; sacct only for what is missing."""
    log = tmp_path / "log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "squeue").write_text(
        f'#!/bin/sh\necho "squeue $*" >> {log}\n'
        "printf '56_0|RUNNING|None|60\\n56_1|PENDING|Priority|56\\n57|PENDING|NodeDown|57\\n'\n")
    (bin_dir / "sacct").write_text(
        f'#!/bin/sh\necho "sacct $*" >> {log}\n'
        "printf '58|COMPLETED|0:0\\n'\n")
    for name in ("squeue", "sacct"):
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{subprocess.os.environ['PATH']}")
    Slurm._source = None
    states = Slurm().query(["56_0", "56_1", "57", "58", "60"])
    assert {k: v.vendor_state for k, v in states.items()}.items() >= {
        "56_0": "RUNNING", "60": "RUNNING", "56_1": "PENDING", "57": "PENDING",
        "58": "COMPLETED"}.items()
    assert states["57"].reason is not None and "NodeDown" in states["57"].reason
    calls = log.read_text().splitlines()
    assert len(calls) == 2
    assert "-j 56,57,58,60" in calls[0] and "-r" in calls[0].split()
    assert calls[1].startswith("sacct") and "-j 58 " in calls[1]
    Slurm._source = None


def test_a_thousand_task_array_waited_in_order_costs_under_one_call_per_task(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy on a simulated 1,000-task array on two CPUs (a task ends every 0.55 s, as
    on the test cluster), waited on one job after the other as ``hal.sweep`` does, checking
    every 0.1 s: rounds stay under one per task (the real-cluster figure for 30 tasks is in
    benchmarks/scheduler_calls.py)."""
    clock = [0.0]
    monkeypatch.setattr("hal_workflow.orchestration.schedulers.poller.time.monotonic",
                        lambda: clock[0])
    scheduler = CountingSlurm()
    n = 1000

    def refresh() -> None:
        done = int(clock[0] / 0.55)
        scheduler.table = {f"9_{i}": ("COMPLETED" if i < done else
                                      "RUNNING" if i < done + 2 else "PENDING")
                           for i in range(n)}

    poller = Poller(scheduler)
    original = scheduler.query

    def query(ids: Sequence[str]) -> dict[str, SchedulerState]:
        refresh()
        return original(ids)

    scheduler.query = query  # type: ignore[method-assign]
    for i in range(n):
        while poller.states([f"9_{i}"], 1.0, 30.0)[f"9_{i}"].vendor_state != "COMPLETED":
            clock[0] += 0.1
        poller.forget([f"9_{i}"])
    assert clock[0] >= n * 0.55
    print(f"{n} tasks: {len(scheduler.calls)} rounds over {clock[0]:.0f} s simulated")
    assert len(scheduler.calls) <= n, len(scheduler.calls)
