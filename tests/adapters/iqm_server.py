"""A local IQM server for tests: the REST API of iqm-client 36 over a small statevector simulator.

IQM's cloud cannot be reached from CI, and iqm-client ships no fake server, so this module
implements the endpoints that ``IQMClient`` uses (``/api/v1/...``: quantum-computers, static and
dynamic quantum architecture, calibration and quality-metric sets, circuit job submission,
status, measurement artifacts, payload, cancel, delete, health, about) with the JSON bodies that
iqm-client parses. Submitted circuits are *executed*: their ``prx``/``cz``/``measure``
instructions run on a numpy statevector, so counts are real samples of the circuit.

Jobs move ``waiting -> processing -> completed`` as they are polled (``GET jobs/{id}``):
``waiting_polls`` and ``processing_polls`` say how many polls see each state, and ``None``
holds a job in that state until it is cancelled, which makes QUEUED/RUNNING and
cancel-while-queued testable without sleeping. With ``waiting_s``/``processing_s`` a state
also ends (at the next poll) once it has lasted that many seconds. ``failure`` makes every
later job fail with that message. With ``token`` set, every request must carry
``Authorization: Bearer <token>`` (401 otherwise). Errors use the server's JSON shape
``{"message", "error_code", "source"}``.

Faults for retry tests: ``inject("POST", r"jobs/.*/circuit", Fault(429, retry_after="1"),
Fault(503), Fault(delay=2.0, handle=True))`` makes the next requests matching that route
answer those faults in turn (a status with an optional ``Retry-After``; a stall of ``delay``
seconds, after handling the request when ``handle`` is true, so that a job is created but its
answer comes too late). ``hits`` counts every request by (method, route).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from hal_workflow.compilation import workers

TERMINAL = ("completed", "failed", "cancelled")
PRX_IMPL, CZ_IMPL, MEASURE_IMPL = "drag_gaussian", "tgss", "constant"


def grid_connectivity(rows: int, cols: int) -> list[tuple[int, int]]:
    """Nearest-neighbour pairs of a ``rows`` x ``cols`` grid, qubits numbered row by row."""
    pairs = []
    for r, c in itertools.product(range(rows), range(cols)):
        q = r * cols + c
        if c + 1 < cols:
            pairs.append((q, q + 1))
        if r + 1 < rows:
            pairs.append((q, q + cols))
    return pairs


# --- the simulator ------------------------------------------------------------------------
def prx_matrix(angle: float, phase: float) -> np.ndarray:
    """``exp(-i angle/2 (cos(phase) X + sin(phase) Y))``, IQM's phased x rotation."""
    c, s = np.cos(angle / 2), np.sin(angle / 2)
    return np.array([[c, -1j * np.exp(-1j * phase) * s], [-1j * np.exp(1j * phase) * s, c]])


