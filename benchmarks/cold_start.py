"""Cold and warm start of the first commands a new user runs, side by side.

* **cold**: what a fresh install sees: no bytecode cache (``PYTHONPYCACHEPREFIX`` set to an
  empty directory, so every ``.py`` is compiled again) and an empty numba cache
  (``NUMBA_CACHE_DIR`` empty): a new directory for every repetition.
* **warm**: the same directories after one run (bytecode and numba's cache filled).

Commands: ``hal-workflow run examples/bell.qasm`` (target: cold < 5 s, warm < 1 s) and the
README's main job ``python examples/vqe_h2.py`` (target: cold < 20 s). Prints median, min and
max wall seconds over ``--repeat`` runs and the ratio to the target. ``--python`` runs them
with another interpreter, e.g. the fresh venv of ``.ci/run``'s ``[core]`` check
(``.ci/cache/venv-core/bin/python``), to include a real fresh install.

    python benchmarks/cold_start.py --repeat 3
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    "hal-workflow run examples/bell.qasm": (["-m", "hal_workflow.cli", "run",
                                             str(REPO / "examples" / "bell.qasm")], 5.0, 1.0),
    "python examples/vqe_h2.py (README main job)": ([str(REPO / "examples" / "vqe_h2.py")],
                                                    20.0, None),
}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(python: str, args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, all child processes) of one run, from a
    scratch directory (so ``--python`` runs the package installed there, not this checkout)."""
    cpu, start = _cpu(), time.perf_counter()
    out = subprocess.run([python, *args], env=env, cwd=env["HAL_WORKFLOW__DATA_DIR"],
                         capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if out.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{out.stderr}")
    return elapsed, _cpu() - cpu


def measure(python: str, args: list[str],
            repeat: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    cold, warm = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="hal-cold-") as scratch:
            env = {**os.environ, "PYTHONPYCACHEPREFIX": f"{scratch}/pyc",
                   "NUMBA_CACHE_DIR": f"{scratch}/numba", "HAL_WORKFLOW__DATA_DIR": scratch}
            if python == sys.executable:  # this checkout, wherever it runs from
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO),
                                                                  env.get("PYTHONPATH")]))
            env.pop("HAL_WORKFLOW__SIMULATOR__CACHE_DIR", None)
            # A user's Python writes bytecode; a shell that forbids it (as some CI images do)
            # would make every "warm" run recompile every module.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            cold.append(_run(python, args, env))
            warm.append(_run(python, args, env))
    return cold, warm


def _cell(runs: list[tuple[float, float]], target: float | None) -> str:
    times = [wall for wall, _ in runs]
    median = statistics.median(times)
    cpu = statistics.median(c for _, c in runs)
    ratio = f"{median / target:.2f}x" if target else "-"
    return f"{median:6.2f} s ({min(times):.2f}-{max(times):.2f}) {ratio:<6} cpu {cpu:5.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--only", choices=["bell", "vqe"], default=None)
    options = parser.parse_args()
    print(f"python: {options.python}; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; wall seconds, median (min-max) of {options.repeat} runs, "
          "ratio to the target (bell cold 5 s, warm 1 s; VQE cold 20 s), median CPU seconds")
    print(f"{'command':<46} {'cold':<44} {'warm':<44}")
    for name, (args, cold_target, warm_target) in COMMANDS.items():
        if options.only and options.only not in name:
            continue
        cold, warm = measure(options.python, args, options.repeat)
        print(f"{name:<46} {_cell(cold, cold_target):<44} {_cell(warm, warm_target):<44}",
              flush=True)


if __name__ == "__main__":
    main()
