"""Failover, cancellation and reattaching through the router, on the local IQM server.

The server is made unavailable in the two ways a real service is: it answers 503 to
submissions (health still fine, so the router chooses it and the submission fails once the
retry policy gives up) or it stops answering at all (the router excludes it at the next
routing). The retry policy is shortened here so that giving up takes a fraction of a second.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from routing_helpers import BELL, FLIP, iqm_spec

import hal_workflow as hal
from hal_workflow import config
from hal_workflow.backends.budgets import BudgetStore
from hal_workflow.backends.registry import get_backend
from hal_workflow.contract import (
    BackendUnavailableError,
    JobNotFoundError,
    JobState,
    ValidationError,
)
from hal_workflow.executors._tasks import run_sweep
from hal_workflow.orchestration.sync import run_sync

pytest.importorskip("iqm.iqm_client")

ROOT = Path(__file__).resolve().parents[2]
SUBMIT = r"jobs/[^/]+/circuit"


@pytest.fixture(autouse=True)
def quick_retries() -> Iterator[None]:
    with config.set({"retry.max-attempts": 2, "retry.initial-delay": 0.01,
                     "retry.max-delay": 0.02}):
        yield


def down(server: Any, status: int = 503) -> None:
    """Every submission answers ``status`` (more often than the retry policy will try)."""
    server.inject("POST", SUBMIT, *([status] * 50))


def up(server: Any) -> None:
    server.faults.clear()


def route(server: Any, **options: Any) -> dict[str, Any]:
    return {"name": "route", "policy": "first-fit", "candidates": [iqm_spec(server), "sim"],
            **options}


@pytest.mark.parametrize(("status", "error"), [(503, "BackendUnavailableError"),
                                               (429, "RateLimitedError")])
def test_unavailable_on_submit_fails_over_to_the_next_candidate(iqm: Any, status: int,
                                                                error: str) -> None:
    down(iqm, status)
    result = hal.run(BELL, route(iqm), shots=50)
    record = result.metadata["routing"]
    assert result.backend == "sim" == record["chosen"]
    assert [f["candidate"] for f in record["failover"]] == ["iqm:mock"]
    assert record["failover"][0]["reason"].startswith(error)
    assert iqm.hits[("POST", "jobs/mock/circuit")] == 2  # the retry policy's two attempts
    assert record["candidates"][0]["outcome"] == "failed"
    assert not iqm.jobs  # nothing reached the device


def test_a_permanent_error_does_not_fail_over(iqm: Any, budget_path: Path) -> None:
    iqm.inject("POST", SUBMIT, 400)
    budget = {"id": "perm", "max_tasks": 10}
    with pytest.raises(ValidationError, match="injected 400"):
        hal.run(BELL, route(iqm, budget=budget), shots=50)
    assert BudgetStore(budget_path).spent("perm").tasks == 0  # refunded, nothing ran


def test_a_pinned_spec_does_not_fail_over(iqm: Any) -> None:
    down(iqm)
    with pytest.raises(BackendUnavailableError, match="503"):
        hal.run(BELL, route(iqm, failover=False), shots=50)


def test_failover_mid_sweep_keeps_exactly_one_result_per_element(iqm: Any) -> None:
    spec = route(iqm, seed=100)
    thetas = [0.0, math.pi] * 5
    bindings = [{"theta": t} for t in thetas]
    chunks = [range(k, k + 2) for k in range(0, len(bindings), 2)]
    shots = 64
    results: list[Any] = []
    for number, chunk in enumerate(chunks):
        if number == 2:
            down(iqm)  # chosen, then fails over
        if number == 3:
            up(iqm)  # back
        if number == 4:
            iqm.stop()  # gone: excluded at routing
        results += run_sweep(spec, FLIP, [bindings[i] for i in chunk], shots,
                             first_index=chunk.start)
    assert len(results) == len(bindings)
    assert [r.backend for r in results] == ["iqm:mock"] * 4 + ["sim"] * 2 + ["iqm:mock"] * 2 + [
        "sim"] * 2
    for theta, result in zip(thetas, results, strict=True):
        assert dict(result.counts) == {("1" if theta else "0"): shots}
    assert len({r.job_id for r in results}) == len(results)
    assert results[4].metadata["routing"]["failover"][0]["candidate"] == "iqm:mock"
    assert results[4].metadata["routing"]["batch_size"] == 2
    excluded = results[8].metadata["routing"]["candidates"][0]
    assert excluded["outcome"] == "excluded" and excluded["reason"].startswith("OFFLINE")
    # the batch went to the IQM server as whole jobs: one per chunk it ran there
    assert len(iqm.jobs) == 2 + 1


def test_cancelling_a_routed_job_cancels_it_where_it_runs(iqm: Any) -> None:
    iqm.waiting_polls = None  # jobs wait in the queue until cancelled
    backend = get_backend(route(iqm))
    job_id = run_sync(backend.submit(BELL, 10))
    assert run_sync(backend.status(job_id)).state is JobState.QUEUED
    run_sync(backend.cancel(job_id))
    assert run_sync(backend.status(job_id)).state is JobState.CANCELLED
    assert [j.status for j in iqm.jobs.values()] == ["cancelled"]


def test_job_ids_reattach_from_another_process(iqm: Any) -> None:
    spec = route(iqm)
    backend = get_backend(spec)
    done = run_sync(backend.submit(BELL, 40))
    here = run_sync(backend.result_when_done(done, timeout=60))
    iqm.waiting_polls = None
    held = run_sync(backend.submit(BELL, 40))
    script = (
        "import json, sys\n"
        "from hal_workflow.backends.registry import get_backend\n"
        "from hal_workflow.orchestration.sync import run_sync\n"
        "spec, done, held = json.loads(sys.argv[1])\n"
        "b = get_backend(spec)\n"
        "r = run_sync(b.result(done))\n"
        "run_sync(b.cancel(held))\n"
        "print(json.dumps({'counts': r.counts, 'backend': r.backend, 'job_id': r.job_id,"
        " 'routing': r.metadata['routing']}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script, json.dumps([spec, done, held])],
                         capture_output=True, text=True, env=env, timeout=240, check=True)
    there = json.loads(out.stdout.strip().splitlines()[-1])
    assert there["counts"] == dict(here.counts) and there["job_id"] == done
    assert there["backend"] == "iqm:mock" == here.backend
    assert there["routing"]["reattached"] is True and there["routing"]["chosen_index"] == 0
    assert run_sync(backend.status(held)).state is JobState.CANCELLED


def test_a_job_id_from_other_candidates_is_not_found(iqm: Any) -> None:
    backend = get_backend(route(iqm))
    job_id = run_sync(backend.submit(BELL, 10))
    other = get_backend({"name": "route", "candidates": ["sim", iqm_spec(iqm, seed=9)]})
    with pytest.raises(JobNotFoundError, match="other candidates"):
        run_sync(other.status(job_id))
    with pytest.raises(JobNotFoundError, match="not a routed job id"):
        run_sync(backend.status("sim-1"))


def test_a_slow_candidate_is_left_out_of_the_decision(iqm: Any) -> None:
    from iqm_server import Fault

    backend = get_backend(route(iqm))
    assert hal.run(BELL, backend, shots=10).backend == "iqm:mock"  # connected and warm
    iqm.inject("GET", r"quantum-computers/mock/health", Fault(delay=3.0))
    with config.set({"route.assess-timeout": 0.5}):
        result = hal.run(BELL, backend, shots=10)
    assert result.backend == "sim"
    slow = result.metadata["routing"]["candidates"][0]
    assert slow["outcome"] == "excluded"
    assert slow["reason"] == "did not answer within 0.5 s (route.assess-timeout)"


def test_failover_moves_the_budget_reservation(iqm: Any, budget_path: Path) -> None:
    prices = {"iqm:mock": {"per_task": 2.0}, "sim": {"per_task": 0.5}}
    spec = route(iqm, prices=prices, budget={"id": "moved", "max_cost": 10.0})
    down(iqm)
    result = hal.run(BELL, spec, shots=20)
    assert result.backend == "sim"
    assert BudgetStore(budget_path).spent("moved").cost == 0.5  # iqm's 2.0 was refunded
    assert result.metadata["routing"]["budget"]["spent_cost"] == 0.5
