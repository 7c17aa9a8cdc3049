"""The blocking facade ``hal_workflow.orchestration.sync``: with and without a running loop."""

from __future__ import annotations

import asyncio
import pickle
import threading
from typing import Any

import pytest
from contract_backends import BatchingBackend, ClassicalBackend, classical_program, outcome

from hal_workflow.backends.registry import register_backend
from hal_workflow.contract import JobCancelledError, JobState
from hal_workflow.orchestration import sync

SPEC = {"name": "classical-sync", "num_qubits": 3}


@pytest.fixture(autouse=True)
def registered(clean_registry: Any) -> Any:
    register_backend("classical-sync", ClassicalBackend)
    register_backend("batching-sync", BatchingBackend)
    yield
    sync._backends.clear()


async def where() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    await asyncio.sleep(0)
    return asyncio.get_running_loop(), threading.current_thread()


def test_run_sync_without_a_loop_reuses_one_loop_per_thread() -> None:
    first_loop, first_thread = sync.run_sync(where())
    second_loop, _ = sync.run_sync(where())
    assert first_loop is second_loop and not first_loop.is_closed()
    assert first_thread is threading.current_thread()


def test_run_sync_inside_a_running_loop() -> None:
    # As in Jupyter: synchronous code called from a coroutine while its loop runs.
    async def notebook_cell() -> Any:
        outer = asyncio.get_running_loop()
        inner_loop, inner_thread = sync.run_sync(where())
        result = sync.run(classical_program(3, [1]), SPEC, shots=3, timeout=5)
        return outer, inner_loop, inner_thread, result

    outer, inner_loop, inner_thread, result = asyncio.run(notebook_cell())
    assert inner_loop is not outer and inner_thread is not threading.current_thread()
    assert result.counts == {outcome(3, [1]): 3}


def test_run_sync_propagates_errors() -> None:
    async def fails() -> None:
        raise JobCancelledError("job-1")

    with pytest.raises(JobCancelledError, match="job-1"):
        sync.run_sync(fails())


def test_run_and_validate() -> None:
    result = sync.run(classical_program(3, [0, 2]), SPEC, shots=7, timeout=5)
    assert result.counts == {outcome(3, [0, 2]): 7}
    assert sync.validate(classical_program(3, []), SPEC, shots=7).valid
    assert not sync.validate(classical_program(4, []), SPEC).valid


@pytest.mark.parametrize("name", ["classical-sync", "batching-sync"])
def test_sweep_in_order(name: str) -> None:
    bindings = [{"theta": 0.1}, {"theta": 0.2}]
    results = sync.sweep(classical_program(2, [1]), bindings, {"name": name}, shots=2, timeout=5)
    assert [r.metadata["parameters"] for r in results] == bindings
    assert all(r.counts == {outcome(2, [1]): 2} for r in results)


def test_backend_for_shares_one_backend_per_spec() -> None:
    first = sync.backend_for({"name": "classical-sync", "num_qubits": 3})
    assert sync.backend_for({"num_qubits": 3, "name": "classical-sync"}) is first
    assert sync.backend_for({"name": "classical-sync", "num_qubits": 2}) is not first
    assert sync.backend_for(first) is first  # a backend passes through


def test_job_handle_pickles_and_reattaches() -> None:
    job = sync.submit(classical_program(3, [2]), SPEC, shots=4)
    assert job.backend_spec == SPEC
    again = pickle.loads(pickle.dumps(job))
    assert again == job
    assert again.result(timeout=5).counts == {outcome(3, [2]): 4}
    assert again.wait(timeout=5).state is JobState.COMPLETED
    assert again.status().state is JobState.COMPLETED


def test_job_cancel() -> None:
    job = sync.submit(classical_program(1, [0]), {**SPEC, "delay": 0.5}, shots=1)
    job.cancel()
    assert job.wait(timeout=5).state is JobState.CANCELLED  # cancelled during its 0.5 s run
    with pytest.raises(JobCancelledError):
        job.result(timeout=5)
