"""The CUDA-Q adapter: the conformance kit on ``qpp-cpu``, distributions against qiskit's
``Statevector``, one kernel per sweep, seeding, GPU targets and validation.

``cudaq`` is large and lives in its own environment: run these with ``.ci/extra-tests.sh cudaq``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import numpy as np
import pytest

pytest.importorskip("cudaq", reason="cudaq is not installed here: run .ci/extra-tests.sh cudaq")

import hal_workflow
from hal_workflow import BackendUnavailableError, ConfigurationError, ValidationCode
from hal_workflow.backends import cudaq as adapter
from hal_workflow.orchestration.sync import run_sync
from hal_workflow.testing import ConformanceSuite, circuits

SPEC: dict[str, Any] = {"name": "cudaq", "target": "qpp-cpu"}

MIXED = """OPENQASM 3.0;
include "stdgates.inc";
input float a;
qubit[4] q; bit[4] c;
h q[0]; sx q[1]; cx q[0], q[1]; crx(a) q[1], q[2]; cp(a * 2) q[0], q[3];
cu(0.3, 0.2, 0.1, 0.7) q[2], q[0]; ccx q[0], q[1], q[3]; cswap q[3], q[0], q[2];
ctrl(2) @ ry(a) q[0], q[1], q[2]; negctrl @ h q[3], q[1]; inv @ u3(0.3, a, 0.5) q[2];
pow(2) @ t q[1]; ctrl @ sx q[0], q[3]; ctrl @ gphase(0.4) q[2]; ch q[1], q[0];
cy q[2], q[3]; u2(0.1, 0.2) q[0]; ctrl(2) @ s q[0], q[1], q[3];
negctrl(2) @ x q[0], q[1], q[2]; swap q[0], q[3]; h q[3]; negctrl @ sx q[3], q[0];
ctrl @ negctrl @ sx q[0], q[3], q[2]; pow(-1) @ cu(0.3, 0.5, 0.2, 1.1) q[3], q[0]; h q[3];
c[0] = measure q[2]; c[1] = measure q[0]; c[3] = measure q[3];
"""


class TestCudaqConformance(ConformanceSuite):
    backend_spec: ClassVar[dict[str, Any]] = SPEC
    # The kit's default long job (10 qubits x 150 layers, ~4000 gates) spends minutes in
    # CUDA-Q's JIT, which cannot be interrupted; and a kernel is compiled once per circuit, so
    # a second run of one is short. A running CUDA-Q call cannot stop: the cancel and
    # wait-timeout checks use a job held QUEUED behind the busy worker (queued_job below).
    long_circuit = circuits.deep(8, layers=30)
    cancels_running_jobs = False

    @contextlib.asynccontextmanager
    async def queued_job(self, backend: Any) -> AsyncIterator[str | None]:
        # every CUDA-Q call runs on one worker thread: keep it busy and the next job waits
        release = threading.Event()
        adapter._WORKER.submit(release.wait, 30)
        try:
            yield await backend.submit(self.bell_circuit, 10)
        finally:
            release.set()


def _exact(text: str, binding: dict[str, float]) -> dict[str, float]:
    """Qiskit's exact distribution over the classical bits of ``text``."""
    from qiskit import qasm3
    from qiskit.quantum_info import Statevector

    circuit = qasm3.loads(text)
    bound = circuit.assign_parameters({p: binding[p.name] for p in circuit.parameters})
    probs = Statevector(bound.remove_final_measurements(inplace=False)).probabilities_dict()
    measured = {op.qubits[0]: op.clbits[0] for op in bound.data if op.operation.name == "measure"}
    out: dict[str, float] = {}
    width = bound.num_clbits
    for key, p in probs.items():
        bits = ["0"] * width
        for qubit, clbit in measured.items():
            q, c = bound.find_bit(qubit).index, bound.find_bit(clbit).index
            bits[width - 1 - c] = key[len(key) - 1 - q]
        out["".join(bits)] = out.get("".join(bits), 0.0) + p
    return out


