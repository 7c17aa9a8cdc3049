"""Budgets: refused before submission, kept on disk, shared safely between processes."""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from routing_helpers import BELL, FLIP, IBM, iqm_spec

import hal_workflow as hal
from hal_workflow.backends.budgets import Budget, BudgetExceededError, BudgetStore, Spend
from hal_workflow.backends.registry import get_backend
from hal_workflow.contract import HalError
from hal_workflow.executors._tasks import run_sweep
from hal_workflow.orchestration.sync import run_sync

PRICES = {"iqm:mock": {"per_task": 1.0, "per_shot": 0.001}}


def test_a_budget_stops_a_run_of_jobs_at_the_right_job(iqm: Any, budget_path: Path) -> None:
    # each job: 1.0 + 100 * 0.001 = 1.1; max_cost 5.0 admits 4 (4.4), refuses the 5th (5.5)
    spec = {"name": "route", "candidates": [iqm_spec(iqm)], "prices": PRICES,
            "budget": {"id": "thesis-runs", "max_cost": 5.0}}
    backend = get_backend(spec)
    done = 0
    with pytest.raises(BudgetExceededError) as info:
        for _ in range(10):
            run_sync(backend.submit(BELL, 100))
            done += 1
    assert done == 4 and len(iqm.jobs) == 4  # the refused job never reached the server
    error = info.value
    assert isinstance(error, HalError)
    assert (error.budget, error.limit, error.maximum) == ("thesis-runs", "max_cost", 5.0)
    assert error.spent == pytest.approx(4.4) and error.estimate == pytest.approx(1.1)
    assert "thesis-runs" in str(error) and "4.4" in str(error) and "1.1" in str(error)
    assert pickle.loads(pickle.dumps(error)).spent == error.spent
    # totals survive the backend: a new one (same store) refuses straight away
    assert BudgetStore(budget_path).spent("thesis-runs") == Spend(pytest.approx(4.4), 400, 4)
    with pytest.raises(BudgetExceededError):
        hal.run(BELL, {**spec, "seed": 1}, shots=100)


def test_a_budget_stops_a_sweep_at_the_right_chunk(iqm: Any, budget_path: Path) -> None:
    # max_tasks 5, chunks of 2: chunks 0 and 1 run (4 tasks), chunk 2 would make 6 and is
    # refused whole; nothing of it is submitted
    spec = {"name": "route", "candidates": [iqm_spec(iqm)],
            "budget": {"id": "sweep", "max_tasks": 5}}
    bindings = [{"theta": 0.0}] * 8
    ran: list[Any] = []
    with pytest.raises(BudgetExceededError, match="max_tasks is 5, 4 already spent, this job "
                       "needs 2"):
        for start in range(0, 8, 2):
            ran += run_sweep(spec, FLIP, bindings[start:start + 2], 10, first_index=start)
    assert len(ran) == 4 and len(iqm.jobs) == 2  # two whole chunks, nothing half-submitted
    assert BudgetStore(budget_path).spent("sweep").tasks == 4
    with pytest.raises(BudgetExceededError):  # one batch of 8 in one go is refused as well
        hal.sweep(FLIP, bindings, {**spec, "budget": {"id": "sweep-2", "max_tasks": 5}},
                  shots=10)
    assert BudgetStore(budget_path).spent("sweep-2").tasks == 0


def test_max_shots_and_candidates_the_budget_cannot_price() -> None:
    spec = {"name": "route", "candidates": [IBM["fake_manila"], "sim"],
            "budget": {"id": "shots", "max_shots": 250, "max_cost": 10.0}}
    first = hal.run(BELL, spec, shots=200)
    # the device has no price, so under max_cost it is excluded; the simulator is free
    assert first.backend == "sim"
    reason = first.metadata["routing"]["candidates"][0]["reason"]
    assert "no price for ibm:fake_manila" in reason
    assert first.metadata["routing"]["budget"] == {"id": "shots", "spent_cost": 0.0,
                                                  "spent_shots": 200, "spent_tasks": 1}
    with pytest.raises(BudgetExceededError, match="max_shots is 250, 200 already spent"):
        hal.run(BELL, {**spec, "seed": 3}, shots=51)
    assert hal.run(BELL, {**spec, "seed": 4}, shots=50).shots == 50


def test_a_cheaper_candidate_takes_the_job_when_the_best_is_over_budget(iqm: Any) -> None:
    prices = {**PRICES, "sim": {"per_task": 0.1}}
    spec = {"name": "route", "policy": "first-fit", "prices": prices,
            "candidates": [iqm_spec(iqm), "sim"], "budget": {"id": "mixed", "max_cost": 1.0}}
    result = hal.run(BELL, spec, shots=100)  # iqm would cost 1.1
    assert result.backend == "sim"
    assert "max_cost is 1" in result.metadata["routing"]["candidates"][0]["reason"]


def _reserve_many(path: str, count: int) -> int:
    store, budget = BudgetStore(path), Budget(id="shared", max_tasks=25, max_cost=12.5)
    accepted = 0
    for _ in range(count):
        try:
            store.reserve(budget, Spend(cost=0.5, shots=10, tasks=1))
            accepted += 1
        except BudgetExceededError:
            pass
    return accepted


def test_concurrent_processes_never_overspend(budget_path: Path) -> None:
    with ProcessPoolExecutor(4) as pool:
        accepted = list(pool.map(_reserve_many, [str(budget_path)] * 4, [12] * 4))
    assert sum(accepted) == 25  # 48 attempts, exactly the 25 the budget allows
    assert BudgetStore(budget_path).spent("shared") == Spend(12.5, 250, 25)


def test_dask_workers_share_one_budget(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from distributed import Client

    from hal_workflow.executors import dask as hal_dask

    path = tmp_path / "shared-budgets.sqlite"
    spec = {"name": "route", "candidates": ["sim"], "seed": 1,
            "budget": {"id": "dask", "max_tasks": 5}}
    bindings = [{"theta": 0.0}] * 10
    env = {"HAL_WORKFLOW__ROUTE__BUDGET_PATH": str(path)}
    with hal_dask.local_cluster(n_workers=2, dashboard_address=None, env=env) as cluster, \
            Client(cluster) as client:
        chunks = hal_dask.submit_sweep(client, FLIP, bindings, spec, shots=10, chunk_size=1)
        outcomes = []
        for _, future in chunks:
            try:
                outcomes.append(future.result())
            except BudgetExceededError as exc:
                outcomes.append(exc)
        assert len(client.nthreads()) == 2  # two worker processes shared the budget
    ran = [o for o in outcomes if isinstance(o, list)]
    assert len(ran) == 5 and all(dict(r[0].counts) == {"0": 10} for r in ran)
    assert sum(isinstance(o, BudgetExceededError) for o in outcomes) == 5
    assert BudgetStore(path).spent("dask") == Spend(0.0, 50, 5)
