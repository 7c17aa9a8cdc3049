"""Benchmark of the built-in ``sim`` backend against Qiskit Aer, qulacs and Braket's local
simulator, side by side in one run.

    python benchmarks/simulator.py                 # full table (takes ~15-25 minutes)
    python benchmarks/simulator.py --quick         # smoke run: 10 and 16 qubits, 1 repeat
    python benchmarks/simulator.py --qubits 20,24 --repeat 5 --threads 2

What is measured (medians of ``--repeat`` warm runs; each simulator first runs the circuit
once untimed, so JIT compilation and plan caches are excluded):

* GHZ, QFT and the random layered circuit (10 layers of random ``U`` on every qubit and a
  brick of ``cx``) with 1000 shots, as OpenQASM text from ``hal_workflow.circuits.library``;
  every simulator gets the same circuit and the same thread count;
* the memory-bandwidth bound: one in-place pass (scale) over 2^24 complex128 amplitudes with
  a parallel numba kernel, in the same process; ``per-gate/bound`` is our time per original
  gate divided by it;
* peak memory: every (simulator, circuit, width) cell runs in its own process, and the
  table gives the resident memory its timed runs added (high-water mark minus the RSS after
  the warm-up run);
  ours runs with ``braket.devices`` imported first, as the threading-layer check below;
* first-call time in a fresh process (import, kernel load, first 5-qubit job) with the
  on-disk kernel cache warm, and with it cold;
* the latency of a 5-qubit 1000-shot circuit through ``hal_workflow.run``, and the throughput
  of a 10,000-binding sweep of a 5-qubit 24-gate ansatz;
* that our speed holds when ``braket.devices.LocalSimulator`` is imported (or has already
  run) in the same process, which pins numba's threading layer.
"""

from __future__ import annotations

import argparse
import os
import sys

_ARGS = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
_ARGS.add_argument("--qubits", default="10,16,20,24,26", help="comma-separated widths")
_ARGS.add_argument("--repeat", type=int, default=3, help="timed runs per cell (median)")
_ARGS.add_argument("--threads", type=int, default=2)
_ARGS.add_argument("--shots", type=int, default=1000)
_ARGS.add_argument("--quick", action="store_true", help="10 and 16 qubits, 1 repeat")
_ARGS.add_argument("--skip", default="", help="comma-separated: aer,qulacs,braket,extras")
_ARGS.add_argument("--braket-max-qubits", type=int, default=20,
                   help="Braket is slow: widest circuit to give it")
_ARGS.add_argument("--circuits", default="ghz,qft,random")
_ARGS.add_argument("--cell", nargs=3, metavar=("SIM", "CIRCUIT", "QUBITS"),
                   help=argparse.SUPPRESS)  # internal: time one cell in this process

if __name__ == "__main__":  # thread counts must be fixed before the SDKs load
    _opts = _ARGS.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(_opts.threads))
    os.environ.setdefault("NUMBA_NUM_THREADS", str(_opts.threads))

