"""``HalSampler`` and the ``cirq.Circuit`` converter against ``cirq.Simulator`` on the textbook
programs of Cirq's documentation, within a total-variation bound."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

cirq = pytest.importorskip("cirq")
sympy = pytest.importorskip("sympy")

import hal_workflow  # noqa: E402
from hal_workflow import CircuitError  # noqa: E402
from hal_workflow.backends.registry import register_backend  # noqa: E402
from hal_workflow.circuits.conversion import as_circuit  # noqa: E402
from hal_workflow.cirq import HalSampler, from_cirq, to_program  # noqa: E402
from hal_workflow.orchestration.sync import backend_for, run_sync  # noqa: E402
from hal_workflow.simulator.backend import SimulatorBackend  # noqa: E402

SHOTS = 4000
TV_BOUND = 0.05  # a few times the sampling noise of <= 16 outcomes at SHOTS shots


class CountingSim(SimulatorBackend):
    sweeps: list[int] = []  # noqa: RUF012

    def _extensions(self) -> dict[str, object]:
        ext = dict(super()._extensions())
        batch = ext["batch"]

        class Counting:
            async def submit_sweep(self, circuit: Any, bindings: Any, shots: int,
                                   seed: int | None = None) -> Any:
                CountingSim.sweeps.append(len(bindings))
                return await batch.submit_sweep(circuit, bindings, shots, seed=seed)

            submit_batch = batch.submit_batch

        ext["batch"] = Counting()
        return ext


register_backend("cirq-counting-sim", CountingSim)


def _tv(counts: Counter[Any], probs: dict[Any, float]) -> float:
    total = sum(counts.values())
    keys = set(counts) | set(probs)
    return 0.5 * sum(abs(counts.get(k, 0) / total - probs.get(k, 0.0)) for k in keys)


def _exact(circuit: Any, qubits: list[Any], resolver: Any = None) -> dict[int, float]:
    """Exact distribution of ``qubits`` (big-endian integers, as ``Result.histogram``)."""
    unitary_part = cirq.drop_terminal_measurements(circuit)
    state = cirq.final_state_vector(unitary_part, param_resolver=resolver,
                                    qubit_order=sorted(circuit.all_qubits()),
                                    dtype=np.complex128)
    order = sorted(circuit.all_qubits())
    probs = np.abs(state.reshape([2] * len(order))) ** 2
    keep = [order.index(q) for q in qubits]
    marginal = probs.sum(axis=tuple(i for i in range(len(order)) if i not in keep))
    marginal = np.moveaxis(marginal, list(range(len(keep))),
                           list(np.argsort(np.argsort(keep))))  # axes in `qubits` order
    flat = marginal.reshape(-1)
    return {i: float(p) for i, p in enumerate(flat) if p > 1e-12}


def test_import_is_lazy() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import sys, hal_workflow.cirq; "
                          "print('cirq' in sys.modules)"], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_bernstein_vazirani_finds_the_secret() -> None:
    secret = [1, 0, 1, 1, 0]
    inputs = cirq.LineQubit.range(len(secret))
    output = cirq.LineQubit(len(secret))
    circuit = cirq.Circuit(
        cirq.X(output), cirq.H(output), cirq.H.on_each(*inputs),
        [cirq.CNOT(q, output) for q, bit in zip(inputs, secret, strict=True) if bit],
        cirq.H.on_each(*inputs), cirq.measure(*inputs, key="result"),
    )
    result = HalSampler("sim", seed=1).run(circuit, repetitions=200)
    assert result.measurements["result"].shape == (200, len(secret))
    assert np.all(result.measurements["result"] == secret)
    assert cirq.Simulator().run(circuit, repetitions=10).histogram(key="result") == \
        Counter({result.histogram(key="result").most_common(1)[0][0]: 10})


def test_grover_matches_cirq_simulator() -> None:
    qubits = cirq.LineQubit.range(3)
    marked = (1, 0, 1)

    def oracle() -> list[Any]:
        flips = [cirq.X(q) for q, bit in zip(qubits, marked, strict=True) if not bit]
        return [*flips, cirq.CCZ(*qubits), *flips]

    diffusion = [cirq.H.on_each(*qubits), cirq.X.on_each(*qubits), cirq.CCZ(*qubits),
                 cirq.X.on_each(*qubits), cirq.H.on_each(*qubits)]
    circuit = cirq.Circuit(cirq.H.on_each(*qubits), oracle(), diffusion, oracle(), diffusion,
                           cirq.measure(*qubits, key="m"))
    result = HalSampler("sim", seed=2).run(circuit, repetitions=SHOTS)
    exact = _exact(circuit, qubits)
    assert max(exact, key=exact.get) == 0b101
    assert _tv(result.histogram(key="m"), exact) < TV_BOUND


def test_qaoa_sweep_is_one_batch_call_and_matches_cirq() -> None:
    qubits = cirq.LineQubit.range(4)
    edges = [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)]
    gamma, beta = sympy.Symbol("gamma"), sympy.Symbol("beta")
    circuit = cirq.Circuit(
        cirq.H.on_each(*qubits),
        [cirq.ZZPowGate(exponent=2 * gamma / np.pi).on(qubits[a], qubits[b]) for a, b in edges],
        cirq.rx(2 * beta).on_each(*qubits),
        cirq.measure(*qubits, key="cut"),
    )
    sweep = cirq.Linspace("gamma", 0.1, 1.2, 3) * cirq.Linspace("beta", -0.4, 0.9, 2)
    CountingSim.sweeps.clear()
    results = HalSampler("cirq-counting-sim", seed=3).run_sweep(circuit, sweep, SHOTS)
    assert CountingSim.sweeps == [6]
    assert len(results) == 6
    for result, resolver in zip(results, cirq.to_resolvers(sweep), strict=True):
        assert result.params == resolver
        assert _tv(result.histogram(key="cut"), _exact(circuit, qubits, resolver)) < TV_BOUND


def test_teleportation_with_mid_circuit_measurement() -> None:
    msg, alice, bob = cirq.LineQubit.range(3)
    circuit = cirq.Circuit(
        cirq.ry(1.1).on(msg), cirq.rz(0.4).on(msg),
        cirq.H(alice), cirq.CNOT(alice, bob),
        cirq.CNOT(msg, alice), cirq.H(msg),
        cirq.measure(msg, key="m0"), cirq.measure(alice, key="m1"),
        cirq.X(bob).with_classical_controls("m1"), cirq.Z(bob).with_classical_controls("m0"),
        cirq.measure(bob, key="bob"),
    )
    ours = HalSampler("sim", seed=4).run(circuit, repetitions=SHOTS)
    # bob holds ry(1.1)|0> after the corrections: P(1) = sin(0.55)^2, whatever m0, m1 are
    p1 = float(np.sin(0.55) ** 2)
    assert _tv(ours.histogram(key="bob"), {0: 1 - p1, 1: p1}) < TV_BOUND
    theirs = cirq.Simulator(seed=4).run(circuit, repetitions=SHOTS)
    joint = Counter(zip(ours.measurements["m0"][:, 0], ours.measurements["m1"][:, 0],
                        strict=True))
    joint_ref = Counter(zip(theirs.measurements["m0"][:, 0], theirs.measurements["m1"][:, 0],
                            strict=True))
    assert _tv(joint, {k: v / SHOTS for k, v in joint_ref.items()}) < 2 * TV_BOUND


def test_keys_and_bit_order_follow_the_measurements() -> None:
    a, b, c = cirq.LineQubit.range(3)
    circuit = cirq.Circuit(cirq.X(c), cirq.measure(c, a, key="ca"),
                           cirq.measure(b, key="b", invert_mask=(True,)))
    result = HalSampler("sim", seed=5).run(circuit, repetitions=20)
    assert set(result.measurements) == {"ca", "b"}
    np.testing.assert_array_equal(result.measurements["ca"], np.tile([1, 0], (20, 1)))
    np.testing.assert_array_equal(result.measurements["b"], np.ones((20, 1)))
    reference = cirq.Simulator().run(circuit, repetitions=20)
    for key in ("ca", "b"):
        np.testing.assert_array_equal(result.measurements[key], reference.measurements[key])


def test_converted_gates_have_cirqs_unitary() -> None:
    q = cirq.LineQubit.range(3)
    circuit = cirq.Circuit(
        cirq.H(q[0]), cirq.X(q[1]) ** 0.3, cirq.Y(q[0]) ** -0.7, cirq.CNOT(q[0], q[1]) ** 0.4,
        cirq.ISWAP(q[0], q[2]) ** 0.5, cirq.CZ(q[1], q[2]) ** 0.25,
        cirq.MatrixGate(cirq.testing.random_unitary(4, random_state=3)).on(q[1], q[2]),
        cirq.PhasedXZGate(x_exponent=0.3, z_exponent=0.2, axis_phase_exponent=0.1)(q[2]),
        cirq.CCZ(*q), cirq.FSimGate(0.3, 0.4)(q[0], q[1]), cirq.rz(0.3)(q[0]),
        cirq.SWAP(q[0], q[1]) ** 0.5, cirq.TOFFOLI(*q), cirq.H(q[1]) ** 0.5, cirq.S(q[2]),
        cirq.global_phase_operation(1j),
        cirq.CircuitOperation(cirq.FrozenCircuit(cirq.T(q[0]), cirq.CZ(q[0], q[2]) ** 0.7)),
    )
    ours = run_sync(backend_for("sim").extension("statevector").statevector(
        to_program(circuit).qasm))
    reference = cirq.final_state_vector(circuit, qubit_order=q, dtype=np.complex128)
    # Cirq orders amplitudes big-endian, the simulator little-endian
    np.testing.assert_allclose(ours, reference.reshape([2] * 3).transpose(2, 1, 0).reshape(-1),
                               atol=1e-9)


def test_circuit_enters_through_the_conversion_registry() -> None:
    q = cirq.LineQubit.range(2)
    theta = sympy.Symbol("theta")
    circuit = cirq.Circuit(cirq.rx(theta)(q[0]), cirq.CNOT(*q), cirq.measure(*q, key="m"))
    converted = as_circuit(circuit)
    assert converted == from_cirq(circuit) and converted.parameters == ("theta",)
    result = hal_workflow.run(converted, backend={"name": "sim", "seed": 1}, shots=100,
                              parameters={"theta": np.pi})
    assert result.counts == {"11": 100}


def test_bad_input_is_a_named_circuit_error() -> None:
    q = cirq.LineQubit.range(2)

    class Opaque(cirq.Gate):
        def _num_qubits_(self) -> int:
            return 1

    with pytest.raises(CircuitError, match="Opaque"):
        to_program(cirq.Circuit(Opaque().on(q[0])))
    with pytest.raises(CircuitError, match="dimension 3"):
        to_program(cirq.Circuit(cirq.IdentityGate(qid_shape=(3,)).on(cirq.LineQid(0, 3))))
    with pytest.raises(CircuitError, match="'m' is used twice"):
        to_program(cirq.Circuit(cirq.measure(q[0], key="m"), cirq.measure(q[1], key="m")))
    with pytest.raises(CircuitError, match="'qubit'"):
        to_program(cirq.Circuit(cirq.rx(sympy.Symbol("qubit"))(q[0])))
    circuit = cirq.Circuit(cirq.rx(sympy.Symbol("a"))(q[0]), cirq.measure(q[0], key="m"))
    with pytest.raises(CircuitError, match="'a' has no value"):
        HalSampler("sim").run(circuit, repetitions=10)
    with pytest.raises(CircuitError, match="repetitions"):
        HalSampler("sim").run(cirq.Circuit(cirq.measure(q[0], key="m")), repetitions=0)
