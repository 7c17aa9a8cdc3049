"""The stabilizer method against independent references: qiskit ``Statevector`` (exact
probabilities, small circuits), qiskit-aer's stabilizer method (circuits with mid-circuit
measurement, reset and classically controlled gates) and stim (hundreds of qubits)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import qiskit.qasm3
import stim
from qiskit.quantum_info import Statevector
from qiskit_aer import AerSimulator

from hal_workflow.circuits import Circuit
from hal_workflow.simulator.stabilizer import compile_clifford, is_clifford

ONE_QUBIT = ["h", "s", "sdg", "x", "y", "z", "sx", "inv @ sx", "inv @ s", "id"]
TWO_QUBIT = ["cx", "cy", "cz", "swap"]
# The same gates for stim, which is the reference beyond what a statevector can hold.
STIM_NAMES = {"h": "H", "s": "S", "sdg": "S_DAG", "x": "X", "y": "Y", "z": "Z", "sx": "SQRT_X",
              "cx": "CX", "cy": "CY", "cz": "CZ", "swap": "SWAP"}


def header(n: int, clbits: int | None = None) -> list[str]:
    return ["OPENQASM 3.0;", 'include "stdgates.inc";', f"qubit[{n}] q;",
            f"bit[{n if clbits is None else clbits}] c;"]


def random_gates(n: int, depth: int, rng: random.Random, rotations: bool = True,
                 names: list[str] | None = None) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, qubits, OpenQASM line) of a random Clifford circuit."""
    out = []
    one = names or ONE_QUBIT
    for _ in range(depth):
        roll = rng.random()
        if n > 1 and roll < 0.4:
            a, b = rng.sample(range(n), 2)
            g = rng.choice(TWO_QUBIT)
            out.append((g, (a, b), f"{g} q[{a}], q[{b}];"))
        elif rotations and roll < 0.6:
            g, k, a = rng.choice(["rz", "rx", "ry", "p"]), rng.randint(0, 3), rng.randrange(n)
            out.append((g, (a,), f"{g}({k}*pi/2) q[{a}];"))
        else:
            g, a = rng.choice(one), rng.randrange(n)
            out.append((g, (a,), f"{g} q[{a}];"))
    return out


def sample(text: str, shots: int, seed: int) -> dict[str, int]:
    program = compile_clifford(Circuit.from_qasm(text).lowered)
    assert program is not None, "a Clifford circuit was not recognised"
    return program.sample(shots, np.random.default_rng(seed))


def assert_matches(counts: dict[str, int], probabilities: dict[str, float],
                   reference_shots: int | None = None) -> None:
    """No impossible outcome, and every outcome within 5 binomial sigmas of its probability
    (plus 5 sigmas of the reference's own sampling error when it was sampled too)."""
    shots = sum(counts.values())
    stray = {k: v for k, v in counts.items() if probabilities.get(k, 0.0) < 1e-9}
    assert not stray, f"impossible outcomes {stray}"
    for key, p in probabilities.items():
        if p < 1e-9:
            continue
        bound = 5 * math.sqrt(shots * p * (1 - p)) + 1
        if reference_shots:
            bound += 5 * shots * math.sqrt(p * (1 - p) / reference_shots)
        assert abs(counts.get(key, 0) - shots * p) <= bound, (key, counts.get(key, 0), shots * p)


@pytest.mark.parametrize("seed", range(40))
def test_random_clifford_matches_statevector(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 7)
    lines = header(n) + [g[2] for g in random_gates(n, rng.randint(1, 60), rng)]
    lines += [f"c[{i}] = measure q[{i}];" for i in range(n)]
    text = "\n".join(lines)
    qc = qiskit.qasm3.loads(text)
    qc.remove_final_measurements()
    assert_matches(sample(text, 4000, seed), Statevector(qc).probabilities_dict())


def test_measuring_some_qubits_into_chosen_clbits() -> None:
    # GHZ on 3 qubits, qubit 2 read into clbit 0, qubit 0 into clbit 3, clbits 1-2 never set
    text = "\n".join([*header(3, 4), "h q[0];", "cx q[0], q[1];", "cx q[1], q[2];",
                      "c[0] = measure q[2];", "c[3] = measure q[0];"])
    assert_matches(sample(text, 4000, 1), {"0000": 0.5, "1001": 0.5})