import asyncio  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Warm-up call, then the median wall time of ``repeat`` calls, and the peak resident
    memory those calls added (MiB) to the process (its high-water mark is reset after the
    warm-up, so kernel loading and plan building do not count)."""
    fn()
    base = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(0.0, (_status_kib("VmHWM") - base) / 1024)


# -- the simulators ---------------------------------------------------------------------------


class Ours:
    name = "sim"

    def __init__(self, threads: int, shots: int) -> None:
        from hal_workflow.simulator.backend import SimulatorBackend

        self.backend = SimulatorBackend({"name": "sim", "threads": threads, "seed": 1})
        self.loop = asyncio.new_event_loop()
        self.shots = shots

    def prepare(self, text: str) -> Callable[[], Any]:
        return lambda: self.loop.run_until_complete(self.backend.run(text, self.shots))


class Aer:
    name = "aer"

    def __init__(self, threads: int, shots: int) -> None:
        from qiskit_aer import AerSimulator

        self.sim = AerSimulator(method="statevector", max_parallel_threads=threads)
        self.shots = shots

    def prepare(self, text: str) -> Callable[[], Any]:
        from qiskit import qasm3

        circuit = qasm3.loads(text)
        return lambda: self.sim.run(circuit, shots=self.shots).result()


class Qulacs:
    name = "qulacs"

    def __init__(self, threads: int, shots: int) -> None:
        import qulacs  # noqa: F401  (OMP_NUM_THREADS was set before import)

        self.shots = shots

    def prepare(self, text: str) -> Callable[[], Any]:
        from qulacs import QuantumCircuit, QuantumState, gate

        from hal_workflow.circuits import Circuit

        lowered = Circuit.from_qasm(text).lowered
        n = lowered.num_qubits
        circuit = QuantumCircuit(n)
        for op in lowered.operations:
            name = getattr(op, "name", None)
            if name is None:
                continue  # measurement: sampled at the end
            q = op.qubits
            if name == "h":
                circuit.add_H_gate(q[0])
            elif name == "cx":
                circuit.add_CNOT_gate(q[0], q[1])
            elif name == "U":
                circuit.add_U3_gate(q[0], *op.params)
            elif name == "swap":
                circuit.add_SWAP_gate(q[0], q[1])
            elif name == "cp":
                controlled = gate.to_matrix_gate(gate.U1(q[1], op.params[0]))
                controlled.add_control_qubit(q[0], 1)
                circuit.add_gate(controlled)
            else:
                raise ValueError(f"benchmark has no qulacs mapping for {name}")

        def run() -> Any:
            state = QuantumState(n)
            circuit.update_quantum_state(state)
            return state.sampling(self.shots)

        return run


class Braket:
    name = "braket"
    PRELUDE = "gate cx a, b { cnot a, b; }\ngate cp(l) a, b { cphaseshift(l) a, b; }\n"

    def __init__(self, threads: int, shots: int) -> None:
        import logging

        from braket.devices import LocalSimulator

        logging.getLogger("braket").setLevel(logging.ERROR)
        self.device = LocalSimulator("braket_sv")
        self.shots = shots

    def prepare(self, text: str) -> Callable[[], Any]:
        from braket.ir.openqasm import Program

        program = Program(source=text.replace('include "stdgates.inc";', self.PRELUDE))
        return lambda: self.device.run(program, shots=self.shots).result()


# -- measurements -----------------------------------------------------------------------------


def bandwidth_bound(threads: int, repeat: int = 7) -> float:
    """Seconds for one in-place pass over 2^24 complex128 amplitudes (parallel numba)."""
    import numba

    @numba.njit(parallel=True, fastmath=True)
    def scale(a: np.ndarray, f: float) -> None:
        for i in numba.prange(a.shape[0]):
            a[i] *= f

    numba.set_num_threads(threads)
    state = np.ones(1 << 24, dtype=np.complex128)
    scale(state, 1.0)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        scale(state, 0.999999)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def circuit_text(kind: str, n: int) -> tuple[str, int]:
    from hal_workflow.circuits import ghz, qft, random_layered

    circuit = {"ghz": lambda: ghz(n), "qft": lambda: qft(n),
               "random": lambda: random_layered(n, 10, seed=7)}[kind]()
    gates = sum(v for k, v in circuit.gate_counts.items() if k not in ("measure", "barrier"))
    return circuit.qasm, gates


FRESH_PROCESS = """
import time
start = time.perf_counter()
import asyncio
from hal_workflow.simulator.backend import SimulatorBackend
from hal_workflow.circuits import ghz
backend = SimulatorBackend({"name": "sim"})
result = asyncio.run(backend.run(ghz(5), 1000))
print(time.perf_counter() - start)
"""

BRAKET_CHECK = """
import asyncio, statistics, sys, time
mode = sys.argv[1]
if mode != "alone":
    import logging
    from braket.devices import LocalSimulator
    from braket.ir.openqasm import Program
    logging.getLogger("braket").setLevel(logging.ERROR)
    if mode == "braket-ran-first":
        src = "OPENQASM 3.0;\\nqubit[16] q;\\nbit[16] c;\\n" + "".join(
            f"h q[{i}];\\n" for i in range(16)) + "c = measure q;\\n"
        LocalSimulator("braket_sv").run(Program(source=src), shots=10).result()
