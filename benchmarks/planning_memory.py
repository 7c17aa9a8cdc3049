"""Memory the simulator's planner (gate fusion, cache blocking) needs, beyond the state.

    python benchmarks/planning_memory.py          # ~1-3 minutes on 2 cores

Each cell runs in its own process: it lowers the program, then builds the unitary plan
(``Executable(...).prepare()``: fusion, stages, block matrices) under tracemalloc, and reports
the traced peak of planning alone (numpy buffers included; no state vector is allocated while
planning) and the planning time. Issue 10's target: a 100,000-gate program plans in under
200 MiB; before the fix, fusion kept every intermediate block (10k gates 376 MiB, 40k gates
2.7 GiB), the worst case being long runs of gates that all merge into one block.

Programs: ``chain`` is N single-qubit gates alternating ``h``/``t`` on one qubit (every gate
joins the same block: the old worst case); ``random`` is N gates of ``h``/``rz``/``cx`` on 20
qubits (cache-blocked path from 20 qubits up with the default options); ``diagonal`` is N
``rz``/``cp`` gates on 6 qubits (one phase table absorbs them).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
import tracemalloc

from hal_workflow.circuits.ir import GateOp, LoweredCircuit


def circuit(kind: str, gates: int) -> LoweredCircuit:
    rng = random.Random(7)
    ops: list[GateOp] = []
    if kind == "chain":
        ops = [GateOp("h" if i % 2 else "t", (0,)) for i in range(gates)]
        return LoweredCircuit(1, 0, tuple(ops))
    if kind == "diagonal":
        for _ in range(gates):
            a, b = rng.sample(range(6), 2)
            ops.append(GateOp("rz", (a,), (rng.uniform(-3, 3),)) if rng.random() < 0.5
                       else GateOp("cp", (a, b), (rng.uniform(-3, 3),)))
        return LoweredCircuit(6, 0, tuple(ops))
    for _ in range(gates):
        a, b = rng.sample(range(20), 2)
        r = rng.random()
        ops.append(GateOp("h", (a,)) if r < 0.3 else
                   GateOp("rz", (a,), (rng.uniform(-3, 3),)) if r < 0.6 else GateOp("cx", (a, b)))
    return LoweredCircuit(20, 0, tuple(ops))


def cell(kind: str, gates: int) -> dict[str, float]:
    from hal_workflow.simulator.engine import EngineOptions, Executable

    lowered = circuit(kind, gates)
    tracemalloc.start()
    start = time.perf_counter()
    executable = Executable(lowered, EngineOptions())
    executable.prepare()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"seconds": seconds, "peak_mib": peak / 2**20}


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--cell", nargs=2, help=argparse.SUPPRESS)
    args = options.parse_args()
    if args.cell:
        print(json.dumps(cell(args.cell[0], int(args.cell[1]))))
        return
    print("| program | gates | planning peak MiB | planning s | target |")
    print("|---|---:|---:|---:|---|")
    for kind, gates in (("chain", 10_000), ("chain", 40_000), ("chain", 100_000),
                        ("random", 40_000), ("random", 100_000), ("diagonal", 100_000)):
        out = subprocess.run([sys.executable, __file__, "--cell", kind, str(gates)],
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        target = ("< 200 MiB: met" if result["peak_mib"] < 200 else "< 200 MiB: MISSED") \
            if gates >= 100_000 else ""
        print(f"| {kind} | {gates:,} | {result['peak_mib']:.1f} | {result['seconds']:.1f} | "
              f"{target} |")


if __name__ == "__main__":
    main()
