"""``HalProvider`` and ``HalBackend(BackendV2)``: any HAL backend spec as a Qiskit backend.

``HalBackend("sim")``, ``HalBackend({"name": "slurm", "backend": "sim"})``,
``HalBackend({"name": "ibm", "backend": "fake_manila"})``... Its ``Target`` is built from the
backend's :class:`~hal_workflow.contract.types.Capabilities` (gates mapped to Qiskit's
standard gates, the coupling map) and, where the ``calibration`` extension is offered, the
per-qubit and per-pair errors and durations and the qubits' T1/T2/frequency, so
``transpile(qc, backend)`` optimises for the device. ``run`` returns a :class:`HalJob`
(``JobV1``) whose ``status()``, ``cancel()`` and ``result().get_counts()`` reach the HAL jobs
(and through SLURM the scheduler's jobs); a list of circuits goes through the ``batch``
extension where offered.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from qiskit import QuantumCircuit
from qiskit.circuit import Measure, Reset
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.providers import BackendV2, JobStatus, JobV1, Options, QubitProperties
from qiskit.result import Result
from qiskit.transpiler import InstructionProperties, Target

from hal_workflow.backends.registry import BackendSpec, available_backends, normalize_spec
from hal_workflow.circuits.conversion import as_bindings
from hal_workflow.compilation.qiskit_bridge import qiskit_gate_name
from hal_workflow.contract.backend import Backend
from hal_workflow.contract.errors import ConfigurationError, HalError
from hal_workflow.contract.extensions import submit_many
from hal_workflow.contract.types import CalibrationSnapshot, Capabilities, JobState
from hal_workflow.orchestration.sync import backend_for, run_sync
from hal_workflow.qiskit.convert import from_qiskit

logger = logging.getLogger(__name__)

__all__ = ["HalBackend", "HalJob", "HalProvider", "target_from_capabilities"]

_STATES = {
    JobState.QUEUED: JobStatus.QUEUED,
    JobState.RUNNING: JobStatus.RUNNING,
    JobState.COMPLETED: JobStatus.DONE,
    JobState.FAILED: JobStatus.ERROR,
    JobState.CANCELLED: JobStatus.CANCELLED,
}


def _gate_names(caps: Capabilities) -> list[str]:
    """Qiskit names of the gates a circuit should be transpiled to.

    A backend that compiles in ``submit`` is described by its native basis when every
    native gate is a Qiskit standard gate (IBM: ``ecr``, ``rz``, ``sx``, ``x``), so
    ``transpile`` targets the device itself; otherwise by its accepted ``gate_set``.
    """
    standard = get_standard_gate_name_mapping()
    native = [qiskit_gate_name(g) for g in caps.native_gates]
    if native and all(g in standard for g in native):
        return sorted(native)
    return sorted({qiskit_gate_name(g) for g in caps.gate_set} & set(standard))


def target_from_capabilities(caps: Capabilities,
                             calibration: CalibrationSnapshot | None = None) -> Target:
    """A Qiskit ``Target`` for ``caps`` (errors and durations from ``calibration``).

    Without a coupling map every instruction is global (Qiskit then neither lays out nor
    routes, so a 3-qubit circuit stays 3 qubits wide on a 30-qubit simulator).
    """
    standard = get_standard_gate_name_mapping()
    gate_props: dict[tuple[str, tuple[int, ...]], InstructionProperties] = {}
    readout: dict[int, InstructionProperties] = {}
    qubit_properties = None
    if calibration is not None:
        for gate in calibration.gates:
            gate_props[(qiskit_gate_name(gate.gate), tuple(gate.qubits))] = InstructionProperties(
                error=gate.error, duration=gate.duration_s)
        for qubit in calibration.qubits:
            readout[qubit.qubit] = InstructionProperties(error=qubit.readout_error)
        if calibration.qubits and len(calibration.qubits) == caps.num_qubits:
            qubit_properties = [
                QubitProperties(t1=q.t1_s, t2=q.t2_s, frequency=q.frequency_hz)
                for q in sorted(calibration.qubits, key=lambda q: q.qubit)
            ]
    target = Target(description=caps.name, num_qubits=caps.num_qubits,
                    qubit_properties=qubit_properties)
    pairs = caps.coupling_map
    for name in _gate_names(caps):
        gate = standard[name]
        if pairs is None:
            target.add_instruction(gate, {None: None} if gate.num_qubits else None, name=name)
            continue
        if gate.num_qubits == 1:
            qargs: list[tuple[int, ...]] = [(q,) for q in range(caps.num_qubits)]
        elif gate.num_qubits == 2:
            qargs = [tuple(p) for p in pairs]
        else:
            continue  # wider gates are decomposed by the transpiler
        target.add_instruction(gate, {q: gate_props.get((name, q)) for q in qargs}, name=name)
    if caps.supports_measurement:
        if pairs is None:
            target.add_instruction(Measure(), {None: None})
        else:
            target.add_instruction(Measure(), {(q,): readout.get(q)
                                               for q in range(caps.num_qubits)})
    if caps.supports_reset:
        target.add_instruction(Reset(), {None: None} if pairs is None
                               else {(q,): None for q in range(caps.num_qubits)})
    return target


class HalJob(JobV1):
    """The HAL jobs of one ``HalBackend.run`` call (one per circuit)."""

    def __init__(self, backend: HalBackend, job_id: str, hal_job_ids: Sequence[str],
                 circuits: Sequence[QuantumCircuit], shots: int) -> None:
        super().__init__(backend, job_id)
        self._hal = backend.hal_backend
        self._ids = list(hal_job_ids)
        self._circuits = list(circuits)
        self._shots = shots

    @property
    def hal_job_ids(self) -> list[str]:
        """The HAL job ids (with the backend's spec, enough to reattach from any process)."""
        return list(self._ids)

    def submit(self) -> None:
        raise HalError("HalJob is submitted by HalBackend.run")

    def status(self) -> JobStatus:
        states = [run_sync(self._hal.status(j)).state for j in self._ids]
        for bad in (JobState.FAILED, JobState.CANCELLED):
            if bad in states:
                return _STATES[bad]
        if all(s is JobState.COMPLETED for s in states):
            return JobStatus.DONE
        return JobStatus.RUNNING if JobState.RUNNING in states or JobState.COMPLETED in states \
            else JobStatus.QUEUED

    def cancel(self) -> None:
        """Cancel every HAL job (a no-op on those that ended)."""
        for job_id in self._ids:
            run_sync(self._hal.cancel(job_id))

    def result(self, timeout: float | None = None) -> Result:
        """Wait for every job; ``get_counts()`` then works as on any Qiskit backend.
        Raises ``JobFailedError`` / ``JobCancelledError`` for a job that ended without one."""
        results = [run_sync(self._hal.result_when_done(j, timeout=timeout)) for j in self._ids]
        experiments = []
        for qc, res in zip(self._circuits, results, strict=True):
            counts = {hex(int(k, 2)) if k else "0x0": v for k, v in res.counts.items()}
            experiments.append({
                "shots": res.shots, "success": True, "data": {"counts": counts},
                "header": {"name": qc.name, "metadata": qc.metadata,
                           "memory_slots": qc.num_clbits,
                           "creg_sizes": [[c.name, c.size] for c in qc.cregs]},
                "status": "DONE", "metadata": dict(res.metadata),
            })
        return Result.from_dict({
            "backend_name": self._backend.name, "backend_version": "1", "job_id": self.job_id(),
            "success": True, "results": experiments,
        })


class HalBackend(BackendV2):
    """A HAL backend spec as a Qiskit ``BackendV2`` (see the module docstring)."""

    def __init__(self, spec: BackendSpec | Backend = "sim", provider: Any = None) -> None:
        if isinstance(spec, Backend):
            self._hal_backend, self._hal_spec = spec, spec.spec
        else:
            self._hal_spec = normalize_spec(spec)
            self._hal_backend = backend_for(self._hal_spec)
        caps = self._hal_backend.capabilities()
        super().__init__(provider=provider, name=f"hal_{caps.name}",
                         description=f"hal-workflow backend {caps.name!r}",
                         backend_version="1")
        self._target: Target | None = None

    @property
    def hal_backend(self) -> Backend:
        return self._hal_backend

    @property
    def hal_spec(self) -> dict[str, Any]:
        return dict(self._hal_spec)

    @property
    def target(self) -> Target:
        if self._target is None:
            calibration = None
            extension = self._hal_backend.extension("calibration")
            if extension is not None:
                try:
                    calibration = run_sync(extension.snapshot())
                except HalError as exc:  # a Target without errors is still a Target
                    logger.warning("%s: no calibration data: %s", self.name, exc)
            self._target = target_from_capabilities(self._hal_backend.capabilities(),
                                                    calibration)
        return self._target

    @property
    def max_circuits(self) -> None:
        return None

    @classmethod
    def _default_options(cls) -> Options:
        options = Options(shots=1024, parameter_binds=None)
        options.set_validator("shots", (1, 10_000_000))
        return options

    def run(self, run_input: QuantumCircuit | Sequence[QuantumCircuit], **options: Any
            ) -> HalJob:
        """Run circuits with ``shots`` (default 1024); ``parameter_binds`` is a list (one per
        circuit) of ``{Parameter or name: value}``. A list goes through the batch extension
        where offered."""
        unknown = sorted(set(options) - set(self.options.__dict__))
        if unknown:
            raise ConfigurationError(f"{self.name}: unknown run option(s) {', '.join(unknown)}"
                                     f"; known: shots, parameter_binds")
        shots = options.get("shots", self.options.shots)
        circuits = [run_input] if isinstance(run_input, QuantumCircuit) else list(run_input)
        binds = options.get("parameter_binds", self.options.parameter_binds)
        if binds is not None and len(binds) != len(circuits):
            raise ConfigurationError(
                f"parameter_binds has {len(binds)} entries for {len(circuits)} circuits")
        programs = [from_qiskit(qc) for qc in circuits]
        if binds is not None:
            programs = [p.bind(as_bindings(b) or {}) if b else p
                        for p, b in zip(programs, binds, strict=True)]
        ids = run_sync(submit_many(self._hal_backend, programs, shots))
        return HalJob(self, ",".join(ids), ids, circuits, shots)


class HalProvider:
    """Qiskit-style access to every HAL backend: ``HalProvider().get_backend("sim")``."""

    def get_backend(self, spec: BackendSpec = "sim") -> HalBackend:
        """The ``HalBackend`` of any spec (a name or a mapping with ``"name"``)."""
        return HalBackend(spec, provider=self)

    def backends(self, name: str | None = None) -> list[HalBackend]:
        """A ``HalBackend`` for every registered backend name that builds with its default
        options here (or just ``name``); those that cannot (no credentials, no SDK, a spec
        that needs options) are skipped and logged."""
        names = [name] if name is not None else available_backends()
        found = []
        for candidate in names:
            try:
                found.append(self.get_backend(candidate))
            except HalError as exc:
                logger.info("backend %r not available with default options: %s", candidate, exc)
        return found
