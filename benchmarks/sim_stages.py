"""Where a sampling run of ``sim`` spends its time, stage by stage (issue 12): each call of
the stage kernel timed, with the stage's block count, its line pattern (how physical qubits 0-2
lie in its buffer, ``kernels.line_map``: 7 = they are the lanes, 0 = they are local, -1 = a
chunk qubit is among them and amplitudes move one at a time), and cycles per amplitude at
``--ghz``.

    python benchmarks/sim_stages.py --circuit qv --qubits 22 --precision complex64

The run is warm (one untimed run first); the table is the last of ``--repeat`` runs.
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
    a = p.parse_args()

    from benchmarks.simulator import circuit_text
    from hal_workflow.simulator import engine
    from hal_workflow.simulator.backend import SimulatorBackend

    text, _ = circuit_text(a.circuit, a.qubits)
    backend = SimulatorBackend({"name": "sim", "threads": a.threads, "seed": 1,
                                "method": "statevector", "precision": a.precision})
    loop = asyncio.new_event_loop()
    loop.run_until_complete(backend.run(text, 1000))
    rows: list[tuple[float, int, bool]] = []
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


if __name__ == "__main__":
    main()
