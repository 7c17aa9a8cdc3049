"""The built-in simulator dispatched through SLURM: same answers as running it here.

Counts are checked against an independent reference (qiskit's ``Statevector``), against a
local run with the same seed (identical counts), sweeps against exact outcomes; the cancel
test stops a long 24-qubit simulation mid-run and checks that nothing of it is left.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
from pathlib import Path
from typing import Any

import pytest
from scheduler_helpers import read_json, run_job_processes, squeue_state, wait_for

import hal_workflow
from hal_workflow.circuits import Circuit
from hal_workflow.contract.types import JobState
from hal_workflow.orchestration.scheduler import SchedulerBackend
from hal_workflow.testing import circuits

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.usefixtures("slurm_cluster"),
    pytest.mark.skipif(importlib.util.find_spec("hal_workflow.simulator.backend") is None,
                       reason="hal_workflow.simulator.backend does not exist yet"),
]

ANGLES = (0.7, 1.9, 2.4)
CHAIN = f"""OPENQASM 3.0;
include "stdgates.inc";
qubit[3] q;
bit[3] c;
ry({ANGLES[0]}) q[0];
ry({ANGLES[1]}) q[1];
cx q[0], q[1];
ry({ANGLES[2]}) q[2];
cx q[1], q[2];
c = measure q;
"""
RX = """OPENQASM 3.0;
include "stdgates.inc";
input float theta;
qubit[2] q;
bit[2] c;
rx(theta) q[0];
cx q[0], q[1];
c = measure q;
"""


def exact_chain() -> dict[str, float]:
    """CHAIN's distribution from qiskit (an independent simulator); bit 0 rightmost in both."""
    from qiskit import QuantumCircuit
    from qiskit.quantum_info import Statevector

    qc = QuantumCircuit(3)
    qc.ry(ANGLES[0], 0)
    qc.ry(ANGLES[1], 1)
    qc.cx(0, 1)
    qc.ry(ANGLES[2], 2)
    qc.cx(1, 2)
    return dict(Statevector(qc).probabilities_dict())


def tvd(counts: dict[str, int], exact: dict[str, float]) -> float:
    shots = sum(counts.values())
    keys = set(counts) | set(exact)
    return 0.5 * sum(abs(counts.get(k, 0) / shots - exact.get(k, 0.0)) for k in keys)


def slurm_spec(job_root: Path, inner: Any = "sim", **options: Any) -> dict[str, Any]:
    return {"name": "slurm", "backend": inner, "site": "ci", "job_root": str(job_root),
            **options}


def test_run_through_slurm_matches_the_exact_distribution(job_root: Path) -> None:
    """``hal_workflow.run`` from the login node; TVD to qiskit's exact distribution."""
    shots = 8000
    result = hal_workflow.run(Circuit.from_qasm(CHAIN), backend=slurm_spec(job_root),
                              shots=shots, timeout=120)
    assert result.backend == "slurm:sim" and sum(result.counts.values()) == shots
    assert all(len(k) == 3 for k in result.counts)
    # 8 outcomes at 8000 shots: the expected TVD is about 0.01; 0.04 is > 5 sigma away
    assert tvd(dict(result.counts), exact_chain()) < 0.04


def test_same_seed_same_counts_as_a_local_run(job_root: Path) -> None:
    inner = {"name": "sim", "seed": 1234}
    local = hal_workflow.run(CHAIN, backend=inner, shots=2000)
    remote = hal_workflow.run(CHAIN, backend=slurm_spec(job_root, inner), shots=2000,
                              timeout=120)
    assert dict(remote.counts) == dict(local.counts)


def test_sweep_is_one_array_job_gathered_in_input_order(job_root: Path) -> None:
    backend = hal_workflow.get_backend(slurm_spec(job_root))
    assert isinstance(backend, SchedulerBackend)
    thetas = [math.pi, 0.0, math.pi]  # exact outcomes 11, 00, 11
    ids = asyncio.run(backend.submit_sweep(RX, [{"theta": t} for t in thetas], 100))
    array_ids = {i.partition("@")[0].rpartition("_")[0] for i in ids}
    assert len(array_ids) == 1  # one sbatch --array
    array_id = array_ids.pop()
    assert [i.partition("@")[0] for i in ids] == [f"{array_id}_{n}" for n in range(3)]
    results = hal_workflow.sweep(RX, [{"theta": t} for t in thetas], backend=backend,
                                 shots=100, timeout=120)
    assert [dict(r.counts) for r in results] == [{"11": 100}, {"00": 100}, {"11": 100}]
    gathered = [asyncio.run(backend.result(i)) for i in ids]
    assert [r.job_id for r in gathered] == ids
    assert [dict(r.counts) for r in gathered] == [dict(r.counts) for r in results]


def test_cancel_stops_a_long_simulation(job_root: Path) -> None:
    """A 24-qubit deep circuit is cancelled mid-run: CANCELLED, no run-job process left for
    its directory (checked in /proc), no result file."""
    backend = hal_workflow.get_backend(slurm_spec(job_root))
    assert isinstance(backend, SchedulerBackend)
    job_id = asyncio.run(backend.submit(circuits.deep(24, layers=100), 100))
    directory = Path(job_id.partition("@")[2])
    wait_for(lambda: (directory / "vendor_job.json").exists(), 60, "the simulation to start")
    assert run_job_processes(directory), "run-job is not running"
    assert asyncio.run(backend.status(job_id)).state is JobState.RUNNING
    asyncio.run(backend.cancel(job_id))  # returns once scancel accepted the request
    status = wait_for(lambda: (s := asyncio.run(backend.status(job_id))).is_terminal and s,
                      30, "the cancel to show")
    assert (status.state, status.vendor_state) == (JobState.CANCELLED, "CANCELLED")
    assert squeue_state(job_id.partition("@")[0]) == "CANCELLED"
    wait_for(lambda: not run_job_processes(directory), 15, "run-job to exit")
    assert not (directory / "result.json").exists()
    assert not list(directory.glob("result*.tmp*"))
    assert "SIGTERM" in read_json(directory / "error.json")["reason"]  # it saw the signal


def test_nested_scheduler_specs_are_refused_before_anything_is_submitted(
        job_root: Path) -> None:
    """slurm wrapping slurm (or pbs) would hold the outer allocation while the inner job
    queues (the probe deadlocked until the time limit): refused when the backend is built."""
    from hal_workflow.contract.errors import ConfigurationError

    for inner_name in ("slurm", "pbs"):
        inner = {"name": inner_name, "backend": "sim", "job_root": str(job_root / "inner")}
        with pytest.raises(ConfigurationError, match="itself a batch scheduler"):
            hal_workflow.get_backend(slurm_spec(job_root, inner))
    with pytest.raises(ConfigurationError, match="itself a batch scheduler"):
        hal_workflow.run(CHAIN, backend=slurm_spec(job_root, "slurm"), shots=10)
    assert not list(job_root.iterdir())
