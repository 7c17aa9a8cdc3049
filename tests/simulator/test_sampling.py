"""Sampled counts: distributions, bit order, seeds, and per-shot (mid-circuit) circuits."""

from __future__ import annotations

import math

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
from hal_workflow.simulator.engine import EngineOptions, Executable, make_run

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


async def _counts(backend: object, text: str, shots: int, **kwargs: object) -> dict[str, int]:
    result = await backend.run(text, shots, **kwargs)  # type: ignore[attr-defined]
    return dict(result.counts)


@pytest.mark.parametrize("num_qubits", [3, 6, 13, 14])
def test_counts_follow_exact_distribution(num_qubits: int) -> None:
    """Partial, permuted measurement; 13-14 qubits take the large-state sampling kernels."""
    rng = np.random.default_rng(num_qubits)
    text = random_program(rng, num_qubits, 3 * num_qubits, modifiers=False, custom=False)
    measured = {q: (q * 3 + 1) % num_qubits for q in range(0, num_qubits, 2)}
    num_clbits = num_qubits
    body = text.rstrip("\n").split("\n")
    header, ops = body[:3], body[3:]
    lines = [*ops, *(f"c[{c}] = measure q[{q}];" for q, c in measured.items())]
    full = program(num_qubits, lines, num_clbits=num_clbits)
    ideal = ideal_from_state(reference_state(full), measured, num_clbits)
    shots = 20_000
    counts = run(_counts(make_backend(seed=5), full, shots))
    assert sum(counts.values()) == shots
    assert all(len(k) == num_clbits for k in counts)
    assert_distribution(counts, ideal)
    assert header[0].startswith("OPENQASM")


def test_total_variation_on_wide_uniform_state() -> None:
    """A 16-qubit state sampled through the blocked path: total variation of the qubit-0..3
    marginal stays near its sampling noise."""
    body = [f"h q[{q}];" for q in range(16)] + [f"c[{q}] = measure q[{q}];" for q in range(4)]
    counts = run(_counts(make_backend(seed=9), program(16, body, num_clbits=4), 40_000))
    tv = 0.5 * sum(abs(counts.get(format(i, "04b"), 0) / 40_000 - 1 / 16) for i in range(16))
    assert tv < 0.02


def test_same_seed_same_counts_and_metadata_reproduces() -> None:
    text = program(3, ["h q[0];", "ry(0.8) q[1];", "cx q[0], q[2];",
                       "c[0] = measure q[0];", "c[1] = measure q[1];", "c[2] = measure q[2];"],
                   num_clbits=3)
    a = run(_counts(make_backend(seed=42), text, 1000))
    b = run(_counts(make_backend(seed=42), text, 1000))
    c = run(_counts(make_backend(seed=43), text, 1000))
    assert a == b
    assert a != c

    async def unseeded() -> tuple[dict[str, int], dict[str, int]]:
        backend = make_backend()
        first = await backend.run(text, 1000)
        again = await backend.submit(text, 1000, seed=first.metadata["seed"])
        return dict(first.counts), dict((await backend.result(again)).counts)

    first, again = run(unseeded())
    assert first == again


def test_bit_order_and_unmeasured_clbits() -> None:
    text = program(2, ["x q[0];", "c[2] = measure q[0];", "c[0] = measure q[1];"], num_clbits=4)
    assert run(_counts(make_backend(), text, 100)) == {"0100": 100}


def test_no_classical_bits_gives_empty_key() -> None:
    assert run(_counts(make_backend(), program(2, ["h q[0];"]), 50)) == {"": 50}


def test_last_write_to_a_clbit_wins() -> None:
    text = program(2, ["x q[1];", "c[0] = measure q[0];", "c[0] = measure q[1];"], num_clbits=1)
    assert run(_counts(make_backend(), text, 64)) == {"1": 64}


