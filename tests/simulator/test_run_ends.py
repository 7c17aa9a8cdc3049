"""The start and end of a statevector run: leading one-qubit gates folded into the initial
product state, and trailing diagonal gates that a sampling run skips. Both are checked
against Qiskit's ``Statevector`` (amplitudes) and the exact distribution (counts), at both
precisions, on the direct (small-state) and the cache-blocked path."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    assert_distribution,
    ideal_from_state,
    make_backend,
    program,
    reference_state,
    run,
)

from hal_workflow.circuits import Circuit
from hal_workflow.simulator.engine import EngineOptions, Executable, make_run, trailing_gates
from hal_workflow.simulator.gates import resolve

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TOLERANCE = {"complex128": 1e-10, "complex64": 3e-5}
PATHS = {
    "direct": {},
    "blocked": {"blocking_threshold": 4, "block_qubits": 4},
    # a 3-qubit dense gate is no block at max_fused_qubits 2: the plan's first step runs it on
    # the whole state, so an operation-free first stage writes the product state
    "blocked-barrier-first": {"blocking_threshold": 4, "block_qubits": 4,
                              "max_fused_qubits": 2},
}
ONE_QUBIT = ["h", "x", "y", "sx", "t", "sdg", "rx({a})", "ry({a})", "rz({a})", "p({a})",
             "U({a}, 0.4, -1.1)"]


def _leading_program(rng: np.random.Generator, n: int, barrier_first: bool = False,
                     trailing: bool = True) -> tuple[str, int]:
    """Leading one-qubit runs of 0-3 gates on most qubits (qubit 1's first gate is a cx, the
    last qubit gets nothing and stays |0>, qubit 2 only ever sees one-qubit gates), a random
    entangling middle, and trailing diagonals. Returns the program and how many gates lead
    once the trailing ones are gone, plain ``x`` gates not counted: a sampling run reads every
    ``x`` as a flipped bit (``engine.x_frame``)."""
    body: list[str] = []
    leading = 0
    for q in range(n):
        if q in (1, n - 1):
            continue
        for _ in range(int(rng.integers(0 if q else 1, 4))):
            gate = ONE_QUBIT[rng.integers(len(ONE_QUBIT))]
            body.append(f"{gate.format(a=f'{rng.uniform(-3, 3):.5f}')} q[{q}];")
            leading += gate != "x"
    entangled = {0, 1}
    if barrier_first:
        body.append("ctrl(2) @ ry(0.7) q[0], q[3], q[4];")
        entangled |= {3, 4}
    body.append("cx q[1], q[0];")
    others = [q for q in range(n) if q != 2]
    for _ in range(3 * n):
        a, b = (int(q) for q in rng.choice(others, size=2, replace=False))
        r = rng.random()
        if r < 0.4:
            body.append(f"cx q[{a}], q[{b}];")
            entangled |= {a, b}
        elif r < 0.55:
            body.append(f"cp({rng.uniform(-3, 3):.5f}) q[{a}], q[{b}];")
            entangled |= {a, b}
        else:
            gate = ONE_QUBIT[rng.integers(len(ONE_QUBIT))]
            body.append(f"{gate.format(a=f'{rng.uniform(-3, 3):.5f}')} q[{a}];")
            leading += a not in entangled and gate != "x"  # still on a product factor
    body.append("h q[2];")
    body += [f"sx q[{q}];" for q in range(n)]  # so only the diagonals below trail
    leading += 1 + sum(1 for q in range(n) if q not in entangled)  # qubit 2 is never
    if trailing:
        body += ["t q[0];", f"rz(0.9) q[{n - 2}];", "cz q[1], q[3];", "s q[2];",
                 f"cp(-1.3) q[0], q[{n - 2}];"]
    return program(n, body), leading


@pytest.mark.parametrize("precision", sorted(TOLERANCE))
@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("seed", range(3))
def test_product_start_and_full_plan_match_qiskit(path: str, precision: str, seed: int) -> None:
    """``statevector()`` runs the full plan (trailing diagonals kept, so the phases match)
    from the folded product start."""
    rng = np.random.default_rng(seed + 31 * len(path) + len(precision))
    backend = make_backend(precision=precision, **PATHS[path])
    for n in (6, 9):
        text, _ = _leading_program(rng, n, barrier_first=path == "blocked-barrier-first")
        ours = run(backend.extension("statevector").statevector(text))
        np.testing.assert_allclose(ours, reference_state(text), atol=TOLERANCE[precision],
                                   err_msg=text)


@pytest.mark.parametrize("precision", sorted(TOLERANCE))
@pytest.mark.parametrize("path", sorted(PATHS))
def test_sampling_plan_skips_trailing_diagonals_and_counts_follow_exact_distribution(
        path: str, precision: str) -> None:
    rng = np.random.default_rng(len(path) + len(precision))
    n = 14  # above SMALL_SAMPLE_QUBITS: the large-state sampling kernels
    text, leading = _leading_program(rng, n, barrier_first=path == "blocked-barrier-first")
    measured = {q: (3 * q + 2) % n for q in range(0, n, 2)}  # partial, permuted
    full = program(n, [*text.strip().split("\n")[3:],
                       *(f"c[{c}] = measure q[{q}];" for q, c in measured.items())],
                   num_clbits=n)
    shots = 20_000
    result = run(make_backend(precision=precision, seed=3, **PATHS[path]).run(full, shots))
    plan = result.metadata["plan"]
    assert plan["initial_product_gates"] == leading
    assert plan["trailing_diagonals_skipped"] == 5
    assert plan.get("x_gates_as_flips", 0) == sum(line.startswith("x q[")
                                                  for line in full.split("\n"))
    ideal = ideal_from_state(reference_state(full), measured, n)
    assert_distribution(dict(result.counts), ideal)


def test_trailing_gates_are_those_no_mixing_gate_follows() -> None:
    text = program(3, ["h q[0];", "rz(0.3) q[0];", "cx q[0], q[1];", "t q[1];",
                       "cz q[0], q[1];", "h q[1];", "s q[1];", "cp(0.2) q[0], q[2];",
                       "x q[2];", "z q[0];"])
    gates = [resolve(op) for op in Circuit.from_qasm(text).lowered.operations]
    # rz q0 (cx follows on q0), t q1 and cz (h follows on q1) stay; cp and s drop, the
    # x on q2 goes to the read-out (cp passes it: both leave the plan)
    assert trailing_gates(gates) == ({6, 7, 8, 9}, [8])


@pytest.mark.parametrize("precision", sorted(TOLERANCE))
@pytest.mark.parametrize("n", [6, 17])
def test_sweep_re_evaluates_parametric_leading_gates(n: int, precision: str) -> None:
    """Leading gates that depend on inputs make a product start per binding: every state of
    a batch (6 qubits: one batched kernel call; 17: the blocked path) matches Qiskit."""
    body = ["ry(a) q[0];", "rz(b) q[0];", "rx(a * 0.5 + b) q[1];", "h q[2];", "p(b) q[2];",
            *(f"ry({0.3 * q:.2f}) q[{q}];" for q in range(3, n)),
            *(f"cx q[{q}], q[{q + 1}];" for q in range(n - 1)), "ry(b) q[0];"]
    text = program(n, body, inputs=("a", "b"))
    exe = Executable(Circuit.from_qasm(text).lowered, EngineOptions(precision=precision))
    bindings = [{"a": 0.3, "b": -1.2}, {"a": 2.1, "b": 0.4}, {"a": -0.7, "b": 2.9}]
    states = exe.final_states(exe.values(bindings), len(bindings), make_run(2))
    assert exe.unitary is not None
    assert exe.unitary.get().summary["initial_product_gates"] == n + 2
    for state, binding in zip(states, bindings, strict=True):
        ours = exe.logical(state, None, make_run(1))
        np.testing.assert_allclose(ours, reference_state(text, binding),
                                   atol=TOLERANCE[precision])


@pytest.mark.parametrize("precision", sorted(TOLERANCE))
@pytest.mark.parametrize("block_qubits", [4, 9])
def test_last_stage_sample_blocks_follow_exact_distribution(block_qubits: int,
                                                            precision: str) -> None:
    """A blocked plan's last stage sums its sample blocks as it writes them and sampling
    walks them in the stage's layout (9 local qubits: two blocks per chunk); counts follow
    the exact distribution and repeat with the seed."""
    n = 15
    rng = np.random.default_rng(block_qubits)
    body = [f"ry({rng.uniform(0.3, 2.8):.5f}) q[{q}];" for q in range(n)]
    for layer in range(2):
        body += [f"cx q[{q}], q[{q + 1}];" for q in range(layer, n - 1, 2)]
        body += [f"U({rng.uniform(-3, 3):.4f}, 0.2, {rng.uniform(-3, 3):.4f}) q[{q}];"
                 for q in range(n)]
    measured = {q: (5 * q + 1) % n for q in range(1, n, 2)}
    full = program(n, [*body, *(f"c[{c}] = measure q[{q}];" for q, c in measured.items())],
                   num_clbits=n)
    backend = make_backend(precision=precision, seed=9, blocking_threshold=4,
                           block_qubits=block_qubits)
    exe = backend.executable(full)
    assert exe.sampling.get().last_stage is not None
    counts = dict(run(backend.run(full, 20_000)).counts)
    assert_distribution(counts, ideal_from_state(reference_state(full), measured, n))
    assert dict(run(backend.run(full, 20_000)).counts) == counts


def test_last_stage_sampling_of_a_basis_state() -> None:
    """Bernstein-Vazirani ends in one basis state: every shot reads the secret."""
    n = 16
    secret = [q for q in range(n - 1) if q % 3 != 1]
    body = [f"x q[{n - 1}];", *(f"h q[{q}];" for q in range(n)),
            *(f"cx q[{q}], q[{n - 1}];" for q in secret), *(f"h q[{q}];" for q in range(n)),
            *(f"c[{q}] = measure q[{q}];" for q in range(n - 1))]
    backend = make_backend(seed=4, blocking_threshold=4, block_qubits=5)
    key = "".join("1" if q in secret else "0" for q in reversed(range(n - 1)))
    assert dict(run(backend.run(program(n, body, num_clbits=n - 1), 1000)).counts) == {key: 1000}


@pytest.mark.parametrize("precision", sorted(TOLERANCE))
def test_first_stage_on_local_qubits_scales_one_template_chunk(precision: str) -> None:
    """A fresh first stage whose operations all act on its local qubits computes one chunk
    and writes every other as that chunk times the chunk's (complex) product factor."""
    n = 11
    rng = np.random.default_rng(5)
    body = [f"U({rng.uniform(0.3, 2.8):.4f}, {rng.uniform(-3, 3):.4f}, "
            f"{rng.uniform(-3, 3):.4f}) q[{q}];" for q in range(n)]
    body += ["cx q[0], q[1];", "cx q[2], q[3];", "h q[1];", "cz q[1], q[2];", "cx q[3], q[0];"]
    body += [f"cx q[{q}], q[{q + 1}];" for q in range(3, n - 1)]
    text = program(n, body)
    backend = make_backend(precision=precision, blocking_threshold=4, block_qubits=4)
    first = backend.executable(text).unitary.get().steps[0]
    assert first.local_only and len(first.descs) and set(first.local) == {0, 1, 2, 3}
    ours = run(backend.extension("statevector").statevector(text))
    np.testing.assert_allclose(ours, reference_state(text), atol=TOLERANCE[precision])
