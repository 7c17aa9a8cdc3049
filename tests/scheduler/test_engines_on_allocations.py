"""Dask and Parsl workers inside SLURM jobs on the test cluster run a sweep and the VQE example.

The clusters come from the project's site configs (``hal_workflow.executors.config``:
``dask_cluster(site, ...)``, ``parsl_config(site, ...)``), kept on loopback. After the
engine shuts down, every batch job it started must be gone from ``squeue``. The PBS variants
drive dask-jobqueue's ``PBSCluster`` and Parsl's ``TorqueProvider`` through Slurm's
Torque-style wrappers (PBS commands over Slurm).
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from scheduler_helpers import wait_for

from hal_workflow.circuits import Circuit
from hal_workflow.contract.types import ExecutionResult

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

RX = """OPENQASM 3.0;
include "stdgates.inc";
input float theta;
qubit[1] q;
bit[1] c;
rx(theta) q[0];
c[0] = measure q[0];
"""
THETAS = [0.0, math.pi, 0.0, math.pi]  # deterministic outcomes: 0, 1, 0, 1
SHOTS = 50


def check_sweep(results: list[ExecutionResult]) -> None:
    """rx(0) always measures 0 and rx(pi) always 1 (exact), in input order."""
    assert [r.counts for r in results] == [{"0": SHOTS}, {"1": SHOTS}, {"0": SHOTS},
                                           {"1": SHOTS}]


def run_vqe_example(engine: object) -> None:
    """``examples/vqe_h2.py``'s VQE on ``engine`` reaches the exact ground energy (eigvalsh)
    within chemical accuracy."""
    path = Path(__file__).resolve().parents[2] / "examples" / "vqe_h2.py"
    spec = importlib.util.spec_from_file_location("vqe_h2", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["vqe_h2"] = module
    spec.loader.exec_module(module)
    outcome = module.vqe(engine, {"name": "sim", "seed": 5}, exact=True, shots=1000)
    assert outcome.converged, f"VQE error {outcome.error:.2e} Ha"


def jobs_named(fragment: str) -> list[str]:
    """Slurm ids of live jobs whose name contains ``fragment``."""
    out = subprocess.run(["squeue", "-h", "-o", "%i %j"], capture_output=True, text=True,
                         check=True).stdout
    return [line.split()[0] for line in out.splitlines() if fragment in line]


@pytest.fixture
def tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A unique job-name fragment; any job still carrying it is cancelled afterwards.

    Runs the test in ``tmp_path``: Slurm's qsub wrapper ignores ``#PBS -o``, so PBS-style
    jobs write their output files into the directory they were submitted from."""
    monkeypatch.chdir(tmp_path)
    name = f"hal{uuid.uuid4().hex[:6]}"
    yield name
    leftover = jobs_named(name)
    if leftover:
        subprocess.run(["scancel", *leftover], check=False)


@pytest.mark.parametrize("site", ["slurm", "pbs"], ids=["slurm", "pbs_commands_over_slurm"])
def test_dask_workers_in_batch_jobs(site: str, tag: str, tmp_path: Path) -> None:
    from distributed import Client

    from hal_workflow.executors import dask as hal_dask
    from hal_workflow.executors.config import dask_cluster
    from hal_workflow.executors.engines import Engine

    extra = [f"--output={tmp_path}/dask-%j.out"] if site == "slurm" else []
    cluster = dask_cluster(site, job_name=tag, queue="debug", cores=1, processes=1,
                           memory="1GB", walltime="00:10:00", interface="lo",
                           scheduler_options={"interface": "lo", "dashboard_address": None},
                           job_extra_directives=extra)
    with cluster, Client(cluster) as client:
        cluster.scale(2)
        client.wait_for_workers(2, timeout=90)
        assert len(jobs_named(tag)) == 2  # each worker is its own batch job
        check_sweep(hal_dask.sweep(client, Circuit.from_qasm(RX),
                                   [{"theta": t} for t in THETAS], "sim", SHOTS,
                                   progress=False))
        run_vqe_example(Engine("dask", client=client))
    wait_for(lambda: not jobs_named(tag), 30, "the worker jobs to leave squeue")


@pytest.mark.parametrize("site", ["slurm", "pbs"], ids=["slurm", "pbs_commands_over_slurm"])
def test_parsl_workers_in_batch_jobs(site: str, tag: str, tmp_path: Path) -> None:
    import parsl

    from hal_workflow.executors import parsl as hal_parsl
    from hal_workflow.executors.config import parsl_config
    from hal_workflow.executors.engines import Engine

    common = {"walltime": "00:10:00", "address": "127.0.0.1", "max_workers_per_node": 2,
              "run_dir": str(tmp_path / "runinfo"), "label": tag}
    if site == "slurm":
        config = parsl_config("slurm", partition="debug", cores_per_node=2, launcher="single",
                              **common)
    else:
        config = parsl_config("pbs", variant="torque", queue="debug", cpus_per_node=2, **common)
    with parsl.load(config) as dfk:
        futures = hal_parsl.sweep(Circuit.from_qasm(RX), [{"theta": t} for t in THETAS],
                                  "sim", SHOTS)
        check_sweep([f.result(timeout=120) for f in futures])
        run_vqe_example(Engine("parsl", dfk=dfk))
        provider = dfk.executors[tag].provider
        block_jobs = [str(j) for j in provider.resources]
        assert block_jobs, "no batch job was submitted"
    wait_for(lambda: not jobs_named(tag) and not any(
        j in jobs_named("") for j in block_jobs), 30, "the block jobs to leave squeue")
