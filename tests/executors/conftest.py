"""Shared engines for the executor tests: one Dask LocalCluster (2 worker processes) for the
session, and Parsl loaded with a thread pool or a local HighThroughputExecutor per module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # toy_backend and engine_helpers, here and in (spawned) workers
    sys.path.insert(0, str(HERE))

import toy_backend  # noqa: E402
from engine_helpers import parsl_loaded  # noqa: E402

toy_backend.register()


@pytest.fixture(scope="session")
def dask_client() -> Iterator[object]:
    from distributed import Client

    from hal_workflow.executors.dask import local_cluster

    with local_cluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            client.register_plugin(toy_backend.RegisterToy())
            yield client


@pytest.fixture(scope="module", params=["local_threads", "local_htex"])
def parsl_dfk(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[object]:
    """Parsl on threads, then on a local HighThroughputExecutor (worker processes)."""
    with parsl_loaded(request.param, tmp_path_factory.mktemp(f"parsl-{request.param}")) as dfk:
        yield dfk


@pytest.fixture(scope="session")
def sim_spec() -> dict:
    """The simulator with one thread per job (the test machine has two cores)."""
    return {"name": "sim", "threads": 1}


@pytest.fixture(scope="session")
def long_circuit() -> object:
    """A 22-qubit deep circuit: it runs on the simulator's job thread for many seconds."""
    from hal_workflow.circuits import random_layered

    return random_layered(22, 100, seed=1)
