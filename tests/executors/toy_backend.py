"""A small in-process backend for executor tests that must not depend on the simulator.

It samples counts for ``qubit[n]`` programs without simulating them (uniform over ``n`` bits),
sleeps ``delay`` seconds per job in cancellable steps, rejects programs with more than
``max_qubits`` qubits, and offers the batch extension unless ``batch`` is false. It seeds as
the executors expect of a seeded backend: a job uses ``seed=`` of its call, else the spec's
``seed``; element ``j`` of ``submit_sweep(..., seed=s)`` uses ``s + j``.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from distributed import WorkerPlugin

from hal_workflow.backends.local_jobs import JobCancelled, LocalJob, LocalJobTable
from hal_workflow.backends.registry import register_backend
from hal_workflow.contract import (
    AvailabilityStatus,
    Backend,
    BackendAvailability,
    Capabilities,
    ExecutionResult,
    ValidationCode,
    ValidationIssue,
    ValidationResult,
)

_QUBITS = re.compile(r"qubit\[(\d+)\]")


class ToyBackend(Backend):
    def __init__(self, spec: Mapping[str, Any]) -> None:
        self._seed = int(spec.get("seed", 0))
        self._delay = float(spec.get("delay", 0.0))
        self._max_qubits = int(spec.get("max_qubits", 8))
        self._batch = bool(spec.get("batch", True))
        self._jobs = LocalJobTable("toy")
        super().__init__(spec)

    def _discover_capabilities(self) -> Capabilities:
        return Capabilities(
            name="toy", num_qubits=self._max_qubits, gate_set=frozenset({"h", "ry", "cx"}),
            extensions=frozenset({"batch"} if self._batch else ()),
        )

    def _extensions(self) -> Mapping[str, object]:
        return {"batch": _Batch(self)}

    async def availability(self) -> BackendAvailability:
        return BackendAvailability(AvailabilityStatus.ONLINE)

    async def validate(self, circuit: Any, shots: int | None = None) -> ValidationResult:
        n = _num_qubits(circuit)
        if n > self._max_qubits:
            return ValidationResult((ValidationIssue(
                ValidationCode.TOO_MANY_QUBITS, f"{n} qubits > {self._max_qubits}"),))
        return ValidationResult()

    async def submit(self, circuit: Any, shots: int, parameters: Any = None, *,
                     seed: int | None = None) -> Any:
        (await self.validate(circuit, shots)).raise_for_issues("toy")
        job = self._jobs.create()
        chosen = self._seed if seed is None else seed
        self._jobs.start_in_thread(
            job, lambda j: self._work(j, str(circuit), shots, parameters, chosen))
        return job.job_id

    def _work(self, job: LocalJob, text: str, shots: int, parameters: Any, seed: int
              ) -> ExecutionResult:
        deadline = time.monotonic() + self._delay
        while time.monotonic() < deadline:
            if job.cancel_event.is_set():
                raise JobCancelled
            time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
        n = _num_qubits(text)
        material = json.dumps([seed, text, sorted((parameters or {}).items())])
        rng = np.random.default_rng(int.from_bytes(hashlib.sha256(material.encode()).digest()[:8]))
        draws = rng.integers(0, 2**n, size=shots)
        counts = Counter(format(int(v), f"0{n}b") for v in draws)
        return ExecutionResult(counts=dict(counts), shots=shots, job_id=job.job_id, backend="toy",
                               metadata={"parameters": dict(parameters or {}), "seed": seed})

    async def status(self, job_id: str) -> Any:
        return self._jobs.status(job_id)

    async def result(self, job_id: str) -> ExecutionResult:
        return await self._jobs.result(job_id)

    async def cancel(self, job_id: str) -> None:
        self._jobs.cancel(job_id)


class _Batch:
    def __init__(self, backend: ToyBackend) -> None:
        self._backend = backend

    async def submit_batch(self, circuits: Sequence[Any], shots: int) -> list[Any]:
        return [await self._backend.submit(c, shots) for c in circuits]

    async def submit_sweep(self, circuit: Any, bindings: Sequence[Any], shots: int, *,
                           seed: int | None = None) -> list[Any]:
        first = self._backend._seed if seed is None else seed
        return [await self._backend.submit(circuit, shots, b, seed=first + j)
                for j, b in enumerate(bindings)]


def _num_qubits(circuit: Any) -> int:
    return sum(int(m) for m in _QUBITS.findall(str(circuit))) or 1


def register() -> None:
    register_backend("toy", ToyBackend)


class RegisterToy(WorkerPlugin):
    """A Dask worker plugin that registers ``toy`` on every worker, restarted ones too."""

    name = "hal-toy-backend"

    def setup(self, worker: Any) -> None:
        register()
