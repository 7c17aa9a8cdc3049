"""Parsing and lowering OpenQASM, ours beside Qiskit's importers, and how fast bad input is refused.

    python benchmarks/parsing.py                # ~1-2 minutes on 2 cores
    python benchmarks/parsing.py --repeat 5 --full

Programs (generated, seeded): random straight-line circuits on 20 qubits of ``h``, ``rz`` with
a 6-digit angle, ``u3(pi/2,-pi/4,0.3)`` and ``cx``, measured at the end, as OpenQASM 2
(``qelib1.inc``) and OpenQASM 3 (``stdgates.inc``); 3,149 gates (the size of the QASMBench
program of issue 12) and 100,000 gates.

Columns (medians of ``--repeat`` runs, each parsing text it has not seen, so no cache helps):

* **ours**: ``hal_workflow.circuits.lowering.lower``: parse, check and lower to the flat IR
  (the straight-line fast path takes these programs);
* **ours, full parser**: the same through the ``openqasm3`` reference parser, which every
  program outside the fast subset takes (100k only with ``--full``: ~40 s each);
* **qiskit.qasm2** / **qiskit.qasm3**: ``qiskit.qasm2.loads`` (Rust) and
  ``qiskit.qasm3.loads`` (``qiskit_qasm3_import``, ANTLR; 100k only with ``--full``).

A second table times the refusal of inputs that used to run without bound (issue 10): a
1.2 KB file of 40 doubling gate definitions (2^40 gates) and two nested 10^6 loops.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

from hal_workflow.circuits.limits import CircuitLimitError, Limits
from hal_workflow.circuits.lowering import lower, lower_program
from hal_workflow.circuits.parsing import parse


def program(gates: int, version: int, seed: int = 1, num_qubits: int = 20) -> str:
    rng = random.Random(seed)
    if version == 3:
        lines = ["OPENQASM 3.0;", 'include "stdgates.inc";', f"qubit[{num_qubits}] q;",
                 f"bit[{num_qubits}] c;"]
    else:
        lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{num_qubits}];",
                 f"creg c[{num_qubits}];"]
    for _ in range(gates):
        kind = rng.random()
        a = rng.randrange(num_qubits)
        b = (a + 1 + rng.randrange(num_qubits - 1)) % num_qubits
        if kind < 0.3:
            lines.append(f"h q[{a}];")
        elif kind < 0.6:
            lines.append(f"rz({rng.uniform(-3, 3):.6f}) q[{a}];")
        elif kind < 0.7:
            lines.append(f"u3(pi/2,-pi/4,0.3) q[{a}];")
        else:
            lines.append(f"cx q[{a}],q[{b}];")
    lines.append("c = measure q;" if version == 3 else "measure q -> c;")
    return "\n".join(lines) + "\n"


def median_time(make: Callable[[int], str], run: Callable[[str], object],
                repeat: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``run`` over ``repeat`` fresh texts (``make(i)``: a
    unique variant). On the shared 2-core machine the CPU time is the steadier figure."""
    walls, cpus = [], []
    for i in range(repeat):
        text = make(i)
        wall, cpu = time.perf_counter(), time.process_time()
        run(text)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def cell(value: tuple[float, float] | None, reference: tuple[float, float] | None = None) -> str:
    """``wall (cpu)`` seconds, or the CPU-time ratio to ``reference``."""
    if value is None:
        return "-"
    if reference is not None:
        return f"{value[1] / reference[1]:.2f}"
    return f"{value[0]:.3f} ({value[1]:.3f})"


def ours(text: str) -> object:
    return lower(text)


def ours_full(text: str) -> object:
    return lower_program(parse(text), text, None, Limits.current())


def qiskit_qasm2(text: str) -> object:
    import qiskit.qasm2

    return qiskit.qasm2.loads(text, custom_instructions=qiskit.qasm2.LEGACY_CUSTOM_INSTRUCTIONS)


def qiskit_qasm3(text: str) -> object:
    import qiskit.qasm3

    return qiskit.qasm3.loads(text)


def refusals() -> list[tuple[str, int, float, str]]:
    header = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\n'
    doubling = header + "gate g0 a { x a; }\n" + "".join(
        f"gate g{i} a {{ g{i - 1} a; g{i - 1} a; }}\n" for i in range(1, 41)) + "g40 q[0];\n"
    nested = header + "for int i in [0:999999] { for int j in [0:999999] { x q[0]; } }\n"
    rows = []
    for name, text in (("40 doubling gate definitions (2^40 gates)", doubling),
                       ("nested 10^6 x 10^6 loops", nested)):
        start = time.perf_counter()
        try:
            lower(text)
            outcome = "ACCEPTED"
        except CircuitLimitError as error:
            outcome = error.key
        rows.append((name, len(text.encode()), time.perf_counter() - start, outcome))
    return rows


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options.add_argument("--repeat", type=int, default=3)
    options.add_argument("--full", action="store_true",
                         help="also time the slow parsers on 100k gates")
    args = options.parse_args()
    lower(program(10, 3))  # import openqasm3 and ANTLR outside the timings
    qiskit_qasm2(program(10, 2))
    qiskit_qasm3(program(10, 3))

    print("Seconds as wall (CPU); ratios of CPU times.")
    print("| program | gates | ours s | ours, full parser s | full/ours | qiskit s | qiskit | "
          "qiskit/ours |")
    print("|---|---:|---:|---:|---:|---:|---|---:|")
    for gates in (3149, 100_000):
        for version in (2, 3):
            def make(i: int, gates: int = gates, version: int = version) -> str:
                return program(gates, version, seed=100 + i)

            fast = median_time(make, ours, args.repeat)
            slow_ok = gates < 10_000 or args.full
            full = median_time(make, ours_full, 1 if gates > 10_000 else args.repeat) \
                if slow_ok else None
            peer = qiskit_qasm2 if version == 2 else qiskit_qasm3
            peer_time = median_time(make, peer, 1 if gates > 10_000 else args.repeat) \
                if version == 2 or slow_ok else None
            print(f"| OpenQASM {version} | {gates:,} | {cell(fast)} | {cell(full)} | "
                  f"{cell(full, fast)} | {cell(peer_time)} | "
                  f"{'qiskit.qasm2' if version == 2 else 'qiskit.qasm3'} | "
                  f"{cell(peer_time, fast)} |")
    print()
    print("| refused input | bytes | seconds | limit |")
    print("|---|---:|---:|---|")
    for name, size, seconds, outcome in refusals():
        print(f"| {name} | {size:,} | {seconds:.3f} | {outcome} |")


if __name__ == "__main__":
    main()
