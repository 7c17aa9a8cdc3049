"""Shared engines for the executor tests: one Dask LocalCluster (2 worker processes) for the
session, and Parsl loaded with a thread pool or a local HighThroughputExecutor per module."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the toy backend module, for this process and (inherited) workers
    sys.path.insert(0, str(HERE))

import toy_backend  # noqa: E402

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
    """Parsl loaded with a site config; HTEX workers are separate processes."""
    import parsl
    from hal_workflow.executors.config import parsl_config

    run_dir = tmp_path_factory.mktemp(f"parsl-{request.param}")
    options = {"max_threads": 2} if request.param == "local_threads" else {"max_workers": 2}
    config = parsl_config(request.param, run_dir=str(run_dir), **options)
    with parsl.load(config) as dfk:
        yield dfk
