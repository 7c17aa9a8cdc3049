"""The IQM adapter against a local IQM server (``iqm_server.py``), through a real IQMClient.

IQM's cloud cannot be reached from here, so the server implements iqm-client 36's REST API and
executes the submitted native circuits on a statevector. The conformance kit runs on it; the
tests below check the native conversion against Qiskit's ``Statevector``, the error mapping,
queueing and cancellation, reattaching, calibration data and that credentials never leak.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("iqm.iqm_client")

from iqm.station_control.interface.models.jobs_new import JobStatus as IQMJobStatus
from iqm_server import Fault, IQMMockServer, final_state
from qiskit.quantum_info import Statevector

import hal_workflow
from hal_workflow import journal as journals
from hal_workflow.backends.iqm import NATIVE_BASIS, STATE_TABLE, IQMBackend
from hal_workflow.circuits import random_layered
from hal_workflow.compilation.qiskit_bridge import to_qiskit
from hal_workflow.contract import (
    AvailabilityStatus,
    BackendUnavailableError,
    ConfigurationError,
    CredentialsError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    JobState,
    RateLimitedError,
    ValidationCode,
    ValidationError,
)
from hal_workflow.testing import ConformanceSuite, circuits

SECRET = "iqm-test-token-8d41c2f7e9"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def spec(server: IQMMockServer, **options: Any) -> dict[str, Any]:
    return {"name": "iqm", "url": server.url, **options}


@contextlib.contextmanager
def held(server: IQMMockServer) -> Iterator[None]:
    """Keep new jobs waiting until the block ends."""
    server.waiting_polls = None
    try:
        yield
    finally:
        server.waiting_polls = 1


class TestIQMConformance(ConformanceSuite):
    """The kit against the local server: jobs live on the server, so they can be reattached."""

    jobs_outlive_process = True
    server: IQMMockServer

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _local_server(cls, iqm_server: IQMMockServer) -> Iterator[None]:
        cls.server = iqm_server
        cls.backend_spec = spec(iqm_server)
        iqm_server.seconds_per_instruction = 1e-3  # a device's pace: deep circuits run long
        yield
        iqm_server.seconds_per_instruction = 0.0

    @contextlib.asynccontextmanager
    async def queued_job(self, backend: Any) -> AsyncIterator[str | None]:
        with held(self.server):
            yield await backend.submit(self.bell_circuit, 10)


@pytest.fixture(scope="module")
def backend(iqm_server: IQMMockServer) -> IQMBackend:
    return IQMBackend(spec(iqm_server, seed=7))


# -- capabilities and calibration -----------------------------------------------------------
def test_capabilities_follow_the_architecture(backend: IQMBackend,
                                              iqm_server: IQMMockServer) -> None:
    caps = backend.capabilities()
    assert caps.num_qubits == len(iqm_server.qubits) and caps.simulator is False
    index = {q: i for i, q in enumerate(iqm_server.qubits)}
    expected = {(index[a], index[b]) for a, b in iqm_server.cz_loci}
    assert set(caps.coupling_map or ()) == expected | {(b, a) for a, b in expected}
    assert backend.native_operations == {"prx", "cz", "measure"}
    assert caps.native_gates == {"prx", "cz"} and caps.compiles
    assert set(circuits.STANDARD_GATES) <= caps.gate_set  # the adapter transpiles them
    assert caps.name == f"iqm:{iqm_server.alias}" and not caps.supports_reset


def test_calibration_snapshot_reports_the_quality_metrics(backend: IQMBackend,
                                                          iqm_server: IQMMockServer) -> None:
    snapshot = run(backend.extension("calibration").snapshot())
    metrics, settings = iqm_server.expected_metrics(), iqm_server.expected_settings()
    assert snapshot.calibration_id == iqm_server.calibration_set_id
    assert len(snapshot.qubits) == len(iqm_server.qubits)
    for qubit in snapshot.qubits:
        name = iqm_server.qubits[qubit.qubit]
        errors = [metrics[f"metrics.ssro.measure.constant.{name}.error_{x}"]
                  for x in ("0_to_1", "1_to_0")]
        assert qubit.t1_s == metrics[f"characterization.model.{name}.t1_time"]
        assert qubit.t2_s == metrics[f"characterization.model.{name}.t2_time"]
        assert qubit.readout_error == pytest.approx(sum(errors) / 2)
        assert qubit.frequency_hz == settings[f"controllers.{name}.drive.frequency"]
    cz = [g for g in snapshot.gates if g.gate == "cz"]
    assert len(cz) == len(iqm_server.cz_loci)
    for gate in cz:
        a, b = (iqm_server.qubits[q] for q in gate.qubits)
        assert gate.error == pytest.approx(1 - metrics[f"metrics.irb.cz.tgss.{a}__{b}.fidelity"])
        assert gate.duration_s == metrics[f"gates.cz.tgss.{a}__{b}.duration"]
    assert {g.qubits for g in snapshot.gates if g.gate == "prx"} == {
        (i,) for i in range(len(iqm_server.qubits))}


def test_state_table_covers_every_iqm_status() -> None:
    assert set(STATE_TABLE) == {s.value for s in IQMJobStatus}
    terminal = {s.value for s in IQMJobStatus.terminal_statuses()}
    assert {k for k, v in STATE_TABLE.items() if v.is_terminal} == terminal


# -- native conversion ------------------------------------------------------------------------
def clbit_distribution(native: Any, qubits: list[str]) -> dict[str, float]:
    """Exact distribution of the classical bits of a native circuit (terminal measurements)."""
    ops = [{"name": op.name, "locus": list(op.locus), "args": op.args}
           for op in native.instructions]
    probabilities = final_state(ops, qubits).probabilities()
    meta = native.metadata["hal_workflow"]
    measured = {op["args"]["key"]: qubits.index(op["locus"][0]) for op in ops
                if op["name"] == "measure"}
    result: dict[str, float] = {}
    for flat in np.flatnonzero(probabilities > 1e-14):
        bits = np.unravel_index(flat, (2,) * len(qubits))
        clbits = ["0"] * meta["num_clbits"]
        for key, clbit in meta["keys"]:
            clbits[clbit] = str(bits[measured[key]])
        outcome = "".join(reversed(clbits))
        result[outcome] = result.get(outcome, 0.0) + float(probabilities[flat])
    return result


def scrambled(num_qubits: int, layers: int, seed: int) -> str:
    """Random layers plus gates between distant qubits, so transpilation must route."""
    text = random_layered(num_qubits, layers, seed=seed, measure=False).qasm
    extra = [f"cx q[0], q[{num_qubits - 1}];", "ccx q[1], q[3], q[2];", "swap q[0], q[2];"]
    body = text.splitlines()[3:] + extra  # drop the header and the qubit declaration
    return circuits.program(num_qubits, num_qubits, body + circuits.measure_all(num_qubits))


def ideal_distribution(text: str) -> dict[str, float]:
    """Qiskit's probabilities of the classical bits (every qubit measured into its own bit)."""
    qc = to_qiskit(text).remove_final_measurements(inplace=False)
    return {k: float(v) for k, v in Statevector(qc).probabilities_dict().items() if v > 1e-14}


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_native_circuit_has_the_original_distribution(backend: IQMBackend, seed: int,
                                                      iqm_server: IQMMockServer) -> None:
    text = scrambled(5, 3, seed)
    native = backend.native_circuit(text)
    assert {op.name for op in native.instructions} <= {"prx", "cz", "measure", "barrier"}
    coupled = {tuple(pair) for pair in iqm_server.cz_loci}
    for op in native.instructions:
        if op.name == "cz":
            assert tuple(op.locus) in coupled or tuple(op.locus[::-1]) in coupled, op.locus
    ideal, native_distribution = ideal_distribution(text), clbit_distribution(
        native, iqm_server.qubits)
    assert set(ideal) == set(native_distribution)
    for outcome, p in ideal.items():
        assert native_distribution[outcome] == pytest.approx(p, abs=1e-9), outcome


