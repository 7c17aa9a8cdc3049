"""The QDMI adapter on mqt-core's own QDMI driver: real jobs on DDSIM, descriptions of SC chips.

The conformance kit runs on every device that accepts programs (DDSIM, with OpenQASM 3 and with
base-profile QIR); the description-only devices are checked against their raw QDMI properties.
Distributions and bit order are compared with Qiskit's simulators.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

qdmi = pytest.importorskip("mqt.core.qdmi")

from hal_workflow.backends import qdmi as qdmi_adapter  # noqa: E402
from hal_workflow.backends.qdmi import (  # noqa: E402
    DEVICE_STATES,
    FAILED_REASON,
    JOB_STATES,
    QDMIBackend,
    list_qdmi_devices,
)
from hal_workflow.contract import (  # noqa: E402
    AvailabilityStatus,
    ConfigurationError,
    JobFailedError,
    JobNotFoundError,
    JobState,
    ValidationCode,
    ValidationError,
)
from hal_workflow.testing import ConformanceSuite, circuits  # noqa: E402

DEVICES = list_qdmi_devices()
RUNNABLE = [d.id for d in DEVICES if d.runs_programs]
DESCRIPTIONS = [d.id for d in DEVICES if not d.runs_programs]
DDSIM = {"name": "qdmi", "device": "mqt.ddsim.default", "max_qubits": 16}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def _conformance_class(device_id: str, program_format: str) -> type:
    """A ConformanceSuite subclass for one runnable device and program format."""
    name = f"TestQDMI_{''.join(c if c.isalnum() else '_' for c in device_id)}_{program_format}"
    # DDSIM claims 65535 qubits; 16 keeps the kit's too-wide circuit small to parse.
    spec = {"name": "qdmi", "device": device_id, "max_qubits": 16,
            "program_format": program_format}
    return type(name, (ConformanceSuite,), {"backend_spec": spec, "__module__": __name__})


for _device in RUNNABLE:
    for _format in ("qasm3", "qir"):
        _suite = _conformance_class(_device, _format)
        globals()[_suite.__name__] = _suite


@pytest.fixture(scope="module")
def ddsim() -> QDMIBackend:
    return QDMIBackend(DDSIM)


def reference_counts(text: str, shots: int) -> dict[str, int]:
    """Counts from Qiskit's Aer simulator, keys without register separators."""
    aer = pytest.importorskip("qiskit_aer")
    from hal_workflow.compilation.qiskit_bridge import to_qiskit

    counts = aer.AerSimulator(seed_simulator=5).run(to_qiskit(text), shots=shots).result()
    return {k.replace(" ", ""): v for k, v in counts.get_counts().items()}


# -- devices and tables ----------------------------------------------------------------------
def test_device_list_matches_the_driver() -> None:
    assert [d.id for d in DEVICES] == list(qdmi.device_ids())
    assert "mqt.ddsim.default" in RUNNABLE and "mqt.sc.iqm.garnet" in DESCRIPTIONS
    for info in DEVICES:
        device = qdmi.open_device(info.id)
        assert info.num_qubits == device.qubits_num()
        assert info.program_formats == tuple(f.name for f in device.supported_program_formats())


def test_state_tables_cover_every_qdmi_status() -> None:
    assert set(JOB_STATES) == set(qdmi.Job.Status.__members__)
    assert set(DEVICE_STATES) == set(qdmi.Device.Status.__members__)
    assert {k for k, v in JOB_STATES.items() if v.is_terminal} == {"DONE", "CANCELED", "FAILED"}


def test_unknown_device_names_the_available_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"mqt\.ddsim\.default"):
        QDMIBackend({"name": "qdmi", "device": "no.such.device"})
    with pytest.raises(ConfigurationError, match="program_format"):
        QDMIBackend({**DDSIM, "program_format": "qpy"})


# -- description-only devices ---------------------------------------------------------------------
SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


@pytest.mark.parametrize("device_id", DESCRIPTIONS)
def test_description_device_capabilities_match_qdmi(device_id: str) -> None:
    backend = QDMIBackend({"name": "qdmi", "device": device_id})
    device = qdmi.open_device(device_id)
    caps = backend.capabilities()
    assert caps.num_qubits == device.qubits_num() and caps.simulator is False
    pairs = {(a.index(), b.index()) for a, b in device.coupling_map()}
    assert set(caps.coupling_map or ()) == pairs
    operations = {op.name() for op in device.operations()}
    assert caps.gate_set == {op if op != "i" else "id" for op in operations} - {"measure", "reset"}
    assert caps.supports_reset == ("reset" in operations)


@pytest.mark.parametrize("device_id", DESCRIPTIONS)
def test_description_device_refuses_jobs_clearly(device_id: str) -> None:
    backend = QDMIBackend({"name": "qdmi", "device": device_id})
    report = run(backend.validate(circuits.bell()[0], 10))
    assert ValidationCode.UNSUPPORTED_FEATURE in {i.code for i in report.issues}
    with pytest.raises(ValidationError, match="accepts no programs; use it for capabilities"):
        run(backend.submit(circuits.bell()[0], 10))
    availability = run(backend.availability())
    assert availability.status is AvailabilityStatus.OFFLINE
    assert "accepts no programs" in (availability.message or "")


