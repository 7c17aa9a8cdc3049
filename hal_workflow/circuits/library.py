"""Ready-made circuits for examples, tests and benchmarks, written as OpenQASM 3 text."""

from __future__ import annotations

import math
import random

from hal_workflow.circuits.circuit import Circuit
from hal_workflow.contract.errors import CircuitError

__all__ = ["bell", "ghz", "hardware_efficient_ansatz", "qft", "random_layered"]

_HEADER = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'


def _program(num_qubits: int, body: list[str], measure: bool) -> Circuit:
    lines = [_HEADER.rstrip("\n"), f"qubit[{num_qubits}] q;"]
    if measure:
        lines.append(f"bit[{num_qubits}] c;")
    lines += body
    if measure:
        lines.append("c = measure q;")
    return Circuit.from_qasm("\n".join(lines) + "\n")


def _check(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise CircuitError(f"{name}() needs an integer >= {minimum}, got {value!r}")


def bell() -> Circuit:
    """(|00> + |11>)/sqrt(2), measured into ``bit[2] c``."""
    return ghz(2)


def ghz(num_qubits: int) -> Circuit:
    """(|0...0> + |1...1>)/sqrt(2) on ``num_qubits`` qubits, measured into ``bit[n] c``."""
    _check("ghz", num_qubits, 1)
    body = ["h q[0];", *(f"cx q[{i}], q[{i + 1}];" for i in range(num_qubits - 1))]
    return _program(num_qubits, body, measure=True)


def qft(num_qubits: int, measure: bool = True) -> Circuit:
    """The quantum Fourier transform (Hadamards, controlled phases, final swaps)."""
    _check("qft", num_qubits, 1)
    body: list[str] = []
    for target in range(num_qubits):
        body.append(f"h q[{target}];")
        for control in range(target + 1, num_qubits):
            body.append(f"cp(pi/{2 ** (control - target)}) q[{control}], q[{target}];")
    body += [f"swap q[{i}], q[{num_qubits - 1 - i}];" for i in range(num_qubits // 2)]
    return _program(num_qubits, body, measure)


def random_layered(num_qubits: int, layers: int, seed: int | None = None,
                   measure: bool = True) -> Circuit:
    """``layers`` layers of random ``U(θ, φ, λ)`` on every qubit followed by a brick of ``cx``
    (pairs (0,1), (2,3), ... on even layers, (1,2), (3,4), ... on odd ones).

    The same ``seed`` gives the same circuit on every machine.
    """
    _check("random_layered", num_qubits, 1)
    _check("random_layered", layers, 0)
    rng = random.Random(seed)
    body: list[str] = []
    for layer in range(layers):
        for qubit in range(num_qubits):
            theta, phi, lam = (rng.uniform(0.0, 2.0 * math.pi) for _ in range(3))
            body.append(f"U({theta!r}, {phi!r}, {lam!r}) q[{qubit}];")
        body += [f"cx q[{i}], q[{i + 1}];" for i in range(layer % 2, num_qubits - 1, 2)]
    return _program(num_qubits, body, measure)


def hardware_efficient_ansatz(num_qubits: int, layers: int, measure: bool = True) -> Circuit:
    """A hardware-efficient variational ansatz with free ``input float`` parameters.

    Each of the ``layers + 1`` rotation layers applies ``ry`` then ``rz`` to every qubit, and
    a linear chain of ``cx`` follows each but the last. Parameters are named ``theta_0``,
    ``theta_1``, ... in the order they are applied (``2 * num_qubits * (layers + 1)`` of them).
    """
    _check("hardware_efficient_ansatz", num_qubits, 1)
    _check("hardware_efficient_ansatz", layers, 0)
    count = 2 * num_qubits * (layers + 1)
    names = iter(f"theta_{i}" for i in range(count))
    body = [f"input float[64] theta_{i};" for i in range(count)]
    for layer in range(layers + 1):
        for qubit in range(num_qubits):
            body.append(f"ry({next(names)}) q[{qubit}];")
            body.append(f"rz({next(names)}) q[{qubit}];")
        if layer < layers:
            body += [f"cx q[{i}], q[{i + 1}];" for i in range(num_qubits - 1)]
    return _program(num_qubits, body, measure)
