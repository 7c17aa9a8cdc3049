"""HalBackend: a BackendV2 whose Target comes from Capabilities and calibration."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.providers import BackendV2, JobStatus, JobV1
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

import hal_workflow
from hal_workflow.contract.errors import ConfigurationError
from hal_workflow.qiskit import HalBackend, HalProvider, HalSampler

FAKE = {"name": "ibm", "backend": "fake_manila", "seed": 3}


def ghz(n: int) -> QuantumCircuit:
    qc = QuantumCircuit(n)
    qc.h(0)
    for i in range(n - 1):
        qc.cx(i, i + 1)
    qc.measure_all()
    return qc


def tvd(a: dict[str, int], b: dict[str, int]) -> float:
    na, nb = sum(a.values()), sum(b.values())
    return 0.5 * sum(abs(a.get(k, 0) / na - b.get(k, 0) / nb) for k in set(a) | set(b))


def test_sim_backend_runs_transpiled_circuits_at_their_width() -> None:
    backend = HalProvider().get_backend({"name": "sim", "seed": 1})
    assert isinstance(backend, BackendV2)
    assert backend.target.num_qubits == backend.hal_backend.capabilities().num_qubits
    compiled = transpile(ghz(3), backend, optimization_level=1)
    assert compiled.num_qubits == 3  # no layout onto all simulator qubits
    names = set(get_standard_gate_name_mapping())
    assert set(compiled.count_ops()) - {"barrier", "measure"} <= names
    job = backend.run([compiled, ghz(2)], shots=500)
    assert isinstance(job, JobV1)
    assert job.status() is JobStatus.DONE
    result = job.result()
    assert set(result.get_counts(0)) == {"000", "111"} and sum(result.get_counts(0).values()) \
        == 500
    assert set(result.get_counts(1)) == {"00", "11"}
    assert len(job.hal_job_ids) == 2


def test_parameter_binds_and_bad_options() -> None:
    from qiskit.circuit import Parameter

    theta = Parameter("theta")
    qc = QuantumCircuit(1)
    qc.rx(theta, 0)
    qc.measure_all()
    backend = HalBackend("sim")
    counts = backend.run(qc, shots=100, parameter_binds=[{theta: np.pi}]).result().get_counts()
    assert counts == {"1": 100}
    with pytest.raises(ConfigurationError, match="unknown run option"):
        backend.run(qc, shots=10, memory=True)


def test_target_from_ibm_calibration_matches_the_device() -> None:
    backend = HalBackend(FAKE)
    device = FakeManilaV2().target
    target = backend.target
    assert target.num_qubits == device.num_qubits
    assert set(target.operation_names) - {"measure", "reset"} == \
        set(device.operation_names) - {"measure", "reset", "delay", "if_else", "switch_case",
                                       "for_loop", "while_loop"}
    for name in ("cx", "sx", "x"):
        for qargs, props in device[name].items():
            ours = target[name][qargs]
            assert ours.error == pytest.approx(props.error)
            assert ours.duration == pytest.approx(props.duration)
    for q in range(device.num_qubits):
        assert target["measure"][(q,)].error == pytest.approx(device["measure"][(q,)].error)
        assert target.qubit_properties[q].t1 == pytest.approx(device.qubit_properties[q].t1)
    compiled = transpile(ghz(3), backend, seed_transpiler=1)
    assert set(compiled.count_ops()) <= {"cx", "rz", "sx", "x", "id", "measure", "barrier"}
    edges = set(device.build_coupling_map().get_edges())
    for instruction in compiled.data:
        if instruction.operation.num_qubits == 2:
            pair = tuple(compiled.find_bit(q).index for q in instruction.qubits)
            assert pair in edges
    # the layout avoids nothing the device's own target would not: same chosen qubits
    theirs = transpile(ghz(3), FakeManilaV2(), seed_transpiler=1)
    assert compiled.layout.initial_index_layout(filter_ancillas=True) == \
        theirs.layout.initial_index_layout(filter_ancillas=True)


def test_counts_agree_with_the_ibm_adapters_own() -> None:
    backend = HalBackend(FAKE)
    shots = 4000
    ours = backend.run(transpile(ghz(3), backend, seed_transpiler=2), shots=shots).result()
    adapter = hal_workflow.run(ghz(3), FAKE, shots=shots)
    counts = ours.get_counts()
    assert sum(counts.values()) == shots
    assert counts["000"] + counts["111"] > 0.8 * shots  # noisy, but a GHZ state
    assert tvd(counts, dict(adapter.counts)) < 0.06


def test_sampler_on_a_fake_ibm_device() -> None:
    result = HalSampler(FAKE).run([ghz(2)], shots=2000).result()[0]
    counts = result.data.meas.get_counts()
    assert counts.get("00", 0) + counts.get("11", 0) > 1700


def test_provider_lists_backends_that_build_here() -> None:
    names = {b.hal_spec["name"] for b in HalProvider().backends()}
    assert "sim" in names
    assert all(isinstance(b, HalBackend) for b in HalProvider().backends("sim"))


# -- SLURM ------------------------------------------------------------------------------------
@pytest.fixture
def slurm_root(tmp_path: Path):  # type: ignore[no-untyped-def]
    root = tmp_path / "jobs"
    root.mkdir()
    yield root
    ids = [json.loads(p.read_text()).get("id") for p in root.rglob("scheduler_job.json")]
    ids = [str(i) for i in ids if i]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30, check=False)


def slurm(root: Path, **options: object) -> dict[str, object]:
    return {"name": "slurm", "backend": "sim", "site": "ci", "job_root": str(root), **options}


@pytest.mark.slurm
def test_primitives_and_backend_through_slurm(slurm_root: Path) -> None:
    spec = slurm(slurm_root)
    result = HalSampler(spec, {"default_shots": 200}).run([ghz(2)]).result()[0]
    counts = result.data.meas.get_counts()
    assert set(counts) == {"00", "11"} and sum(counts.values()) == 200
    job = HalBackend(spec).run([ghz(2), ghz(3)], shots=100)
    assert set(job.result(timeout=120).get_counts(1)) == {"000", "111"}
    assert job.status() is JobStatus.DONE


@pytest.mark.slurm
def test_cancel_reaches_the_slurm_job(slurm_root: Path) -> None:
    backend = HalBackend(slurm(slurm_root, prologue=["sleep 300"]))
    job = backend.run(ghz(2), shots=10)
    assert job.status() in (JobStatus.QUEUED, JobStatus.RUNNING)
    job.cancel()
    deadline = time.monotonic() + 30
    while job.status() is not JobStatus.CANCELLED and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.status() is JobStatus.CANCELLED
    scheduler_id = job.hal_job_ids[0].partition("@")[0]
    state = subprocess.run(["squeue", "-h", "-t", "all", "-j", scheduler_id, "-o", "%T"],
                           capture_output=True, text=True, check=False).stdout.split()
    assert state in (["CANCELLED"], [])  # cancelled, or already purged from squeue