def _tv(counts: dict[str, int], exact: dict[str, float]) -> float:
    shots = sum(counts.values())
    return 0.5 * sum(abs(counts.get(k, 0) / shots - exact.get(k, 0.0))
                     for k in set(counts) | set(exact))


def test_modifiers_and_measurement_map_match_qiskit() -> None:
    shots = 50_000
    for a in (0.0, 0.8, -2.3):
        result = hal_workflow.run(MIXED, backend={**SPEC, "seed": 1}, shots=shots,
                                  parameters={"a": a})
        assert all(len(k) == 4 and k[1] == "0" for k in result.counts)  # clbit 2 unmeasured
        assert _tv(dict(result.counts), _exact(MIXED, {"a": a})) < 0.01


def test_sweep_builds_one_kernel_and_seeds_each_element() -> None:
    backend = hal_workflow.get_backend(SPEC)
    batch = backend.extension("batch")
    bindings = [{"a": x} for x in np.linspace(-1, 2, 6)]

    async def sweep(seed: int) -> list[Any]:
        ids = await batch.submit_sweep(MIXED, bindings, 500, seed=seed)
        return [await backend.result_when_done(i, timeout=60) for i in ids]

    first = run_sync(sweep(10))
    assert len(backend._kernels) == 1
    assert [r.metadata["seed"] for r in first] == list(range(10, 16))
    # element i alone with seed 10 + i gives the same counts: chunking does not matter
    alone = run_sync(sweep_one(backend, bindings[3], 13))
    assert dict(alone.counts) == dict(first[3].counts)
    assert dict(first[0].counts) != dict(first[5].counts)


async def sweep_one(backend: Any, binding: dict[str, float], seed: int) -> Any:
    job_id = await backend.submit(MIXED, 500, binding, seed=seed)
    return await backend.result_when_done(job_id, timeout=60)


def test_validate_reports_what_cudaq_cannot_run() -> None:
    backend = hal_workflow.get_backend(SPEC)
    text = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q; bit[2] c;
h q[0]; c[0] = measure q[0]; x q[0]; reset q[1];
if (c[0]) { x q[1]; }
pow(0.5) @ x q[1];
c[1] = measure q[1];
"""
    report = run_sync(backend.validate(text))
    codes = [i.code for i in report.issues]
    assert codes.count(ValidationCode.UNSUPPORTED_FEATURE) == 4
    messages = " ".join(i.message for i in report.issues)
    assert "measured qubit 0" in messages and "reset" in messages and "pow(0.5)" in messages


def test_unknown_target_names_the_choices() -> None:
    with pytest.raises(ConfigurationError, match="qpp-cpu"):
        hal_workflow.get_backend({"name": "cudaq", "target": "nope"})


@pytest.mark.parametrize("target", ["nvidia", "nvidia-fp64", "tensornet"])
def test_gpu_targets(target: str) -> None:
    import cudaq

    if cudaq.num_available_gpus() == 0:
        with pytest.raises(BackendUnavailableError, match="needs an NVIDIA GPU"):
            hal_workflow.get_backend({"name": "cudaq", "target": target})
        pytest.skip(f"no GPU here: target {target!r} is refused (checked above)")
    result = hal_workflow.run(MIXED, backend={"name": "cudaq", "target": target, "seed": 2},
                              shots=20_000, parameters={"a": 0.8})
    assert _tv(dict(result.counts), _exact(MIXED, {"a": 0.8})) < 0.02


def test_density_matrix_target_runs() -> None:
    result = hal_workflow.run(MIXED, backend={"name": "cudaq", "target": "density-matrix-cpu",
                                              "seed": 4}, shots=20_000, parameters={"a": 0.8})
    assert _tv(dict(result.counts), _exact(MIXED, {"a": 0.8})) < 0.02
