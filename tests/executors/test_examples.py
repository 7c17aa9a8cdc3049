"""The examples, run on every engine and checked against exact answers: numpy's eigvalsh for
VQE, brute force over all partitions for QAOA."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from engine_helpers import EXAMPLES, example, parsl_loaded
from qiskit.quantum_info import SparsePauliOp

from hal_workflow.executors.engines import Engine

SPEC = {"name": "sim", "seed": 5, "threads": 1}


vqe_h2 = example("vqe_h2")
qaoa_maxcut = example("qaoa_maxcut")


@pytest.fixture(scope="module", params=["dask", "local_threads", "local_htex"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Engine]:
    """The session's Dask cluster, then Parsl on threads, then Parsl on HTEX workers."""
    if request.param == "dask":
        yield Engine("dask", client=request.getfixturevalue("dask_client"))
        return
    with parsl_loaded(request.param, tmp_path_factory.mktemp(request.param)) as dfk:
        yield Engine("parsl", dfk=dfk)


def test_h2_hamiltonian_matches_qiskit() -> None:
    """The example's matrix (qubit 0 rightmost) equals Qiskit's for the same labels."""
    reference = SparsePauliOp.from_list([(label, c) for c, label in vqe_h2.H2_TERMS]).to_matrix()
    assert np.allclose(vqe_h2.hamiltonian_matrix(vqe_h2.H2_TERMS), reference)
    assert vqe_h2.exact_ground_energy() == pytest.approx(
        np.linalg.eigvalsh(reference)[0], abs=1e-12)


def test_vqe_reaches_the_exact_ground_energy(engine: Engine) -> None:
    outcome = vqe_h2.vqe(engine, SPEC, exact=True, shots=1)
    exact = float(np.linalg.eigvalsh(vqe_h2.hamiltonian_matrix(vqe_h2.H2_TERMS))[0])
    assert abs(outcome.energy - exact) < vqe_h2.CHEMICAL_ACCURACY
    assert outcome.energy >= exact - 1e-9  # variational: never below the ground state


def test_vqe_from_measurements_is_close(dask_client: object) -> None:
    """Measured energies (1e5 shots per basis): within a few times the shot noise."""
    outcome = vqe_h2.vqe(Engine("dask", client=dask_client), SPEC, exact=False,
                         shots=100_000, iterations=40)
    assert abs(outcome.energy - vqe_h2.exact_ground_energy()) < 5e-3


def max_cut(nodes: int, edges: list[tuple[int, int]]) -> int:
    """Brute force, independently of the example: every assignment as a row of bits."""
    bits = np.array(list(itertools.product((0, 1), repeat=nodes)))
    return int(max(sum(row[a] != row[b] for a, b in edges) for row in bits))


def test_qaoa_finds_the_maximum_cut(engine: Engine) -> None:
    outcome = qaoa_maxcut.solve(engine, SPEC, depth=2, grid=8, shots=500)
    degrees = np.bincount(np.array(outcome.edges).ravel(), minlength=8)
    assert list(degrees) == [3] * 8 and len(set(outcome.edges)) == 12
    assert outcome.optimum == max_cut(8, outcome.edges)
    assert outcome.best_cut == outcome.optimum
    assert outcome.refined >= outcome.grid_best - 0.3  # refinement does not lose ground


def test_qaoa_script_at_depth_one() -> None:
    assert qaoa_maxcut.main(["--engine", "local", "--depth", "1", "--grid", "6"]) == 0


def _script(name: str, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                          text=True, timeout=180, env={**os.environ, **(env or {})})


def test_vqe_script_default_run() -> None:
    """The README's job: local Dask cluster, simulator, exit 0 within chemical accuracy."""
    done = _script("vqe_h2.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "chemical accuracy 0.0016 Ha: reached" in done.stdout
    assert "exact energy    -1.857275 Ha" in done.stdout


@pytest.mark.parametrize("connect", [True, False], ids=["scheduler-from-env", "local-cluster"])
def test_dask_notebook_runs_as_a_script(connect: bool, dask_client: object) -> None:
    address = dask_client.scheduler.address if connect else ""  # type: ignore[attr-defined]
    done = _script("dask_notebook.py", env={"DASK_SCHEDULER_ADDRESS": address})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "workers: 2" in done.stdout
    # <Z0 Z1> = cos(theta) at theta = 0, ~pi/2, pi
    line = next(x for x in done.stdout.splitlines() if x.startswith("<Z0 Z1>"))
    first, middle, last = (float(v) for v in line.split("[")[1].rstrip("]").split(","))
    assert first == 1.0 and last == -1.0 and abs(middle) < 0.1
