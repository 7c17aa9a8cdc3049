"""A sweep driver the resume tests run as a subprocess and kill: ``python sweep_driver.py
ENGINE SWEEP_ID N DELAY`` runs a seeded, journaled sweep of N bindings on ENGINE (local,
dask), sleeping DELAY seconds after storing each chunk so that a kill lands mid-sweep.
Prints ``{"counts": [...], "reused": K}``."""

from __future__ import annotations

import json
import math
import sys
import time

PROGRAM = """OPENQASM 3.0;
include "stdgates.inc";
input float theta;
input float phi;
qubit[6] q;
bit[6] c;
h q;
rz(theta) q[0];
cx q[0], q[1];
ry(phi) q[2];
cx q[2], q[3];
rx(theta) q[4];
cx q[4], q[5];
c = measure q;
"""
SEED = 1234
SHOTS = 200


def bindings(n: int) -> list[dict[str, float]]:
    return [{"theta": 2 * math.pi * i / n, "phi": math.pi * i / n} for i in range(n)]


def main() -> None:
    engine, sweep_id, n, delay = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    if delay:
        from hal_workflow.orchestration.sweeps import SweepPlan

        store = SweepPlan.store

        def slow_store(self: SweepPlan, start: int, results: list) -> None:
            store(self, start, results)
            time.sleep(delay)

        SweepPlan.store = slow_store  # type: ignore[method-assign]
    if engine == "local":
        import hal_workflow as hal

        results = hal.sweep(PROGRAM, bindings(n), {"name": "sim", "threads": 1}, SHOTS,
                            seed=SEED, sweep_id=sweep_id, chunk_size=10, progress=False)
    else:
        from distributed import Client

        from hal_workflow.executors.dask import local_cluster, sweep

        with local_cluster(n_workers=1, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            results = sweep(client, PROGRAM, bindings(n), {"name": "sim", "threads": 1}, SHOTS,
                            chunk_size=10, progress=False, seed=SEED, sweep_id=sweep_id)
    print(json.dumps({"counts": [dict(r.counts) for r in results],
                      "reused": sum(bool(r.metadata.get("reused")) for r in results)}))


if __name__ == "__main__":
    main()
