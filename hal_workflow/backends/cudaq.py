"""NVIDIA CUDA-Q adapter: ``{"name": "cudaq", "target": "qpp-cpu"}`` (extra ``cudaq``).

Spec options::

    {"name": "cudaq",
     "target": "qpp-cpu",   # qpp-cpu, density-matrix-cpu, nvidia, nvidia-fp64, nvidia-mgpu,
                            # tensornet, tensornet-mps (GPU targets need a GPU)
     "seed": 1234}          # default seed of every job (else fresh, recorded)

A circuit is lowered once and turned into a CUDA-Q kernel with the kernel builder
(``cudaq.make_kernel(list)``): every angle that depends on an ``input float`` is an element of
the kernel's one ``list[float]`` argument, so a sweep builds and compiles the kernel once and
only evaluates the angles per binding. Standard gates map to the builder's gates, ``ctrl`` /
``negctrl`` / ``inv`` / integer ``pow`` modifiers included (global phases become controlled
phases where a gate is controlled). Measurements must be final (the simulators sample the
final state); mid-circuit measurement, reset and ``if`` are reported by ``validate``.

CUDA-Q's target and random seed are process-wide, so every CUDA-Q call of this process runs on
one worker thread, which sets the backend's target (and the job's seed) before each job. Job
``i`` of a batch or sweep uses seed ``seed + i``. Jobs live in this process.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hal_workflow.backends.local_jobs import JobCancelled, LocalJob, LocalJobTable
from hal_workflow.backends.options import check_options
from hal_workflow.circuits.conversion import as_circuit
from hal_workflow.circuits.ir import (
    BarrierOp,
    Expr,
    GateOp,
    IfOp,
    LoweredCircuit,
    MeasureOp,
    Param,
    ResetOp,
)
from hal_workflow.compilation.checks import bound_values, shots_issues, width_issues
from hal_workflow.contract.backend import Backend
from hal_workflow.contract.errors import (
    BackendUnavailableError,
    ConfigurationError,
    ValidationError,
)
from hal_workflow.contract.types import (
    AvailabilityStatus,
    BackendAvailability,
    Capabilities,
    ExecutionResult,
    JobId,
    JobStatus,
    ValidationCode,
    ValidationIssue,
    ValidationResult,
)

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit

NAME = "cudaq"
MAX_SHOTS = 1_000_000
TARGETS: dict[str, tuple[int, bool]] = {
    # target -> (qubits offered, needs a GPU)
    "qpp-cpu": (28, False),
    "density-matrix-cpu": (14, False),
    "nvidia": (32, True),
    "nvidia-fp64": (31, True),
    "nvidia-mgpu": (36, True),
    "tensornet": (64, True),
    "tensornet-mps": (64, True),
}
"""The simulator targets this adapter selects, with their width and whether they need a GPU."""

_HALF_PI = math.pi / 2


@dataclass(frozen=True)
class _Angle:
    """An angle: ``scale * source + offset``, with ``source`` a float or an input ``Expr``."""

    source: Param
    scale: float = 1.0
    offset: float = 0.0

    def __neg__(self) -> _Angle:
        return _Angle(self.source, -self.scale, -self.offset)

    @property
    def constant(self) -> float | None:
        if isinstance(self.source, Expr):
            return None
        return self.scale * float(self.source) + self.offset

    def value(self, bindings: Mapping[str, float]) -> float:
        base = self.source.evaluate(bindings) if isinstance(self.source, Expr) else self.source
        return self.scale * float(base) + self.offset


def _c(value: float) -> _Angle:
    return _Angle(float(value))


# standard gate -> (builder gate, its angles from the gate's parameters, number of leading
# control qubits, global phase or None); the builder's rotations are Qiskit's
# (rx = exp(-i theta X / 2), r1 = diag(1, e^{i lambda}), u3 = U)
_GATES: dict[str, tuple[str, Callable[[list[_Angle]], list[_Angle]], int,
                        Callable[[list[_Angle]], _Angle] | None]] = {
    "x": ("x", lambda p: [], 0, None),
    "y": ("y", lambda p: [], 0, None),
    "z": ("z", lambda p: [], 0, None),
    "h": ("h", lambda p: [], 0, None),
    "s": ("r1", lambda p: [_c(_HALF_PI)], 0, None),
    "sdg": ("r1", lambda p: [_c(-_HALF_PI)], 0, None),
    "t": ("r1", lambda p: [_c(math.pi / 4)], 0, None),
    "tdg": ("r1", lambda p: [_c(-math.pi / 4)], 0, None),
    "sx": ("rx", lambda p: [_c(_HALF_PI)], 0, lambda p: _c(math.pi / 4)),
    "rx": ("rx", lambda p: [p[0]], 0, None),
    "ry": ("ry", lambda p: [p[0]], 0, None),
    "rz": ("rz", lambda p: [p[0]], 0, None),
    "p": ("r1", lambda p: [p[0]], 0, None),
    "u1": ("r1", lambda p: [p[0]], 0, None),
    "u2": ("u3", lambda p: [_c(_HALF_PI), p[0], p[1]], 0, None),
    "u3": ("u3", lambda p: [p[0], p[1], p[2]], 0, None),
    "U": ("u3", lambda p: [p[0], p[1], p[2]], 0, None),
    "id": ("", lambda p: [], 0, None),
    "gphase": ("", lambda p: [], 0, lambda p: p[0]),
    "cx": ("x", lambda p: [], 1, None),
    "cy": ("y", lambda p: [], 1, None),
    "cz": ("z", lambda p: [], 1, None),
    "ch": ("h", lambda p: [], 1, None),
    "cp": ("r1", lambda p: [p[0]], 1, None),
    "crx": ("rx", lambda p: [p[0]], 1, None),
    "cry": ("ry", lambda p: [p[0]], 1, None),
    "crz": ("rz", lambda p: [p[0]], 1, None),
    "cu": ("u3", lambda p: [p[0], p[1], p[2]], 1, lambda p: p[3]),
    "swap": ("swap", lambda p: [], 0, None),
    "ccx": ("x", lambda p: [], 2, None),
    "cswap": ("swap", lambda p: [], 1, None),
}
GATE_SET = frozenset(_GATES)
_SELF_INVERSE = frozenset({"x", "y", "z", "h", "swap", ""})


def _inverse(gate: str, angles: list[_Angle]) -> list[_Angle]:
    if gate in _SELF_INVERSE:
        return angles
    if gate == "u3":  # U(theta, phi, lambda)^-1 = U(-theta, -lambda, -phi)
        theta, phi, lam = angles
        return [-theta, -lam, -phi]
    return [-a for a in angles]  # rx, ry, rz, r1


@dataclass(frozen=True)
class _Step:
    """One builder call: gate, angles, control qubits (with negated ones), targets."""

    gate: str
    angles: tuple[_Angle, ...]
    controls: tuple[int, ...]
    negated: tuple[int, ...]
    targets: tuple[int, ...]


@dataclass(frozen=True)
class _Plan:
    """A circuit in builder steps, its measurement map and its free inputs."""

    steps: tuple[_Step, ...]
    num_qubits: int
    num_clbits: int
    sources: tuple[int | None, ...]  # clbit -> measured qubit
    parameters: tuple[str, ...]


def _issue(code: ValidationCode, message: str) -> ValidationIssue:
    return ValidationIssue(code, message)


def _expand(op: GateOp, issues: list[ValidationIssue]) -> list[_Step]:
    """``op`` as builder steps (empty, with an issue, when it cannot be expressed)."""
    entry = _GATES.get(op.name)
    where = f" (line {op.line})" if op.line else ""
    if entry is None:
        issues.append(_issue(ValidationCode.GATE_NOT_SUPPORTED,
                             f"gate {op.name}{where} is not supported by {NAME}"))
        return []
    gate, angles_of, built_in, phase_of = entry
    params = [_Angle(p) for p in op.params]
    angles = angles_of(params)
    phase = phase_of(params) if phase_of else None
    inverted = False
    repeat = 1
    controls: list[int] = []
    negated: list[int] = []
    cursor = 0
    for modifier in op.modifiers:
        count = modifier.argument
        if modifier.kind in ("ctrl", "negctrl"):
            if isinstance(count, Expr):
                issues.append(_issue(ValidationCode.UNSUPPORTED_FEATURE,
                                     f"{modifier.kind} count of {op.name}{where} is not constant"))
                return []
            n = int(count)
            qubits = op.qubits[cursor:cursor + n]
            controls.extend(qubits)
            if modifier.kind == "negctrl":
                negated.extend(qubits)
            cursor += n
        elif modifier.kind == "inv":
            inverted = not inverted
        elif modifier.kind == "pow":
            if isinstance(count, Expr) or not float(count).is_integer():
                issues.append(_issue(ValidationCode.UNSUPPORTED_FEATURE,
                                     f"pow({count}) @ {op.name}{where}: only integer powers"))
                return []
            power = int(count)
            if power < 0:
                inverted, power = not inverted, -power
            repeat *= power
    rest = op.qubits[cursor:]
    controls.extend(rest[:built_in])
    targets = tuple(rest[built_in:])
    if inverted:
        angles = _inverse(gate, angles)
        phase = -phase if phase is not None else None
    steps = []
    if gate:
        steps = [_Step(gate, tuple(angles), tuple(controls), tuple(negated), targets)] * repeat
    if phase is not None and controls:
        # a global phase under control: a phase on the (last) control, the others controlling
        phases = [phase] * repeat
        steps += [_Step("r1", (a,), tuple(controls[:-1]), tuple(q for q in negated
                                                                   if q != controls[-1]),
                        (controls[-1],)) for a in phases]
        if controls[-1] in negated:  # negctrl on that qubit: the phase acts on |0>
            steps[-repeat:] = [
                _Step("x", (), (), (), (controls[-1],)), *steps[-repeat:],
                _Step("x", (), (), (), (controls[-1],)),
            ]
    return steps


def plan_circuit(lowered: LoweredCircuit) -> tuple[_Plan, list[ValidationIssue]]:
    """The builder steps of ``lowered`` and every reason it cannot run here."""
    issues: list[ValidationIssue] = []
    steps: list[_Step] = []
    sources: list[int | None] = [None] * lowered.num_clbits
    measured: set[int] = set()
    for op in lowered.operations:
        where = f" (line {op.line})" if op.line else ""
        if isinstance(op, GateOp):
            touched = set(op.qubits) & measured
            if touched:
                issues.append(_issue(ValidationCode.UNSUPPORTED_FEATURE,
                                     f"{op.name}{where} acts on measured qubit {min(touched)}: "
                                     f"{NAME} supports final measurements only"))
                continue
            steps.extend(_expand(op, issues))
        elif isinstance(op, MeasureOp):
            if op.qubit in measured:
                issues.append(_issue(ValidationCode.UNSUPPORTED_FEATURE,
                                     f"qubit {op.qubit} is measured twice{where}: {NAME} "
                                     "supports final measurements only"))
            measured.add(op.qubit)
            sources[op.clbit] = op.qubit
        elif isinstance(op, ResetOp):
            issues.append(_issue(ValidationCode.UNSUPPORTED_FEATURE,
                                 f"reset{where} is not supported by {NAME}"))
        elif isinstance(op, IfOp):
            issues.append(_issue(ValidationCode.UNSUPPORTED_FEATURE,
                                 f"if{where}: classical control is not supported by {NAME}"))
        elif not isinstance(op, BarrierOp):
            issues.append(_issue(ValidationCode.UNSUPPORTED_FEATURE, f"{op!r} is not supported"))
    plan = _Plan(tuple(steps), lowered.num_qubits, lowered.num_clbits, tuple(sources),
                 lowered.parameters)
    return plan, issues


class _Kernel:
    """A plan built into a CUDA-Q kernel (once); ``arguments`` evaluates its angle list."""

    def __init__(self, plan: _Plan) -> None:
        import cudaq

        self.plan = plan
        self.slots: list[_Angle] = []
        kernel, angles = cudaq.make_kernel(list)
        qubits = kernel.qalloc(max(plan.num_qubits, 1))

        def angle(a: _Angle) -> Any:
            constant = a.constant
            if constant is not None:
                return constant
            self.slots.append(a)
            return angles[len(self.slots) - 1]

        for step in plan.steps:
            args = [angle(a) for a in step.angles]
            targets = [qubits[q] for q in step.targets]
            for q in step.negated:
                kernel.x(qubits[q])
            if step.controls:
                controls = [qubits[q] for q in step.controls]
                method = getattr(kernel, "c" + step.gate)
                if step.gate == "swap":
                    method(controls, *targets)
                elif len(controls) == 1:
                    method(*args, controls[0], *targets)
                else:
                    method(*args, controls, *targets)
            else:
                getattr(kernel, step.gate)(*args, *targets)
            for q in step.negated:
                kernel.x(qubits[q])
        kernel.mz(qubits)
        self.kernel = kernel

    def arguments(self, bindings: Mapping[str, float]) -> list[float]:
        return [a.value(bindings) for a in self.slots] or [0.0]


def _counts(raw: Any, plan: _Plan) -> dict[str, int]:
    """HAL counts (clbit 0 rightmost) from CUDA-Q's (qubit 0 leftmost, every qubit)."""
    counts: dict[str, int] = {}
    for bits, n in raw.items():
        key = "".join(
            "0" if source is None else bits[source] for source in reversed(plan.sources)
        )
        counts[key] = counts.get(key, 0) + int(n)
    return counts


