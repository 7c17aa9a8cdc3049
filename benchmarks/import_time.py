"""How long ``import hal_workflow`` takes in a fresh interpreter, and what it pulls in.

Prints a table: median/min/max wall time of ``python -c "import hal_workflow"`` minus the bare
interpreter start, over N fresh processes, and the heavy modules found in ``sys.modules``.
Target (foundation issue): under 0.3 s, and no heavy SDK imported.

    python benchmarks/import_time.py --repeat 15
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

HEAVY = ("numba", "qiskit", "braket", "iqm", "mqt", "dask", "distributed", "parsl", "pyqir",
         "openqasm3", "antlr4", "scipy")
TARGET_S = 0.3


def _time(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    _time("import hal_workflow")  # warm the disk cache and bytecode
    bare = [_time("pass") for _ in range(args.repeat)]
    full = [_time("import hal_workflow") for _ in range(args.repeat)]
    net = [f - statistics.median(bare) for f in full]
    probe = "import hal_workflow, sys, json; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe],
                                       check=True, capture_output=True, text=True).stdout)
    heavy = sorted({m.split(".")[0] for m in loaded if m.split(".")[0] in HEAVY})
    median = statistics.median(net)
    print(f"{'measure':<34}{'value':>12}")
    print(f"{'interpreter start (median)':<34}{statistics.median(bare) * 1e3:>10.1f}ms")
    print(f"{'import hal_workflow (median, net)':<34}{median * 1e3:>10.1f}ms")
    print(f"{'import hal_workflow (min, net)':<34}{min(net) * 1e3:>10.1f}ms")
    print(f"{'import hal_workflow (max, net)':<34}{max(net) * 1e3:>10.1f}ms")
    verdict = "met" if median < TARGET_S else "NOT met"
    print(f"{'target':<34}{TARGET_S * 1e3:>10.1f}ms  -> {verdict}")
    print(f"{'heavy modules imported':<34}{', '.join(heavy) or 'none':>12}")


if __name__ == "__main__":
    main()
