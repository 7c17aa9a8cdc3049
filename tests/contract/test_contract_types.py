"""The contract's value types: JSON and pickle round trips, normalisation, helpers."""

from __future__ import annotations

import dataclasses
import json
import pickle
from typing import Any

import pytest

import hal_workflow
from hal_workflow.contract import (
    CONTRACT_VERSION,
    EXTENSION_NAMES,
    AvailabilityStatus,
    Backend,
    BackendAvailability,
    CalibrationSnapshot,
    Capabilities,
    ExecutionResult,
    GateCalibration,
    JobState,
    JobStatus,
    QubitCalibration,
    ValidationCode,
    ValidationIssue,
    ValidationResult,
)

SNAPSHOT = CalibrationSnapshot(
    timestamp=1_700_000_000.5,
    qubits=(QubitCalibration(0, t1_s=1e-4, t2_s=8e-5, readout_error=0.02, frequency_hz=5e9),
            QubitCalibration(1, readout_error=0.03)),
    gates=(GateCalibration("cx", (0, 1), error=0.01, duration_s=3e-7),),
    calibration_id="cal-42",
)
VALUES: list[Any] = [
    Capabilities(
        name="dev", num_qubits=3, gate_set=frozenset({"rz", "sx", "cx"}),
        coupling_map=((0, 1), (1, 2)), max_shots=4000, simulator=False,
        supports_mid_circuit_measurement=True, extensions=frozenset({"batch", "dev.pulse"}),
        formats=frozenset({"openqasm3", "qir"}),
    ),
    Capabilities(name="sim", num_qubits=30, gate_set=frozenset({"h", "cx"})),
    JobStatus("job-1", JobState.FAILED, reason="node-fail", vendor_state="NF",
              queue_position=None, observed_at=123.0),
    JobStatus("job-2", JobState.QUEUED, queue_position=4),
    ExecutionResult(
        counts={"00": 510, "11": 490}, shots=1000, job_id="job-3", backend="dev",
        timings={"queued_s": 1.5, "execution_s": 0.25, "total_s": 1.75},
        executed_program="OPENQASM 3.0;", calibration=SNAPSHOT, metadata={"transpiled": True},
    ),
    ExecutionResult(counts={"1": 7}, shots=7, job_id="job-4", backend="sim"),
    ValidationResult((ValidationIssue(ValidationCode.TOO_MANY_QUBITS, "6 > 5"),
                      ValidationIssue(ValidationCode.SHOTS_OUT_OF_RANGE, "0 shots"))),
    ValidationResult(),
    BackendAvailability(AvailabilityStatus.BUSY, queue_depth=12, estimated_wait_s=30.0,
                        message="calibrating at 14:00"),
    SNAPSHOT,
    QubitCalibration(3, t1_s=1e-4),
    GateCalibration("x", (2,), error=1e-3),
    ValidationIssue(ValidationCode.GATE_NOT_SUPPORTED, "gate 'ch' is not supported"),
]


def value_id(value: Any) -> str:
    return type(value).__name__


@pytest.mark.parametrize("value", VALUES, ids=value_id)
def test_json_round_trip(value: Any) -> None:
    text = value.to_json()
    assert json.loads(text) == value.to_dict()  # plain JSON data, no custom encoder needed
    assert type(value).from_json(text) == value


@pytest.mark.parametrize("value", VALUES, ids=value_id)
def test_pickle_round_trip(value: Any) -> None:
    assert pickle.loads(pickle.dumps(value)) == value


@pytest.mark.parametrize("value", VALUES, ids=value_id)
def test_frozen(value: Any) -> None:
    name = dataclasses.fields(value)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, name, None)


@pytest.mark.parametrize("value", VALUES, ids=value_id)
def test_from_dict_ignores_unknown_keys(value: Any) -> None:
    # A v1 reader must accept data written by a newer producer with extra fields.
    data = value.to_dict() | {"added_in_a_later_version": 1}
    assert type(value).from_dict(data) == value


def test_json_uses_plain_values() -> None:
    data = VALUES[0].to_dict()
    assert data["gate_set"] == ["cx", "rz", "sx"]  # sorted, so the JSON is stable
    assert data["coupling_map"] == [[0, 1], [1, 2]]
    assert VALUES[2].to_dict()["state"] == "FAILED"
    assert VALUES[4].to_dict()["calibration"]["gates"][0]["qubits"] == [0, 1]


def test_capabilities_normalise_and_answer() -> None:
    caps = Capabilities("d", 3, ["cx", "h", "h"], coupling_map=[[0, 1]], extensions=["batch"])
    assert caps.gate_set == frozenset({"h", "cx"}) and caps.extensions == frozenset({"batch"})
    assert caps.coupling_map == ((0, 1),)
    assert caps.connected(0, 1) and caps.connected(1, 0) and not caps.connected(1, 2)
    assert Capabilities("d", 3, ["h"]).connected(0, 2)  # no map: all-to-all
    assert caps.simulator and not caps.hardware
    assert caps.contract_version == CONTRACT_VERSION == "1.1"
    assert caps.formats == frozenset({"openqasm3"})


def test_enums_from_strings() -> None:
    assert JobStatus("j", "RUNNING").state is JobState.RUNNING
    assert BackendAvailability("MAINTENANCE").status is AvailabilityStatus.MAINTENANCE
    assert ValidationIssue("RESOURCE_LIMIT", "m").code is ValidationCode.RESOURCE_LIMIT
    with pytest.raises(ValueError):
        JobStatus("j", "DONE")


def test_job_status_terminal() -> None:
    assert JobStatus("j", JobState.CANCELLED).is_terminal
    assert not JobStatus("j", JobState.RUNNING).is_terminal


@pytest.mark.parametrize(
    ("status", "accepting"),
    [("ONLINE", True), ("BUSY", True), ("MAINTENANCE", False), ("OFFLINE", False)],
)
def test_availability_accepting_jobs(status: str, accepting: bool) -> None:
    assert BackendAvailability(status).accepting_jobs is accepting


def test_validation_result_truth() -> None:
    assert ValidationResult().valid and ValidationResult()
    invalid = VALUES[6]
    assert not invalid.valid and not invalid
    rebuilt = ValidationResult([{"code": "TOO_MANY_QUBITS", "message": "m"}])
    assert rebuilt.issues == (ValidationIssue(ValidationCode.TOO_MANY_QUBITS, "m"),)


def test_result_helpers() -> None:
    result = ExecutionResult({"00": 300, "11": 600, "01": 100}, 1000, "j", "b")
    assert result.probabilities() == {"00": 0.3, "11": 0.6, "01": 0.1}
    assert result.most_frequent() == "11"


def test_result_calibration_from_mapping() -> None:
    result = ExecutionResult({"0": 1}, 1, "j", "b", calibration=SNAPSHOT.to_dict())
    assert result.calibration == SNAPSHOT


def test_versions_and_extension_names() -> None:
    assert CONTRACT_VERSION == "1.1" == Backend.contract_version == hal_workflow.CONTRACT_VERSION
    assert frozenset({"batch", "sessions", "calibration", "pulse"}) == EXTENSION_NAMES