class Statevector:
    """``n`` qubits as a tensor with one axis per qubit (axis ``k`` is qubit ``k``)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.psi = np.zeros((2,) * n, dtype=complex)
        self.psi[(0,) * n] = 1.0

    def apply(self, op: dict[str, Any], index: dict[str, int]) -> None:
        """Apply one unitary instruction (``prx`` or ``cz``); barriers and delays do nothing."""
        qubits = [index[q] for q in op["locus"]]
        if op["name"] == "prx":
            u = prx_matrix(op["args"]["angle"], op["args"]["phase"])
            self.psi = np.moveaxis(np.tensordot(u, self.psi, axes=([1], [qubits[0]])), 0, qubits[0])
        elif op["name"] == "cz":
            where: list[Any] = [slice(None)] * self.n
            where[qubits[0]] = where[qubits[1]] = 1
            self.psi[tuple(where)] *= -1

    def probabilities(self) -> np.ndarray:
        """Outcome probabilities over the flat basis (qubit 0 is the most significant index)."""
        p = np.abs(self.psi.reshape(-1)) ** 2
        return p / p.sum()

    def measure(self, k: int, rng: np.random.Generator) -> int:
        """Measure qubit ``k``, collapse, and return the outcome."""
        one = np.take(self.psi, 1, axis=k)
        p1 = float(np.sum(np.abs(one) ** 2))
        outcome = int(rng.random() < p1)
        keep = np.zeros(2)
        keep[outcome] = 1.0 / np.sqrt(p1 if outcome else 1.0 - p1)
        shape = [1] * self.n
        shape[k] = 2
        self.psi = self.psi * keep.reshape(shape)
        return outcome


def final_state(instructions: Sequence[dict[str, Any]], qubits: Sequence[str]) -> Statevector:
    """The state after every unitary instruction (measurements skipped)."""
    index = {q: i for i, q in enumerate(qubits)}
    state = Statevector(len(qubits))
    for op in instructions:
        state.apply(op, index)
    return state


def _measurements_are_terminal(instructions: Sequence[dict[str, Any]]) -> bool:
    measured: set[str] = set()
    for op in instructions:
        if op["name"] == "measure":
            measured.update(op["locus"])
        elif op["name"] not in ("barrier", "delay") and measured & set(op["locus"]):
            return False
    return True


def run_circuit(
    instructions: Sequence[dict[str, Any]],
    qubits: Sequence[str],
    shots: int,
    rng: np.random.Generator,
) -> dict[str, list[list[int]]]:
    """Execute a native circuit: ``{measurement key: [[bit per locus qubit] per shot]}``.

    With only terminal measurements all shots are sampled from one final state; otherwise each
    shot is simulated on its own, so measurements collapse the state as on hardware.
    """
    index = {q: i for i, q in enumerate(qubits)}
    measures = [op for op in instructions if op["name"] == "measure"]
    results: dict[str, list[list[int]]] = {op["args"]["key"]: [] for op in measures}
    if _measurements_are_terminal(instructions):
        flat = rng.choice(2 ** len(qubits), size=shots, p=final_state(instructions, qubits)
                          .probabilities())
        bits = np.array(np.unravel_index(flat, (2,) * len(qubits)))  # bits[qubit, shot]
        for op in measures:
            rows = bits[[index[q] for q in op["locus"]]].T
            results[op["args"]["key"]] = rows.astype(int).tolist()
        return results
    for _ in range(shots):
        state = Statevector(len(qubits))
        for op in instructions:
            if op["name"] == "measure":
                outcome = [state.measure(index[q], rng) for q in op["locus"]]
                results[op["args"]["key"]].append(outcome)
            else:
                state.apply(op, index)
    return results


def _run_circuits(circuits: Sequence[Sequence[dict[str, Any]]], qubits: Sequence[str], shots: int,
                  rng: np.random.Generator) -> tuple[list[dict[str, list[list[int]]]],
                                                     np.random.Generator]:
    """:func:`run_circuit` for each circuit, and the generator after them."""
    return [run_circuit(c, qubits, shots, rng) for c in circuits], rng


# --- the server ---------------------------------------------------------------------------
class HTTPError(Exception):
    def __init__(self, status: int, message: str, error_code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.error_code = status, message, error_code


def _unit(dut_field: str) -> str:
    if dut_field.endswith(("time", "duration")):
        return "s"
    return "Hz" if dut_field.endswith("frequency") else ""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass
class Fault:
    """One injected answer: ``status`` (with ``retry_after``) and/or a stall of ``delay`` s."""

    status: int | None = None
    retry_after: str | None = None
    delay: float = 0.0
    handle: bool = False  # run the request (e.g. create the job) before the fault


@dataclass
class MockJob:
    id: str
    request: dict[str, Any]
    status: str = "waiting"
    polls_in_status: int = 0
    entered_at: float = field(default_factory=time.monotonic)
    timeline: list[dict[str, str]] = field(default_factory=list)
    measurements: list[dict[str, list[list[int]]]] | None = None
    errors: list[dict[str, str]] = field(default_factory=list)


class IQMMockServer:
    """The server: ``with IQMMockServer() as server: IQMClient.from_url(server.url)``.

    Args:
        num_qubits: qubits ``QB1..QBn``; the default 6 form a 2 x 3 grid.
        connectivity: pairs of qubit indices coupled by ``cz`` (default: the grid).
        token: require this bearer token on every request.
        waiting_polls, processing_polls: status polls that see each state (None: forever).
        waiting_s, processing_s: seconds after which a state ends at the next poll anyway.
        seconds_per_instruction: a job stays processing at least this long per instruction,
            as on a device (0: jobs take no time), so a deep circuit is a long job.
        alias: the quantum computer's alias.
        seed: seed of the sampling random generator.
    """

    def __init__(
        self,
        num_qubits: int = 6,
        connectivity: Sequence[tuple[int, int]] | None = None,
        *,
        token: str | None = None,
        waiting_polls: int | None = 1,
        processing_polls: int | None = 1,
        waiting_s: float | None = None,
        processing_s: float | None = None,
        seconds_per_instruction: float = 0.0,
        alias: str = "mock",
        seed: int | None = 1234,
    ) -> None:
        self.qubits = [f"QB{i + 1}" for i in range(num_qubits)]
        if connectivity is None:  # a 2 x 3 grid for 6 qubits, else a line
            grid = num_qubits == 6
            connectivity = grid_connectivity(2, 3) if grid else [
                (i, i + 1) for i in range(num_qubits - 1)]
        pairs = connectivity
        self.cz_loci = [[self.qubits[a], self.qubits[b]] for a, b in pairs]
        self.token = token
        self.waiting_polls = waiting_polls
        self.processing_polls = processing_polls
        self.waiting_s = waiting_s
        self.processing_s = processing_s
        self.seconds_per_instruction = seconds_per_instruction
        self.failure: str | None = None
        self.alias = alias
        self.calibration_set_id = str(uuid.uuid4())
        self.jobs: dict[str, MockJob] = {}
        self.request_log: list[tuple[str, str, bool]] = []  # (method, path, had Authorization)
        self.faults: list[tuple[str, str, Fault]] = []  # (method, route pattern, fault)
        self.hits: Counter[tuple[str, str]] = Counter()
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._http: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._http is not None, "server not started"
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> IQMMockServer:
        app = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                app._serve(self, "GET")

            def do_POST(self) -> None:
                app._serve(self, "POST")

            def do_DELETE(self) -> None:
                app._serve(self, "DELETE")

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True,
                                        name="iqm-mock-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)
            self._http = None

    def __enter__(self) -> IQMMockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request dispatch -----------------------------------------------------------------
    def _routes(self) -> list[tuple[str, str, Callable[..., Any]]]:
        qc, cal, job = re.escape(self.alias), r"(default|[0-9a-f-]{36})", r"([^/]+)"
        return [
            ("GET", r"quantum-computers", self._quantum_computers),
            ("GET", rf"quantum-computers/{qc}/artifacts/static-quantum-architectures", self._sqa),
            ("GET", rf"quantum-computers/{qc}/health", lambda: {"status": "ok"}),
            ("GET", rf"quantum-computers/{qc}/artifacts/about", self._about),
            ("GET", r"about", self._about),
            ("GET", rf"calibration-sets/{qc}/{cal}/dynamic-quantum-architecture", self._dqa),
            ("GET", rf"calibration-sets/{qc}/{cal}/metrics", self._metrics),
            ("GET", rf"calibration-sets/{qc}/{cal}", self._calibration_set),
            ("POST", rf"jobs/{qc}/circuit", self._submit),
            ("GET", rf"jobs/{job}", self._status),
            ("GET", rf"jobs/{job}/artifacts/measurement_counts", self._counts),
            ("GET", rf"jobs/{job}/artifacts/measurements", self._measurements),
            ("GET", rf"jobs/{job}/payload", lambda j: self._job(j).request),
            ("POST", rf"jobs/{job}/cancel", self._cancel),
            ("DELETE", rf"jobs/{job}", self._delete),
        ]

    def inject(self, method: str, route: str, *faults: Fault | int) -> None:
        """Answer the next requests of ``method`` whose route (after ``/api/v1/``) matches
        the regular expression ``route`` with ``faults``, in order (an int is a status)."""
        with self._lock:
            self.faults.extend((method, route, f if isinstance(f, Fault) else Fault(f))
                               for f in faults)

    def _fault(self, method: str, route: str) -> Fault | None:
        with self._lock:
            for i, (verb, pattern, fault) in enumerate(self.faults):
                if verb == method and re.fullmatch(pattern, route):
                    del self.faults[i]
                    return fault
        return None

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = handler.path.split("?", 1)[0]
        auth = handler.headers.get("Authorization")
        self.request_log.append((method, path, auth is not None))
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers: dict[str, str] = {}
        try:
            if self.token is not None and auth != f"Bearer {self.token}":
                raise HTTPError(401, "missing or invalid access token", "unauthorized")
            route = path.removeprefix("/api/v1/")
            self.hits[(method, route)] += 1
            fault = self._fault(method, route)
            if fault is not None and not fault.handle:
                time.sleep(fault.delay)
                if fault.status is not None:
                    if fault.retry_after is not None:
                        headers["Retry-After"] = fault.retry_after
                    raise HTTPError(fault.status, f"injected {fault.status}", "injected")
            for verb, pattern, action in self._routes():
                match = re.fullmatch(pattern, route)
                if verb == method and match:
                    args: list[Any] = list(match.groups())
                    if action == self._submit:
                        args = [json.loads(body or b"{}")]
                    with self._lock:
                        payload = action(*args)
                    break
            else:
                raise HTTPError(404, f"no route for {method} {path}", "not_found")
            status, data = (204, b"") if payload is None else (200, json.dumps(payload).encode())
            if fault is not None and fault.handle:  # done, but the answer comes late or wrong
                time.sleep(fault.delay)
                if fault.status is not None:
                    raise HTTPError(fault.status, f"injected {fault.status}", "injected")
        except HTTPError as exc:
            status = exc.status
            data = json.dumps({"message": exc.message, "error_code": exc.error_code,
                               "source": "iqm-server"}).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            pass

    # -- architecture and calibration -------------------------------------------------------
    def _quantum_computers(self) -> dict[str, Any]:
        return {"quantum_computers": [{"id": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.alias)),
                                       "alias": self.alias, "display_name": f"IQM {self.alias}",
                                       "proxy_path": None}]}

    def _sqa(self) -> list[dict[str, Any]]:
        return [{"dut_label": "M000_mock", "qubits": self.qubits, "computational_resonators": [],
                 "connectivity": self.cz_loci}]

    def _check_calibration(self, cal: str) -> None:
        if cal not in ("default", self.calibration_set_id):
            raise HTTPError(404, f"calibration set {cal} not found", "not_found")

    def _dqa(self, cal: str) -> dict[str, Any]:
        self._check_calibration(cal)

        def gate(impl: str, loci: list[list[str]]) -> dict[str, Any]:
            return {"implementations": {impl: {"loci": loci}}, "default_implementation": impl,
                    "override_default_implementation": {}}

        single = [[q] for q in self.qubits]
        return {"calibration_set_id": self.calibration_set_id, "qubits": self.qubits,
                "computational_resonators": [],
                "gates": {"prx": gate(PRX_IMPL, single), "cz": gate(CZ_IMPL, self.cz_loci),
                          "measure": gate(MEASURE_IMPL, single)}}

    def expected_metrics(self) -> dict[str, float]:
        """The quality metrics this server reports: dut_field -> value (SI units)."""
        values: dict[str, float] = {}
        for i, q in enumerate(self.qubits):
            values[f"characterization.model.{q}.t1_time"] = 40e-6 + 1e-6 * i
            values[f"characterization.model.{q}.t2_time"] = 20e-6 + 1e-6 * i
            values[f"metrics.rb.prx.{PRX_IMPL}.{q}.fidelity"] = 0.999 - 1e-4 * i
            values[f"metrics.ssro.measure.{MEASURE_IMPL}.{q}.fidelity"] = 0.98 - 1e-3 * i
            values[f"metrics.ssro.measure.{MEASURE_IMPL}.{q}.error_0_to_1"] = 0.01 + 1e-3 * i
            values[f"metrics.ssro.measure.{MEASURE_IMPL}.{q}.error_1_to_0"] = 0.03 + 1e-3 * i
            values[f"gates.prx.{PRX_IMPL}.{q}.duration"] = 40e-9
        for j, (a, b) in enumerate(self.cz_loci):
            values[f"metrics.irb.cz.{CZ_IMPL}.{a}__{b}.fidelity"] = 0.995 - 1e-3 * j
            values[f"gates.cz.{CZ_IMPL}.{a}__{b}.duration"] = 60e-9
        return values

    def _observation_set(self, cal: str, kind: str, values: dict[str, float]) -> dict[str, Any]:
        self._check_calibration(cal)
        stamp = "2026-01-01T00:00:00+00:00"
        observations = [
            {"dut_field": name, "value": value, "unit": _unit(name), "uncertainty": None,
             "invalid": False, "observation_id": i + 1, "created_timestamp": stamp,
             "modified_timestamp": stamp, "dut_label": "M000_mock",
             "source": {"type": "specification_source"}, "tags": [], "observation_set_ids": []}
            for i, (name, value) in enumerate(values.items())
        ]
        return {"observation_set_type": kind, "describes_id": None, "invalid": False,
                "dut_label": "M000_mock", "observation_set_id": self.calibration_set_id,
                "created_timestamp": stamp, "end_timestamp": stamp, "observations": observations}

    def _metrics(self, cal: str) -> dict[str, Any]:
        return self._observation_set(cal, "quality-metric-set", self.expected_metrics())

    def expected_settings(self) -> dict[str, float]:
        """The calibration-set values this server reports (drive frequencies, Hz)."""
        return {f"controllers.{q}.drive.frequency": 4.5e9 + 1e7 * i
                for i, q in enumerate(self.qubits)}

    def _calibration_set(self, cal: str) -> dict[str, Any]:
        return self._observation_set(cal, "calibration-set", self.expected_settings())

    def _about(self) -> dict[str, Any]:
        return {"version": "mock-1", "software_versions": {"iqm-server": "mock-1"}}

    # -- jobs ----------------------------------------------------------------------------------
    def _validate(self, request: dict[str, Any]) -> None:
        if int(request.get("shots", 0)) < 1:
            raise HTTPError(400, "shots must be a positive integer", "invalid_shots")
        dqa = self._dqa("default")["gates"]
        for circuit in request.get("circuits", []):
            keys: set[str] = set()
            for op in circuit["instructions"]:
                name, locus = op["name"], list(op["locus"])
                if name in ("barrier", "delay"):
                    continue
                if name not in dqa:
                    raise HTTPError(400, f"operation {name!r} is not supported", "invalid_circuit")
                loci = next(iter(dqa[name]["implementations"].values()))["loci"]
                ok = locus in loci or (name == "cz" and locus[::-1] in loci) or (
                    name == "measure" and all([q] in loci for q in locus))
                if not ok:
                    raise HTTPError(400, f"{tuple(locus)} is not allowed as locus for {name!r}",
                                    "invalid_locus")
                if name == "measure":
                    if op["args"]["key"] in keys:
                        raise HTTPError(400, f"duplicate measurement key {op['args']['key']!r}",
                                        "invalid_circuit")
                    keys.add(op["args"]["key"])

    def _submit(self, request: dict[str, Any]) -> dict[str, Any]:
        self._validate(request)
        job = MockJob(id=str(uuid.uuid4()), request=request)
        job.timeline.append({"source": "iqm-server", "status": "created", "timestamp": _now()})
        self.jobs[job.id] = job
        return self._job_data(job)

    def _job(self, job_id: str) -> MockJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise HTTPError(404, f"job {job_id} not found", "not_found")
        return job

    def _move(self, job: MockJob, status: str) -> None:
        job.status, job.polls_in_status, job.entered_at = status, 0, time.monotonic()
        job.timeline.append({"source": "iqm-server", "status": status, "timestamp": _now()})

    def _advance(self, job: MockJob) -> None:
        """One status poll: stay, or move on once the current state was seen often enough."""
        while job.status in ("waiting", "processing"):
            waiting = job.status == "waiting"
            polls = self.waiting_polls if waiting else self.processing_polls
            seconds = self.waiting_s if waiting else self.processing_s
            elapsed = time.monotonic() - job.entered_at
            lasted = seconds is not None and elapsed >= seconds
            busy = not waiting and elapsed < self.seconds_per_instruction * sum(
                len(c["instructions"]) for c in job.request["circuits"])
            if busy or (not lasted and (polls is None or job.polls_in_status < polls)):
                job.polls_in_status += 1
                return
            if job.status == "waiting":
                self._move(job, "processing")
            else:
                self._finish(job)

    def _finish(self, job: MockJob) -> None:
        if self.failure is not None:
            job.errors.append({"message": self.failure, "error_code": "execution_failed",
                               "source": "iqm-server"})
            self._move(job, "failed")
            return
        shots = int(job.request["shots"])
        circuits = [c["instructions"] for c in job.request["circuits"]]
        # A real server does not share the client's GIL: large jobs are simulated in a worker
        # process (the generator travels there and back, so samples do not depend on where).
        job.measurements, self._rng = workers.call(
            _run_circuits, circuits, self.qubits, shots, self._rng,
            size=sum(len(c) for c in circuits) * shots // 100)
        self._move(job, "completed")

    def _job_data(self, job: MockJob) -> dict[str, Any]:
        waiting = [j.id for j in self.jobs.values() if j.status == "waiting"]
        return {
            "id": job.id, "type": "circuit", "status": job.status,
            "queue_position": waiting.index(job.id) if job.id in waiting else None,
            "messages": [], "errors": job.errors, "timeline": job.timeline,
            "artifacts": [{"type": "measurement_counts"}, {"type": "measurements"}]
            if job.status == "completed" else [],
            "compilation": {"calibration_set_id": self.calibration_set_id}, "execution": None,
        }

    def _status(self, job_id: str) -> dict[str, Any]:
        job = self._job(job_id)
        self._advance(job)
        return self._job_data(job)

    def _completed(self, job_id: str) -> MockJob:
        job = self._job(job_id)
        if job.status != "completed" or job.measurements is None:
            raise HTTPError(404, f"job {job_id} has no results (status {job.status})",
                            "not_found")
        return job

    def _measurements(self, job_id: str) -> list[dict[str, list[list[int]]]]:
        return self._completed(job_id).measurements or []

    def _counts(self, job_id: str) -> list[dict[str, Any]]:
        batches = []
        for circuit, result in zip(self._job(job_id).request["circuits"],
                                   self._measurements(job_id), strict=True):
            keys = [op["args"]["key"] for op in circuit["instructions"] if op["name"] == "measure"]
            shots = int(self._job(job_id).request["shots"])
            strings = ("".join(str(b) for k in keys for b in result[k][s]) for s in range(shots))
            batches.append({"measurement_keys": keys, "counts": dict(Counter(strings))})
        return batches

    def _cancel(self, job_id: str) -> None:
        job = self._job(job_id)
        if job.status not in TERMINAL:
            self._move(job, "cancelled")

    def _delete(self, job_id: str) -> None:
        self._job(job_id)
        del self.jobs[job_id]