def test_measuring_twice_gives_equal_bits() -> None:
    text = program(1, ["h q[0];", "c[0] = measure q[0];", "c[1] = measure q[0];"], num_clbits=2)
    counts = run(_counts(make_backend(seed=1), text, 4000))
    assert set(counts) == {"00", "11"}
    assert_distribution(counts, {"00": 0.5, "11": 0.5})


# -- per-shot circuits -------------------------------------------------------------------

TELEPORT = """ry({theta}) q[0];
h q[1]; cx q[1], q[2];
cx q[0], q[1]; h q[0];
c[0] = measure q[0]; c[1] = measure q[1];
if (c[1]) x q[2];
if (c[0]) z q[2];
c[2] = measure q[2];"""


@pytest.mark.parametrize("theta", [0.0, 1.1, math.pi])
def test_teleportation(theta: float) -> None:
    text = program(3, TELEPORT.format(theta=theta).split("\n"), num_clbits=3)
    result = run(make_backend(seed=3).run(text, 20_000))
    assert result.metadata["method"] == "per-shot"
    p1 = math.sin(theta / 2) ** 2
    ideal = {f"{b2}{b1}{b0}": (p1 if b2 else 1 - p1) / 4
             for b2 in (0, 1) for b1 in (0, 1) for b0 in (0, 1)}
    assert_distribution(result.counts, ideal)


def test_active_reset_by_feedback() -> None:
    body = ["h q[0];", "c[0] = measure q[0];", "if (c[0]) x q[0];", "c[1] = measure q[0];"]
    counts = run(_counts(make_backend(seed=4), program(1, body, num_clbits=2), 10_000))
    assert_distribution(counts, {"00": 0.5, "01": 0.5})


def test_reset_after_gates() -> None:
    body = ["h q[0];", "cx q[0], q[1];", "reset q[0];", "ry(0.5) q[0];",
            "c[0] = measure q[0];", "c[1] = measure q[1];"]
    counts = run(_counts(make_backend(seed=5), program(2, body, num_clbits=2), 20_000))
    p = math.sin(0.25) ** 2
    assert_distribution(counts, {"00": (1 - p) / 2, "01": p / 2, "10": (1 - p) / 2, "11": p / 2})


def test_reset_at_start_is_not_per_shot() -> None:
    text = program(1, ["reset q[0];", "x q[0];", "c[0] = measure q[0];"], num_clbits=1)
    result = run(make_backend().run(text, 10))
    assert result.metadata["method"] == "statevector" and result.counts == {"1": 10}


def test_measure_then_gate_on_same_qubit() -> None:
    body = ["h q[0];", "c[0] = measure q[0];", "h q[0];", "c[1] = measure q[0];"]
    counts = run(_counts(make_backend(seed=6), program(1, body, num_clbits=2), 20_000))
    assert_distribution(counts, {k: 0.25 for k in ("00", "01", "10", "11")})


def test_if_else_blocks() -> None:
    body = ["h q[0];", "c[0] = measure q[0];",
            "if (c[0] == 1) { x q[1]; } else { h q[1]; }", "c[1] = measure q[1];"]
    counts = run(_counts(make_backend(seed=7), program(2, body, num_clbits=2), 20_000))
    assert_distribution(counts, {"11": 0.5, "00": 0.25, "10": 0.25})


def test_branch_replay_when_memory_is_short() -> None:
    """With room for a single state, pending branches are replayed from their outcome
    history instead of copied; the distribution is unchanged."""
    from hal_workflow.circuits import Circuit

    text = program(3, TELEPORT.format(theta=1.1).split("\n"), num_clbits=3)
    exe = Executable(Circuit.from_qasm(text).lowered, EngineOptions())
    exe.memory_budget = 1  # forces max_states to its floor: no copies beyond the working state
    rng = np.random.Generator(np.random.PCG64(8))
    counts = exe.readout.keyed(exe._run_branches(20_000, None, rng, make_run(1)))
    p1 = math.sin(0.55) ** 2
    ideal = {f"{b2}{b1}{b0}": (p1 if b2 else 1 - p1) / 4
             for b2 in (0, 1) for b1 in (0, 1) for b0 in (0, 1)}
    assert_distribution(counts, ideal)


