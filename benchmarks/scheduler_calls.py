"""Scheduler calls per element of a SLURM array sweep, against the real cluster.

Counting shims (``sbatch``, ``squeue``, ``sacct``, ``scancel``, ``scontrol``) are put first on
``PATH``: each appends its name to a log and execs the real command. The benchmark then runs
``hal_workflow.sweep`` on ``{"name": "slurm", "backend": {"name": "sim", "seed": S}}`` (one
array job, waited on by one poller for every task) and prints, per array size, every call by
command, the calls per element, and the target from issue 11 (30 elements: at most 3 per
element in total; 1,000 elements: at most 1). The counts are also checked against
``hal_workflow.sweep`` on ``sim`` with the same seed (the seeding rule).

For reference, the issue's probe of the previous code (one ``squeue`` per task per round,
``squeue -j 56_0,57 -r`` missing tasks, two ``sacct`` calls for each) measured 63-117
``squeue`` and 98-108 ``sacct`` calls for 30 elements: 5.4-7.5 per element.

Run (on a login node of a cluster; a 1,000-element array needs ``MaxArraySize`` > 1000 and
takes minutes on a small cluster):

    python benchmarks/scheduler_calls.py                 # 30 elements
    python benchmarks/scheduler_calls.py --elements 30 1000
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = ("sbatch", "squeue", "sacct", "scancel", "scontrol")
TARGETS = {30: 3.0, 1000: 1.0}
QASM = """OPENQASM 3.0;
include "stdgates.inc";
input float theta;
qubit[2] q;
bit[2] c;
rx(theta) q[0];
cx q[0], q[1];
c = measure q;
"""


def install_shims(bin_dir: Path, log: Path) -> None:
    """A counting shim per scheduler command, first on PATH for this process and its jobs."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in COMMANDS:
        real = shutil.which(name)
        if real is None:
            sys.exit(f"{name} is not on PATH: run this on a login node of a Slurm cluster")
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\necho {name} >> "{log}"\nexec {real} "$@"\n')
        shim.chmod(0o755)
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def run(elements: int, root: Path, log: Path, shots: int, seed: int) -> dict[str, object]:
    import hal_workflow

    bindings = [{"theta": 0.01 * i} for i in range(elements)]
    spec = {"name": "slurm", "site": "ci", "job_root": str(root / f"jobs-{elements}"),
            "backend": {"name": "sim", "seed": seed}}
    log.write_text("")
    start = time.perf_counter()
    results = hal_workflow.sweep(QASM, bindings, backend=spec, shots=shots, timeout=7200)
    wall = time.perf_counter() - start
    calls = collections.Counter(log.read_text().split())
    local = hal_workflow.sweep(QASM, bindings, backend={"name": "sim", "seed": seed},
                               shots=shots)
    same = [dict(r.counts) for r in results] == [dict(r.counts) for r in local]
    return {"elements": elements, "calls": calls, "wall": wall, "same": same}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--elements", type=int, nargs="+", default=[30])
    parser.add_argument("--shots", type=int, default=100)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="sched-bench-"))
    log = work / "calls.log"
    install_shims(work / "bin", log)
    rows = [run(n, work, log, args.shots, args.seed) for n in args.elements]
    header = ["elements", *COMMANDS, "total", "per element", "target", "wall s", "= hal.sweep"]
    print(" | ".join(header))
    failed = False
    for row in rows:
        calls = row["calls"]
        assert isinstance(calls, collections.Counter)
        n = int(row["elements"])  # type: ignore[call-overload]
        total = sum(calls.values())
        target = TARGETS.get(n)
        ok = target is None or total / n <= target
        failed |= not ok or not row["same"]
        print(" | ".join([str(n), *(str(calls.get(c, 0)) for c in COMMANDS), str(total),
                          f"{total / n:.2f}", "-" if target is None else f"<= {target:g}",
                          f"{row['wall']:.1f}", "yes" if row["same"] else "NO"]))
    shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
