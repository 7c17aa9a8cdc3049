"""Throughput of small circuits through Dask and Parsl, against the bare engines.

For each engine (Dask LocalCluster with 2 worker processes, Parsl ThreadPoolExecutor with 2
threads, Parsl HighThroughputExecutor with 2 local workers) this measures, in one run:

* ``noop``    the bare engine running a no-op task per item (the engine's own cost per task);
* ``direct``  the bare engine, each task running one circuit by calling the backend itself
              (what you would write without hal-workflow);
* ``ours``    one task per circuit through hal-workflow (``submit_circuit`` / ``run_circuit``);
* ``sweep``   a 10,000-point parameter sweep through hal-workflow's ``sweep`` (batched);

against the single-process sweep (``hal_workflow.sweep``) as reference. Per-task figures are
wall time over the number of tasks, so they include the 2-way parallelism; the variants run
interleaved, ``--repeats`` rounds, and the table shows medians. The sweep results are
compared with the single-process run at the same seed.

Run:  python benchmarks/engines.py [--tasks 200] [--points 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from hal_workflow.circuits import hardware_efficient_ansatz, random_layered
from hal_workflow.orchestration.sync import sweep as local_sweep

SHOTS = 1000
SPEC = {"name": "sim", "seed": 17, "threads": 1}
CIRCUIT = random_layered(5, 4, seed=3)
ANSATZ = hardware_efficient_ansatz(5, 1)
Variants = dict[str, Callable[[], Any]]


def noop(_: int) -> int:
    return 0


def direct(circuit: Any, spec: dict[str, Any], shots: int) -> Any:
    """What a user would write against the bare engine: build the backend, run, return.
    (Self-contained: Parsl ships it to HTEX workers by value, without this module.)"""
    from hal_workflow.orchestration.sync import backend_for, run_sync

    return run_sync(backend_for(spec).run(circuit, shots))


def make_bindings(points: int) -> list[dict[str, float]]:
    values = np.random.default_rng(0).uniform(-np.pi, np.pi, (points, len(ANSATZ.parameters)))
    return [dict(zip(ANSATZ.parameters, map(float, row), strict=True)) for row in values]


def interleaved(variants: Variants, repeats: int) -> tuple[dict[str, float], dict[str, Any]]:
    """Median seconds per variant over ``repeats`` rounds (variants alternate, so drift in
    the machine's load hits all alike), and each variant's last value."""
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    last: dict[str, Any] = {}
    for _ in range(repeats):
        for name, action in variants.items():
            start = time.perf_counter()
            last[name] = action()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in seconds.items()}, last


@contextlib.contextmanager
def dask_variants(tasks: int, bindings: list[dict[str, float]]) -> Iterator[Variants]:
    from distributed import Client

    from hal_workflow.executors import dask as hal_dask

    with hal_dask.local_cluster(n_workers=2, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        hal_dask.sweep(client, ANSATZ, bindings[:100], SPEC, SHOTS, progress=False)  # warm up
        client.gather([client.submit(direct, CIRCUIT, SPEC, SHOTS, pure=False)
                       for _ in range(4)])
        yield {
            "noop": lambda: client.gather([client.submit(noop, i, pure=False)
                                           for i in range(tasks)]),
            "direct": lambda: client.gather([client.submit(direct, CIRCUIT, SPEC, SHOTS,
                                                           pure=False) for _ in range(tasks)]),
            "ours": lambda: client.gather(hal_dask.map_circuits(client, [CIRCUIT] * tasks,
                                                                SPEC, SHOTS)),
            "sweep": lambda: hal_dask.sweep(client, ANSATZ, bindings, SPEC, SHOTS,
                                            progress=False),
        }


@contextlib.contextmanager
def parsl_variants(site: str, tasks: int, bindings: list[dict[str, float]]
                   ) -> Iterator[Variants]:
    import parsl

    from hal_workflow.executors import parsl as hal_parsl
    from hal_workflow.executors.config import parsl_config

    options = {"max_threads": 2} if site == "local_threads" else {"max_workers": 2}
    with tempfile.TemporaryDirectory() as run_dir, \
            parsl.load(parsl_config(site, run_dir=run_dir, **options)):
        noop_app, direct_app = parsl.python_app(noop), parsl.python_app(direct)
        [f.result() for f in hal_parsl.sweep(ANSATZ, bindings[:100], SPEC, SHOTS)]  # warm up
        [direct_app(CIRCUIT, SPEC, SHOTS).result() for _ in range(4)]
        yield {
            "noop": lambda: [f.result() for f in [noop_app(i) for i in range(tasks)]],
            "direct": lambda: [f.result() for f in [direct_app(CIRCUIT, SPEC, SHOTS)
                                                    for _ in range(tasks)]],
            "ours": lambda: [f.result() for f in [hal_parsl.run_circuit(CIRCUIT, SPEC, SHOTS)
                                                  for _ in range(tasks)]],
            "sweep": lambda: [f.result() for f in hal_parsl.sweep(ANSATZ, bindings, SPEC,
                                                                   SHOTS)],
        }


def counts(results: Sequence[Any]) -> list[dict[str, int]]:
    return [dict(r.counts) for r in results]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200, help="tasks per per-task round")
    parser.add_argument("--points", type=int, default=10_000, help="bindings in the sweep")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    bindings = make_bindings(args.points)
    local_sweep(ANSATZ, bindings[:100], SPEC, SHOTS)  # compile, fill the plan cache
    single, last = interleaved({
        "one by one": lambda: [direct(CIRCUIT, SPEC, SHOTS) for _ in range(args.tasks)],
        "sweep": lambda: local_sweep(ANSATZ, bindings, SPEC, SHOTS),
    }, args.repeats)
    reference = counts(last["sweep"])

    engines = {
        "Dask LocalCluster, 2 processes": lambda: dask_variants(args.tasks, bindings),
        "Parsl ThreadPoolExecutor, 2 threads": lambda: parsl_variants(
            "local_threads", args.tasks, bindings),
        "Parsl HTEX, 2 local workers": lambda: parsl_variants("local_htex", args.tasks,
                                                              bindings),
    }
    rows = []
    for name, start in engines.items():
        started = time.perf_counter()
        with start() as variants:
            ready = time.perf_counter() - started
            medians, values = interleaved(variants, args.repeats)
        rows.append((name, ready, medians, counts(values["sweep"]) == reference))

    ms = 1e3 / args.tasks
    print(f"{args.tasks} tasks of a 5-qubit depth-4 circuit ({SHOTS} shots) per round; a sweep "
          f"of {args.points} bindings of a 5-qubit, 20-angle ansatz; medians of "
          f"{args.repeats} interleaved rounds")
    print(f"single process: {single['one by one'] * ms:.2f} ms per circuit one by one, sweep "
          f"{args.points / single['sweep']:,.0f} circuits/s")
    print()
    print("| engine | start s | no-op ms/task | direct ms/task | ours ms/task | ours/direct "
          "| sweep circuits/s | sweep = single process |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, ready, m, identical in rows:
        print(f"| {name} | {ready:.1f} | {m['noop'] * ms:.2f} | {m['direct'] * ms:.2f} | "
              f"{m['ours'] * ms:.2f} | {m['ours'] / m['direct']:.2f} | "
              f"{args.points / m['sweep']:,.0f} | {'yes' if identical else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
