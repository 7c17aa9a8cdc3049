"""Clifford circuits at hundreds to thousands of qubits: our stabilizer method beside stim and
qiskit-aer's stabilizer method, in one run.

    python benchmarks/stabilizer.py                  # GHZ, Bernstein-Vazirani, random Clifford
    python benchmarks/stabilizer.py --qubits 100,1000 --repeat 5

Each cell: the same OpenQASM 3 program for every simulator, ``--shots`` shots, median of
``--repeat`` warm runs (one untimed run first). Times cover simulation and sampling, not
parsing: ours from the lowered circuit, stim from a ``stim.Circuit`` built from the same gate
list (``compile_sampler`` included), Aer from the ``QuantumCircuit`` (up to 200 qubits: at 500
it took 40-50 s a cell). ``dynamic`` is a
repetition-code-style circuit with mid-circuit measurement and reset (3 rounds), which our
method samples with Pauli frames.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

_ARGS = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
_ARGS.add_argument("--qubits", default="100,500,1000,2000")
_ARGS.add_argument("--repeat", type=int, default=3)
_ARGS.add_argument("--shots", type=int, default=1000)
_ARGS.add_argument("--circuits", default="ghz,bv,random,dynamic")

Gates = list[tuple[str, tuple[int, ...]]]


def ghz(n: int) -> tuple[Gates, list[int]]:
    return [("h", (0,))] + [("cx", (i, i + 1)) for i in range(n - 1)], list(range(n))


def bv(n: int) -> tuple[Gates, list[int]]:
    rng = random.Random(n)
    gates: Gates = [("x", (n,))] + [("h", (i,)) for i in range(n + 1)]
    gates += [("cx", (i, n)) for i in range(n) if rng.random() < 0.5]
    gates += [("h", (i,)) for i in range(n)]
    return gates, list(range(n))


def random_clifford(n: int) -> tuple[Gates, list[int]]:
    rng = random.Random(7 * n)
    gates: Gates = []
    for _ in range(10 * n):
        if rng.random() < 0.5:
            gates.append((rng.choice(["h", "s", "sdg", "x", "z"]), (rng.randrange(n),)))
        else:
            gates.append((rng.choice(["cx", "cz"]), tuple(rng.sample(range(n), 2))))
    return gates, list(range(n))


def dynamic(n: int) -> tuple[Gates, list[int]]:
    """A distance-n/2 repetition code: data qubits in |+...+>-like GHZ, ancillas measured and
    reset each round (mid-circuit measurement), data measured at the end."""
    data = list(range(0, n, 2))
    gates: Gates = [("h", (0,))]
    gates += [("cx", (data[i], data[i + 1])) for i in range(len(data) - 1)]
    for _ in range(3):
        for i in range(len(data) - 1):
            ancilla = data[i] + 1
            gates += [("cx", (data[i], ancilla)), ("cx", (data[i + 1], ancilla)),
                      ("measure", (ancilla,)), ("reset", (ancilla,))]
    return gates, data


def qasm(n: int, gates: Gates, measured: list[int]) -> str:
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";', f"qubit[{n}] q;",
             f"bit[{len(measured)}] m;", f"bit[{n}] a;"]
    for name, qubits in gates:
        if name == "measure":
            lines.append(f"a[{qubits[0]}] = measure q[{qubits[0]}];")
        elif name == "reset":
            lines.append(f"reset q[{qubits[0]}];")
        else:
            lines.append(f"{name} " + ", ".join(f"q[{q}]" for q in qubits) + ";")
    lines += [f"m[{i}] = measure q[{q}];" for i, q in enumerate(measured)]
    return "\n".join(lines)


def timed(fn: Callable[[], Any], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ours(text: str, shots: int) -> Callable[[], Any]:
    from hal_workflow.circuits import Circuit
    from hal_workflow.simulator.stabilizer import compile_clifford

    lowered = Circuit.from_qasm(text).lowered
    rng = np.random.default_rng(1)

    def run() -> Any:
        program = compile_clifford(lowered)
        assert program is not None
        return program.sample(shots, rng)

    return run


def stim_sampler(n: int, gates: Gates, measured: list[int], shots: int) -> Callable[[], Any]:
    import stim

    names = {"h": "H", "s": "S", "sdg": "S_DAG", "x": "X", "z": "Z", "cx": "CX", "cz": "CZ",
             "measure": "M", "reset": "R"}

    def run() -> Any:
        circuit = stim.Circuit()
        for name, qubits in gates:
            circuit.append(names[name], list(qubits))
        circuit.append("M", measured)
        return circuit.compile_sampler().sample(shots)

    return run


def aer(text: str, shots: int) -> Callable[[], Any]:
    from qiskit import qasm3
    from qiskit_aer import AerSimulator

    circuit = qasm3.loads(text)
    simulator = AerSimulator(method="stabilizer")
    return lambda: simulator.run(circuit, shots=shots, seed_simulator=1).result()


def main() -> None:
    args = _ARGS.parse_args()
    makers = {"ghz": ghz, "bv": bv, "random": random_clifford, "dynamic": dynamic}
    print(f"{'circuit':<8} {'qubits':>6} {'sim (s)':>10} {'stim (s)':>10} {'aer (s)':>10} "
          f"{'sim/stim':>9} {'sim/aer':>8}")
    for name in args.circuits.split(","):
        for n in (int(q) for q in args.qubits.split(",")):
            gates, measured = makers[name](n)
            width = n + 1 if name == "bv" else n
            text = qasm(width, gates, measured)
            t_ours = timed(ours(text, args.shots), args.repeat)
            t_stim = timed(stim_sampler(width, gates, measured, args.shots), args.repeat)
            t_aer = timed(aer(text, args.shots), 1) if width <= 200 else float("nan")
            print(f"{name:<8} {width:>6} {t_ours:>10.4f} {t_stim:>10.4f} {t_aer:>10.4f} "
                  f"{t_ours / t_stim:>9.2f} {t_ours / t_aer:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