def test_counts_from_the_server_match_the_ideal_distribution(backend: IQMBackend) -> None:
    text = scrambled(4, 2, seed=11)
    shots = 4000
    result = run(backend.run(text, shots, timeout=30))
    assert result.shots == shots and sum(result.counts.values()) == shots
    for outcome, p in ideal_distribution(text).items():
        n = result.counts.get(outcome, 0)
        assert abs(n - shots * p) <= 5 * math.sqrt(shots * p * (1 - p)) + 1, (outcome, n, p)
    assert set(result.counts) <= set(ideal_distribution(text))
    executed = to_qiskit(result.executed_program)
    assert set(executed.count_ops()) <= {*NATIVE_BASIS, "measure", "barrier"}


def test_parameters_are_bound_before_conversion(backend: IQMBackend) -> None:
    native = backend.native_circuit(circuits.rotation(), {"theta": math.pi})
    angles = [op.args["angle"] for op in native.instructions if op.name == "prx"]
    assert angles and all(isinstance(a, float) for a in angles)
    result = run(backend.run(circuits.rotation(), 200, {"theta": math.pi}, timeout=30))
    assert result.counts == {"1": 200}


def test_mid_circuit_measurement_collapses_the_state(backend: IQMBackend) -> None:
    # c[0] is random; q[1] copies it after the measurement, so c[1] == c[0] in every shot.
    text = circuits.program(2, 2, ["h q[0];", "c[0] = measure q[0];", "cx q[0], q[1];",
                                   "c[1] = measure q[1];"])
    result = run(backend.run(text, 400, timeout=30))
    assert set(result.counts) == {"00", "11"}
    assert min(result.counts.values()) > 100