def test_per_shot_on_blocked_path() -> None:
    """Mid-circuit measurement on a 17-qubit state: unitary segments run cache-blocked."""
    body = [f"h q[{q}];" for q in range(17)]
    body += ["c[0] = measure q[0];", "if (c[0]) x q[16];", "cx q[16], q[15];",
             "c[1] = measure q[16];", "c[2] = measure q[15];"]
    counts = run(_counts(make_backend(seed=10), program(17, body, num_clbits=3), 8000))
    # q16 ends as (random) XOR c0, q15 as random XOR q16: all 8 outcomes equally likely
    assert_distribution(counts, {format(i, "03b"): 1 / 8 for i in range(8)})


def test_zero_qubits_and_no_operations() -> None:
    assert run(_counts(make_backend(), "OPENQASM 3.0;\ngphase(0.3);\n", 7)) == {"": 7}
    assert run(_counts(make_backend(), "OPENQASM 3.0;\nbit[2] c;\n", 7)) == {"00": 7}


@pytest.mark.parametrize("num_qubits", [3, 14])
def test_more_than_62_classical_bits(num_qubits: int) -> None:
    """Register values beyond 64 bits take the arbitrary-precision path."""
    body = ["x q[1];", "h q[2];", "c[65] = measure q[1];", "c[0] = measure q[2];",
            "c[70] = measure q[0];"]
    counts = run(_counts(make_backend(seed=2), program(num_qubits, body, num_clbits=72), 4000))
    keys = {"0" * 6 + "1" + "0" * 64 + b for b in "01"}
    assert set(counts) == keys
    assert_distribution(counts, {k: 0.5 for k in keys})


def test_kept_state_is_reused_and_never_leaks_amplitudes() -> None:
    """A 16-qubit run gives its sampled state back and the next run of that size takes it
    (no page faults): the next circuit's counts must not depend on what the array held,
    and ``simulator.keep-state-bytes`` bounds what is kept (0: nothing)."""
    from hal_workflow import config
    from hal_workflow.simulator.engine import spare_states

    n = 16
    measure = [f"c[{q}] = measure q[{q}];" for q in range(n)]
    ghz = program(n, ["h q[0];", *(f"cx q[{q}], q[{q + 1}];" for q in range(n - 1)), *measure],
                  num_clbits=n)
    # a product state: every qubit |1> except qubit 3 in |+>, so exactly two outcomes
    other = program(n, [*(f"x q[{q}];" for q in range(n) if q != 3), "h q[3];", *measure],
                    num_clbits=n)
    options = EngineOptions()
    first = Executable(Circuit.from_qasm(ghz).lowered, options)
    second = Executable(Circuit.from_qasm(other).lowered, options)
    spare_states.clear()
    with config.set({"simulator.keep-state-bytes": 1 << 30}):
        first.sample(100, None, np.random.default_rng(1), make_run(2))
        kept = spare_states._spare
        assert kept is not None and kept.shape == (1, 1 << n)
        counts = second.sample(2000, None, np.random.default_rng(2), make_run(2))
        assert spare_states._spare is kept  # taken for the second run, given back after
    ones = "1" * n
    plus = ones[: n - 4] + "0" + ones[n - 3:]  # qubit 3 is the fourth bit from the right
    assert set(counts) == {ones, plus}
    assert abs(counts[ones] - 1000) < 150
    spare_states.clear()
    with config.set({"simulator.keep-state-bytes": 0}):
        first.sample(10, None, np.random.default_rng(1), make_run(2))
        assert spare_states._spare is None
    with config.set({"simulator.keep-state-bytes": (16 << n) - 1}):  # one byte too few
        first.sample(10, None, np.random.default_rng(1), make_run(2))
        assert spare_states._spare is None
