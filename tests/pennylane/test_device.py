"""The PennyLane devices ``hal.sim`` and ``hal`` against ``default.qubit`` and exact values.

(PennyLane's own device suite, ``pl-device-test``, runs from ``.ci/pennylane-suite.sh``.)
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest

qml = pytest.importorskip("pennylane")

import hal_workflow  # noqa: E402
from hal_workflow import CircuitError, ConfigurationError  # noqa: E402
from hal_workflow.backends.registry import register_backend  # noqa: E402
from hal_workflow.circuits.conversion import as_circuit  # noqa: E402
from hal_workflow.pennylane import HalDevice, HalSimDevice, from_tape  # noqa: E402
from hal_workflow.simulator.backend import SimulatorBackend  # noqa: E402


class CountingSim(SimulatorBackend):
    """The simulator, counting calls into its batch extension (class-wide)."""

    calls: list[tuple[str, int]] = []  # noqa: RUF012

    def _extensions(self) -> dict[str, object]:
        ext = dict(super()._extensions())
        batch = ext["batch"]

        class Counting:
            async def submit_sweep(self, circuit: Any, bindings: Any, shots: int,
                                   seed: int | None = None) -> Any:
                CountingSim.calls.append(("sweep", len(bindings)))
                return await batch.submit_sweep(circuit, bindings, shots, seed=seed)

            async def submit_batch(self, circuits: Any, shots: int,
                                   seed: int | None = None) -> Any:
                CountingSim.calls.append(("batch", len(circuits)))
                return await batch.submit_batch(circuits, shots, seed=seed)

        ext["batch"] = Counting()
        return ext


class NoStatevectorSim(SimulatorBackend):
    def _discover_capabilities(self) -> Any:
        from dataclasses import replace

        caps = super()._discover_capabilities()
        return replace(caps, extensions=caps.extensions - {"statevector"})


register_backend("counting-sim", CountingSim)
register_backend("no-statevector-sim", NoStatevectorSim)


def _circuit(x: float, y: float) -> Any:
    qml.RX(x, wires="a")
    qml.RY(y, wires=1)
    qml.CNOT(wires=["a", 1])
    qml.Rot(0.3, -0.2, 0.7, wires=1)
    qml.IsingXX(0.4, wires=["a", 1])
    qml.Toffoli(wires=["a", 1, 2])
    qml.adjoint(qml.S(wires=2))
    return (
        qml.expval(qml.Z("a") @ qml.X(1)),
        qml.expval(qml.Hamiltonian([0.5, -1.2], [qml.Y(1), qml.Z("a") @ qml.Z(2)])),
        qml.var(qml.X("a") + 0.3 * qml.Z(2)),
        qml.probs(wires=[1, "a"]),
    )


def test_import_loads_no_framework() -> None:
    code = ("import sys, hal_workflow, hal_workflow.pennylane, hal_workflow.cirq, "
            "hal_workflow.qrisp; "
            "print(sorted(m for m in ('pennylane', 'cirq', 'qrisp', 'cudaq') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_devices_load_through_the_plugin_entry_points() -> None:
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="pennylane.plugins")}
    if "hal.sim" not in names:
        pytest.skip("hal-workflow is not installed with its entry points (pip install -e .)")
    assert isinstance(qml.device("hal.sim", wires=2), HalSimDevice)
    assert isinstance(qml.device("hal", wires=2, backend="sim"), HalDevice)


def test_analytic_mode_matches_default_qubit() -> None:
    wires = ["a", 1, 2]
    ours = qml.QNode(_circuit, HalSimDevice(wires=wires))(0.7, -1.1)
    reference = qml.QNode(_circuit, qml.device("default.qubit", wires=wires))(0.7, -1.1)
    for got, want in zip(ours, reference, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-10)


def test_analytic_state_has_the_global_phase() -> None:
    def state() -> Any:
        qml.Hadamard(0)
        qml.GlobalPhase(0.4)
        qml.CRY(0.3, wires=[0, 1])
        return qml.state()

    ours = qml.QNode(state, HalSimDevice(wires=2))()
    np.testing.assert_allclose(ours, qml.QNode(state, qml.device("default.qubit", wires=2))(),
                               atol=1e-12)


def test_sampled_results_are_close_to_exact() -> None:
    wires = ["a", 1, 2]
    shots = 20_000
    ours = qml.set_shots(qml.QNode(_circuit, HalSimDevice(wires=wires, seed=11)), shots)(0.7, -1.1)
    exact = qml.QNode(_circuit, qml.device("default.qubit", wires=wires))(0.7, -1.1)
    # expvals of norm <= 1.7 observables: 5 sigma with sigma <= 1.7 / sqrt(shots)
    for got, want in zip(ours[:3], exact[:3], strict=True):
        assert abs(got - want) < 5 * 1.7 / np.sqrt(shots)
    assert 0.5 * np.abs(ours[3] - exact[3]).sum() < 0.02


def test_shot_vector_counts_and_samples() -> None:
    def bell() -> Any:
        qml.Hadamard(0)
        qml.CNOT(wires=[0, 1])
        return qml.counts(wires=[0, 1]), qml.sample(qml.Z(0) @ qml.Z(1))

    node = qml.set_shots(qml.QNode(bell, HalSimDevice(wires=2, seed=3)), [100, (50, 2)])
    result = node()
    assert len(result) == 3
    for (counts, samples), shots in zip(result, [100, 50, 50], strict=True):
        assert set(counts) <= {"00", "11"} and sum(counts.values()) == shots
        np.testing.assert_array_equal(samples, np.ones(shots))


def test_gradient_tapes_are_one_sweep_and_match_exact() -> None:
    CountingSim.calls.clear()
    dev = HalDevice(wires=2, backend="counting-sim", seed=5)

    @qml.qnode(dev, diff_method="parameter-shift")
    def energy(params: Any) -> Any:
        qml.RX(params[0], wires=0)
        qml.RY(params[1], wires=1)
        qml.CNOT(wires=[0, 1])
        return qml.expval(qml.Z(1))

    params = qml.numpy.array([0.4, -0.9], requires_grad=True)
    shots = 40_000
    grad = qml.grad(qml.set_shots(energy, shots))(params)
    # <Z1> = cos(a) cos(b): d/da = -sin(a) cos(b), d/db = -cos(a) sin(b)
    exact = [-np.sin(0.4) * np.cos(-0.9), -np.cos(0.4) * np.sin(-0.9)]
    assert np.all(np.abs(np.asarray(grad) - exact) < 5 / np.sqrt(shots) * 2)
    # forward pass, then the 4 shifted tapes as one sweep of the batch extension
    assert ("sweep", 4) in CountingSim.calls
    assert all(kind == "sweep" for kind, _ in CountingSim.calls)
    analytic = qml.grad(qml.QNode(energy.func, HalSimDevice(wires=2),
                                  diff_method="finite-diff", gradient_kwargs={"h": 1e-6}))(params)
    np.testing.assert_allclose(analytic, exact, atol=1e-5)


def test_same_seed_same_samples() -> None:
    def circuit() -> Any:
        qml.Hadamard(0)
        qml.RY(0.3, wires=1)
        return qml.sample(wires=[0, 1])

    first = qml.set_shots(qml.QNode(circuit, HalSimDevice(wires=2, seed=9)), 200)()
    second = qml.set_shots(qml.QNode(circuit, HalSimDevice(wires=2, seed=9)), 200)()
    other = qml.set_shots(qml.QNode(circuit, HalSimDevice(wires=2, seed=10)), 200)()
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def _sweep_results(executor: Any) -> list[Any]:
    dev = HalSimDevice(wires=2, seed=21, executor=executor)

    @qml.qnode(dev)
    def circuit(x: Any) -> Any:
        qml.RX(x, wires=0)
        qml.CNOT(wires=[0, 1])
        return qml.counts(wires=[0, 1])

    batch = qml.batch_params(qml.set_shots(circuit, 500), all_operations=True)
    return batch(qml.numpy.array([0.1, 0.9, 1.7, 2.5], requires_grad=False))


def test_dask_executor_gives_the_local_results() -> None:
    pytest.importorskip("distributed")
    from distributed import Client

    from hal_workflow.executors.dask import local_cluster

    local = _sweep_results(None)
    with local_cluster(n_workers=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        remote = _sweep_results(client)
    assert [dict(r) for r in remote] == [dict(r) for r in local]
    assert dict(local[0]) != dict(local[3])


def test_parsl_executor_gives_the_local_results(tmp_path: Any) -> None:
    parsl = pytest.importorskip("parsl")
    from parsl.config import Config
    from parsl.executors.threads import ThreadPoolExecutor

    local = _sweep_results(None)
    config = Config(executors=[ThreadPoolExecutor(max_threads=2, label="pl")],
                    run_dir=str(tmp_path))
    try:
        remote = _sweep_results(config)
    finally:
        parsl.dfk().cleanup()
    assert [dict(r) for r in remote] == [dict(r) for r in local]


def test_analytic_mode_needs_the_statevector_extension() -> None:
    dev = HalDevice(wires=1, backend="no-statevector-sim")
    node = qml.QNode(lambda: (qml.Hadamard(0), qml.expval(qml.Z(0)))[1], dev)
    with pytest.raises(ConfigurationError, match="statevector"):
        node()
    assert abs(qml.set_shots(node, 4000)()) < 0.1


def test_bad_backend_spec_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="JSON"):
        HalDevice(wires=1, backend="{not json")
    with pytest.raises(ConfigurationError, match="unknown backend"):
        qml.QNode(lambda: qml.expval(qml.Z(0)), HalDevice(wires=1, backend="nope"))()


def test_tape_converts_through_the_registry() -> None:
    tape = qml.tape.QuantumScript(
        [qml.Hadamard("x"), qml.CNOT(["x", "y"]), qml.PauliRot(0.2, "ZZ", wires=["x", "y"])],
        [qml.counts(wires=["x", "y"])])
    circuit = as_circuit(tape)
    assert circuit == from_tape(tape) and circuit.num_qubits == 2
    result = hal_workflow.run(circuit, backend={"name": "sim", "seed": 1}, shots=500)
    assert set(result.counts) == {"00", "11"}


def test_unsupported_operation_is_named() -> None:
    class Mystery(qml.operation.Operation):
        num_wires = 1

    tape = qml.tape.QuantumScript([Mystery(wires=0)], [qml.probs(wires=0)])
    with pytest.raises(CircuitError, match="Mystery"):
        from_tape(tape)


def test_wire_that_cannot_map_is_named() -> None:
    tape = qml.tape.QuantumScript([qml.CNOT(["a", "b"])], [qml.probs(wires=["a", "b"])])
    with pytest.raises(CircuitError, match="'b'"):
        from_tape(tape, wire_map={"a": 0})