def test_classical_control_is_reported_unsupported(backend: IQMBackend) -> None:
    text = circuits.program(2, 2, ["h q[0];", "c[0] = measure q[0];",
                                   "if (c[0]) { x q[1]; }", "c[1] = measure q[1];"])
    report = run(backend.validate(text, 10))
    assert [i.code for i in report.issues] == [ValidationCode.UNSUPPORTED_FEATURE]
    assert "line 7" in report.issues[0].message
    with pytest.raises(ValidationError):
        run(backend.submit(text, 10))


# -- queueing, cancelling, reattaching -----------------------------------------------------------
def test_queued_jobs_report_their_queue_position(backend: IQMBackend,
                                                 iqm_server: IQMMockServer) -> None:
    async def scenario() -> list[Any]:
        with held(iqm_server):
            first = await backend.submit(circuits.bell()[0], 10)
            second = await backend.submit(circuits.bell()[0], 10)
            statuses = [await backend.status(first), await backend.status(second)]
            await backend.cancel(first)
            statuses.append(await backend.status(first))
            statuses.append(await backend.status(second))
            await backend.cancel(second)
        with pytest.raises(JobCancelledError):
            await backend.result(first)
        return statuses

    waiting_1, waiting_2, cancelled, moved_up = run(scenario())
    assert (waiting_1.state, waiting_1.vendor_state) == (JobState.QUEUED, "waiting")
    # Earlier tests may have left jobs in the queue: positions are relative to them.
    assert waiting_1.queue_position is not None
    assert waiting_2.queue_position == waiting_1.queue_position + 1
    assert (cancelled.state, cancelled.vendor_state) == (JobState.CANCELLED, "cancelled")
    assert cancelled.queue_position is None
    assert moved_up.queue_position == waiting_1.queue_position


def test_running_job_is_reported_running(iqm_server: IQMMockServer) -> None:
    backend = IQMBackend(spec(iqm_server))
    iqm_server.processing_polls = None
    try:
        job_id = run(backend.submit(circuits.bell()[0], 10))
        states = [run(backend.status(job_id)).state for _ in range(3)]
        run(backend.cancel(job_id))
    finally:
        iqm_server.processing_polls = 1
    assert states == [JobState.QUEUED, JobState.RUNNING, JobState.RUNNING]
    assert run(backend.status(job_id)).state is JobState.CANCELLED


def test_another_backend_instance_reads_the_job(iqm_server: IQMMockServer) -> None:
    first = IQMBackend(spec(iqm_server))
    job_id = run(first.submit(circuits.bit_order()[0], 300))
    second = IQMBackend(spec(iqm_server))
    result = run(second.result(job_id))
    assert result.counts == {"0100": 300}  # the bit layout travelled with the job
    assert result.executed_program and "measure" in result.executed_program