import numba
from hal_workflow.simulator.backend import SimulatorBackend
from hal_workflow.circuits import ghz, random_layered
backend = SimulatorBackend({"name": "sim", "threads": 2})
loop = asyncio.new_event_loop()
big, small = random_layered(20, 10, seed=7).qasm, ghz(5).qasm
def best(text, n):
    loop.run_until_complete(backend.run(text, 1000))
    times = []
    for _ in range(n):
        t = time.perf_counter(); loop.run_until_complete(backend.run(text, 1000))
        times.append(time.perf_counter() - t)
    return statistics.median(times)
print(numba.threading_layer(), best(big, 5), best(small, 500) * 1e3)
"""


def fresh_process(env: dict[str, str] | None = None) -> float:
    out = subprocess.run([sys.executable, "-c", FRESH_PROCESS], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, check=True, timeout=600)
    return float(out.stdout.strip().splitlines()[-1])


def latency(samples: int = 2000) -> tuple[float, float]:
    """Median ms of a 5-qubit 1000-shot job: through ``hal_workflow.run`` and the backend."""
    import hal_workflow
    from hal_workflow.circuits import ghz
    from hal_workflow.simulator.backend import SimulatorBackend

    circuit = ghz(5)
    backend = SimulatorBackend({"name": "sim"})
    loop = asyncio.new_event_loop()

    def median_ms(fn: Callable[[], Any]) -> float:
        for _ in range(50):
            fn()
        times = []
        for _ in range(samples):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e3

    direct = median_ms(lambda: loop.run_until_complete(backend.run(circuit, 1000)))
    through_run = median_ms(lambda: hal_workflow.run(circuit, backend="sim", shots=1000))
    return through_run, direct


def sweep_rate(bindings: int = 10_000) -> tuple[float, float, int]:
    """Circuits per second of a sweep over a 5-qubit ansatz: batch extension, hal_workflow.sweep."""
    import hal_workflow
    from hal_workflow.circuits import hardware_efficient_ansatz
    from hal_workflow.simulator.backend import SimulatorBackend

    circuit = hardware_efficient_ansatz(5, 1)
    gates = sum(v for k, v in circuit.gate_counts.items() if k != "measure")
    rng = np.random.default_rng(0)
    values = [dict(zip(circuit.parameters, rng.uniform(0, 6.28, len(circuit.parameters)),
                       strict=True)) for _ in range(bindings)]
    backend = SimulatorBackend({"name": "sim"})
    loop = asyncio.new_event_loop()

    async def via_extension() -> None:
        ids = await backend.extension("batch").submit_sweep(circuit, values, 1000)
        for job_id in ids:
            await backend.result(job_id)

    loop.run_until_complete(via_extension())  # warm
    start = time.perf_counter()
    loop.run_until_complete(via_extension())
    rate = bindings / (time.perf_counter() - start)
    hal_workflow.sweep(circuit, values[:100], backend="sim")
    start = time.perf_counter()
    hal_workflow.sweep(circuit, values, backend="sim", shots=1000)
    return rate, bindings / (time.perf_counter() - start), gates


# -- the report -------------------------------------------------------------------------------


SIMULATORS = {"sim": Ours, "aer": Aer, "qulacs": Qulacs, "braket": Braket}


def run_cell(opts: argparse.Namespace) -> None:
    """Child process: time one simulator on one circuit, print JSON."""
    name, kind, width = opts.cell
    n = int(width)
    if name == "sim":  # importing Braket pins numba's layer: show that ours survives it
        import braket.devices  # noqa: F401
    sim = SIMULATORS[name](opts.threads, opts.shots)
    text, _ = circuit_text(kind, n)
    reps = opts.repeat if n < 24 else max(1, min(opts.repeat, 2))
    seconds, peak = timed(sim.prepare(text), reps)
    print(json.dumps({"seconds": seconds, "peak_mib": peak}))


def cell(opts: argparse.Namespace, name: str, kind: str, n: int, repeat: int) -> dict[str, float]:
    args = [sys.executable, __file__, "--cell", name, kind, str(n), "--repeat", str(repeat),
            "--threads", str(opts.threads), "--shots", str(opts.shots)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"{name} {kind} {n} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    opts = _ARGS.parse_args()
    if opts.cell:
        run_cell(opts)
        return
    widths = [10, 16] if opts.quick else [int(q) for q in opts.qubits.split(",")]
    repeat = 1 if opts.quick else opts.repeat
    skip = set(filter(None, opts.skip.split(",")))
    kinds = opts.circuits.split(",")
    names = [n for n in SIMULATORS if n not in skip]
    import numba

    print(f"# sim benchmark: {os.cpu_count()} CPUs, threads={opts.threads}, shots={opts.shots}, "
          f"repeat={repeat}, numba {numba.__version__}; load average before: "
          f"{os.getloadavg()[0]:.2f}")
    bound = bandwidth_bound(opts.threads)
    print(f"one-pass bound (2^24 complex128, in-place scale): {bound * 1e3:.1f} ms\n")

    header = (f"| circuit | qubits | gates | {' | '.join(n + ' s' for n in names)} "
              f"| sim/aer | sim/qulacs | per-gate/bound | sim MiB | aer MiB | qulacs MiB |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for kind in kinds:
        for n in widths:
            _, gates = circuit_text(kind, n)
            res = {name: cell(opts, name, kind, n, repeat) for name in names
                   if not (name == "braket" and n > opts.braket_max_qubits)}
            ours = res["sim"]["seconds"]
            cells = [f"{res[k]['seconds']:.4f}" if k in res else "-" for k in names]
            ratio = {k: f"{ours / res[k]['seconds']:.2f}" if k in res else "-"
                     for k in ("aer", "qulacs")}
            mib = {k: f"{res[k]['peak_mib']:.0f}" if k in res else "-"
                   for k in ("sim", "aer", "qulacs")}
            per_gate = ours / gates / bound * (1 << 24) / (1 << n)
            print(f"| {kind} | {n} | {gates} | {' | '.join(cells)} | {ratio['aer']} | "
                  f"{ratio['qulacs']} | {per_gate:.2f} | {mib['sim']} | {mib['aer']} | "
                  f"{mib['qulacs']} |", flush=True)

    if "extras" in skip:
        return
    print("\n(per-gate/bound: our time per original gate over the time of one pass over a "
          "state of the same width, the bound scaled by 2^(n-24); MiB: peak resident memory "
          "a run added to its process)\n")
    through_run, direct = latency(500 if opts.quick else 2000)
    print(f"5-qubit 1000-shot latency: hal_workflow.run {through_run:.3f} ms, "
          f"backend.run {direct:.3f} ms (median)")
    rate, rate_sync, gates = sweep_rate(2000 if opts.quick else 10_000)
    print(f"sweep of a 5-qubit {gates}-gate ansatz, 1000 shots: {rate:,.0f} circuits/s "
          f"(batch extension), {rate_sync:,.0f} circuits/s (hal_workflow.sweep)")
    warm = statistics.median(fresh_process() for _ in range(3))
    import tempfile

    with tempfile.TemporaryDirectory() as cache:
        cold = fresh_process({"NUMBA_CACHE_DIR": cache})
    print(f"first call in a fresh process (import + kernels + first job): {warm:.2f} s with "
          f"the kernel cache warm, {cold:.1f} s cold")
    for mode in ("alone", "braket-imported", "braket-ran-first"):
        out = subprocess.run([sys.executable, "-c", BRAKET_CHECK, mode], capture_output=True,
                             text=True, check=True, timeout=600)
        layer, big, small = out.stdout.split()[-3:]
        print(f"{mode:>17}: layer {layer:>9}, random 20q {float(big):.3f} s, "
              f"GHZ 5q {float(small):.3f} ms")


if __name__ == "__main__":
    main()
