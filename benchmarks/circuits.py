"""The circuit classes of issue 12's simulator benchmark, as OpenQASM 3 text.

Every generator is deterministic (a fixed seed per class, Python's ``random.Random``, angles
written with ``repr``), so every simulator, every process and every machine gets the *same*
program. The text uses only ``stdgates.inc`` gates and the built-in ``U`` (``h``, ``s``, ``x``,
``cx``, ``cz``, ``rx``, ``ry``, ``rz``, ``U``), so Qiskit's ``qasm3`` loader, Braket, PRISM-Q
and our parser all read it unchanged; every qubit is measured into ``bit[n] c`` at the end.

Classes (``CLASSES`` maps the benchmark's names to generators of ``n`` qubits):

* ``qv``: square quantum volume, ``n`` layers of random SU(4) blocks on a random pairing,
  each block in the three-``cx`` decomposition (``U`` on both qubits, ``cx``, ``rz``/``ry``,
  ``cx``, ``ry``, ``cx``, ``U`` on both qubits), so it reaches all of SU(4);
* ``qaoa``: QAOA with p=4 on a random 3-regular graph (``cx``-``rz``-``cx`` per edge, then an
  ``rx`` mixer on every qubit);
* ``hea``: a 20-layer hardware-efficient ansatz (``ry``, ``rz`` on every qubit, then a ``cz``
  ladder), random angles;
* ``ising``: Trotterised transverse-field Ising evolution on a chain (ZZ as ``cx``-``rz``-``cx``,
  X field as ``rx``), 10 steps;
* ``heisenberg``: Trotterised XXX Heisenberg evolution on a chain (each bond's XX + YY + ZZ
  term in three ``cx``), 5 steps;
* ``ghz``, ``bv`` (Bernstein-Vazirani, ``n - 1`` secret bits and one ancilla) and
  ``clifford`` (10 layers of random ``h``/``s``/``x`` and ``cx`` on a random pairing): Clifford
  circuits.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from hal_workflow.contract.errors import CircuitError

__all__ = ["CLASSES", "CLIFFORD_CLASSES", "bernstein_vazirani", "circuit_qasm", "ghz",
           "hardware_efficient", "heisenberg", "ising", "qaoa", "quantum_volume",
           "random_clifford", "random_regular_graph"]

_HEADER = 'OPENQASM 3.0;\ninclude "stdgates.inc";'


def _program(n: int, body: list[str]) -> str:
    return "\n".join([_HEADER, f"qubit[{n}] q;", f"bit[{n}] c;", *body,
                      "c = measure q;"]) + "\n"


def _check(name: str, n: int, minimum: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < minimum:
        raise CircuitError(f"{name}: needs an integer number of qubits >= {minimum}, got {n!r}")


def _angle(rng: random.Random) -> str:
    return repr(rng.uniform(0.0, 2.0 * math.pi))


def _u(rng: random.Random, q: int) -> str:
    return f"U({_angle(rng)}, {_angle(rng)}, {_angle(rng)}) q[{q}];"


def _zz(a: int, b: int, theta: float) -> list[str]:
    """exp(-i theta/2 Z_a Z_b) (up to global phase)."""
    return [f"cx q[{a}], q[{b}];", f"rz({theta!r}) q[{b}];", f"cx q[{a}], q[{b}];"]


def quantum_volume(n: int, depth: int | None = None, seed: int = 12) -> str:
    """Quantum volume: ``depth`` (default ``n``) layers; each layer pairs the qubits by a random
    permutation and applies a random SU(4) block to each pair (an odd qubit out idles)."""
    _check("quantum_volume", n, 2)
    rng = random.Random(seed)
    body: list[str] = []
    for _ in range(n if depth is None else depth):
        order = list(range(n))
        rng.shuffle(order)
        for a, b in zip(order[0::2], order[1::2], strict=False):
            body += [_u(rng, a), _u(rng, b), f"cx q[{b}], q[{a}];",
                     f"rz({_angle(rng)}) q[{a}];", f"ry({_angle(rng)}) q[{b}];",
                     f"cx q[{a}], q[{b}];", f"ry({_angle(rng)}) q[{b}];",
                     f"cx q[{b}], q[{a}];", _u(rng, a), _u(rng, b)]
    return _program(n, body)


def random_regular_graph(n: int, degree: int = 3, seed: int = 12) -> list[tuple[int, int]]:
    """The edges (a < b, sorted) of a random ``degree``-regular simple graph on ``n`` nodes
    (pairing model: stubs matched at random, redrawn until no loop or double edge)."""
    if n * degree % 2 or n <= degree:
        raise CircuitError(f"random_regular_graph: no {degree}-regular graph on {n} nodes "
                           "(needs n > degree and n * degree even)")
    rng = random.Random(seed)
    for _ in range(10_000):
        stubs = [node for node in range(n) for _ in range(degree)]
        rng.shuffle(stubs)
        edges = {(min(a, b), max(a, b)) for a, b in zip(stubs[0::2], stubs[1::2], strict=True)}
        if len(edges) == n * degree // 2 and all(a != b for a, b in edges):
            return sorted(edges)
    raise CircuitError(f"random_regular_graph: no simple graph drawn for n={n}")  # unreachable


def qaoa(n: int, p: int = 4, seed: int = 12) -> str:
    """QAOA for MaxCut on a random 3-regular graph: ``h`` on all, then ``p`` rounds of a cost
    layer (``cx``-``rz(2 gamma)``-``cx`` per edge) and a mixer (``rx(2 beta)`` on all)."""
    _check("qaoa", n, 4)
    edges = random_regular_graph(n, 3, seed)
    rng = random.Random(seed)
    body = [f"h q[{i}];" for i in range(n)]
    for _ in range(p):
        gamma, beta = rng.uniform(0.0, math.pi), rng.uniform(0.0, math.pi)
        for a, b in edges:
            body += _zz(a, b, 2.0 * gamma)
        body += [f"rx({2.0 * beta!r}) q[{i}];" for i in range(n)]
    return _program(n, body)


def hardware_efficient(n: int, layers: int = 20, seed: int = 12) -> str:
    """``layers`` layers of random ``ry`` and ``rz`` on every qubit, each followed by a ``cz``
    ladder (0-1, 1-2, ..., (n-2)-(n-1))."""
    _check("hardware_efficient", n, 2)
    rng = random.Random(seed)
    body: list[str] = []
    for _ in range(layers):
        for q in range(n):
            body += [f"ry({_angle(rng)}) q[{q}];", f"rz({_angle(rng)}) q[{q}];"]
        body += [f"cz q[{q}], q[{q + 1}];" for q in range(n - 1)]
    return _program(n, body)


def ising(n: int, steps: int = 10, dt: float = 0.1, coupling: float = 1.0,
          field: float = 1.0) -> str:
    """First-order Trotter steps of H = J sum Z_i Z_{i+1} + h sum X_i on an open chain, from
    |0...0>: per step ``cx``-``rz(2 J dt)``-``cx`` on every bond, then ``rx(2 h dt)`` on all."""
    _check("ising", n, 2)
    body: list[str] = []
    for _ in range(steps):
        for q in range(n - 1):
            body += _zz(q, q + 1, 2.0 * coupling * dt)
        body += [f"rx({2.0 * field * dt!r}) q[{q}];" for q in range(n)]
    return _program(n, body)


def heisenberg(n: int, steps: int = 5, dt: float = 0.1, coupling: float = 1.0) -> str:
    """First-order Trotter steps of the XXX chain H = J sum (XX + YY + ZZ) from the Neel state
    (``x`` on odd qubits). Each bond's exp(-i J dt (XX + YY + ZZ)) is the three-``cx`` circuit
    of Vatan and Williams (``rz``/``ry`` between the ``cx``), applied on even bonds, then odd."""
    _check("heisenberg", n, 2)
    angle = -coupling * dt  # exp(i (a XX + b YY + c ZZ)) with a = b = c = angle
    quarter = math.pi / 2
    body = [f"x q[{q}];" for q in range(1, n, 2)]
    for _ in range(steps):
        for a in [*range(0, n - 1, 2), *range(1, n - 1, 2)]:
            b = a + 1
            body += [f"rz({quarter!r}) q[{b}];", f"cx q[{b}], q[{a}];",
                     f"rz({quarter - 2 * angle!r}) q[{a}];",
                     f"ry({quarter - 2 * angle!r}) q[{b}];", f"cx q[{a}], q[{b}];",
                     f"ry({2 * angle - quarter!r}) q[{b}];", f"cx q[{b}], q[{a}];",
                     f"rz({-quarter!r}) q[{a}];"]
    return _program(n, body)


def ghz(n: int) -> str:
    """(|0...0> + |1...1>)/sqrt(2): ``h`` then a ``cx`` chain."""
    _check("ghz", n, 1)
    return _program(n, ["h q[0];", *(f"cx q[{i}], q[{i + 1}];" for i in range(n - 1))])


def bernstein_vazirani(n: int, seed: int = 12) -> str:
    """Bernstein-Vazirani for a random ``n - 1``-bit secret (ancilla ``q[n-1]``): measuring
    gives the secret on the data qubits with certainty."""
    _check("bernstein_vazirani", n, 2)
    rng = random.Random(seed)
    anc = n - 1
    body = [f"x q[{anc}];", *(f"h q[{i}];" for i in range(n))]
    body += [f"cx q[{i}], q[{anc}];" for i in range(anc) if rng.random() < 0.5]
    body += [f"h q[{i}];" for i in range(n)]
    return _program(n, body)


def random_clifford(n: int, layers: int = 10, seed: int = 12) -> str:
    """``layers`` layers of a random ``h``, ``s`` or ``x`` on every qubit and ``cx`` on a random
    pairing of the qubits (random control/target order)."""
    _check("random_clifford", n, 2)
    rng = random.Random(seed)
    body: list[str] = []
    for _ in range(layers):
        body += [f"{rng.choice(('h', 's', 'x'))} q[{q}];" for q in range(n)]
        order = list(range(n))
        rng.shuffle(order)
        body += [f"cx q[{a}], q[{b}];" for a, b in zip(order[0::2], order[1::2], strict=False)]
    return _program(n, body)


CLASSES: dict[str, Callable[[int], str]] = {
    "qv": quantum_volume,
    "qaoa": qaoa,
    "hea": hardware_efficient,
    "ising": ising,
    "heisenberg": heisenberg,
    "ghz": ghz,
    "bv": bernstein_vazirani,
    "clifford": random_clifford,
}
"""The benchmark's circuit classes by name, each a function of the width."""

CLIFFORD_CLASSES = frozenset({"ghz", "bv", "clifford"})


def circuit_qasm(kind: str, n: int) -> str:
    """The OpenQASM 3 text of class ``kind`` at ``n`` qubits."""
    if kind not in CLASSES:
        raise CircuitError(f"unknown circuit class {kind!r}; known: {', '.join(CLASSES)}")
    return CLASSES[kind](n)
