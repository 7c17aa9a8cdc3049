"""Throughput of small circuits through Dask and Parsl, against the bare engines.

For each engine (Dask LocalCluster with 2 worker processes, Parsl ThreadPoolExecutor with 2
threads, Parsl HighThroughputExecutor with 2 local workers) this measures, in one run:

* ``noop``    the bare engine: one no-op task per item (the engine's own cost per task);
* ``direct``  the bare engine, each task running one circuit by calling the backend itself;
* ``ours``    one task per circuit through hal-workflow (``submit_circuit`` / ``run_circuit``);
* ``sweep``   a 10,000-point parameter sweep through hal-workflow's ``sweep`` (batched);

plus the single-process sweep (``hal_workflow.sweep``) as reference. Per-task figures are
wall time over the number of tasks (medians of ``--repeats`` runs), so they include the
2-way parallelism. The sweep results must equal the single-process run at the same seed.

Run:  python benchmarks/engines.py [--tasks 200] [--points 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hal_workflow.circuits import hardware_efficient_ansatz, random_layered
from hal_workflow.orchestration.sync import sweep as local_sweep

SHOTS = 1000
SPEC = {"name": "sim", "seed": 17, "threads": 1}
CIRCUIT = random_layered(5, 4, seed=3)
ANSATZ = hardware_efficient_ansatz(5, 1)


def noop(_: int) -> int:
    return 0


def direct(circuit: Any, spec: dict[str, Any], shots: int) -> Any:
    """What a user would write against the bare engine: build the backend, run, return.
    (Self-contained: Parsl ships it to HTEX workers by value, without this module.)"""
    from hal_workflow.orchestration.sync import backend_for, run_sync

    return run_sync(backend_for(spec).run(circuit, shots))


def bindings(points: int) -> list[dict[str, float]]:
    values = np.random.default_rng(0).uniform(-np.pi, np.pi, (points, len(ANSATZ.parameters)))
    return [dict(zip(ANSATZ.parameters, map(float, row), strict=True)) for row in values]


def timed(action: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median seconds of ``repeats`` calls, and the last call's value."""
    seconds, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = action()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), value


def counts(results: Sequence[Any]) -> list[dict[str, int]]:
    return [dict(r.counts) for r in results]


def bench_dask(tasks: int, sweep_bindings: list[dict[str, float]], repeats: int
               ) -> dict[str, Any]:
    from distributed import Client
    from hal_workflow.executors import dask as hal_dask

    with hal_dask.local_cluster(n_workers=2, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        warm = hal_dask.sweep(client, ANSATZ, sweep_bindings[:50], SPEC, SHOTS, progress=False)
        assert len(warm) == 50
        client.gather([client.submit(direct, CIRCUIT, SPEC, SHOTS, pure=False) for _ in range(4)])
        row: dict[str, Any] = {}
        row["noop"], _ = timed(lambda: client.gather(
            [client.submit(noop, i, pure=False) for i in range(tasks)]), repeats)
        row["direct"], _ = timed(lambda: client.gather([
            client.submit(direct, CIRCUIT, SPEC, SHOTS, pure=False) for _ in range(tasks)]),
            repeats)
        row["ours"], _ = timed(lambda: client.gather(
            hal_dask.map_circuits(client, [CIRCUIT] * tasks, SPEC, SHOTS)), repeats)
        row["sweep"], row["results"] = timed(lambda: hal_dask.sweep(
            client, ANSATZ, sweep_bindings, SPEC, SHOTS, progress=False), repeats)
    return row


def bench_parsl(site: str, tasks: int, sweep_bindings: list[dict[str, float]], repeats: int
                ) -> dict[str, Any]:
    import parsl
    from hal_workflow.executors import parsl as hal_parsl
    from hal_workflow.executors.config import parsl_config

    options = {"max_threads": 2} if site == "local_threads" else {"max_workers": 2}
    with tempfile.TemporaryDirectory() as run_dir:
        started = time.perf_counter()
        with parsl.load(parsl_config(site, run_dir=run_dir, **options)):
            noop_app, direct_app = parsl.python_app(noop), parsl.python_app(direct)
            [f.result() for f in hal_parsl.sweep(ANSATZ, sweep_bindings[:50], SPEC, SHOTS)]
            [direct_app(CIRCUIT, SPEC, SHOTS).result() for _ in range(4)]
            row: dict[str, Any] = {"start": time.perf_counter() - started}
            row["noop"], _ = timed(lambda: [f.result() for f in
                                            [noop_app(i) for i in range(tasks)]], repeats)
            row["direct"], _ = timed(lambda: [f.result() for f in [
                direct_app(CIRCUIT, SPEC, SHOTS) for _ in range(tasks)]], repeats)
            row["ours"], _ = timed(lambda: [f.result() for f in [
                hal_parsl.run_circuit(CIRCUIT, SPEC, SHOTS) for _ in range(tasks)]], repeats)
            row["sweep"], row["results"] = timed(lambda: [f.result() for f in hal_parsl.sweep(
                ANSATZ, sweep_bindings, SPEC, SHOTS)], repeats)
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200, help="tasks per per-task run")
    parser.add_argument("--points", type=int, default=10_000, help="bindings in the sweep")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    sweep_bindings = bindings(args.points)
    local_sweep(ANSATZ, sweep_bindings[:50], SPEC, SHOTS)  # compile the kernels
    single, reference = timed(lambda: local_sweep(ANSATZ, sweep_bindings, SPEC, SHOTS),
                              args.repeats)
    per_circuit, _ = timed(lambda: [direct(CIRCUIT, SPEC, SHOTS) for _ in range(args.tasks)],
                           args.repeats)
    rows = {
        "dask (2 procs)": bench_dask(args.tasks, sweep_bindings, args.repeats),
        "parsl threads (2)": bench_parsl("local_threads", args.tasks, sweep_bindings,
                                         args.repeats),
        "parsl htex (2)": bench_parsl("local_htex", args.tasks, sweep_bindings, args.repeats),
    }

    ms = 1e3 / args.tasks
    print(f"5 qubits, depth-4 layered circuit, {SHOTS} shots; {args.tasks} tasks per run, "
          f"median of {args.repeats}; sweep of {args.points} bindings (20 angles)")
    print(f"single process: {per_circuit * ms:.2f} ms/circuit one by one; sweep "
          f"{args.points / single:,.0f} circuits/s")
    print()
    print("| engine | no-op ms/task | direct ms/task | ours ms/task | ours/direct "
          "| (ours-noop)/(direct-noop) | sweep circuits/s | sweep = 1 process |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, row in rows.items():
        identical = counts(row["results"]) == counts(reference)
        extra = (row["ours"] - row["noop"]) / max(row["direct"] - row["noop"], 1e-9)
        print(f"| {name} | {row['noop'] * ms:.2f} | {row['direct'] * ms:.2f} | "
              f"{row['ours'] * ms:.2f} | {row['ours'] / row['direct']:.2f} | {extra:.2f} | "
              f"{args.points / row['sweep']:,.0f} | {'yes' if identical else 'NO'} |")
    for name, row in rows.items():
        if "start" in row:
            print(f"{name}: start-up {row['start']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