_JOBS = LocalJobTable("cudaq")
_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hal-cudaq")
"""Every CUDA-Q call of this process: the target and the seed are process-wide."""


class CudaqBackend(Backend):
    """CUDA-Q simulator targets behind the HAL contract (see the module docstring)."""

    OPTIONS = frozenset({"name", "target", "seed"})

    def __init__(self, spec: Mapping[str, Any]) -> None:
        spec = dict(spec)
        check_options(spec, self.OPTIONS, NAME)
        target = spec.get("target", "qpp-cpu")
        if target not in TARGETS:
            raise ConfigurationError(
                f"{NAME}: unknown target {target!r}; choose one of {', '.join(TARGETS)}")
        seed = spec.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigurationError(f"{NAME}: seed must be an integer, got {seed!r}")
        self._target = str(target)
        self._seed = seed
        self._kernels: dict[str, _Kernel] = {}
        self._lock = threading.Lock()
        _WORKER.submit(self._select).result()  # fails here for a target this machine lacks
        super().__init__(spec)

    def _select(self) -> None:
        try:
            import cudaq
        except ImportError as exc:
            raise ConfigurationError(
                f"{NAME}: the cudaq package is not installed ({exc}); "
                "pip install 'hal-workflow[cudaq]'") from exc
        needs_gpu = TARGETS[self._target][1]
        if needs_gpu and cudaq.num_available_gpus() == 0:
            # asked anyway, CUDA-Q may abort the whole process rather than raise
            raise BackendUnavailableError(
                f"{NAME}: target {self._target!r} needs an NVIDIA GPU; none is visible here")
        try:
            cudaq.set_target(self._target)
        except RuntimeError as exc:
            raise BackendUnavailableError(
                f"{NAME}: target {self._target!r} is not available here: {exc}") from exc

    def _discover_capabilities(self) -> Capabilities:
        width, _ = TARGETS[self._target]
        return Capabilities(
            name=f"{NAME}:{self._target}",
            num_qubits=width,
            gate_set=GATE_SET,
            max_shots=MAX_SHOTS,
            simulator=True,
            supports_reset=False,
            supports_mid_circuit_measurement=False,
            extensions=frozenset({"batch"}),
        )

    def _extensions(self) -> Mapping[str, object]:
        return {"batch": CudaqBatch(self)}

    @property
    def target(self) -> str:
        return self._target

    async def availability(self) -> BackendAvailability:
        return BackendAvailability(AvailabilityStatus.ONLINE, queue_depth=0,
                                   message=f"CUDA-Q target {self._target} in this process")

    # -- validation ---------------------------------------------------------------------------
    def _check(self, circuit: Circuit | str, shots: int | None) -> tuple[list, Circuit, _Plan]:
        checked = as_circuit(circuit)
        caps = self.capabilities()
        plan, issues = plan_circuit(checked.lowered)
        issues = [*shots_issues(shots, caps.max_shots),
                  *width_issues(checked.num_qubits, caps.num_qubits, caps.name), *issues]
        return issues, checked, plan

    async def validate(self, circuit: Circuit | str, shots: int | None = None) -> ValidationResult:
        issues, _, _ = await asyncio.to_thread(self._check, circuit, shots)
        return ValidationResult(tuple(issues))

    def _kernel(self, circuit: Circuit | str, shots: int) -> _Kernel:
        issues, checked, plan = self._check(circuit, shots)
        if issues:
            raise ValidationError(issues, self.name)
        with self._lock:
            kernel = self._kernels.get(checked.qasm)
        if kernel is None:
            kernel = _WORKER.submit(_Kernel, plan).result()
            with self._lock:
                self._kernels[checked.qasm] = kernel
        return kernel

    # -- submission ---------------------------------------------------------------------------
    def _job_seed(self, seed: int | None) -> int:
        if seed is not None:
            return int(seed)
        if self._seed is not None:
            return int(self._seed)
        return secrets.randbits(31)

    def _start(self, kernel: _Kernel, bindings: list[Mapping[str, float] | None], shots: int,
               seed: int) -> list[JobId]:
        """One job per binding, run in order on the CUDA-Q worker; binding ``i`` uses
        ``seed + i``."""
        arguments = [kernel.arguments(dict(zip(kernel.plan.parameters,
                                               bound_values(kernel.plan.parameters, b, self.name),
                                               strict=True)))
                     for b in bindings]
        jobs = [_JOBS.create() for _ in bindings]
        for i, (job, args) in enumerate(zip(jobs, arguments, strict=True)):
            _WORKER.submit(_JOBS.run, job, self._work(kernel, args, shots, seed + i))
        return [JobId(job.job_id) for job in jobs]

    def _work(self, kernel: _Kernel, args: list[float], shots: int,
              seed: int) -> Callable[[LocalJob], ExecutionResult]:
        def work(job: LocalJob) -> ExecutionResult:
            import cudaq

            if job.cancel_event.is_set():
                raise JobCancelled
            started = time.perf_counter()
            cudaq.set_target(self._target)
            cudaq.set_random_seed(seed)
            raw = cudaq.sample(kernel.kernel, args, shots_count=shots)
            counts = (_counts(raw, kernel.plan) if kernel.plan.num_clbits
                      else {"": shots})
            return ExecutionResult(
                counts=counts, shots=shots, job_id=job.job_id, backend=self.name,
                timings={"execution_s": time.perf_counter() - started,
                         "queued_s": max(0.0, (job.started_at or job.submitted_at)
                                         - job.submitted_at)},
                metadata={"seed": seed, "target": self._target},
            )

        return work

    def _submit(self, circuit: Circuit | str, shots: int,
                bindings: list[Mapping[str, float] | None], seed: int | None) -> list[JobId]:
        kernel = self._kernel(circuit, shots)
        return self._start(kernel, bindings, shots, self._job_seed(seed))

    async def submit(self, circuit: Circuit | str, shots: int,
                     parameters: Mapping[str, float] | None = None, *,
                     seed: int | None = None) -> JobId:
        (job_id,) = await asyncio.to_thread(self._submit, circuit, shots, [parameters], seed)
        return job_id

    async def status(self, job_id: str) -> JobStatus:
        return _JOBS.status(job_id)

    async def result(self, job_id: str) -> ExecutionResult:
        return await _JOBS.result(job_id)

    async def cancel(self, job_id: str) -> None:
        _JOBS.cancel(job_id)


class CudaqBatch:
    """``batch``: circuits, or one circuit over bindings (its kernel built once); element
    ``i`` uses seed ``seed + i``."""

    def __init__(self, backend: CudaqBackend) -> None:
        self._backend = backend

    def _batch(self, circuits: Sequence[Circuit | str], shots: int,
               seed: int | None) -> list[JobId]:
        backend = self._backend
        kernels = [backend._kernel(c, shots) for c in circuits]  # validate all first
        base = backend._job_seed(seed)
        return [backend._start(k, [None], shots, base + i)[0] for i, k in enumerate(kernels)]

    async def submit_batch(self, circuits: Sequence[Circuit | str], shots: int, *,
                           seed: int | None = None) -> list[JobId]:
        return await asyncio.to_thread(self._batch, list(circuits), shots, seed)

    async def submit_sweep(self, circuit: Circuit | str, bindings: Sequence[Mapping[str, float]],
                           shots: int, *, seed: int | None = None) -> list[JobId]:
        return await asyncio.to_thread(self._backend._submit, circuit, shots, list(bindings),
                                       seed)


__all__ = ["GATE_SET", "TARGETS", "CudaqBackend", "CudaqBatch", "plan_circuit"]
