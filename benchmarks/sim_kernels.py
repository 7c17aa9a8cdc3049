"""Cycles per amplitude of the block kernels (issue 12): one stage of ``--repeat`` identical
blocks on one chunk (``2^k`` x 8 amplitudes, in L2), one thread, both precisions.

    python benchmarks/sim_kernels.py [--k 13] [--blocks 64] [--ghz 2.6]

Prints a table: kernel, qubits, ns per call, cycles per amplitude (complex64 / complex128),
and the cost table the planner uses (``fusion.DENSE_COST`` etc.) beside it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hal_workflow.simulator import engine, fusion


def _stage(k: int, kind: str, width: int, blocks: int, rng: np.random.Generator):
    n = k + 3
    step = engine._StageStep(n, k, list(range(3, n)), [0, 1, 2])
    pool = []
    for _ in range(blocks):
        targets = sorted(rng.choice(np.arange(3, n), width, replace=False).tolist())
        d = 1 << width
        offset = len(pool)
        if kind == "dense":
            m = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
            q, _ = np.linalg.qr(m)
            pool.extend(q.ravel())
            step.add_dense(targets, offset)
        elif kind in ("perm", "swap", "cx"):
            src = np.array([0, 3, 2, 1]) if kind == "cx" else rng.permutation(d)
            m = np.zeros((d, d), complex)
            ph = np.ones(d) if kind in ("swap", "cx") else np.exp(1j * rng.uniform(0, 6, d))
            m[np.arange(d), src] = ph
            pool.extend(m.ravel())
            step.add_dense(targets, offset, src.astype(np.int64))
        else:  # diag
            pool.extend(np.exp(1j * rng.uniform(0, 6, 1 << width)))
            step.add_diag(targets, offset)
    step.freeze()
    return step, np.array([pool], dtype=complex)


def measure(k: int, kind: str, width: int, blocks: int, dtype, ghz: float, rounds: int = 7):
    rng = np.random.default_rng(1)
    step, pools = _stage(k, kind, width, blocks, rng)
    empty, _ = _stage(k, kind, width, 0, rng)
    state = (np.ones(1 << (k + 3)) / np.sqrt(1 << (k + 3))).astype(dtype)[None, :]
    pools = pools.astype(dtype)
    run = engine._Run(1)

    def timed(s):
        s.apply(state, pools, run)
        best = []
        for _ in range(rounds):
            t = time.perf_counter()
            s.apply(state, pools, run)
            best.append(time.perf_counter() - t)
        return float(np.median(best))

    t_full = timed(step)
    t_empty = timed(empty)
    amps = 1 << (k + 3)
    return (t_full - t_empty) / blocks * ghz * 1e9 / amps, t_empty * ghz * 1e9 / amps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--k", type=int, default=13)
    p.add_argument("--blocks", type=int, default=64)
    p.add_argument("--ghz", type=float, default=2.6)
    p.add_argument("--only", default="")
    a = p.parse_args()
    cases = [("dense", w) for w in (1, 2, 3, 4, 5)] + [
        ("perm", 2), ("perm", 3), ("swap", 2), ("cx", 2), ("diag", 2), ("diag", 8)]
    if a.only:
        cases = [c for c in cases if f"{c[0]}{c[1]}" in a.only.split(",")]
    print(f"k={a.k}, {a.blocks} blocks per stage, cycles/amplitude at {a.ghz} GHz")
    print("| kernel | qubits | c64 | c128 | model |")
    print("|---|---|---|---|---|")
    gathers = []
    for kind, w in cases:
        r64, g64 = measure(a.k, kind, w, a.blocks, np.complex64, a.ghz)
        r128, g128 = measure(a.k, kind, w, a.blocks, np.complex128, a.ghz)
        gathers.append((g64, g128))
        model = fusion.block_cost({"swap": "perm", "cx": "perm"}.get(kind, kind), w)
        print(f"| {kind} | {w} | {r64:.2f} | {r128:.2f} | {model} |")
    print(f"| gather | - | {np.median([g[0] for g in gathers]):.2f} | "
          f"{np.median([g[1] for g in gathers]):.2f} | {fusion.GATHER_COST} |")


if __name__ == "__main__":
    main()