def test_failed_job_carries_the_server_message(backend: IQMBackend,
                                               iqm_server: IQMMockServer) -> None:
    iqm_server.failure = "QB3 drifted out of calibration"
    try:
        job_id = run(backend.submit(circuits.bell()[0], 10))
        with pytest.raises(JobFailedError, match="QB3 drifted out of calibration"):
            run(backend.result(job_id))
    finally:
        iqm_server.failure = None
    status = run(backend.status(job_id))
    assert status.state is JobState.FAILED and "QB3 drifted" in (status.reason or "")


# -- error mapping -------------------------------------------------------------------------------
@pytest.mark.parametrize("call", ["status", "result", "cancel"])
def test_unknown_uuid_is_job_not_found(backend: IQMBackend, call: str) -> None:
    with pytest.raises(JobNotFoundError):
        run(getattr(backend, call)("2b1c7f3e-0000-4000-8000-000000000000"))


def test_connection_refused_is_backend_unavailable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(BackendUnavailableError, match="unreachable"):
        IQMBackend({"name": "iqm", "url": f"http://127.0.0.1:{port}", "timeout": 5})


def test_server_going_away_is_backend_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    with IQMMockServer() as server:
        backend = IQMBackend(spec(server, timeout=5))
        job_id = run(backend.submit(circuits.bell()[0], 10))
    with pytest.raises(BackendUnavailableError):
        run(backend.status(job_id))
    availability = run(backend.availability())
    assert availability.status is AvailabilityStatus.OFFLINE and availability.message


def test_unavailable_locus_is_a_validation_error() -> None:
    with IQMMockServer() as server:
        backend = IQMBackend(spec(server))
        server.cz_loci = [pair for pair in server.cz_loci if pair != ["QB1", "QB2"]]  # recalibrated
        with pytest.raises(ValidationError, match="not allowed as locus") as info:
            run(backend.submit(circuits.bell()[0], 10))
    assert info.value.issues[0].code is ValidationCode.COUPLING_VIOLATION


def test_missing_url_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IQM_SERVER_URL", raising=False)
    with pytest.raises(ConfigurationError, match="IQM_SERVER_URL"):
        IQMBackend({"name": "iqm"})
    with pytest.raises(ConfigurationError, match="https"):
        IQMBackend({"name": "iqm", "url": "http://iqm.example.com"})


