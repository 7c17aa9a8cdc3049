"""Diagonal layers: parity gates (``cx; rz; cx``) and the phase pass, against Qiskit.

The planner turns ``cx a, b; rz(t) b; cx a, b`` (OpenQASM's ``rzz``) into one diagonal gate
and applies runs of diagonal blocks in one pass over each cache block. These programs mix
long diagonal runs (every diagonal standard gate, controlled phases, parity patterns and
near-misses of them) with short runs of other gates, and compare the final state with
Qiskit's ``Statevector`` of the same text (parsed by Qiskit), on every kernel path and at
both precisions.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_backend, program, reference_state, run

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside Qiskit's importer

PATHS = {
    "direct": {},
    "blocked-5": {"blocking_threshold": 4, "block_qubits": 5},
    "blocked-7": {"blocking_threshold": 4, "block_qubits": 7},
    "unfused": {"blocking_threshold": 4, "block_qubits": 5, "fusion": False},
}
TOLERANCE = {"complex128": 1e-10, "complex64": 2e-5}

ONE_QUBIT_DIAGONALS = ["rz({a})", "p({a})", "z", "s", "t", "sdg", "tdg"]
TWO_QUBIT_DIAGONALS = ["cz", "cp({a})", "crz({a})", "ctrl @ rz({a})", "negctrl @ p({a})"]
OTHERS = ["h", "sx", "rx({a})", "ry({a})", "x"]


def _parity(rng: np.random.Generator, a: int, b: int, n: int) -> list[str]:
    """``cx a, b; g b; cx a, b``, sometimes with gates on other qubits in between (still a
    parity gate) or a near-miss (a modifier on ``g``, the second cx reversed, or a gate on
    ``a`` in between) that must stay three gates."""
    angle = rng.uniform(-3, 3)
    middle = ["rz", "p", "u1"][rng.integers(3)] if rng.random() < 0.7 else "rz"
    lines = [f"cx q[{a}], q[{b}];", f"{middle}({angle:.6f}) q[{b}];", f"cx q[{a}], q[{b}];"]
    others = [q for q in range(n) if q not in (a, b)]
    if others and rng.random() < 0.3:
        lines.insert(1 + int(rng.integers(2)), f"h q[{int(rng.choice(others))}];")
    miss = rng.random()
    if miss < 0.1:
        lines[1] = f"inv @ rz({angle:.6f}) q[{b}];"
    elif miss < 0.2:
        lines[2] = f"cx q[{b}], q[{a}];"
    elif miss < 0.3:
        lines.insert(2, f"rx({angle:.6f}) q[{a}];")
    return lines


def diagonal_program(rng: np.random.Generator, n: int, layers: int) -> str:
    body = [f"h q[{q}];" for q in range(n)]
    for _ in range(layers):
        for _ in range(int(rng.integers(n, 3 * n))):  # a diagonal run
            r = rng.random()
            a, b = (int(q) for q in rng.choice(n, size=2, replace=False))
            angle = f"{rng.uniform(-3, 3):.6f}"
            if r < 0.3:
                body += _parity(rng, a, b, n)
            elif r < 0.6:
                gate = TWO_QUBIT_DIAGONALS[rng.integers(len(TWO_QUBIT_DIAGONALS))]
                body.append(f"{gate.format(a=angle)} q[{a}], q[{b}];")
            else:
                gate = ONE_QUBIT_DIAGONALS[rng.integers(len(ONE_QUBIT_DIAGONALS))]
                body.append(f"{gate.format(a=angle)} q[{a}];")
        for q in rng.choice(n, size=int(rng.integers(1, n)), replace=False):  # others
            gate = OTHERS[rng.integers(len(OTHERS))]
            body.append(f"{gate.format(a=f'{rng.uniform(-3, 3):.6f}')} q[{int(q)}];")
        if rng.random() < 0.5:
            a, b = (int(q) for q in rng.choice(n, size=2, replace=False))
            body.append(f"cx q[{a}], q[{b}];")
    return program(n, body)


@pytest.mark.parametrize("precision", sorted(TOLERANCE))
@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("seed", range(3))
def test_diagonal_runs_match_qiskit(path: str, precision: str, seed: int) -> None:
    rng = np.random.default_rng(seed + 17 * len(path) + len(precision))
    backend = make_backend(precision=precision, **PATHS[path])
    for n in (6, 11):
        text = diagonal_program(rng, n, layers=4)
        ours = run(backend.extension("statevector").statevector(text))
        np.testing.assert_allclose(ours, reference_state(text), atol=TOLERANCE[precision],
                                   err_msg=text)


def _plan(text: str, **options: object) -> dict[str, int]:
    backend = make_backend(threads=1, **options)
    result = run(backend.run(text, 10))
    assert result.metadata["method"] == "statevector"
    return dict(result.metadata["plan"])


def test_parity_patterns_become_one_diagonal_gate() -> None:
    """Three exact patterns (one with a gate on another qubit in between) and three
    near-misses; the state agrees with Qiskit either way."""
    body = [f"h q[{q}];" for q in range(4)] + [
        "cx q[0], q[1];", "rz(0.3) q[1];", "cx q[0], q[1];",  # pattern
        "cx q[2], q[3];", "h q[0];", "p(0.7) q[3];", "cx q[2], q[3];",  # pattern
        "cx q[1], q[2];", "u1(-1.1) q[2];", "cx q[1], q[2];",  # pattern
        "cx q[0], q[1];", "rz(0.3) q[1];", "cx q[1], q[0];",  # reversed: not one
        "cx q[0], q[1];", "rx(0.3) q[1];", "cx q[0], q[1];",  # not diagonal
        "cx q[2], q[3];", "rz(0.3) q[3];", "t q[2];", "cx q[2], q[3];",  # gate on the control
    ]
    text = program(4, body, num_clbits=4) + "c = measure q;\n"
    assert _plan(text)["parity_gates"] == 3
    state_text = program(4, body)
    np.testing.assert_allclose(run(make_backend().extension("statevector").statevector(
        state_text)), reference_state(state_text), atol=1e-10)


def test_a_diagonal_layer_runs_as_one_phase_pass_per_stage() -> None:
    """A QAOA-style cost layer (rzz on 30 random pairs, then cp and rz) between two layers
    of rx: its many diagonal blocks are applied in one pass per stage."""
    rng = np.random.default_rng(5)
    n = 12
    body = [f"h q[{q}];" for q in range(n)]
    for _ in range(30):
        a, b = (int(q) for q in rng.choice(n, size=2, replace=False))
        body += [f"cx q[{a}], q[{b}];", f"rz({rng.uniform(-3, 3):.4f}) q[{b}];",
                 f"cx q[{a}], q[{b}];"]
    body += [f"cp(0.4) q[{q}], q[{(q + 5) % n}];" for q in range(n)]
    body += [f"rz(0.{q + 1}) q[{q}];" for q in range(n)]
    body += [f"rx(0.3) q[{q}];" for q in range(n)]
    text = program(n, body, num_clbits=n) + "c = measure q;\n"
    plan = _plan(text, blocking_threshold=4, block_qubits=7)
    assert plan["parity_gates"] == 30
    assert plan["diag_blocks"] > plan["stages"]  # more tables than one per stage...
    assert plan["phase_passes"] <= plan["stages"]  # ...yet one pass per stage at most
    state_text = program(n, body)
    for precision in sorted(TOLERANCE):
        ours = run(make_backend(precision=precision, blocking_threshold=4, block_qubits=7)
                   .extension("statevector").statevector(state_text))
        np.testing.assert_allclose(ours, reference_state(state_text),
                                   atol=TOLERANCE[precision])


@pytest.mark.parametrize("path", ["direct", "blocked-5"])
def test_parametric_parity_gates_rebind(path: str) -> None:
    """A parity gate keeps its parameter: each binding of ``t`` gives Qiskit's state."""
    n = 8
    body = [f"h q[{q}];" for q in range(n)]
    for q in range(n - 1):
        body += [f"cx q[{q}], q[{q + 1}];", f"rz(t * {0.3 + 0.1 * q:.2f}) q[{q + 1}];",
                 f"cx q[{q}], q[{q + 1}];"]
    body += [f"rx(t) q[{q}];" for q in range(n)]
    text = program(n, body, inputs=["t"])
    backend = make_backend(**PATHS[path])
    for value in (0.4, -1.3):
        ours = run(backend.extension("statevector").statevector(text, {"t": value}))
        np.testing.assert_allclose(ours, reference_state(text, {"t": value}), atol=1e-10)
