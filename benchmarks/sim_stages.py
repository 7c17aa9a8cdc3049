"""Where a sampling run of ``sim`` spends its time, stage by stage (issue 12): each call of
the stage kernel timed, with the stage's block count, its line pattern (how physical qubits 0-2
lie in its buffer, ``kernels.line_map``: 7 = they are the lanes, 0 = they are local, -1 = a
chunk qubit is among them and amplitudes move one at a time), and cycles per amplitude at
``--ghz``.

    python benchmarks/sim_stages.py --circuit qv --qubits 22 --precision complex64

The run is warm (one untimed run first); the table is the last of ``--repeat`` runs.

With ``--empty``, each stage of the sampling plan is run on its own, beside a stage with the
same layout and no operations (its gather and scatter alone), medians of ``--repeat``; the
table adds the stage's lowest chunk qubit (a chunk's memory comes in runs of 2^that
amplitudes)::

    python benchmarks/sim_stages.py --circuit qv --qubits 24 --precision complex128 --empty
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--circuit", default="qv")
    p.add_argument("--qubits", type=int, default=22)
    p.add_argument("--precision", default="complex64")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--ghz", type=float, default=2.6)
    p.add_argument("--empty", action="store_true",
                   help="time each stage alone and an empty stage of the same layout")
    a = p.parse_args()
    if a.empty:
        _empty_stages(a)
        return

    from benchmarks.simulator import circuit_text
    from hal_workflow.simulator import engine
    from hal_workflow.simulator.backend import SimulatorBackend

    text, _ = circuit_text(a.circuit, a.qubits)
    backend = SimulatorBackend({"name": "sim", "threads": a.threads, "seed": 1,
                                "method": "statevector", "precision": a.precision})
    loop = asyncio.new_event_loop()
    loop.run_until_complete(backend.run(text, 1000))
    rows: list[tuple[float, int, int]] = []
    kernels = engine.K
    for name in ("run_stage_parallel", "run_stage"):
        kernel = getattr(kernels, name)

        def timed(*args: Any, kernel: Any = kernel) -> Any:
            start = time.perf_counter()
            out = kernel(*args)
            # args: state, c0, c1, fresh, start, template, norms, k, loc_lo, loc_hi,
            # lane_off, lines, chunk_q, descs, ...
            rows.append((time.perf_counter() - start, int(args[13].shape[0]),
                         int(args[11][-1])))
            return out

        setattr(kernels, name, timed)
    for _ in range(a.repeat):
        rows.clear()
        start = time.perf_counter()
        result = loop.run_until_complete(backend.run(text, 1000))
        total = time.perf_counter() - start
    amplitudes = 1 << a.qubits
    print(f"{a.circuit} {a.qubits} qubits, {a.precision}, {a.threads} threads: "
          f"{total * 1e3:.1f} ms per run, plan {result.metadata.get('plan')}")
    print("| stage call | ms | blocks | line pattern | cycles/amplitude |")
    print("|---|---|---|---|---|")
    for i, (seconds, blocks, pattern) in enumerate(rows):
        cycles = seconds * a.ghz * 1e9 * a.threads / amplitudes
        print(f"| {i} | {seconds * 1e3:.1f} | {blocks} | {pattern} | {cycles:.2f} |")
    print(f"stage calls: {sum(r[0] for r in rows) * 1e3:.1f} ms of {total * 1e3:.1f} ms")


def _empty_stages(a: argparse.Namespace) -> None:
    import numpy as np

    from benchmarks.simulator import circuit_text
    from hal_workflow.circuits import Circuit
    from hal_workflow.simulator import engine

    text, _ = circuit_text(a.circuit, a.qubits)
    options = engine.EngineOptions(precision=a.precision)
    sampling = engine.Executable(Circuit.from_qasm(text).lowered, options).sampling
    assert sampling is not None  # a statevector-mode circuit
    plan = sampling.get()
    n = a.qubits
    dtype = np.dtype(engine.DTYPES[a.precision])
    state = np.full((1, 1 << n), 1 / np.sqrt(1 << n), dtype=dtype)
    pools = plan.pools(None, 1, dtype)
    run = engine.make_run(a.threads)

    def cycles(stage: Any) -> float:
        stage.apply(state, pools, run)
        times = []
        for _ in range(a.repeat):
            start = time.perf_counter()
            stage.apply(state, pools, run)
            times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2] * a.ghz * 1e9 * a.threads / (1 << n)

    print(f"{a.circuit} {n} qubits, {a.precision}, {a.threads} threads, cycles per amplitude")
    print("| stage | blocks | line pattern | lowest chunk qubit | stage | empty stage |")
    print("|---|---|---|---|---|---|")
    totals = [0.0, 0.0]
    for i, step in enumerate(plan.steps):
        if not isinstance(step, engine._StageStep):
            continue
        empty = engine._StageStep(n, step.k, step.local, step.lanes)
        empty.freeze()
        full, bare = cycles(step), cycles(empty)
        totals[0] += full
        totals[1] += bare
        print(f"| {i} | {len(step.descs)} | {int(step.lines[-1])} | "
              f"{min(step.chunk, default='-')} | {full:.2f} | {bare:.2f} |")
    print(f"| all | | | | {totals[0]:.1f} | {totals[1]:.1f} |")


if __name__ == "__main__":
    main()
