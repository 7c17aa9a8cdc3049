"""Each routing policy picks the candidate an independent computation says it should.

Candidates are real backends with controlled properties: IBM fake backends (their own error
rates), the local IQM server (its quality metrics, its health), and the simulator. Expected
success probabilities are computed here from each device's own data (the Qiskit ``Target`` of
the fake backend, the IQM server's metric table), not from the router's calibration snapshots.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from routing_helpers import BELL, GHZ3, IBM, ghz, iqm_spec

import hal_workflow as hal
from hal_workflow import config
from hal_workflow.backends.registry import get_backend
from hal_workflow.contract import (
    BackendUnavailableError,
    ConfigurationError,
    ExecutionResult,
    ValidationCode,
    ValidationError,
)

pytest.importorskip("qiskit_ibm_runtime")
pytest.importorskip("iqm.iqm_client")

_NOT_GATES = ("measure", "delay", "reset", "barrier")


def _qiskit(qasm: str) -> Any:
    from qiskit import qasm3

    return qasm3.loads(qasm)


def _esp(transpiled: Any, gate_error: Any, readout_error: Any) -> float:
    p = 1.0
    for inst in transpiled.data:
        qargs = tuple(transpiled.find_bit(q).index for q in inst.qubits)
        name = inst.operation.name
        if name == "measure":
            p *= 1.0 - readout_error(qargs[0])
        elif name not in _NOT_GATES:
            p *= 1.0 - gate_error(name, qargs)
    return p


def ibm_reference(device: str, qasm: str) -> float:
    """Success probability on an IBM fake backend from its Qiskit Target."""
    from qiskit.circuit import Gate
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit_ibm_runtime import fake_provider

    backend = next(getattr(fake_provider, n)() for n in dir(fake_provider)
                   if n.lower() == device.replace("_", "") + "v2")
    target = backend.target
    basis = [n for n in target.operation_names if n not in _NOT_GATES
             and isinstance(target.operation_from_name(n), Gate)]
    pm = generate_preset_pass_manager(optimization_level=1, basis_gates=basis,
                                      coupling_map=backend.coupling_map, seed_transpiler=0)

    def gate_error(name: str, qargs: tuple[int, ...]) -> float:
        props = target[name].get(qargs)
        return (props.error or 0.0) if props is not None else 0.0

    return _esp(pm.run(_qiskit(qasm)), gate_error,
                lambda q: target["measure"][(q,)].error or 0.0)


def iqm_reference(server: Any, qasm: str) -> float:
    """Success probability on the IQM server from its quality-metric table."""
    from qiskit.transpiler import CouplingMap, generate_preset_pass_manager

    metrics = server.expected_metrics()
    index = {q: i for i, q in enumerate(server.qubits)}
    pairs = [(index[a], index[b]) for a, b in server.cz_loci]
    cz = {frozenset(p): 1 - metrics[f"metrics.irb.cz.tgss.{a}__{b}.fidelity"]
          for p, (a, b) in zip(pairs, server.cz_loci, strict=True)}
    pm = generate_preset_pass_manager(
        optimization_level=1, basis_gates=["r", "cz"], seed_transpiler=0,
        coupling_map=CouplingMap([list(p) for p in pairs] + [[b, a] for a, b in pairs]))

    def gate_error(name: str, qargs: tuple[int, ...]) -> float:
        if name == "cz":
            return cz[frozenset(qargs)]
        assert name == "r", name
        return 1 - metrics[f"metrics.rb.prx.drag_gaussian.{server.qubits[qargs[0]]}.fidelity"]

    def readout(q: int) -> float:
        name = server.qubits[q]
        base = "metrics.ssro.measure.constant." + name
        return (metrics[f"{base}.error_0_to_1"] + metrics[f"{base}.error_1_to_0"]) / 2

    return _esp(pm.run(_qiskit(qasm)), gate_error, readout)


def routing(result: ExecutionResult) -> dict[str, Any]:
    record = result.metadata["routing"]
    # provenance survives serialisation
    assert json.loads(result.to_json())["metadata"]["routing"] == json.loads(json.dumps(record))
    return record


def entry(record: dict[str, Any], label: str) -> dict[str, Any]:
    return next(c for c in record["candidates"] if c["candidate"] == label)


# -- best-fidelity --------------------------------------------------------------------------
def test_best_fidelity_picks_the_highest_estimated_success(iqm: Any) -> None:
    devices = ["fake_manila", "fake_lima", "fake_belem", "fake_quito"]
    expected = {f"ibm:{d}": ibm_reference(d, GHZ3) for d in devices}
    expected["iqm:mock"] = iqm_reference(iqm, GHZ3)
    assert len({round(v, 9) for v in expected.values()}) == len(expected)  # a real choice
    spec = {"name": "route", "policy": "best-fidelity",
            "candidates": [iqm_spec(iqm)] + [IBM[d] for d in devices]}
    result = hal.run(GHZ3, spec, shots=200)
    record = routing(result)
    best = max(expected, key=expected.__getitem__)
    assert result.backend == best == record["chosen"]
    for label, value in expected.items():
        assert entry(record, label)["estimated_success"] == pytest.approx(value, rel=1e-9)
        assert entry(record, label)["calibration"]["timestamp"] > 0
    assert record["calibration"]["calibration_id"] == entry(record, best)["calibration"][
        "calibration_id"]
    assert sum(result.counts.values()) == 200


def test_a_noiseless_simulator_beats_any_device() -> None:
    spec = {"name": "route", "policy": "best-fidelity", "candidates": [IBM["fake_manila"], "sim"]}
    result = hal.run(BELL, spec, shots=100)
    assert result.backend == "sim"
    assert entry(routing(result), "sim")["estimated_success"] == 1.0
    assert entry(routing(result), "ibm:fake_manila")["estimated_success"] == pytest.approx(
        ibm_reference("fake_manila", BELL), rel=1e-9)


# -- first-fit and exclusion ----------------------------------------------------------------
def test_first_fit_takes_the_first_candidate_that_can_run_it() -> None:
    spec = {"name": "route", "policy": "first-fit", "candidates": [IBM["fake_manila"], "sim"]}
    small = hal.run(BELL, spec, shots=50)
    assert small.backend == "ibm:fake_manila"
    wide = hal.run(ghz(6), spec, shots=50)  # fake_manila has 5 qubits
    assert wide.backend == "sim"
    excluded = entry(routing(wide), "ibm:fake_manila")
    assert excluded["outcome"] == "excluded" and "6 qubits" in excluded["reason"]
    assert set(wide.counts) == {"000000", "111111"}


def test_none_left_is_a_validation_error_naming_every_candidate() -> None:
    spec = {"name": "route", "candidates": [IBM["fake_manila"], IBM["fake_lima"]]}
    backend = get_backend(spec)
    validation = hal.validate(ghz(6), backend, shots=10)
    assert not validation.valid
    assert {i.code for i in validation.issues} == {ValidationCode.TOO_MANY_QUBITS}
    with pytest.raises(ValidationError) as info:
        hal.run(ghz(6), backend, shots=10)
    message = str(info.value)
    assert "ibm:fake_manila" in message and "ibm:fake_lima" in message
    assert len(info.value.issues) == 2
    too_many_shots = 10**9
    with pytest.raises(ValidationError, match="shots"):
        hal.run(BELL, backend, shots=too_many_shots)


def test_offline_candidate_is_excluded_with_its_reason(iqm: Any) -> None:
    spec = {"name": "route", "policy": "first-fit", "candidates": [iqm_spec(iqm), "sim"]}
    backend = get_backend(spec)
    assert hal.run(BELL, backend, shots=20).backend == "iqm:mock"
    iqm.stop()
    result = hal.run(BELL, backend, shots=20)
    assert result.backend == "sim"
    reason = entry(routing(result), "iqm:mock")
    assert reason["outcome"] == "excluded" and reason["reason"].startswith("OFFLINE")


def test_all_unavailable_is_backend_unavailable(iqm: Any) -> None:
    backend = get_backend({"name": "route", "candidates": [iqm_spec(iqm)]})
    iqm.stop()
    with pytest.raises(BackendUnavailableError, match="iqm:mock: OFFLINE"):
        hal.run(BELL, backend, shots=10)
    availability = hal.orchestration.sync.run_sync(backend.availability())
    assert not availability.accepting_jobs


# -- shortest-wait --------------------------------------------------------------------------
def test_shortest_wait_prefers_the_shorter_expected_wait(iqm: Any) -> None:
    # IQM reports health only: no queue, no estimate -> route.unknown-wait; the IBM fake
    # (local mode) reports an empty queue and 0 s.
    spec = {"name": "route", "policy": "shortest-wait",
            "candidates": [iqm_spec(iqm), IBM["fake_manila"]]}
    with config.set({"route.unknown-wait": 120.0}):
        result = hal.run(BELL, spec, shots=20)
    record = routing(result)
    assert result.backend == "ibm:fake_manila"
    assert entry(record, "iqm:mock")["wait_s"] == 120.0
    assert entry(record, "ibm:fake_manila")["wait_s"] == 0.0
    # equal waits: the candidates' order decides
    with config.set({"route.unknown-wait": 0.0}):
        again = hal.run(BELL, {**spec, "seed": 1}, shots=20)
    assert again.backend == "iqm:mock"


# -- cheapest ---------------------------------------------------------------------------------
def test_cheapest_uses_per_task_and_per_shot_prices(iqm: Any) -> None:
    prices = {"iqm:mock": {"per_task": 0.30, "per_shot": 0.0010},
              "ibm:fake_manila": {"per_task": 1.00, "per_shot": 0.0002}}
    spec = {"name": "route", "policy": "cheapest", "prices": prices,
            "candidates": [iqm_spec(iqm), IBM["fake_manila"]]}
    # 100 shots: iqm 0.30 + 0.10 = 0.40 < ibm 1.00 + 0.02; 2000 shots: iqm 2.30 > ibm 1.40
    cheap_small = hal.run(BELL, spec, shots=100)
    cheap_large = hal.run(BELL, spec, shots=2000)
    assert cheap_small.backend == "iqm:mock" and cheap_large.backend == "ibm:fake_manila"
    assert entry(routing(cheap_small), "iqm:mock")["cost"] == pytest.approx(0.40)
    assert entry(routing(cheap_large), "iqm:mock")["cost"] == pytest.approx(2.30)
    assert entry(routing(cheap_large), "ibm:fake_manila")["cost"] == pytest.approx(1.40)


def test_cheapest_reads_route_prices_from_configuration(iqm: Any) -> None:
    spec = {"name": "route", "policy": "cheapest", "candidates": [IBM["fake_manila"], "sim"]}
    # unpriced: the simulator is free, the device has no price and ranks last
    assert hal.run(BELL, spec, shots=10).backend == "sim"
    table = {"sim": {"per_task": 5.0}, "ibm:fake_manila": {"per_shot": 0.01}}
    with config.set({"route.prices": table}):
        result = hal.run(BELL, {**spec, "seed": 2}, shots=10)
    assert result.backend == "ibm:fake_manila"
    assert entry(routing(result), "sim")["cost"] == 5.0


# -- weighted ---------------------------------------------------------------------------------
def test_weighted_combines_normalised_terms(iqm: Any) -> None:
    prices = {"iqm:mock": {"per_task": 1.0}, "ibm:fake_manila": {"per_task": 0.5},
              "sim": {"per_task": 2.0}}
    weights = {"fidelity": 1.0, "wait": 0.25, "cost": 0.5}
    spec = {"name": "route", "policy": "weighted", "weights": weights, "prices": prices,
            "candidates": [iqm_spec(iqm), IBM["fake_manila"], "sim"]}
    with config.set({"route.unknown-wait": 600.0}):
        result = hal.run(BELL, spec, shots=10)
    fidelity = {"iqm:mock": iqm_reference(iqm, BELL),
                "ibm:fake_manila": ibm_reference("fake_manila", BELL), "sim": 1.0}
    wait = {"iqm:mock": 600.0, "ibm:fake_manila": 0.0, "sim": 0.0}
    cost = {"iqm:mock": 1.0, "ibm:fake_manila": 0.5, "sim": 2.0}
    expected = {k: weights["fidelity"] * fidelity[k] + weights["wait"] * (1 - wait[k] / 600.0)
                + weights["cost"] * (1 - cost[k] / 2.0) for k in fidelity}
    record = routing(result)
    assert record["weights"] == weights
    for label, score in expected.items():
        assert entry(record, label)["score"] == pytest.approx(score, rel=1e-9)
    assert result.backend == max(expected, key=expected.__getitem__)


# -- spec errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "needle"), [
    ({"candidates": []}, "non-empty list"),
    ({"candidates": "sim"}, "non-empty list"),
    ({"candidates": ["sim"], "policy": "fastest"}, "unknown policy 'fastest'"),
    ({"candidates": ["sim"], "policy": "weighted"}, "needs 'weights'"),
    ({"candidates": ["sim"], "policy": "weighted", "weights": {"speed": 1}}, "speed"),
    ({"candidates": ["sim"], "weights": {"wait": 1}}, "only to policy 'weighted'"),
    ({"candidates": ["sim"], "prices": {"sim": {"per_task": -1}}}, "prices['sim'].per_task"),
    ({"candidates": ["sim"], "prices": {"sim": {"per_hour": 1}}}, "per_task and/or per_shot"),
    ({"candidates": ["sim"], "budget": {"id": "b"}}, "sets none of"),
    ({"candidates": ["sim"], "budget": {"id": "b", "max_cost": math.inf}}, "max_cost"),
    ({"candidates": ["sim"], "budget": {"max_cost": 1}}, "budget 'id'"),
    ({"candidates": [{"name": "route", "candidates": ["sim"]}]}, "itself a route"),
    ({"candidates": ["nowhere"]}, "unknown backend 'nowhere'"),
    ({"candidates": ["sim"], "colour": "red"}, "unknown option(s) 'colour'"),
    ({"candidates": ["sim"], "failover": "no"}, "'failover' must be true or false"),
    ({"candidates": ["sim"], "seed": "7"}, "'seed' must be an integer"),
    ({"candidates": ["sim"] * 33}, "more than route.max-candidates (32)"),
])
def test_bad_specs_are_configuration_errors(spec: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        get_backend({"name": "route", **spec})
    assert needle in str(info.value)


def test_credentials_of_candidates_never_show() -> None:
    from iqm_server import IQMMockServer

    token = "route-test-token-5f1c"
    with IQMMockServer(token=token) as server:
        candidate = iqm_spec(server, token=token)
        spec = {"name": "route", "candidates": [candidate, "sim"]}
        backend = get_backend(spec)
        result = hal.run(BELL, backend, shots=10)
        assert result.backend == "iqm:mock"
        assert token not in repr(backend) and token not in result.to_json()
        assert token not in result.job_id
        server.stop()
        with pytest.raises(BackendUnavailableError) as info:
            hal.run(BELL, {**spec, "candidates": [candidate]}, shots=10)
        assert token not in str(info.value)


def test_the_cli_shows_the_routing(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from hal_workflow.cli import main

    path = tmp_path / "bell.qasm"
    path.write_text(BELL)
    spec = json.dumps({"name": "route", "candidates": [IBM["fake_manila"], "sim"],
                       "policy": "best-fidelity"})
    plain = CliRunner().invoke(main, ["run", str(path), "--backend", spec, "--shots", "50"])
    assert plain.exit_code == 0, plain.output
    assert "routed to sim by best-fidelity" in plain.stderr
    assert "ibm:fake_manila: ranked (score 0.9" in plain.stderr
    assert set(line.split()[0] for line in plain.stdout.splitlines()) <= {"00", "11"}
    full = CliRunner().invoke(main, ["run", str(path), "--backend", spec, "--json"])
    assert json.loads(full.stdout)["metadata"]["routing"]["chosen"] == "sim"


@pytest.mark.parametrize("shots", [None, True, 2.5, "100", 0, -3, 10**12])
def test_bad_shots_are_refused_before_routing(shots: Any, budget_path: Any) -> None:
    from hal_workflow.backends.budgets import BudgetStore
    from hal_workflow.orchestration.sync import run_sync

    backend = get_backend({"name": "route", "candidates": ["sim"],
                           "budget": {"id": "shots-input", "max_tasks": 5}})
    with pytest.raises(ValidationError) as info:
        run_sync(backend.submit(BELL, shots))
    assert info.value.issues[0].code is ValidationCode.SHOTS_OUT_OF_RANGE
    assert repr(shots) in str(info.value)
    with pytest.raises(ValidationError):
        run_sync(backend.extension("batch").submit_sweep(BELL, [{}], shots))
    assert BudgetStore(budget_path).spent("shots-input").tasks == 0