@pytest.mark.parametrize(("seed", "feedback"), [(s, "xyz") for s in range(12)]
                         + [(s, "hs") for s in range(12, 16)])
def test_dynamic_circuits_match_aer(seed: int, feedback: str) -> None:
    """Mid-circuit measurement, reset and classically controlled gates: Paulis (sampled with
    Pauli frames) and other Cliffords (sampled shot by shot)."""
    rng = random.Random(1000 + seed)
    n = rng.randint(2, 5)
    lines = header(n)
    for _ in range(rng.randint(2, 5)):
        lines += [g[2] for g in random_gates(n, rng.randint(1, 12), rng, rotations=False,
                                             names=["h", "s", "sdg", "x", "y", "z", "sx"])]
        q, c = rng.randrange(n), rng.randrange(n)
        lines.append(f"c[{c}] = measure q[{q}];")
        roll = rng.random()
        if roll < 0.4:
            lines.append(f"reset q[{rng.randrange(n)}];")
        elif roll < 0.8:
            lines.append(f"if (c[{c}]) {{ {rng.choice(feedback)} q[{rng.randrange(n)}]; }}")
    lines += [f"c[{i}] = measure q[{i}];" for i in range(n)]
    text = "\n".join(lines)
    reference_shots = 20_000
    reference = AerSimulator(method="stabilizer").run(
        qiskit.qasm3.loads(text), shots=reference_shots, seed_simulator=seed).result()
    probabilities = {k: v / reference_shots for k, v in reference.get_counts().items()}
    counts = sample(text, 2000, seed)
    # an outcome Aer never saw in 20,000 shots has p < 1/2000 or so: tolerate a stray few
    stray = sum(v for k, v in counts.items() if k not in probabilities)
    assert stray <= 3, f"outcomes Aer never produced: {counts}"
    assert_matches({k: v for k, v in counts.items() if k in probabilities}, probabilities,
                   reference_shots)


def _stim_check(n: int, gates: list[tuple[str, tuple[int, ...], str]], counts: dict[str, int],
                measured: list[int]) -> int:
    """Every sampled outcome is possible according to stim; returns the number of random
    measurement outcomes stim finds."""
    simulator = stim.TableauSimulator()
    simulator.set_num_qubits(n)
    for name, qubits, _ in gates:
        getattr(simulator, STIM_NAMES[name].lower())(*qubits)
    probe = simulator.copy()
    random_bits = 0
    for q in measured:  # count the outcomes that are random, fixing each to 0
        if probe.peek_z(q) == 0:
            random_bits += 1
            probe.postselect_z(q, desired_value=False)
        else:
            probe.measure(q)
    for key in list(counts)[:40]:
        check = simulator.copy()
        for clbit, q in enumerate(measured):
            bit = key[len(key) - 1 - clbit] == "1"
            check.postselect_z(q, desired_value=bit)  # raises if that outcome is impossible
    return random_bits


@pytest.mark.parametrize(("n", "seed"), [(60, 1), (200, 2), (400, 3)])
def test_wide_random_clifford_against_stim(n: int, seed: int) -> None:
    rng = random.Random(seed)
    gates = random_gates(n, 6 * n, rng, rotations=False,
                         names=["h", "s", "sdg", "x", "y", "z", "sx"])
    measured = rng.sample(range(n), min(n, 40))
    lines = header(n, len(measured)) + [g[2] for g in gates]
    lines += [f"c[{i}] = measure q[{q}];" for i, q in enumerate(measured)]
    shots = 2000
    counts = sample("\n".join(lines), shots, seed)
    random_bits = _stim_check(n, gates, counts, measured)
    assert random_bits > 0, "choose a circuit with random outcomes"
    # 2000 shots over 2^k equally likely outcomes: all distinct once k is large, else each
    # outcome near shots / 2^k
    if random_bits <= 6:
        assert len(counts) == 2**random_bits
        for seen in counts.values():
            expected = shots / 2**random_bits
            assert abs(seen - expected) <= 5 * math.sqrt(expected) + 1
    else:
        assert len(counts) >= min(shots, 2**random_bits) * 0.9
    # every random measurement is a fair coin on its own
    ones = np.zeros(len(measured))
    for key, seen in counts.items():
        ones += seen * np.array([key[len(key) - 1 - j] == "1" for j in range(len(measured))])
    marginal = ones / shots
    assert np.all((marginal < 0.5 + 0.12) | (marginal > 0.999) | (marginal < 0.001))
    assert np.all((marginal > 0.5 - 0.12) | (marginal > 0.999) | (marginal < 0.001))


