"""The job journal's cost: memory over many jobs, and the latency it adds to ``hal.run``.

    python benchmarks/journal.py                  # 1,000,000 jobs (~5-10 min), latency
    python benchmarks/journal.py --jobs 100000    # quicker

Two tables:

* **memory**: RSS of this process at checkpoints of N sequential ``hal.run`` calls of a
  5-qubit, 100-shot GHZ circuit on the simulator, journal on (the default), and the journal
  file's size. Target: under 40 MiB of growth after warm-up over 1,000,000 jobs. The
  journal keeps its default retention (``max-jobs`` 1,000,000), so the file holds them all.
* **latency**: the median of one 5-qubit 1000-shot ``hal.run`` with the journal on and off
  (``LocalJobTable(journal=False)``), measured in interleaved rounds so drifting load hits
  both alike, and the throughput of back-to-back jobs. Target: under 5 % slower, under
  0.2 ms. The journal's own writer thread does its work between jobs; the throughput row
  shows that cost too, as it shares the GIL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory(jobs: int, directory: Path) -> None:
    import hal_workflow as hal
    from hal_workflow import journal
    from hal_workflow.circuits import ghz

    j = journal.Journal(directory / "journal.sqlite", max_jobs=1_000_000)
    journal.set_default(j)
    circuit = ghz(5)
    warm = min(20_000, jobs // 10)
    for _ in range(warm):
        hal.run(circuit, shots=100)
    j.flush()
    base = rss_mib()
    print(f"{'jobs':>10} {'RSS MiB':>9} {'growth MiB':>11} {'journal MiB':>12} {'jobs/s':>8}")
    print(f"{warm:>10} {base:>9.1f} {0.0:>11.1f} {_size(j):>12.1f} {'':>8}")
    checkpoints = sorted({jobs // 10 * k for k in range(1, 11)} | {jobs})
    done = 0
    start = time.perf_counter()
    peak = 0.0
    for checkpoint in checkpoints:
        while done < checkpoint:
            hal.run(circuit, shots=100)
            done += 1
        rss = rss_mib()
        peak = max(peak, rss - base)
        rate = done / (time.perf_counter() - start)
        print(f"{warm + done:>10} {rss:>9.1f} {rss - base:>11.1f} {_size(j):>12.1f} {rate:>8.0f}",
              flush=True)
    j.flush()
    verdict = "OK" if peak < 40 else "OVER TARGET"
    print(f"peak growth after warm-up: {peak:.1f} MiB over {done} jobs "
          f"(target < 40 MiB: {verdict}); journal holds {j.count()} jobs")
    journal.set_default(None)
    j.close()


def _size(j: Any) -> float:
    path = Path(str(j.path))
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20


def latency(samples: int, rounds: int, directory: Path) -> None:
    import hal_workflow as hal
    from hal_workflow import journal
    from hal_workflow.backends.local_jobs import LocalJobTable
    from hal_workflow.circuits import ghz
    from hal_workflow.simulator.backend import SimulatorBackend

    j = journal.Journal(directory / "latency.sqlite")
    journal.set_default(j)
    on = SimulatorBackend({"name": "sim"})
    off = SimulatorBackend({"name": "sim"})
    off._jobs = LocalJobTable("sim-off", off.spec, journal=False)
    circuit = ghz(5)

    def median_ms(backend: SimulatorBackend) -> tuple[float, float]:
        times = []
        for _ in range(samples):
            t = time.perf_counter()
            hal.run(circuit, backend=backend, shots=1000)
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1e3, samples / sum(times)

    for backend in (on, off):
        for _ in range(200):
            hal.run(circuit, backend=backend, shots=1000)
    medians: dict[str, list[float]] = {"on": [], "off": []}
    rates: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(rounds):
        for name, backend in (("off", off), ("on", on)):
            median, rate = median_ms(backend)
            medians[name].append(median)
            rates[name].append(rate)
    m_on, m_off = statistics.median(medians["on"]), statistics.median(medians["off"])
    r_on, r_off = statistics.median(rates["on"]), statistics.median(rates["off"])
    print(f"\n5-qubit 1000-shot hal.run, median of {rounds} rounds x {samples} jobs")
    print(f"{'journal':>8} {'latency ms':>11} {'jobs/s':>8}")
    print(f"{'off':>8} {m_off:>11.4f} {r_off:>8.0f}")
    print(f"{'on':>8} {m_on:>11.4f} {r_on:>8.0f}")
    print(f"latency ratio on/off: {m_on / m_off:.3f} (target < 1.05); "
          f"throughput ratio: {r_on / r_off:.3f}; latency on < 0.2 ms: {m_on < 0.2}")
    journal.set_default(None)
    j.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--skip-memory", action="store_true")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hal-journal-bench-") as tmp:
        if not opts.skip_memory:
            memory(opts.jobs, Path(tmp))
        latency(opts.samples, opts.rounds, Path(tmp))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
