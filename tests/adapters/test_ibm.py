"""The IBM Quantum adapter in qiskit-ibm-runtime's local testing mode (fake backends, offline).

The conformance kit runs on ``fake_manila``; the tests below check what only this adapter
does: transpilation to the target, calibration data, register order, error mapping and the
sessions/batch extensions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("qiskit_ibm_runtime")

from qiskit.providers import JobStatus as QiskitJobStatus
from qiskit_ibm_runtime.fake_provider import FakeManilaV2

from hal_workflow.backends.ibm import RUNTIME_STATES, IBMBackend, local_device, runtime_state
from hal_workflow.backends.registry import get_backend
from hal_workflow.compilation.qiskit_bridge import to_qiskit
from hal_workflow.contract import (
    BackendUnavailableError,
    ConfigurationError,
    CredentialsError,
    JobNotFoundError,
    JobState,
    RateLimitedError,
)
from hal_workflow.testing import ConformanceSuite, circuits

SPEC = {"name": "ibm", "backend": "fake_manila", "seed": 11}
FAKE_TOKEN = "hal-test-token-5f1c0e2a9b7d"


class TestIBMFakeManila(ConformanceSuite):
    backend_spec = SPEC
    noisy = True  # fake backends simulate the device's noise
    # Local testing mode runs a job in Aer, which cannot stop once it runs; queued jobs can.
    cancels_running_jobs = False

    @contextlib.asynccontextmanager
    async def queued_job(self, backend: Any) -> AsyncIterator[str | None]:
        # The fake device runs one job at a time: keep its thread busy, the next job waits.
        release = threading.Event()
        local_device(backend._device.name).submit(release.wait, 60)
        try:
            yield await backend.submit(self.bell_circuit, 10)
        finally:
            release.set()


@pytest.fixture(scope="module")
def backend() -> IBMBackend:
    return IBMBackend(SPEC)


def run(coro: Any) -> Any:
    """Run one backend coroutine to completion."""
    return asyncio.run(coro)


# -- transpilation and the executed program -----------------------------------------------
def test_executed_program_is_transpiled_to_the_target(backend: IBMBackend) -> None:
    # h, y, ccx and swap are not manila gates: the adapter must translate and route them.
    text = circuits.program(3, 3, ["h q[0];", "y q[1];", "ccx q[0], q[1], q[2];",
                                   "swap q[0], q[2];", *circuits.measure_all(3)])
    result = run(backend.run(text, 200))
    executed = to_qiskit(result.executed_program)
    target = FakeManilaV2().target
    used = set(executed.count_ops()) - {"measure", "barrier"}
    assert used and used <= set(target.operation_names), used
    for instruction in executed.data:  # every two-qubit gate on a coupled pair
        if len(instruction.qubits) == 2:
            pair = tuple(executed.find_bit(q).index for q in instruction.qubits)
            assert target.instruction_supported(instruction.operation.name, pair), pair


def test_gate_set_lists_native_and_standard_gates(backend: IBMBackend) -> None:
    caps = backend.capabilities()
    assert {"rz", "sx", "x", "cx", "id"} <= caps.gate_set
    assert set(circuits.STANDARD_GATES) <= caps.gate_set  # the adapter transpiles them
    assert caps.native_gates == {"rz", "sx", "x", "cx", "id"} and caps.compiles
    assert caps.coupling_map is not None and (0, 1) in caps.coupling_map
    assert not caps.connected(0, 4)
    assert caps.simulator is False and caps.max_shots == FakeManilaV2().configuration().max_shots


# -- calibration -------------------------------------------------------------------------------
def test_calibration_snapshot_matches_backend_properties(backend: IBMBackend) -> None:
    snapshot = run(backend.extension("calibration").snapshot())
    properties = FakeManilaV2().properties()
    assert snapshot.timestamp == properties.last_update_date.timestamp()
    assert len(snapshot.qubits) == 5
    for qubit in snapshot.qubits:
        assert qubit.t1_s == pytest.approx(properties.t1(qubit.qubit))
        assert qubit.t2_s == pytest.approx(properties.t2(qubit.qubit))
        assert qubit.readout_error == pytest.approx(properties.readout_error(qubit.qubit))
    gates = {(g.gate, g.qubits): g for g in snapshot.gates}
    for pair in [(0, 1), (1, 0), (3, 4)]:
        assert gates["cx", pair].error == pytest.approx(properties.gate_error("cx", list(pair)))
        assert gates["cx", pair].duration_s == pytest.approx(
            properties.gate_length("cx", list(pair))
        )
    assert gates["sx", (2,)].error == pytest.approx(properties.gate_error("sx", [2]))


def test_result_carries_calibration(backend: IBMBackend) -> None:
    result = run(backend.run(circuits.bell()[0], 100))
    assert result.calibration == run(backend.extension("calibration").snapshot())
    assert result.metadata["local_testing_mode"] is True


# -- counts and registers ----------------------------------------------------------------------
def test_multiple_registers_and_loose_bits_in_declaration_order(backend: IBMBackend) -> None:
    # clbits in declaration order: a (loose bit) = 0, b[0] = 1, b[1] = 2, d[0] = 3.
    text = (
        'OPENQASM 3.0;\ninclude "stdgates.inc";\nbit a;\nqubit[4] q;\nbit[2] b;\nbit[1] d;\n'
        "x q[0];\nx q[3];\n"
        "a = measure q[0];\nb[0] = measure q[1];\nd[0] = measure q[2];\nb[1] = measure q[3];\n"
    )
    result = run(backend.run(text, 400))
    assert all(len(key) == 4 for key in result.counts)
    # q0 -> a (bit 0) = 1, q3 -> b[1] (bit 2) = 1: "0101" (bit 0 rightmost)
    assert result.most_frequent() == "0101", result.counts
    assert result.counts["0101"] > 0.8 * 400


@pytest.mark.filterwarnings("ignore:.*no output classical registers:UserWarning")
def test_circuit_without_classical_bits(backend: IBMBackend) -> None:
    result = run(backend.run('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[1] q;\nh q[0];\n', 10))
    assert result.counts == {"": 10}


# -- extensions ------------------------------------------------------------------------------
def test_sweep_is_one_runtime_job(backend: IBMBackend) -> None:
    batch = backend.extension("batch")
    thetas = [0.0, math.pi, math.pi / 2]
    ids = run(batch.submit_sweep(circuits.rotation("theta"), [{"theta": t} for t in thetas], 300))
    assert len({i.split("#")[0] for i in ids}) == 1  # one runtime job (one PUB)
    results = [run(backend.result(i)) for i in ids]
    assert results[0].counts.get("0", 0) > 0.85 * 300
    assert results[1].counts.get("1", 0) > 0.85 * 300
    assert 0.3 * 300 < results[2].counts.get("1", 0) < 0.7 * 300
    assert len({r.metadata["runtime_job_id"] for r in results}) == 1


def test_batch_of_circuits(backend: IBMBackend) -> None:
    order_text, order_ideal = circuits.bit_order()
    ids = run(backend.extension("batch").submit_batch([circuits.bell()[0], order_text], 200))
    assert len({i.split("#")[0] for i in ids}) == 1  # one runtime job, one PUB per circuit
    bell, order = (run(backend.result(i)) for i in ids)
    assert bell.most_frequent() in {"00", "11"}
    assert order.most_frequent() == max(order_ideal, key=order_ideal.__getitem__)
    assert bell.executed_program != order.executed_program


@pytest.mark.parametrize("batch_mode", [False, True], ids=["session", "batch"])
def test_session_extension(backend: IBMBackend, batch_mode: bool) -> None:
    async def scenario() -> tuple[str, list[str]]:
        async with backend.extension("sessions").session(batch=batch_mode) as session:
            ids = [await session.submit(circuits.rotation("theta"), 100, {"theta": math.pi})
                   for _ in range(2)]
            return session.session_id, ids

    session_id, ids = run(scenario())
    assert session_id and len(set(ids)) == 2
    for job_id in ids:
        assert run(backend.result(job_id)).counts.get("1", 0) > 80


# -- states, ids and errors ------------------------------------------------------------------
@pytest.mark.parametrize("vendor", sorted(RUNTIME_STATES))
def test_runtime_states_enum_and_str(vendor: str) -> None:
    expected = RUNTIME_STATES[vendor]
    assert runtime_state(vendor) == (expected, vendor)  # cloud jobs report a str
    assert runtime_state(QiskitJobStatus[vendor]) == (expected, vendor)  # local jobs the enum


def test_unknown_runtime_state_is_not_terminal(caplog: pytest.LogCaptureFixture) -> None:
    state, vendor = runtime_state("PAUSED")
    assert state is JobState.QUEUED and vendor == "PAUSED"
    assert "PAUSED" in caplog.text


def test_local_jobs_live_in_their_process(backend: IBMBackend) -> None:
    job_id = run(backend.submit(circuits.bell()[0], 10))
    counts = run(backend.result(job_id)).counts
    assert run(IBMBackend(SPEC).result(job_id)).counts == counts  # rebuilt in this process
    with pytest.raises(JobNotFoundError, match="local testing mode"):
        run(backend.status("0b4e1f52-0000-4000-8000-000000000000"))  # as if from elsewhere


def test_unknown_fake_backend_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="fake_nowhere"):
        get_backend({"name": "ibm", "backend": "fake_nowhere"})
    with pytest.raises(ConfigurationError, match="'backend'"):
        get_backend({"name": "ibm"})


@pytest.mark.parametrize(
    ("options", "named"),
    [({"optimization_level": 7}, "optimization_level"), ({"seed": "x"}, "seed"),
     ({"shots": 10}, "shots")],
)
def test_bad_options_are_configuration_errors(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        get_backend({**SPEC, **options})


@pytest.fixture
def no_account(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """No IBM credentials: no environment variables and an empty saved-accounts file."""
    from qiskit_ibm_runtime.accounts import management

    for var in ("QISKIT_IBM_TOKEN", "QISKIT_IBM_CHANNEL", "QISKIT_IBM_INSTANCE", "QISKIT_IBM_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(management, "_DEFAULT_ACCOUNT_CONFIG_JSON_FILE",
                        str(tmp_path) + "/qiskit-ibm.json")


@pytest.mark.usefixtures("no_account")
def test_missing_credentials_for_a_real_backend() -> None:
    with pytest.raises(CredentialsError, match="QISKIT_IBM_TOKEN"):
        get_backend({"name": "ibm", "backend": "ibm_torino"})
    with pytest.raises(ConfigurationError, match="channel"):
        get_backend({"name": "ibm", "backend": "ibm_torino", "channel": "nowhere"})


@pytest.mark.usefixtures("no_account")
def test_token_never_shows(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("QISKIT_IBM_TOKEN", FAKE_TOKEN)
    caplog.set_level(logging.DEBUG)
    # Offline the service cannot be reached; online the token is rejected. Either way a
    # contract error, and the token appears nowhere.
    with pytest.raises((CredentialsError, BackendUnavailableError)) as info:
        get_backend({"name": "ibm", "backend": "ibm_torino"})
    assert FAKE_TOKEN not in str(info.value)
    assert FAKE_TOKEN not in caplog.text
    # A token in the spec is refused without echoing it.
    with pytest.raises(ConfigurationError) as info:
        get_backend({"name": "ibm", "backend": "fake_manila", "token": FAKE_TOKEN})
    assert FAKE_TOKEN not in str(info.value)
    assert FAKE_TOKEN not in repr(IBMBackend(SPEC))



# -- the runtime behind a fault-injecting service and sampler -------------------------------------
class FaultyCloud:
    """Stands in for IBM's cloud: a ``QiskitRuntimeService`` replacement that resolves the
    account as the runtime does (``AccountManager.get`` over the saved-accounts file), runs
    jobs on a fake backend, and finds jobs by tag; its sampler fails the next ``run`` calls
    with the injected faults ("lost": the job is made, then the answer times out)."""

    def __init__(self) -> None:
        self.accounts: list[Any] = []
        self.faults: list[Any] = []
        self.created: dict[str, Any] = {}  # tag -> job
        self.runs = 0

    def service(self, name: str | None = None, channel: str | None = None,
                instance: str | None = None) -> Any:
        from qiskit_ibm_runtime.accounts import AccountManager, AccountNotFoundError

        account = AccountManager.get(name=name, channel=channel)
        if account is None:
            raise AccountNotFoundError("no account")
        self.accounts.append(account)
        cloud = self

        class Service:
            def backend(self, device: str) -> Any:
                return FakeManilaV2()

            def jobs(self, job_tags: list[str], limit: int, backend_name: str) -> list[Any]:
                return [cloud.created[t] for t in job_tags if t in cloud.created][:limit]

        return Service()

    def sampler(self) -> type:
        from qiskit_ibm_runtime import SamplerV2
        from qiskit_ibm_runtime.api.exceptions import RequestsApiError
        from requests import ReadTimeout

        cloud = self

        class Sampler(SamplerV2):
            def run(self, pubs: Any, **kwargs: Any) -> Any:
                cloud.runs += 1
                fault = cloud.faults.pop(0) if cloud.faults else None
                if isinstance(fault, int):
                    raise RequestsApiError(f"'{fault} Server Error'", status_code=fault)
                job = super().run(pubs, **kwargs)
                (tag,) = self.options.environment.job_tags
                cloud.created[tag] = job
                if fault == "lost":
                    raise ReadTimeout("read timed out")
                return job

        return Sampler


@pytest.fixture
def cloud(no_account: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> FaultyCloud:
    from qiskit_ibm_runtime import QiskitRuntimeService

    import hal_workflow.backends.ibm as ibm_module

    QiskitRuntimeService.save_account(channel="ibm_quantum_platform", token=FAKE_TOKEN,
                                      instance="crn:v1:hal-test", name="halacct")
    fake = FaultyCloud()
    monkeypatch.setattr(ibm_module, "QiskitRuntimeService", fake.service)
    monkeypatch.setattr(ibm_module, "SamplerV2", fake.sampler())
    return fake


CLOUD = {"name": "ibm", "backend": "ibm_fakecloud", "account": "halacct", "seed": 5}


def test_saved_account_by_name(cloud: FaultyCloud) -> None:
    backend = get_backend(CLOUD)
    (account,) = cloud.accounts
    assert account.token == FAKE_TOKEN and account.instance == "crn:v1:hal-test"
    assert "halacct" in repr(backend) and FAKE_TOKEN not in repr(backend)
    with pytest.raises(CredentialsError, match="no usable saved account 'other'") as info:
        get_backend({**CLOUD, "account": "other"})
    assert FAKE_TOKEN not in str(info.value)


def test_submit_retries_and_adopts_a_lost_job(cloud: FaultyCloud,
                                              caplog: pytest.LogCaptureFixture) -> None:
    backend = get_backend(CLOUD)
    cloud.faults = [503, 429, "lost"]
    with caplog.at_level(logging.INFO):
        result = asyncio.run(backend.run(circuits.bell()[0], 100, timeout=120))
    assert cloud.runs == 3 and len(cloud.created) == 1  # the lost job was adopted, not rerun
    assert sum(result.counts.values()) == 100
    assert "ibm: submitting a job failed (RateLimitedError" in caplog.text
    assert "adopted runtime job" in caplog.text


def test_permanent_runtime_errors_are_not_retried(cloud: FaultyCloud) -> None:
    backend = get_backend({**CLOUD, "retry": {"max-attempts": 3}})
    cloud.faults = [400]
    with pytest.raises(BackendUnavailableError) as info:
        asyncio.run(backend.submit(circuits.bell()[0], 10))
    assert cloud.runs == 1 and not info.value.retryable
    cloud.faults = [429, 429, 429]
    with pytest.raises(RateLimitedError):
        asyncio.run(backend.submit(circuits.bell()[0], 10))
    assert cloud.runs == 4 and not cloud.created