def test_ghz_on_a_thousand_qubits() -> None:
    n = 1000
    lines = header(n) + ["h q[0];"] + [f"cx q[{i}], q[{i + 1}];" for i in range(n - 1)]
    lines += [f"c[{i}] = measure q[{i}];" for i in range(n)]
    counts = sample("\n".join(lines), 2000, 7)
    assert set(counts) == {"0" * n, "1" * n}
    assert abs(counts["0" * n] - 1000) <= 5 * math.sqrt(500)


def test_bernstein_vazirani_reads_the_secret() -> None:
    n = 300
    secret = [random.Random(5).randint(0, 1) for _ in range(n)]
    lines = header(n + 1, n) + [f"x q[{n}];"] + [f"h q[{i}];" for i in range(n + 1)]
    lines += [f"cx q[{i}], q[{n}];" for i in range(n) if secret[i]]
    lines += [f"h q[{i}];" for i in range(n)]
    lines += [f"c[{i}] = measure q[{i}];" for i in range(n)]
    counts = sample("\n".join(lines), 100, 3)
    assert counts == {"".join(str(b) for b in reversed(secret)): 100}


@pytest.mark.parametrize(("line", "clifford"), [
    ("rz(pi/2) q[0];", True), ("rx(-pi) q[0];", True), ("ry(3*pi/2) q[0];", True),
    ("U(pi/2, 0, pi) q[0];", True), ("cp(pi) q[0], q[1];", True), ("inv @ s q[0];", True),
    ("ctrl @ z q[0], q[1];", True),
    ("t q[0];", False), ("rz(0.3) q[0];", False), ("ccx q[0], q[1], q[2];", False),
    ("cp(pi/2) q[0], q[1];", False), ("ctrl @ s q[0], q[1];", False),
])
def test_which_gates_are_clifford(line: str, clifford: bool) -> None:
    text = "\n".join([*header(3), line])
    assert is_clifford(Circuit.from_qasm(text).lowered) is clifford


def test_parameters_decide_per_binding() -> None:
    text = "\n".join([*header(1), "input float theta;", "rz(theta) q[0];"])
    lowered = Circuit.from_qasm(text).lowered
    assert is_clifford(lowered, {"theta": math.pi / 2})
    assert not is_clifford(lowered, {"theta": 0.25})


# -- the method inside the "sim" backend -------------------------------------------------------


def ghz_text(n: int) -> str:
    lines = [*header(n), "h q[0];"] + [f"cx q[{i}], q[{i + 1}];" for i in range(n - 1)]
    return "\n".join(lines + [f"c[{i}] = measure q[{i}];" for i in range(n)])


def test_sim_runs_wide_clifford_circuits_on_the_tableau() -> None:
    import hal_workflow as hal

    result = hal.run(ghz_text(500), backend={"name": "sim", "seed": 3}, shots=400)
    assert result.metadata["method"] == "stabilizer"
    assert set(result.counts) == {"0" * 500, "1" * 500}
    again = hal.run(ghz_text(500), backend={"name": "sim", "seed": 3}, shots=400)
    assert again.counts == result.counts  # the seed fixes the samples
    small = hal.run(ghz_text(5), backend={"name": "sim", "seed": 3}, shots=400)
    assert small.metadata["method"] != "stabilizer"  # auto: narrow circuits stay statevector


