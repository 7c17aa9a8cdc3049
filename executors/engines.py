"""One interface over the ways to run a sweep: in this process, on Dask, or on Parsl.

Examples and benchmarks take ``--engine local|dask|parsl`` and should not care which it is::

    with open_engine("dask", workers=2) as engine:
        results = engine.sweep(circuit, bindings, backend="sim", shots=1000)

:func:`open_engine` starts (and afterwards stops) what the engine needs: a LocalCluster, or
the Dask scheduler at ``address`` (``$DASK_SCHEDULER_ADDRESS``); a Parsl config from a site
(``local_htex`` by default) with its run directory under a temporary directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hal_workflow.backends.registry import BackendSpec
from hal_workflow.contract.errors import ConfigurationError

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit
    from hal_workflow.contract.types import ExecutionResult

ENGINES = ("local", "dask", "parsl")


def parse_spec(text: str) -> str | dict[str, Any]:
    """A backend spec from the command line: a JSON object, else a plain name (``sim``)."""
    if not text.lstrip().startswith("{"):
        return text.strip()
    try:
        return dict(json.loads(text))
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"backend spec is not valid JSON: {exc}") from None


@dataclass
class Engine:
    """A started engine: ``sweep`` and ``estimate`` block and return results in input order."""

    name: str
    client: Any = None  # the Dask client, for engine "dask"
    dfk: Any = None  # the Parsl DataFlowKernel, for engine "parsl"
    progress: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def sweep(
        self,
        circuit: Circuit | str,
        bindings: Sequence[Mapping[str, float]],
        backend: BackendSpec = "sim",
        shots: int = 1000,
        chunk_size: int | None = None,
    ) -> list[ExecutionResult]:
        """Run ``circuit`` once per binding; results in input order."""
        if self.name == "dask":
            from hal_workflow.executors import dask as hal_dask

            return hal_dask.sweep(self.client, circuit, bindings, backend, shots, chunk_size,
                                  progress=self.progress)
        if self.name == "parsl":
            from hal_workflow.executors import parsl as hal_parsl

            futures = hal_parsl.sweep(circuit, bindings, backend, shots, chunk_size)
            return [f.result() for f in futures]
        from hal_workflow.orchestration.sync import sweep

        return sweep(circuit, bindings, backend, shots)

    def estimate(
        self,
        circuit: Circuit | str,
        observable: Any,
        bindings: Sequence[Mapping[str, float]],
        backend: BackendSpec = "sim",
        shots: int = 1000,
        exact: bool | None = None,
    ) -> list[float]:
        """``<observable>`` after ``circuit`` at each binding (see :mod:`.observables`)."""
        if self.name == "dask":
            from hal_workflow.executors import dask as hal_dask

            return hal_dask.estimate(self.client, circuit, observable, bindings, backend, shots,
                                     exact)
        if self.name == "parsl":
            from hal_workflow.executors import parsl as hal_parsl

            futures = hal_parsl.estimate(circuit, observable, bindings, backend, shots, exact)
            return [f.result() for f in futures]
        from hal_workflow.executors._tasks import run_estimates

        return run_estimates(backend, circuit, observable, bindings, shots, exact)


@contextlib.contextmanager
def open_engine(
    name: str,
    workers: int | None = None,
    address: str | None = None,
    site: str | None = None,
    progress: bool = False,
    **options: Any,
) -> Iterator[Engine]:
    """Start engine ``name`` with ``workers`` workers, yield it, and shut it down afterwards.

    ``address``: a Dask scheduler to connect to instead of starting a LocalCluster (default
    ``$DASK_SCHEDULER_ADDRESS``). ``site``: the Parsl site config (default ``local_htex``).
    ``options`` go to ``local_cluster`` or the Parsl site's ``make_config``.
    """
    if name == "local":
        yield Engine("local", progress=progress)
    elif name == "dask":
        with _dask_client(workers, address or os.environ.get("DASK_SCHEDULER_ADDRESS"),
                          options) as client:
            yield Engine("dask", client=client, progress=progress)
    elif name == "parsl":
        import parsl

        from hal_workflow.executors.config import parsl_config

        chosen = site or "local_htex"
        if workers is not None:
            options.setdefault("max_threads" if chosen == "local_threads" else "max_workers",
                               workers)
        with tempfile.TemporaryDirectory(prefix="hal-parsl-") as run_dir:
            options.setdefault("run_dir", run_dir)
            with parsl.load(parsl_config(chosen, **options)) as dfk:
                yield Engine("parsl", dfk=dfk, progress=progress, details={"site": chosen})
    else:
        raise ConfigurationError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")


@contextlib.contextmanager
def _dask_client(workers: int | None, address: str | None, options: dict[str, Any]
                 ) -> Iterator[Any]:
    from distributed import Client

    if address:
        with Client(address) as client:
            yield client
        return
    from hal_workflow.executors.dask import local_cluster

    options.setdefault("dashboard_address", None)
    with local_cluster(n_workers=workers, **options) as cluster, Client(cluster) as client:
        yield client
