"""Shared engines for the executor tests: one Dask LocalCluster (2 worker processes) for the
session, and Parsl loaded with a thread pool or a local HighThroughputExecutor per module."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

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


EXAMPLES = HERE.parents[1] / "examples"


@functools.cache
def example(name: str) -> ModuleType:
    """``examples/<name>.py`` imported as module ``name`` (once per session)."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def parsl_loaded(site: str, run_dir: Path) -> Iterator[object]:
    """Parsl loaded with a repository site config and two workers; cleaned up after."""
    import parsl
    from hal_workflow.executors.config import parsl_config

    options = {"max_threads": 2} if site == "local_threads" else {"max_workers": 2}
    with parsl.load(parsl_config(site, run_dir=str(run_dir), **options)) as dfk:
        yield dfk


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


def sim_sweeps_seed_per_element() -> bool:
    """Whether the simulator samples sweep element ``j`` of ``submit_sweep(seed=s)`` with seed
    ``s + j`` (as ``submit_batch`` does), which chunk-invariant seeding needs."""
    from hal_workflow.circuits import Circuit
    from hal_workflow.orchestration.sync import backend_for, run_sync

    circuit = Circuit.from_qasm('OPENQASM 3.0; include "stdgates.inc"; input float t; '
                                "qubit[3] q; bit[3] c; ry(t) q[0]; h q[1]; h q[2]; c = measure q;")
    batch = backend_for({"name": "sim", "threads": 1}).extension("batch")

    async def counts(seed: int, bindings: list) -> list:
        backend = backend_for({"name": "sim", "threads": 1})
        ids = await batch.submit_sweep(circuit, bindings, 100, seed=seed)
        return [dict((await backend.result(i)).counts) for i in ids]

    bindings = [{"t": 0.3}, {"t": 1.1}]
    return run_sync(counts(5, bindings))[1] == run_sync(counts(6, bindings[1:]))[0]