def test_method_option() -> None:
    import hal_workflow as hal
    from hal_workflow import ConfigurationError, ValidationCode, ValidationError

    forced = hal.run(ghz_text(4), backend={"name": "sim", "method": "stabilizer", "seed": 1},
                     shots=2000)
    assert forced.metadata["method"] == "stabilizer"
    assert_matches(forced.counts, {"0000": 0.5, "1111": 0.5})
    with pytest.raises(ValidationError) as refused:  # statevector only: 500 qubits is too many
        hal.run(ghz_text(500), backend={"name": "sim", "method": "statevector"}, shots=10)
    assert refused.value.issues[0].code is ValidationCode.TOO_MANY_QUBITS
    t_gate = "\n".join([*header(2), "t q[0];", "c[0] = measure q[0];"])
    with pytest.raises(ValidationError, match="Clifford circuits only"):
        hal.run(t_gate, backend={"name": "sim", "method": "stabilizer"}, shots=10)
    wide_t = "\n".join([*header(40), "t q[0];", "c[0] = measure q[0];"])
    report = hal.validate(wide_t, backend="sim", shots=10)
    assert not report.valid and "not a Clifford circuit" in report.issues[0].message
    with pytest.raises(ConfigurationError, match="method"):
        hal.get_backend({"name": "sim", "method": "mps"})


def test_stabilizer_sweep_keeps_the_seeding_rule() -> None:
    import hal_workflow as hal

    n = 30
    lines = [*header(n), "input float theta;", "h q[0];", "rz(theta) q[0];", "h q[0];"]
    lines += [f"cx q[{i}], q[{i + 1}];" for i in range(n - 1)]
    text = "\n".join(lines + [f"c[{i}] = measure q[{i}];" for i in range(n)])
    bindings = [{"theta": k * math.pi / 2} for k in range(6)]
    spec = {"name": "sim", "seed": 11}
    swept = hal.sweep(text, bindings, backend=spec, shots=300)
    for i, (binding, result) in enumerate(zip(bindings, swept, strict=True)):
        assert result.metadata["method"] == "stabilizer"
        alone = hal.run(text, backend={"name": "sim", "seed": 11 + i}, shots=300,
                        parameters=binding)
        assert alone.counts == result.counts
    assert swept[0].counts == {"0" * n: 300}  # rz(0): h h is the identity
    assert swept[2].counts == {"1" * n: 300}  # rz(pi): h z h is x


def test_cancel_a_long_stabilizer_job() -> None:
    import asyncio

    from hal_workflow import JobState, get_backend

    n = 200  # classically controlled h: sampled shot by shot, long enough to cancel
    lines = [*header(n), "h q[0];", "c[0] = measure q[0];", "if (c[0]) { h q[1]; }"]
    lines += [f"cx q[{i}], q[{i + 1}];" for i in range(1, n - 1)]
    text = "\n".join(lines + [f"c[{i}] = measure q[{i}];" for i in range(n)])

    async def scenario() -> JobState:
        backend = get_backend("sim")
        job_id = await backend.submit(text, 200_000)
        await asyncio.sleep(0.2)
        await backend.cancel(job_id)
        return (await backend.wait(job_id, timeout=30)).state

    assert asyncio.run(scenario()) is JobState.CANCELLED


def test_a_clbit_measured_twice_keeps_the_later_outcome() -> None:
    # q[0] is |1>, q[1] is |0>: c[0] reads q[0] first, then q[1]; c[1] reads a fair coin
    text = "\n".join([*header(3, 2), "x q[0];", "h q[2];", "c[0] = measure q[0];",
                      "c[1] = measure q[2];", "c[0] = measure q[1];"])
    assert_matches(sample(text, 4000, 2), {"00": 0.5, "10": 0.5})


@pytest.mark.parametrize("n", [40, 62, 63, 90])
def test_a_program_run_again_draws_new_shots_from_the_same_space(n: int) -> None:
    """The outcome space is computed once per compiled program (integer keys up to 62
    clbits, byte rows beyond): a second run with another seed gives other shots of the same
    distribution, and the same seed the same counts."""
    lines = header(n) + ["h q[0];"] + [f"cx q[{i}], q[{i + 1}];" for i in range(n - 1)]
    lines += [f"c[{i}] = measure q[{i}];" for i in range(n)]
    lowered = Circuit.from_qasm("\n".join(lines)).lowered
    program = compile_clifford(lowered)
    assert program is not None and compile_clifford(lowered) is program
    first = program.sample(400, np.random.default_rng(1))
    again = program.sample(400, np.random.default_rng(1))
    others = [program.sample(400, np.random.default_rng(seed)) for seed in range(2, 7)]
    assert first == again
    assert all(set(counts) == {"0" * n, "1" * n} for counts in [first, *others])
    assert len({counts["0" * n] for counts in others}) > 1  # new draws each run