def test_garnet_calibration_in_seconds_and_errors() -> None:
    backend = QDMIBackend({"name": "qdmi", "device": "mqt.sc.iqm.garnet"})
    caps = backend.capabilities()
    assert (caps.num_qubits, len(caps.coupling_map or ()), caps.gate_set) == (20, 30, {"r", "cz"})
    snapshot = run(backend.extension("calibration").snapshot())
    device = qdmi.open_device("mqt.sc.iqm.garnet")
    scale = device.duration_scale_factor() * SECONDS[device.duration_unit()]
    operations = {op.name(): op for op in device.operations()}
    for qubit, site in zip(snapshot.qubits, device.sites(), strict=True):
        assert qubit.t1_s == pytest.approx(site.t1() * scale)
        assert qubit.t2_s == pytest.approx(site.t2() * scale)
        assert qubit.readout_error == pytest.approx(1 - operations["measure"].fidelity([site]))
    assert 1e-6 < snapshot.qubits[0].t1_s < 1e-3  # microseconds, as superconducting T1s are
    gates = {(g.gate, g.qubits): g for g in snapshot.gates}
    assert len([g for g in snapshot.gates if g.gate == "cz"]) == 30
    # The sample values of the recipe (docs/recipes/backends.md, section 4).
    assert gates[("r", (0,))].error == pytest.approx(1 - 0.99898, abs=1e-5)
    first_pair = tuple(s.index() for s in operations["cz"].site_pairs()[0])
    assert gates[("cz", first_pair)].error == pytest.approx(1 - 0.99434, abs=1e-5)
    assert snapshot.qubits[0].readout_error == pytest.approx(1 - 0.9817)


# -- DDSIM specifics ------------------------------------------------------------------------------
def test_ddsim_capabilities(ddsim: QDMIBackend) -> None:
    caps = ddsim.capabilities()
    assert caps.simulator and caps.coupling_map is None and caps.num_qubits == 16
    assert set(circuits.STANDARD_GATES) <= caps.gate_set
    assert caps.supports_reset and caps.supports_mid_circuit_measurement
    assert "calibration" not in caps.extensions


def test_bit_order_over_registers_matches_qiskit(ddsim: QDMIBackend) -> None:
    # Three registers, bits written out of order, one bit never written.
    text = ('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[3] q;\nbit[1] a;\nbit[2] b;\n'
            "bit[2] d;\nx q[1];\nx q[2];\n"
            "b[1] = measure q[1];\na[0] = measure q[0];\nd[0] = measure q[2];\n")
    result = run(ddsim.run(text, 50))
    assert result.counts == reference_counts(text, 50) == {"01100": 50}


def test_classical_control_matches_qiskit(ddsim: QDMIBackend) -> None:
    text = circuits.program(3, 3, [
        "h q[0];", "c[0] = measure q[0];",
        "if (c[0]) { x q[1]; } else { x q[2]; }",
        "c[1] = measure q[1];", "c[2] = measure q[2];",
    ])
    result = run(ddsim.run(text, 400))
    assert set(result.counts) == set(reference_counts(text, 400)) == {"011", "100"}
    assert min(result.counts.values()) > 100


def test_modifiers_and_parameters_reach_the_device(ddsim: QDMIBackend) -> None:
    theta = 2 * math.asin(math.sqrt(0.3))
    text = circuits.program(2, 2, [
        # q[1] is 0, so the negated control flips q[0]; q[0] then controls the rotation.
        "negctrl @ x q[1], q[0];", "inv @ s q[1];", "ctrl @ ry(theta) q[0], q[1];",
        *circuits.measure_all(2),
    ], inputs=["theta"])
    shots = 4000
    result = run(ddsim.run(text, shots, {"theta": theta}))
    assert "theta" not in result.executed_program and "input" not in result.executed_program
    ones = result.counts.get("11", 0) / shots  # q[0] stays 1, q[1] rotated to P(1) = 0.3
    assert abs(ones - 0.3) < 5 * math.sqrt(0.3 * 0.7 / shots)
    assert set(result.counts) <= {"01", "11"}


def test_circuit_without_classical_bits(ddsim: QDMIBackend) -> None:
    text = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nh q[0];\n'
    assert run(ddsim.run(text, 20)).counts == {"": 20}


def test_failed_job_has_a_generic_reason(ddsim: QDMIBackend,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # Our checks stop bad circuits before the device sees them; send a broken program anyway
    # to see how a device-side failure comes back.
    monkeypatch.setattr(qdmi_adapter, "ddsim_qasm",
                        lambda *_: "OPENQASM 3.0;\nqubit[1] q;\nnot_a_gate q[0];\n")
    job_id = run(ddsim.submit(circuits.bell()[0], 10))
    with pytest.raises(JobFailedError, match="stderr"):
        run(ddsim.result(job_id))
    status = run(ddsim.status(job_id))
    assert status.state is JobState.FAILED and status.reason == FAILED_REASON


def test_jobs_are_shared_in_this_process_only(ddsim: QDMIBackend) -> None:
    job_id = run(ddsim.submit(circuits.bell()[0], 10))
    other = QDMIBackend(DDSIM)
    assert sum(run(other.result(job_id)).counts.values()) == 10
    with pytest.raises(JobNotFoundError, match="process that submitted"):
        run(other.status("qdmi-0-1"))
    garnet = QDMIBackend({"name": "qdmi", "device": "mqt.sc.iqm.garnet"})
    with pytest.raises(JobNotFoundError):
        run(garnet.status(job_id))


def test_cancel_a_running_job(ddsim: QDMIBackend) -> None:
    async def scenario() -> list[JobState]:
        job_id = await ddsim.submit(circuits.deep(10, 200), 1)
        status = await ddsim.status(job_id)
        while status.state is JobState.QUEUED:
            await asyncio.sleep(0.01)
            status = await ddsim.status(job_id)
        await ddsim.cancel(job_id)
        return [status.state, (await ddsim.status(job_id)).state]

    before, after = run(scenario())
    assert before is JobState.RUNNING and after is JobState.CANCELLED