# -- credentials ---------------------------------------------------------------------------------
def test_token_is_sent_and_never_shown(monkeypatch: pytest.MonkeyPatch,
                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("IQM_TOKEN", SECRET)
    caplog.set_level(logging.DEBUG)
    with IQMMockServer(token=SECRET) as server:
        backend = IQMBackend(spec(server))
        result = run(backend.run(circuits.bell()[0], 50, timeout=30))
        run(backend.availability())
        assert all(had_auth for _, _, had_auth in server.request_log)
    assert sum(result.counts.values()) == 50
    shown = repr(backend) + str(backend.spec) + caplog.text + repr(result)
    assert SECRET not in shown
    assert any("iqm" in record.name for record in caplog.records)  # debug logs were captured


def test_token_in_the_spec_is_masked(iqm_server: IQMMockServer) -> None:
    backend = IQMBackend(spec(iqm_server, token=SECRET))
    assert SECRET not in repr(backend) and "***" in repr(backend)


def test_rejected_token_is_a_credentials_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IQM_TOKEN", "wrong-" + SECRET)
    with IQMMockServer(token=SECRET) as server, pytest.raises(CredentialsError) as info:
        IQMBackend(spec(server))
    assert SECRET not in str(info.value) and "IQM_TOKEN" in str(info.value)


def test_batch_is_one_iqm_job_and_reattaches(backend: IQMBackend,
                                             iqm_server: IQMMockServer) -> None:
    before = len(iqm_server.jobs)
    ids = run(backend.extension("batch").submit_batch(
        [circuits.bell()[0], circuits.bit_order()[0]], 100))
    assert len(iqm_server.jobs) == before + 1  # both circuits went in one IQM job
    assert len({job_id.split("#")[0] for job_id in ids}) == 1
    other = IQMBackend(spec(iqm_server))
    bell, order = (run(other.result(job_id)) for job_id in ids)
    assert set(bell.counts) <= {"00", "11"} and sum(bell.counts.values()) == 100
    assert order.counts == {"0100": 100}
    with pytest.raises(JobNotFoundError):
        run(other.result(ids[0].split("#")[0] + "#7"))


def test_server_can_progress_jobs_by_time() -> None:
    with IQMMockServer(waiting_polls=None, processing_polls=None, waiting_s=0.2,
                       processing_s=0.2) as server:
        backend = IQMBackend(spec(server))
        result = run(backend.run(circuits.bell()[0], 20, timeout=30))
    assert sum(result.counts.values()) == 20
    assert result.timings["total_s"] >= 0.4  # 0.2 s waiting, then 0.2 s processing


# -- retries ---------------------------------------------------------------------------------------
SUBMIT = r"jobs/mock/circuit"
STATUS = r"jobs/[0-9a-f-]{36}"


def test_submit_and_polls_survive_429_503_and_timeouts(caplog: pytest.LogCaptureFixture) -> None:
    """The server answers 429 (Retry-After), 503 and stalls past the client's timeout, in
    sequence, on submit and on status polls; the job still completes, and exactly one exists."""
    with IQMMockServer() as server:
        backend = IQMBackend(spec(server, timeout=0.5, retry={"max-attempts": 6}))
        server.inject("POST", SUBMIT, Fault(429, retry_after="1"), Fault(503), 503)
        server.inject("GET", STATUS, Fault(delay=1.0), Fault(503), Fault(429, retry_after="0"),
                      Fault(delay=1.0, handle=True))
        started = asyncio.get_event_loop_policy().new_event_loop().time()
        with caplog.at_level(logging.INFO, logger="hal_workflow.backends.retry"):
            result = run(backend.run(circuits.bell()[0], 40, timeout=60))
        waited = asyncio.get_event_loop_policy().new_event_loop().time() - started
        assert len(server.jobs) == 1  # retried submits made no second job
        assert server.hits[("POST", "jobs/mock/circuit")] == 4  # 429, 503, 503, then the job
        assert not server.faults  # every injected fault was met, and survived
    assert set(result.counts) <= {"00", "11"} and sum(result.counts.values()) == 40
    assert waited >= 1.0  # the Retry-After of 1 s was honoured
    assert "iqm: submit failed (RateLimitedError" in caplog.text
    assert "iqm: status failed (BackendUnavailableError" in caplog.text


def test_rate_limit_gives_up_with_retry_after() -> None:
    with IQMMockServer() as server:
        backend = IQMBackend(spec(server, retry={"max-attempts": 2}))
        server.inject("POST", SUBMIT, *[Fault(429, retry_after="0")] * 2)
        with pytest.raises(RateLimitedError) as info:
            run(backend.submit(circuits.bell()[0], 10))
        assert info.value.retryable and info.value.retry_after == 0.0
        assert server.hits[("POST", "jobs/mock/circuit")] == 2 and not server.jobs


def test_ambiguous_submit_timeout_is_not_repeated() -> None:
    """The server makes the job but answers too late: a retry could make a second job, and
    iqm-client cannot look a job up by tag, so the submit is not repeated."""
    with IQMMockServer() as server:
        backend = IQMBackend(spec(server, timeout=0.5))
        server.inject("POST", SUBMIT, Fault(delay=1.5, handle=True))
        with pytest.raises(BackendUnavailableError, match="not retried") as info:
            run(backend.submit(circuits.bell()[0], 10))
        assert info.value.retryable is False
        assert server.hits[("POST", "jobs/mock/circuit")] == 1 and len(server.jobs) == 1


def test_retry_false_makes_one_attempt() -> None:
    with IQMMockServer() as server:
        backend = IQMBackend(spec(server, retry=False))
        server.inject("GET", STATUS, 503)
        job_id = run(backend.submit(circuits.bell()[0], 10))
        with pytest.raises(BackendUnavailableError) as info:
            run(backend.status(job_id))
        assert info.value.retryable  # the caller may still try again later
        assert run(backend.status(job_id)).job_id == job_id


# -- credentials by name -------------------------------------------------------------------------
def access_token(subject: str) -> str:
    """A JWT-shaped access token valid for an hour (iqm-client reads its ``exp``)."""
    import base64
    import json
    import time

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return ".".join([part({"alg": "none"}), part({"sub": subject, "exp": time.time() + 3600}),
                     "sig"])


def test_tokens_file_by_name(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The spec names a tokens file; the backend (on whatever node builds it) reads it."""
    import json

    token = access_token(SECRET)
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"access_token": token, "refresh_token": ""}))
    monkeypatch.setenv("HOME", str(tmp_path))
    with IQMMockServer(token=token) as server:
        backend = IQMBackend(spec(server, tokens_file="~/tokens.json"))
        assert sum(run(backend.run(circuits.bell()[0], 20, timeout=30)).counts.values()) == 20
        assert all(had_auth for _, _, had_auth in server.request_log)
        assert "~/tokens.json" in repr(backend) and token not in repr(backend)
        with pytest.raises(CredentialsError, match=r"tokens_file .*missing\.json does not exist"):
            IQMBackend(spec(server, tokens_file=str(tmp_path / "missing.json")))
        with pytest.raises(ConfigurationError, match="not both"):
            IQMBackend(spec(server, tokens_file=str(tokens), token=token))


def test_token_by_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_IQM_TOKEN", SECRET)
    with IQMMockServer(token=SECRET) as server:
        backend = IQMBackend(spec(server, token={"env": "MY_IQM_TOKEN"}))
        assert sum(run(backend.run(circuits.bell()[0], 20, timeout=30)).counts.values()) == 20
        assert "MY_IQM_TOKEN" in repr(backend) and SECRET not in repr(backend)
        monkeypatch.delenv("MY_IQM_TOKEN")
        with pytest.raises(CredentialsError, match="MY_IQM_TOKEN is not set"):
            IQMBackend(spec(server, token={"env": "MY_IQM_TOKEN"}))


class _CountingJournal(journals.Journal):
    """A journal that also lists the state records it is given (what reaches the writer)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.state_writes: list[str] = []

    def _enqueue(self, item: tuple[Any, ...]) -> None:
        if item[0] == "state":
            self.state_writes.append(item[2])
        super()._enqueue(item)


def test_remote_state_changes_reach_the_journal_once_each(iqm_server: IQMMockServer,
                                                          tmp_path: Path) -> None:
    """Every status() call observes the job: QUEUED -> RUNNING -> COMPLETED are journaled as
    they are seen, once each, however often the job is polled (and however it is polled)."""
    journal = _CountingJournal(tmp_path / "journal.sqlite")
    previous = journals.set_default(journal)
    iqm_server.waiting_polls = iqm_server.processing_polls = 3
    try:
        job = hal_workflow.submit(circuits.bell()[0], backend=spec(iqm_server), shots=50)
        assert journal.get(job.job_id).state is JobState.QUEUED  # type: ignore[union-attr]
        seen: list[JobState] = []
        while not seen or not seen[-1].is_terminal:
            seen.append(job.status().state)
            assert len(seen) < 50, "the job never ended"
            if seen[-1] is JobState.RUNNING:  # the journal has it now, not only at the end
                assert journal.get(job.job_id).state is JobState.RUNNING  # type: ignore[union-attr]
        for _ in range(3):
            job.status()  # polls of an ended job change nothing
        result = job.result(timeout=30)
        record = journal.get(job.job_id)
    finally:
        iqm_server.waiting_polls = iqm_server.processing_polls = 1
        journals.set_default(previous)
        journal.close()
    assert seen.count(JobState.QUEUED) >= 2 and seen.count(JobState.RUNNING) >= 2
    assert record is not None and record.has_result and sum(result.counts.values()) == 50
    assert [state for state, _, _ in record.history] == ["QUEUED", "RUNNING", "COMPLETED"]
    assert journal.state_writes == ["RUNNING", "COMPLETED"]  # one write per change
