"""Small real backends that exercise the contract's machinery (fixtures, not mocks).

``ClassicalBackend`` runs the classical subset of OpenQASM 3 (``x``, ``cx``, ``ccx``,
``measure``) on bits, so its results are deterministic and can be computed by hand.
``BatchingBackend`` adds the ``batch`` extension. ``ScheduledBackend`` reports states from a
fixed schedule, one per ``status`` call, to test polling.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from hal_workflow.backends.local_jobs import LocalJob, LocalJobTable
from hal_workflow.contract import (
    Backend,
    BackendAvailability,
    Capabilities,
    CircuitError,
    ConfigurationError,
    ExecutionResult,
    JobId,
    JobNotFoundError,
    JobState,
    JobStatus,
    ValidationCode,
    ValidationIssue,
    ValidationResult,
)

_DECL = re.compile(r"^(qubit|bit)\[(\d+)\] (\w+);$")
_GATE = re.compile(r"^(x|cx|ccx) (q\[\d+\](?:, q\[\d+\])*);$")
_MEASURE = re.compile(r"^c\[(\d+)\] = measure q\[(\d+)\];$")
_IGNORED = re.compile(r'^(OPENQASM 3(\.0)?;|include "stdgates\.inc";|input float \w+;|)$')


def classical_program(num_bits: int, flips: Sequence[int]) -> str:
    """X on each qubit in ``flips`` then measure qubit i into c[i]: one outcome."""
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";', f"qubit[{num_bits}] q;",
             f"bit[{num_bits}] c;"]
    lines += [f"x q[{i}];" for i in flips]
    lines += [f"c[{i}] = measure q[{i}];" for i in range(num_bits)]
    return "\n".join(lines) + "\n"


def outcome(num_bits: int, flips: Sequence[int]) -> str:
    """The bitstring of :func:`classical_program` (classical bit 0 rightmost)."""
    return "".join("1" if i in flips else "0" for i in reversed(range(num_bits)))


class ClassicalBackend(Backend):
    """Deterministic bit simulator. Options: ``num_qubits``, ``delay`` (s per job), ``token``."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        unknown = set(spec) - {"name", "num_qubits", "delay", "token"}
        if unknown:
            raise ConfigurationError(f"classical: unknown options {sorted(unknown)}")
        self.num_qubits = int(spec.get("num_qubits", 4))
        self.delay = float(spec.get("delay", 0.0))
        self.discoveries = 0
        self.submitted: list[str] = []
        self.table = LocalJobTable("classical")
        super().__init__(spec)

    def _discover_capabilities(self) -> Capabilities:
        self.discoveries += 1
        return Capabilities(
            name=self._spec["name"], num_qubits=self.num_qubits,
            gate_set=frozenset({"x", "cx", "ccx"}), max_shots=1000,
            extensions=self.offered(),
        )

    def offered(self) -> frozenset[str]:
        return frozenset()

    async def availability(self) -> BackendAvailability:
        return BackendAvailability("ONLINE")

    def parse(self, circuit: Any) -> tuple[int, int, list[tuple[str, list[int]]]]:
        qubits = clbits = 0
        ops: list[tuple[str, list[int]]] = []
        text = getattr(circuit, "qasm", circuit)  # a Circuit or OpenQASM text (contract §6.1)
        for number, raw in enumerate(str(text).splitlines(), start=1):
            line = raw.strip()
            if decl := _DECL.match(line):
                if decl[1] == "qubit":
                    qubits = int(decl[2])
                else:
                    clbits = int(decl[2])
            elif gate := _GATE.match(line):
                ops.append((gate[1], [int(i) for i in re.findall(r"\d+", gate[2])]))
            elif measure := _MEASURE.match(line):
                ops.append(("measure", [int(measure[2]), int(measure[1])]))
            elif not _IGNORED.match(line):
                raise CircuitError(f"unsupported statement {line!r}", line=number, column=0)
        return qubits, clbits, ops

    async def validate(self, circuit: Any, shots: int | None = None) -> ValidationResult:
        qubits, _, _ = self.parse(circuit)
        issues = []
        if qubits > self.num_qubits:
            issues.append(ValidationIssue(ValidationCode.TOO_MANY_QUBITS, f"{qubits} qubits"))
        if shots is not None and not 1 <= shots <= 1000:
            issues.append(ValidationIssue(ValidationCode.SHOTS_OUT_OF_RANGE, f"{shots} shots"))
        return ValidationResult(tuple(issues))

    async def submit(
        self, circuit: Any, shots: int, parameters: Mapping[str, float] | None = None
    ) -> JobId:
        (await self.validate(circuit, shots)).raise_for_issues(self.name)
        program = self.parse(circuit)
        job = self.table.create()
        self.submitted.append(job.job_id)

        def work(job: LocalJob) -> ExecutionResult:
            time.sleep(self.delay)
            qubits, clbits, ops = program
            state, bits = [0] * qubits, [0] * clbits
            for op, args in ops:
                if op == "measure":
                    bits[args[1]] = state[args[0]]
                elif all(state[c] for c in args[:-1]):
                    state[args[-1]] ^= 1
            key = "".join(str(b) for b in reversed(bits))
            return ExecutionResult({key: shots}, shots, job.job_id, self.name,
                                   metadata={"parameters": dict(parameters or {})})

        self.table.start_in_thread(job, work)
        return JobId(job.job_id)

    async def status(self, job_id: str) -> JobStatus:
        return self.table.status(job_id)

    async def result(self, job_id: str) -> ExecutionResult:
        return await self.table.result(job_id)

    async def cancel(self, job_id: str) -> None:
        self.table.cancel(job_id)


