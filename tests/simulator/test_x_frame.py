"""``x`` gates read as flipped bits (``engine.x_frame``): a sampling run leaves every plain
``x`` out, sees later gates through it (a control inverted, a target's matrix conjugated) and
inverts the sampled bits at the end. Checked against Qiskit's ``Statevector`` on random
circuits over every standard gate and modifier, at both precisions, on the direct and the
cache-blocked path, with parameter sweeps."""

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
    unflip = np.arange(1 << n) ^ exe.sample_readout.flip
    for state, binding in zip(states, bindings, strict=True):
        ours = np.abs(exe.logical(state[unflip], exe.values([binding]), make_run(1))) ** 2
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
