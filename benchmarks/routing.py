"""What routing costs: one job and one sweep, through a route spec and directly.

    python benchmarks/routing.py            # --repeats 15 --bindings 1000; ~1 min

Each row is a way to run a 2-qubit Bell circuit (1000 shots), or a sweep of a 1-qubit
rotation: directly on the simulator, or through a route spec with more and more to decide.
Variants run interleaved, ``repeats`` rounds, and the table shows medians and the ratio to the
direct run. Routing is per job (availability, validation, for best-fidelity calibration and a
transpilation per candidate), and once per sweep, whose cost is then shared by its elements.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import hal_workflow as hal
from hal_workflow import config
from hal_workflow.testing import circuits

BELL = circuits.bell()[0]
ROTATION = circuits.rotation("theta")
MANILA = {"name": "ibm", "backend": "fake_manila"}
LIMA = {"name": "ibm", "backend": "fake_lima"}


def variants(budget_id: str) -> dict[str, Any]:
    return {
        "direct: sim": {"name": "sim", "seed": 1},
        "route [sim], first-fit": {"name": "route", "candidates": [{"name": "sim", "seed": 1}]},
        "route [sim] + budget": {"name": "route", "candidates": [{"name": "sim", "seed": 1}],
                                 "budget": {"id": budget_id, "max_tasks": 10**9}},
        "route [sim, manila, lima], first-fit": {
            "name": "route", "policy": "first-fit", "candidates": ["sim", MANILA, LIMA]},
        "route [manila, lima, sim], best-fidelity": {
            "name": "route", "policy": "best-fidelity", "candidates": [MANILA, LIMA, "sim"]},
    }


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--bindings", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, config.set(
            {"route.budget-path": f"{tmp}/budgets.sqlite"}):
        specs = variants("benchmark")
        for spec in specs.values():  # build backends, compile kernels, warm caches
            hal.run(BELL, spec, shots=1000)
        job: dict[str, list[float]] = {name: [] for name in specs}
        for _ in range(args.repeats):
            for name, spec in specs.items():
                job[name].append(timed(lambda spec=spec: hal.run(BELL, spec, shots=1000)))
        bindings = [{"theta": 0.001 * i} for i in range(args.bindings)]
        sweep_specs = {k: specs[k] for k in ("direct: sim", "route [sim], first-fit",
                                             "route [sim] + budget")}
        sweep: dict[str, list[float]] = {name: [] for name in sweep_specs}
        for _ in range(max(3, args.repeats // 5)):
            for name, spec in sweep_specs.items():
                sweep[name].append(timed(
                    lambda spec=spec: hal.sweep(ROTATION, bindings, spec, shots=1000)))
    base = statistics.median(job["direct: sim"])
    sweep_base = statistics.median(sweep["direct: sim"])
    print(f"{args.repeats} rounds, medians; sweep: {args.bindings} bindings x 1000 shots\n")
    print("| variant | ms per job | / direct | sweep s | / direct |")
    print("|---|---:|---:|---:|---:|")
    for name, times in job.items():
        median = statistics.median(times)
        row = f"| {name} | {median * 1e3:.2f} | {median / base:.2f} |"
        if name in sweep:
            s = statistics.median(sweep[name])
            row += f" {s:.3f} | {s / sweep_base:.2f} |"
        else:
            row += " | |"
        print(row)


if __name__ == "__main__":
    main()