class ClassicalBatch:
    """The ``batch`` extension of :class:`BatchingBackend`; counts its calls."""

    def __init__(self, backend: ClassicalBackend) -> None:
        self.backend = backend
        self.calls: list[str] = []

    async def submit_batch(self, circuits: Sequence[Any], shots: int) -> list[JobId]:
        self.calls.append("submit_batch")
        return [await self.backend.submit(c, shots) for c in circuits]

    async def submit_sweep(
        self, circuit: Any, bindings: Sequence[Mapping[str, float]], shots: int
    ) -> list[JobId]:
        self.calls.append("submit_sweep")
        return [await self.backend.submit(circuit, shots, b) for b in bindings]


class BatchingBackend(ClassicalBackend):
    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.batch = ClassicalBatch(self)
        super().__init__(spec)

    def offered(self) -> frozenset[str]:
        return frozenset({"batch"})

    def _extensions(self) -> Mapping[str, object]:
        return {"batch": self.batch}


class ScheduledBackend(Backend):
    """Each job reports ``schedule[i]`` on its i-th ``status`` call (then the last, forever)."""

    def __init__(self, spec: Mapping[str, Any], schedule: Sequence[str], reason: str = "") -> None:
        self.schedule = [JobState(s) for s in schedule]
        self.reason = reason
        self.polls: dict[str, int] = {}
        super().__init__(spec)

    def _discover_capabilities(self) -> Capabilities:
        return Capabilities(name="scheduled", num_qubits=1, gate_set=frozenset({"x"}))

    async def availability(self) -> BackendAvailability:
        return BackendAvailability("ONLINE")

    async def validate(self, circuit: Any, shots: int | None = None) -> ValidationResult:
        return ValidationResult()

    async def submit(
        self, circuit: Any, shots: int, parameters: Mapping[str, float] | None = None
    ) -> JobId:
        job_id = f"scheduled-{len(self.polls)}"
        self.polls[job_id] = 0
        return JobId(job_id)

    async def status(self, job_id: str) -> JobStatus:
        if job_id not in self.polls:
            raise JobNotFoundError(job_id)
        index = min(self.polls[job_id], len(self.schedule) - 1)
        self.polls[job_id] += 1
        state = self.schedule[index]
        return JobStatus(job_id, state, reason=self.reason if state.is_terminal else None)

    async def result(self, job_id: str) -> ExecutionResult:
        return ExecutionResult({"1": 1}, 1, job_id, self.name)

    async def cancel(self, job_id: str) -> None:
        await asyncio.sleep(0)
