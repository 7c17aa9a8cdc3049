"""What a sampling run leaves to the read-out: every plain ``x`` (``engine.x_frame``: later
gates are seen through it, a control inverted, a target's matrix conjugated; the sampled bits
inverted at the end) and trailing permutation gates (``engine.trailing_gates``: ``cx``,
``ccx``, ``cswap``... before the measurements, applied to the outcomes). Checked against
Qiskit's ``Statevector`` on random circuits over every standard gate and modifier, at both
precisions, on the direct and the cache-blocked path, with parameter sweeps."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    assert_distribution,
    ideal_from_state,
    make_backend,
    program,
    random_program,
    reference_state,
    run,
)

from hal_workflow.circuits import Circuit
from hal_workflow.simulator.engine import EngineOptions, Executable, make_run, x_frame
from hal_workflow.simulator.gates import resolve

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PATHS = {"direct": {}, "blocked": {"blocking_threshold": 4, "block_qubits": 4}}
TOLERANCE = {"complex128": 1e-10, "complex64": 3e-5}


def _with_x(text: str, rng: np.random.Generator, n: int) -> str:
    """``text`` with an ``x`` on a random qubit before about every second operation."""
    lines = text.rstrip("\n").split("\n")
    head = next(i for i, line in enumerate(lines) if line.startswith("qubit[")) + 1
    body: list[str] = []
    for line in lines[head:]:
        if rng.random() < 0.5:
            body.append(f"x q[{int(rng.integers(n))}];")
        body.append(line)
    body.append(f"x q[{int(rng.integers(n))}];")
    return "\n".join(lines[:head] + body) + "\n"


@pytest.mark.parametrize("precision", sorted(TOLERANCE))
@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("seed", range(4))
def test_sampled_states_are_the_circuits_up_to_the_flips(path: str, precision: str,
                                                          seed: int) -> None:
    """The sampling plan's state, its flipped bits inverted, has Qiskit's probabilities
    (exactly: every later gate interferes through the conjugated ones), for a batch of
    parameter bindings at once."""
    rng = np.random.default_rng(seed + 100 * len(path) + len(precision))
    n = 6 if seed % 2 else 7
    text = _with_x(random_program(rng, n, 40, custom=False, inputs=("a", "b")), rng, n)
    exe = Executable(Circuit.from_qasm(text).lowered,
                     EngineOptions(precision=precision, **PATHS[path]))
    bindings = [{"a": float(a), "b": float(b)} for a, b in rng.uniform(-2, 2, (3, 2))]
    states = exe.final_states(exe.values(bindings), len(bindings), make_run(1), sampling=True)
    moved = exe.sampling.get().summary["x_gates_as_flips"]
    assert moved == text.count("\nx q[")  # every plain x left the plan
    outcome_map = exe.sample_readout.outcome_map
    image = np.arange(1 << n) if outcome_map is None else outcome_map(np.arange(1 << n))
    assert sorted(image) == list(range(1 << n))  # a permutation of the outcomes
    for state, binding in zip(states, bindings, strict=True):
        mapped = np.empty_like(state)
        mapped[image] = state  # what the read-out does to outcomes, done to amplitudes
        ours = np.abs(exe.logical(mapped, exe.values([binding]), make_run(1))) ** 2
        ideal = np.abs(reference_state(text, binding)) ** 2
        np.testing.assert_allclose(ours, ideal, atol=TOLERANCE[precision], err_msg=text)


@pytest.mark.parametrize("precision", sorted(TOLERANCE))
@pytest.mark.parametrize("path", sorted(PATHS))
def test_counts_read_the_flips(path: str, precision: str) -> None:
    """Counts through ``backend.run`` (14 qubits: the large-state sampling) against the exact
    distribution; x on measured and unmeasured qubits, before and after entangling gates."""
    rng = np.random.default_rng(7 + len(path))
    n = 14
    text = _with_x(random_program(rng, n, 50, modifiers=True, custom=False), rng, n)
    measured = {q: (5 * q + 1) % n for q in range(0, n, 2)}
    full = program(n, [*text.strip().split("\n")[3:],
                       *(f"c[{c}] = measure q[{q}];" for q, c in measured.items())],
                   num_clbits=n)
    result = run(make_backend(precision=precision, seed=11, **PATHS[path]).run(full, 20_000))
    assert result.metadata["plan"]["x_gates_as_flips"] == text.count("\nx q[")
    assert_distribution(dict(result.counts), ideal_from_state(reference_state(full), measured,
                                                              n))


def test_x_frame_conjugates_what_follows() -> None:
    text = program(3, ["x q[0];", "cx q[0], q[1];", "x q[1];", "rz(0.3) q[1];", "cx q[2], q[1];",
                       "x q[0];", "negctrl @ h q[0], q[2];", "x q[2];"])
    gates = [resolve(op) for op in Circuit.from_qasm(text).lowered.operations]
    out, flipped, moved = x_frame(gates)
    assert moved == 4 and flipped == 0b110  # q0 flipped twice, q1 and q2 once
    cx01, rz1, cx21, negh = out
    assert cx01.ctrl_values == (0,) and cx01.steps == ()  # control seen through x
    assert rz1.steps[-1] == ("xconj", 1) and rz1.diagonal  # X rz X, still diagonal
    assert cx21.steps == ()  # X commutes with the target's X
    assert negh.ctrl_values == (0,)  # q0 flipped back: unchanged
    np.testing.assert_allclose(rz1.base_matrix(), np.diag([np.exp(0.15j), np.exp(-0.15j)])[None])


TRAILING = ["cx q[{a}], q[{b}];", "swap q[{a}], q[{b}];", "ccx q[{a}], q[{b}], q[{c}];",
            "negctrl @ x q[{a}], q[{b}];", "cswap q[{a}], q[{b}], q[{c}];", "cy q[{a}], q[{b}];",
            "ctrl @ swap q[{a}], q[{b}], q[{c}];"]


def _with_trailing(text: str, rng: np.random.Generator, n: int, count: int) -> tuple[str, int]:
    """``text`` followed by ``count`` random permutation gates (and some ``x``, ``cz``), none
    of them followed by anything else: all of them can leave the sampling plan."""
    lines = [text.rstrip("\n")]
    perms = 0
    for _ in range(count):
        a, b, c = (int(q) for q in rng.choice(n, 3, replace=False))
        roll = rng.random()
        if roll < 0.15:
            lines.append(f"x q[{a}];")
        elif roll < 0.3:
            lines.append(f"cz q[{a}], q[{b}];")
        else:
            gate = TRAILING[int(rng.integers(len(TRAILING)))]
            lines.append(gate.format(a=a, b=b, c=c))
            perms += not gate.startswith("swap")  # a plain swap only relabels qubits
    return "\n".join(lines) + "\n", perms


@pytest.mark.parametrize("precision", sorted(TOLERANCE))
@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("seed", range(3))
def test_trailing_permutations_go_to_the_read_out(path: str, precision: str, seed: int) -> None:
    """Permutation gates at the end leave the sampling plan; the outcome map applied to the
    plan's state gives Qiskit's probabilities."""
    rng = np.random.default_rng(seed + 7 * len(path) + len(precision))
    n = 7
    text, perms = _with_trailing(random_program(rng, n, 30, custom=False), rng, n, 12)
    exe = Executable(Circuit.from_qasm(text).lowered,
                     EngineOptions(precision=precision, **PATHS[path]))
    states = exe.final_states(None, 1, make_run(1), sampling=True)
    # every appended one (and maybe some of the random program's last gates)
    assert exe.sampling.get().summary["trailing_permutations"] >= perms
    image = exe.sample_readout.outcome_map(np.arange(1 << n))
    mapped = np.empty_like(states[0])
    mapped[image] = states[0]
    ours = np.abs(exe.logical(mapped, None, make_run(1))) ** 2
    np.testing.assert_allclose(ours, np.abs(reference_state(text)) ** 2,
                               atol=TOLERANCE[precision], err_msg=text)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_ghz_fan_out_is_sampled_from_a_product_state(path: str) -> None:
    """GHZ's cx chain only permutes outcomes: the sampling plan keeps nothing but the h
    (folded into the start), and counts are still half all-zeros, half all-ones."""
    n = 16
    body = ["h q[0];", *(f"cx q[{q}], q[{q + 1}];" for q in range(n - 1)),
            *(f"c[{q}] = measure q[{q}];" for q in range(n))]
    result = run(make_backend(seed=2, **PATHS[path]).run(program(n, body, num_clbits=n), 4000))
    plan = result.metadata["plan"]
    assert plan["trailing_permutations"] == n - 1
    assert plan.get("dense_blocks", 0) + plan.get("perm_blocks", 0) == 0
    assert set(result.counts) == {"0" * n, "1" * n}
    assert abs(result.counts["0" * n] - 2000) < 5 * np.sqrt(1000)
