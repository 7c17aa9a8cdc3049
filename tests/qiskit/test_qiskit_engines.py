"""The primitives spread over Dask and Parsl give what they give in process, seed for seed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from qiskit.circuit.library import efficient_su2, real_amplitudes
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp, random_pauli_list

from hal_workflow.qiskit import HalEstimator, HalSampler

SPEC = {"name": "sim", "threads": 1}
CIRCUIT = efficient_su2(3, reps=1)
OBSERVABLES = [SparsePauliOp(random_pauli_list(3, 6, seed=1, phase=False),
                             np.linspace(-1, 1, 6)), SparsePauliOp("ZZZ")]
VALUES = np.random.default_rng(2).uniform(-3, 3, (13, CIRCUIT.num_parameters))
PUB = (CIRCUIT, [[o] for o in OBSERVABLES], VALUES)  # shape (2, 13)
H2 = SparsePauliOp.from_list([
    ("II", -1.052373245772859), ("IZ", 0.39793742484318045), ("ZI", -0.39793742484318045),
    ("ZZ", -0.01128010425623538), ("XX", 0.18093119978423156),
])


def in_process() -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    measured = HalEstimator(SPEC, {"seed": 4}).run([PUB], precision=0.05).result()[0]
    counts = HalSampler(SPEC, {"seed": 4}).run(
        [(CIRCUIT.measure_all(inplace=False), VALUES)], shots=300).result()[0]
    return measured.data.evs, measured.data.stds, counts.data.meas.get_counts()


def check_engine(executor: object) -> None:
    evs, stds, counts = in_process()
    options = {"seed": 4, "chunk_size": 4}  # 4 chunks of the 13 bindings
    spread = HalEstimator(SPEC, options, executor=executor).run([PUB], precision=0.05
                                                               ).result()[0]
    np.testing.assert_array_equal(spread.data.evs, evs)
    np.testing.assert_array_equal(spread.data.stds, stds)
    exact = HalEstimator(SPEC, options, executor=executor).run([PUB]).result()[0]
    reference = StatevectorEstimator().run([PUB]).result()[0]
    np.testing.assert_allclose(exact.data.evs, reference.data.evs, atol=1e-10)
    sampled = HalSampler(SPEC, options, executor=executor).run(
        [(CIRCUIT.measure_all(inplace=False), VALUES)], shots=300).result()[0]
    assert sampled.data.meas.get_counts() == counts


@pytest.fixture(scope="module")
def dask_client() -> Iterator[object]:
    from distributed import Client

    from hal_workflow.executors.dask import local_cluster

    with local_cluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            yield client


def test_primitives_on_a_dask_local_cluster(dask_client: object) -> None:
    check_engine(dask_client)


def test_vqe_on_dask_reaches_the_ground_energy(dask_client: object) -> None:
    qiskit_algorithms = pytest.importorskip("qiskit_algorithms")
    estimator = HalEstimator(SPEC, {"chunk_size": 1}, executor=dask_client)
    vqe = qiskit_algorithms.VQE(estimator, real_amplitudes(2, reps=2),
                                qiskit_algorithms.optimizers.SLSQP(maxiter=100),
                                initial_point=np.full(6, 0.3))
    exact = np.linalg.eigvalsh(H2.to_matrix()).min()
    assert vqe.compute_minimum_eigenvalue(H2).eigenvalue == pytest.approx(exact, abs=1e-6)


def test_primitives_on_parsl_threads(tmp_path: Path) -> None:
    import parsl

    from hal_workflow.executors.config import parsl_config

    config = parsl_config("local_threads", run_dir=str(tmp_path), max_threads=2)
    with parsl.load(config):
        check_engine(config)