def _mapped_probabilities(text: str, reads: list[tuple[int, int]], num_clbits: int
                          ) -> dict[str, float]:
    """Exact distribution of terminal reads ``(clbit, qubit)`` (a later read of a clbit
    wins) from qiskit's ``Statevector`` of the gates."""
    qc = qiskit.qasm3.loads(text)
    final = dict(reads)
    out: dict[str, float] = {}
    for basis, p in Statevector(qc).probabilities_dict().items():
        bits = ["0"] * num_clbits
        for clbit, q in final.items():
            bits[num_clbits - 1 - clbit] = basis[len(basis) - 1 - q]
        key = "".join(bits)
        out[key] = out.get(key, 0.0) + p
    return out


@pytest.mark.parametrize("seed", range(12))
def test_terminal_reads_in_any_order_match_statevector(seed: int) -> None:
    """Random Clifford circuits read into clbits in random order, some clbits twice, some
    qubits twice, some never: small outcome spaces (a multinomial over cached keys) and
    large ones (byte tables, 11-14 random bits) against the exact distribution."""
    rng = random.Random(500 + seed)
    n = 6 if seed < 6 else 14
    gates = random_gates(n, 8 * n, rng)
    prefix = [f"h q[{q}];" for q in range(n) if seed >= 6 and q % 7]  # many random bits
    body = header(n, n + 2)[:3] + prefix + [g[2] for g in gates]
    clbits = rng.sample(range(n + 2), n)  # every qubit once, two clbits left unread...
    reads = [*zip(clbits, range(n), strict=True),  # ...then some read again, overwritten
             *((rng.randrange(n + 2), rng.randrange(n)) for _ in range(3))]
    rng.shuffle(reads)
    text = "\n".join([*body, f"bit[{n + 2}] c;",
                      *(f"c[{c}] = measure q[{q}];" for c, q in reads)])
    probabilities = _mapped_probabilities("\n".join(body), reads, n + 2)
    shots = 20_000
    counts = sample(text, shots, seed)
    stray = {k for k in counts if probabilities.get(k, 0.0) < 1e-9}
    assert not stray
    if len(probabilities) <= 64:
        assert_matches(counts, probabilities)
    else:  # many outcomes: chi-square over all of them (mean 1 per degree of freedom)
        keys = [k for k, p in probabilities.items() if p > 1e-9]
        expected = np.array([shots * probabilities[k] for k in keys])
        seen = np.array([counts.get(k, 0) for k in keys])
        chi2 = float(((seen - expected) ** 2 / expected).sum())
        dof = len(keys) - 1
        assert abs(chi2 - dof) < 6 * math.sqrt(2 * dof), (chi2, dof)


def test_a_clifford_job_sampled_before_runs_inside_submit() -> None:
    """The first run of a Clifford program goes to the worker thread (its outcome space is
    computed there); a run again of the same text, however long, is a few table lookups and
    ends inside ``submit``, journaled like any job; many shots still go to the thread."""
    import asyncio

    from hal_workflow.contract import JobState
    from hal_workflow.simulator.backend import INLINE_PARSE_CHARS, SimulatorBackend

    n = 300  # GHZ text longer than the inline parse limit
    text = ghz_text(n)
    assert len(text) > INLINE_PARSE_CHARS

    async def scenario() -> tuple[JobState, JobState, JobState, dict[str, int]]:
        backend = SimulatorBackend({"name": "sim", "seed": 4})
        first = await backend.submit(text, 100)
        first_state = (await backend.status(first)).state
        await backend.wait(first)
        again = await backend.submit(text, 100)
        again_state = (await backend.status(again)).state  # no await in between
        counts = dict((await backend.result(again)).counts)
        many = await backend.submit(text, 1 << 20)
        many_state = (await backend.status(many)).state
        await backend.wait(many)
        return first_state, again_state, many_state, counts

    first_state, again_state, many_state, counts = asyncio.run(scenario())
    assert first_state is not JobState.COMPLETED
    assert again_state is JobState.COMPLETED
    assert many_state is not JobState.COMPLETED
    assert set(counts) == {"0" * n, "1" * n} and sum(counts.values()) == 100
