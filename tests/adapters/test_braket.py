"""The Amazon Braket adapter on the SDK's LocalSimulator (offline), and its AWS error mapping.

The conformance kit runs on ``{"name": "braket", "device": "local"}``; the tests below check
the adapter's own work: classical-bit order, the standard-gate translation (against Qiskit's
``Statevector``), parameters through ``inputs=``, batches and the errors an ``AwsDevice`` gives
without an AWS account.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("braket.devices")

from hal_workflow.backends.braket import TASK_STATES, BraketBackend, task_state
from hal_workflow.backends.registry import get_backend
from hal_workflow.contract import (
    BackendUnavailableError,
    ConfigurationError,
    CredentialsError,
    JobNotFoundError,
    JobState,
    RateLimitedError,
    SubmissionError,
    ValidationCode,
    ValidationError,
)
from hal_workflow.testing import ConformanceSuite, circuits

SPEC = {"name": "braket", "device": "local"}
SV1 = "arn:aws:braket:::device/quantum-simulator/amazon/sv1"
FAKE_SECRET = "hal-test-secret-8d7a6e5f4c3b"


class TestBraketLocal(ConformanceSuite):
    backend_spec = SPEC
    long_circuit = circuits.deep(6, 60)  # Braket interprets gate by gate: keep it short

    @contextlib.asynccontextmanager
    async def queued_job(self, backend: Any) -> AsyncIterator[str | None]:
        # Local jobs run one at a time: a job behind a long one waits QUEUED.
        blocker = await backend.submit(circuits.deep(6, 150), 1)
        try:
            yield await backend.submit(self.bell_circuit, 10)
        finally:
            await backend.cancel(blocker)


@pytest.fixture(scope="module")
def backend() -> BraketBackend:
    return BraketBackend(SPEC)


def run(coro: Any) -> Any:
    """Run one backend coroutine to completion."""
    return asyncio.run(coro)


def qiskit_probabilities(text: str) -> dict[str, float]:
    """Exact outcome probabilities of a circuit with final measurements, from Qiskit."""
    from qiskit import qasm3
    from qiskit.quantum_info import Statevector

    qc = qasm3.loads(text)
    measured = {qc.find_bit(i.clbits[0]).index: qc.find_bit(i.qubits[0]).index
                for i in qc.data if i.operation.name == "measure"}
    state = Statevector(qc.remove_final_measurements(inplace=False))
    probabilities: dict[str, float] = {}
    for key, p in state.probabilities_dict().items():
        bits = "".join(key[::-1][measured[c]] if c in measured else "0"
                       for c in reversed(range(qc.num_clbits)))
        probabilities[bits] = probabilities.get(bits, 0.0) + p
    return probabilities


def assert_sampled(counts: dict[str, int], ideal: dict[str, float], sigmas: float = 5.0) -> None:
    shots = sum(counts.values())
    assert set(counts) <= {k for k, p in ideal.items() if p > 1e-12}, (counts, ideal)
    for key, p in ideal.items():
        bound = sigmas * math.sqrt(shots * p * (1 - p)) + 1.0
        assert abs(counts.get(key, 0) - shots * p) <= bound, (key, counts, ideal)


# -- classical bit order -----------------------------------------------------------------------
def test_clbit_order_differs_from_qubit_order(backend: BraketBackend) -> None:
    text = circuits.program(2, 2, ["x q[1];", "c[0] = measure q[1];", "c[1] = measure q[0];"])
    result = run(backend.run(text, 50))
    assert result.counts == {"01": 50}  # c[0] = q[1] = 1, rightmost
    assert qiskit_probabilities(text) == {"01": 1.0}


def test_registers_unmeasured_bits_and_unused_qubits(backend: BraketBackend) -> None:
    # Qubit a[0] is never used (Braket drops it); d is never written; b measured out of order.
    text = (
        'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] a;\nqubit[2] b;\nbit[2] c;\nbit d;\n'
        "x b[1];\nh a[1];\ncx a[1], b[0];\n"
        "c[1] = measure b[1];\nc[0] = measure b[0];\n"
    )
    ideal = qiskit_probabilities(text)
    assert ideal == pytest.approx({"010": 0.5, "011": 0.5})
    assert_sampled(run(backend.run(text, 2000)).counts, ideal)


# -- the standard-gate translation -----------------------------------------------------------------
def _gate_circuit(gate: str, controlled: bool) -> str:
    """Superposed inputs with phases, ``gate`` (optionally under ``ctrl @``), a mixing layer."""
    num_params, arity = circuits.STANDARD_GATES[gate]
    width = arity + int(controlled)
    params = f"({', '.join(str(0.4 + 0.3 * k) for k in range(num_params))})" if num_params else ""
    prepare = [f"ry({0.7 + 0.4 * i}) q[{i}];\nrz({0.5 + 0.3 * i}) q[{i}];" for i in range(width)]
    qubits = ", ".join(f"q[{i}]" for i in range(width))
    apply = [f"{'ctrl @ ' if controlled else ''}{gate}{params} {qubits};"]
    mix = [f"h q[{i}];" for i in range(width)]
    return circuits.program(width, width, prepare + apply + mix + circuits.measure_all(width))


@pytest.mark.parametrize("controlled", [False, True], ids=["plain", "ctrl"])
def test_every_standard_gate_matches_qiskit(backend: BraketBackend, controlled: bool) -> None:
    texts = {g: _gate_circuit(g, controlled) for g in circuits.STANDARD_GATES}
    ids = run(backend.extension("batch").submit_batch(list(texts.values()), 4000))
    for (gate, text), job_id in zip(texts.items(), ids, strict=True):
        result = run(backend.result(job_id))
        assert result.shots == 4000
        try:
            assert_sampled(dict(result.counts), qiskit_probabilities(text))
        except AssertionError as exc:
            raise AssertionError(f"{'ctrl @ ' if controlled else ''}{gate}: {exc}") from None


def test_executed_program_is_braket_dialect(backend: BraketBackend) -> None:
    result = run(backend.run(circuits.single_gate("cp", 2), 10))
    program = result.executed_program
    assert "include" not in program and "cphaseshift" in program
    assert program.count("\n") == circuits.single_gate("cp", 2).count("\n")  # lines kept


# -- parameters and batches ------------------------------------------------------------------
def test_parameters_travel_as_inputs(backend: BraketBackend) -> None:
    text = circuits.program(2, 2, ["rx(a + 2 * b) q[0];", "ry(a) q[1];",
                                   *circuits.measure_all(2)], inputs=["a", "b"])
    binding = {"a": 0.3, "b": 0.9}
    from qiskit import qasm3

    bound = qasm3.dumps(qasm3.loads(text).assign_parameters(binding))
    assert_sampled(run(backend.run(text, 4000, binding)).counts, qiskit_probabilities(bound))
    with pytest.raises(ValidationError) as info:
        run(backend.submit(text, 10, {"a": 1.0, "c": 2.0}))
    assert {i.code for i in info.value.issues} == {ValidationCode.UNBOUND_PARAMETERS}
    assert "b" in str(info.value) and "c" in str(info.value)


def test_sweep(backend: BraketBackend) -> None:
    thetas = [0.0, math.pi / 2, math.pi, 3 * math.pi / 2]
    ids = run(backend.extension("batch").submit_sweep(
        circuits.rotation("theta"), [{"theta": t} for t in thetas], 3000))
    assert len(set(ids)) == len(thetas)
    for job_id, theta in zip(ids, thetas, strict=True):
        result = run(backend.result(job_id))
        assert result.shots == 3000
        assert_sampled(dict(result.counts), circuits.rotation_ideal(theta))


# -- validation --------------------------------------------------------------------------
def test_mid_circuit_measurement_is_rejected(backend: BraketBackend) -> None:
    text = circuits.program(1, 2, ["c[0] = measure q[0];", "x q[0];", "c[1] = measure q[0];"])
    report = run(backend.validate(text))
    assert [i.code for i in report.issues] == [ValidationCode.UNSUPPORTED_FEATURE]
    assert "line 6" in report.issues[0].message
    with pytest.raises(ValidationError):
        run(backend.submit(text, 10))


def test_openqasm2_is_rejected(backend: BraketBackend) -> None:
    text = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\nmeasure q -> c;\n'
    report = run(backend.validate(text, 10))
    assert ValidationCode.UNSUPPORTED_FEATURE in {i.code for i in report.issues}


# -- states, ids, devices ------------------------------------------------------------------
@pytest.mark.parametrize("vendor", sorted(TASK_STATES))
def test_task_states(vendor: str) -> None:
    assert task_state(vendor) is TASK_STATES[vendor]
    assert task_state(vendor.lower()) is TASK_STATES[vendor]


def test_unknown_task_state_is_not_terminal(caplog: pytest.LogCaptureFixture) -> None:
    assert task_state("PAUSED") is JobState.QUEUED
    assert "PAUSED" in caplog.text


def test_local_jobs_are_shared_within_the_process(backend: BraketBackend) -> None:
    job_id = run(backend.submit(circuits.bell()[0], 10))
    counts = run(backend.result(job_id)).counts
    assert run(BraketBackend(SPEC).result(job_id)).counts == counts  # rebuilt from the spec
    foreign = job_id.rsplit("-", 1)[0] + "-999999"  # as if from another process
    with pytest.raises(JobNotFoundError, match="process"):
        run(backend.status(foreign))


@pytest.mark.filterwarnings("ignore:You are running a noise-free circuit")
def test_density_matrix_simulator() -> None:
    dm = get_backend({"name": "braket", "device": "local:braket_dm"})
    assert dm.capabilities().num_qubits < BraketBackend(SPEC).capabilities().num_qubits
    text, ideal = circuits.bit_order()
    assert run(dm.run(text, 20)).counts == {k: 20 for k, p in ideal.items() if p}


def test_unknown_device_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="braket_dm"):
        get_backend({"name": "braket", "device": "local:nope"})
    with pytest.raises(ConfigurationError, match="ARN"):
        get_backend({"name": "braket", "device": "sv1"})


# -- AwsDevice without an AWS account ----------------------------------------------------------
@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> pytest.MonkeyPatch:
    """An AWS SDK with no region, no credentials, no config files and no metadata service."""
    for var in ("AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    return monkeypatch


def test_aws_device_without_region(no_aws: pytest.MonkeyPatch) -> None:
    with pytest.raises(CredentialsError, match="region") as info:
        get_backend({"name": "braket", "device": SV1})
    assert "Traceback" not in str(info.value)


def test_aws_device_without_credentials(no_aws: pytest.MonkeyPatch) -> None:
    no_aws.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(CredentialsError, match="credentials"):
        get_backend({"name": "braket", "device": SV1})


def test_aws_device_unreachable_keeps_secrets(
    no_aws: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    no_aws.setenv("AWS_DEFAULT_REGION", "us-east-1")
    no_aws.setenv("AWS_ACCESS_KEY_ID", "AKIAHALTESTFAKE")
    no_aws.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    no_aws.setenv("AWS_MAX_ATTEMPTS", "1")
    no_aws.setenv("AWS_ENDPOINT_URL_BRAKET", "http://127.0.0.1:9")  # nothing listens there
    caplog.set_level(logging.DEBUG)
    with pytest.raises(BackendUnavailableError, match="cannot reach AWS") as info:
        get_backend({"name": "braket", "device": SV1})
    assert FAKE_SECRET not in str(info.value)
    assert FAKE_SECRET not in caplog.text


# -- an AWS device behind a fault-injecting Braket client ---------------------------------------
class FakeBraketService:
    """Answers the Braket client's calls in place of AWS (a ``before-call`` hook, as botocore's
    Stubber does: the request was built and validated by the real client), failing the next
    calls of an operation with the injected AWS errors first."""

    def __init__(self, device_capabilities: str) -> None:
        self.capabilities = device_capabilities
        self.faults: dict[str, list[tuple[str, int, str | None]]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.tasks: dict[str, dict[str, Any]] = {}  # clientToken -> task

    def inject(self, operation: str, *faults: tuple[str, int, str | None]) -> None:
        self.faults.setdefault(operation, []).extend(faults)

    def record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        """``before-parameter-build``: the call's API parameters, as the client will send."""
        self._params = params

    def __call__(self, model: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        params = self._params  # set by ``record`` for this very call, on this thread
        self.calls.append((model.name, dict(params)))
        pending = self.faults.get(model.name)
        if pending:
            code, status, retry_after = pending.pop(0)
            headers = {"retry-after": retry_after} if retry_after else {}
            return (AWSResponse("https://braket", status, headers, None),
                    {"Error": {"Code": code, "Message": "injected"},
                     "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers}})
        return AWSResponse("https://braket", 200, {}, None), self._answer(model.name, params)

    def _answer(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        if operation == "GetDevice":
            return {"deviceArn": SV1, "deviceName": "SV1", "providerName": "Amazon Braket",
                    "deviceType": "SIMULATOR", "deviceStatus": "ONLINE",
                    "deviceCapabilities": self.capabilities, "deviceQueueInfo": []}
        if operation == "CreateQuantumTask":
            token = params["clientToken"]
            if token not in self.tasks:  # Braket's idempotency: same token, same task
                arn = f"arn:aws:braket:us-east-1:123456789012:quantum-task/{len(self.tasks)}"
                self.tasks[token] = {"quantumTaskArn": arn, "status": "QUEUED"}
            return {"quantumTaskArn": self.tasks[token]["quantumTaskArn"]}
        if operation == "GetQuantumTask":
            task = next(t for t in self.tasks.values()
                        if t["quantumTaskArn"] == params["quantumTaskArn"])
            return {**task, "deviceArn": SV1, "shots": 10, "outputS3Bucket": "b",
                    "outputS3Directory": "p", "createdAt": "2026-01-01T00:00:00Z",
                    "deviceParameters": "{}"}
        raise AssertionError(f"unexpected call {operation}")


@pytest.fixture
def fake_aws(no_aws: pytest.MonkeyPatch, tmp_path: Any) -> FakeBraketService:
    """A named profile in a temporary HOME's AWS files, and the fake service behind every
    Braket client the adapter opens."""
    from braket.devices import LocalSimulator

    import hal_workflow.backends.braket as braket_module

    # The AWS files where boto3 looks by default: ~/.aws of a temporary HOME.
    no_aws.delenv("AWS_CONFIG_FILE")
    no_aws.delenv("AWS_SHARED_CREDENTIALS_FILE")
    no_aws.setenv("HOME", str(tmp_path))
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[profile halprof]\nregion = eu-west-2\n")
    (tmp_path / ".aws" / "credentials").write_text(
        f"[halprof]\naws_access_key_id = AKIAHALPROFILE\naws_secret_access_key = {FAKE_SECRET}\n")
    service = FakeBraketService(LocalSimulator("braket_sv").properties.json())
    real = braket_module._boto_session
    sessions: list[Any] = []

    def session(profile: str | None, region: str | None) -> Any:
        made = real(profile, region)
        made.events.register("before-parameter-build.braket", service.record)
        made.events.register("before-call.braket", service)
        sessions.append(made)
        return made

    no_aws.setattr(braket_module, "_boto_session", session)
    service.sessions = sessions  # type: ignore[attr-defined]
    return service


AWS_SPEC = {"name": "braket", "device": SV1, "profile": "halprof",
            "s3_destination": "s3://hal-bucket/results", "retry": {"max-attempts": 4}}


def test_profile_and_region_by_name(fake_aws: FakeBraketService) -> None:
    backend = get_backend(AWS_SPEC)
    (session,) = fake_aws.sessions  # type: ignore[attr-defined]
    assert session.profile_name == "halprof" and session.region_name == "eu-west-2"
    assert session.get_credentials().access_key == "AKIAHALPROFILE"
    assert backend.name == "braket:SV1" and FAKE_SECRET not in repr(backend)
    other = get_backend({**AWS_SPEC, "region": "us-west-1"})
    assert other is not backend and fake_aws.sessions[1].region_name == "us-west-1"  # type: ignore[attr-defined]
    with pytest.raises(CredentialsError, match="no AWS profile 'nope'"):
        get_backend({**AWS_SPEC, "profile": "nope"})


def test_retried_create_keeps_its_client_token(fake_aws: FakeBraketService,
                                               caplog: pytest.LogCaptureFixture) -> None:
    fake_aws.inject("GetDevice", ("InternalServiceException", 500, None))
    fake_aws.inject("CreateQuantumTask", ("ThrottlingException", 429, "0"),
                    ("ServiceUnavailableException", 503, None),
                    ("InternalServiceException", 500, None))
    fake_aws.inject("GetQuantumTask", ("ThrottlingException", 400, None))
    backend = get_backend(AWS_SPEC)
    with caplog.at_level(logging.INFO, logger="hal_workflow.backends.retry"):
        job_id = asyncio.run(backend.submit(circuits.bell()[0], 10))
        status = asyncio.run(backend.status(job_id))
    creates = [params for name, params in fake_aws.calls if name == "CreateQuantumTask"]
    assert len(creates) == 4 and len({p["clientToken"] for p in creates}) == 1
    assert len(fake_aws.tasks) == 1 and job_id.endswith("quantum-task/0")
    assert creates[0]["outputS3Bucket"] == "hal-bucket"
    assert status.state is JobState.QUEUED and status.vendor_state == "QUEUED"
    assert "braket: submitting a task failed (RateLimitedError" in caplog.text
    # A second submit is a new task with a new token.
    asyncio.run(backend.submit(circuits.bell()[0], 10))
    assert len(fake_aws.tasks) == 2


def test_aws_errors_that_are_not_transient_are_not_retried(
        fake_aws: FakeBraketService) -> None:
    backend = get_backend(AWS_SPEC)
    fake_aws.inject("CreateQuantumTask", ("ValidationException", 400, None))
    with pytest.raises(SubmissionError, match="ValidationException") as info:
        asyncio.run(backend.submit(circuits.bell()[0], 10))
    assert not info.value.retryable
    fake_aws.inject("CreateQuantumTask", *[("ThrottlingException", 429, "0")] * 4)
    with pytest.raises(RateLimitedError) as limited:
        asyncio.run(backend.submit(circuits.bell()[0], 10))
    assert limited.value.retry_after == 0.0
    creates = [name for name, _ in fake_aws.calls if name == "CreateQuantumTask"]
    assert len(creates) == 5 and not fake_aws.tasks  # 1 refused + 4 throttled, no task
