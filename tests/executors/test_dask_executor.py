"""Quantum jobs as Dask futures on a LocalCluster with two worker processes."""

from __future__ import annotations

import os
import time

import pytest
from distributed import Client

from hal_workflow.circuits import Circuit
from hal_workflow.contract import ExecutionResult, JobState, ValidationError
from hal_workflow.executors import dask as hal_dask
from hal_workflow.executors._resources import available_cores
from hal_workflow.orchestration.sync import sweep as local_sweep

PARAMETRISED = Circuit.from_qasm("""
OPENQASM 3.0;
include "stdgates.inc";
input float theta;
input float phi;
qubit[3] q;
bit[3] c;
ry(theta) q[0];
cx q[0], q[1];
rx(phi) q[2];
c = measure q;
""")
BINDINGS = [{"theta": 0.1 * i, "phi": 0.3 * i} for i in range(40)]


def counts(results: list[ExecutionResult]) -> list[dict[str, int]]:
    return [dict(r.counts) for r in results]


def test_submit_and_map_circuits(dask_client: Client, sim_spec: dict) -> None:
    future = hal_dask.submit_circuit(dask_client, PARAMETRISED, sim_spec, shots=200,
                                     parameters={"theta": 3.141592653589793, "phi": 0.0})
    result = future.result()
    assert result.shots == 200 and result.counts == {"011": 200}  # ry(pi) then cx: q0=q1=1

    circuits = [Circuit.ghz(n) for n in (1, 2, 3)]
    results = [f.result() for f in hal_dask.map_circuits(dask_client, circuits, sim_spec, 100)]
    assert [set(r.counts) for r in results] == [{"0", "1"}, {"00", "11"}, {"000", "111"}]


@pytest.mark.parametrize("backend", ["toy", "sim"])
def test_sweep_matches_single_process_run_whatever_the_chunking(
    dask_client: Client, backend: str
) -> None:
    spec = {"name": backend, "seed": 1234}
    circuit = PARAMETRISED if backend == "sim" else "OPENQASM 3.0; qubit[3] q; input float t;"
    reference = counts(local_sweep(circuit, BINDINGS, spec, shots=300))
    assert len({str(c) for c in reference}) > 1  # the seeds differ between bindings
    for chunk_size in (None, 1, 7):
        results = hal_dask.sweep(dask_client, circuit, BINDINGS, spec, shots=300,
                                 chunk_size=chunk_size, progress=False)
        assert counts(results) == reference, chunk_size


def test_iter_sweep_streams_every_index_once(dask_client: Client, sim_spec: dict) -> None:
    seen = [i for i, r in hal_dask.iter_sweep(dask_client, PARAMETRISED, BINDINGS, sim_spec,
                                              shots=10, progress=False)
            if isinstance(r, ExecutionResult)]
    assert sorted(seen) == list(range(len(BINDINGS)))


def test_chunks_use_the_batch_extension_and_fall_back_without_it(dask_client: Client) -> None:
    circuit = "OPENQASM 3.0; qubit[2] q; input float theta;"
    bindings = [{"theta": float(i)} for i in range(12)]
    batched = hal_dask.submit_sweep(dask_client, circuit, bindings, {"name": "toy"}, 10)
    plain = hal_dask.submit_sweep(dask_client, circuit, bindings,
                                  {"name": "toy", "batch": False}, 10)
    assert len(batched) < len(bindings)  # a few chunks per worker thread
    assert [len(indices) for indices, _ in plain] == [1] * len(bindings)
    for _, future in batched + plain:
        future.result()


def test_failed_circuit_is_a_typed_error_on_its_future(dask_client: Client, sim_spec: dict
                                                       ) -> None:
    # 40 qubits and a T gate: too wide for a statevector, and not Clifford (no tableau)
    too_wide = Circuit.from_qasm('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[40] q;\n'
                                 'bit[1] c;\nt q[0];\nc[0] = measure q[0];\n')
    future = hal_dask.submit_circuit(dask_client, too_wide, sim_spec, shots=10)
    with pytest.raises(ValidationError) as caught:
        future.result()
    assert caught.value.issues and "40" in str(caught.value)
    with pytest.raises(ValidationError):
        hal_dask.sweep(dask_client, too_wide, [{}] * 3, sim_spec, progress=False)
    # the workers survived: the next job runs
    assert hal_dask.submit_circuit(dask_client, Circuit.bell(), sim_spec, 10).result().shots == 10


def test_cancelling_the_future_cancels_the_backend_job(dask_client: Client, sim_spec: dict,
                                                       long_circuit: Circuit) -> None:
    future = hal_dask.submit_circuit(dask_client, long_circuit, sim_spec, shots=10)
    job = _wait_for_job(dask_client, future.key)
    hal_dask.cancel(future)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = dask_client.run(hal_dask.job_status, job["spec"], job["job_id"],
                                workers=[job["worker"]])[job["worker"]]
        if state.is_terminal:
            break
        time.sleep(0.1)
    assert state is JobState.CANCELLED
    assert future.cancelled()


def _wait_for_job(client: Client, key: str, timeout: float = 30) -> dict:
    """The journal entry of the backend job that task ``key`` started, and its worker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker, jobs in client.run(hal_dask.worker_jobs, key).items():
            if jobs:
                return {**jobs[0], "worker": worker}
        time.sleep(0.05)
    raise AssertionError(f"task {key} started no backend job within {timeout} s")


async def _exit_process() -> None:
    os._exit(1)


def test_killed_worker_loses_no_result(dask_client: Client) -> None:
    spec = {"name": "toy", "seed": 5, "delay": 0.05}
    circuit = "OPENQASM 3.0; qubit[4] q; input float theta;"
    bindings = [{"theta": float(i)} for i in range(60)]
    reference = counts(local_sweep(circuit, bindings, {"name": "toy", "seed": 5}, shots=50))
    before = set(dask_client.scheduler_info()["workers"])
    results: dict[int, ExecutionResult] = {}
    killed = None
    for index, result in hal_dask.iter_sweep(dask_client, circuit, bindings, spec, 50,
                                             chunk_size=5, progress=False):
        results[index] = result
        if killed is None:
            busy = [w for w, keys in dask_client.processing().items() if keys]
            killed = busy[0]
            dask_client.run(_exit_process, workers=[killed], wait=False)
    assert killed is not None
    assert counts([results[i] for i in range(len(bindings))]) == reference
    dask_client.wait_for_workers(2, timeout=60)  # the nanny restarted it
    assert killed not in dask_client.scheduler_info()["workers"]
    assert len(before) == 2


def test_local_cluster_caps_threads_in_worker_environment(dask_client: Client) -> None:
    env = dask_client.run(lambda: (os.environ.get("NUMBA_NUM_THREADS"),
                                   os.environ.get("HAL_WORKFLOW_BACKEND_THREADS")))
    cores = available_cores()
    expected = str(max(1, cores // 2))
    assert set(env.values()) == {(expected, expected)}
    spec = dask_client.run(lambda: __import__("hal_workflow.executors._tasks",
                                              fromlist=["x"]).worker_spec("sim"))
    assert all(s == {"name": "sim", "threads": int(expected)} for s in spec.values())
