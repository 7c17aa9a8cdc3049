"""``SimulatorBackend``: the built-in statevector simulator behind the HAL contract (``"sim"``).

Spec options (all optional)::

    {"name": "sim",
     "seed": 1234,                 # default RNG seed of every job (else fresh, recorded)
     "precision": "complex128",    # or "complex64"
     "threads": 2,                 # numba threads per job (capped by NUMBA_NUM_THREADS, CPUs)
     "max_memory_bytes": 2**30,    # refuse circuits whose state needs more (RESOURCE_LIMIT)
     "fusion": True,               # fuse gates into blocks (False: one kernel call per gate)
     "max_fused_qubits": 4,        # largest fused dense block (1..5)
     "block_qubits": 13,           # cache block: 2^k x 8 amplitudes (default: from L2)
     "blocking_threshold": 16,     # states this wide or wider run cache-blocked (tuning)
     "method": "auto"}             # or "statevector", "stabilizer" (config simulator.method)

Methods: ``"statevector"`` evolves 2^n amplitudes (up to :data:`MAX_QUBITS`, as memory
allows). ``"stabilizer"`` runs Clifford circuits (measurement, reset and classically
controlled gates included) on a tableau, up to :data:`~hal_workflow.simulator.stabilizer.
MAX_QUBITS` qubits (:mod:`hal_workflow.simulator.stabilizer`). ``"auto"`` (the default) picks
the stabilizer method for Clifford circuits wider than :data:`AUTO_STABILIZER_QUBITS`, as
bound, and the statevector method otherwise; ``metadata["method"]`` records the choice.

Jobs of small circuits run inline in ``submit`` (lowest latency: no thread, no re-parsing, the
compiled plan is cached per circuit text); wide or per-shot circuits run on a worker thread,
checking the job's cancel event between kernel calls. Counts use every classical bit, clbit 0
rightmost; a circuit without classical bits gives ``{"": shots}``.

Seeds: a job uses ``seed`` from ``submit(..., seed=)``, else the spec's ``seed``, else fresh
entropy; ``metadata["seed"]`` records it, so any job can be reproduced. Element ``i`` of
``submit_batch`` and of ``submit_sweep`` uses ``seed + i``, so a sweep cut into chunks
(``seed + k`` for a chunk starting at ``k``) gives the same counts as in one piece.

Extensions: ``batch`` (:class:`SimulatorBatch`), ``sessions`` (:class:`SimulatorSessions`)
and ``statevector`` (:class:`StatevectorExtension`: exact amplitudes, probabilities and Pauli
expectation values).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import queue
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import numpy as np

from hal_workflow.backends.local_jobs import LocalJob, LocalJobTable
from hal_workflow.circuits import Circuit, LoweredCircuit
from hal_workflow.circuits.conversion import as_bindings, as_circuit, cached_circuit
from hal_workflow.contract.backend import Backend
from hal_workflow.contract.errors import (
    CircuitError,
    ConfigurationError,
    HalError,
    HalTimeoutError,
    SubmissionError,
    ValidationError,
)
from hal_workflow.contract.types import (
    AvailabilityStatus,
    BackendAvailability,
    Capabilities,
    ExecutionResult,
    JobId,
    JobState,
    JobStatus,
    ValidationCode,
    ValidationIssue,
    ValidationResult,
)
from hal_workflow.simulator import kernels, stabilizer
from hal_workflow.simulator.engine import (
    DTYPES,
    SMALL_SAMPLE_QUBITS,
    EngineOptions,
    Executable,
    make_run,
)
from hal_workflow.simulator.gates import GATE_SET

logger = logging.getLogger(__name__)

NAME = "sim"
MAX_QUBITS = 32
MAX_SHOTS = 10_000_000
INLINE_MAX_QUBITS = 15
"""Statevector circuits up to this width may run inside ``submit``; wider ones on a thread."""
INLINE_WORK = 1 << 20
"""Gates times amplitudes (times bindings) a job may cost to run inside ``submit``, on the
caller's event loop: about 7 ns each measured, so a few milliseconds; more goes to the
worker thread, so that no coroutine holds the loop for long (contract section 12)."""
INLINE_BINDINGS = 128
"""Sweeps over more bindings are checked and set up off the loop (about 30 us each)."""
INLINE_PARSE_CHARS = 8000
"""Program text longer than this, not yet in the plan cache, is parsed off the loop
(about 1 us per character)."""
INLINE_STABILIZER_SHOTS = 1 << 12
"""Shots of a Clifford program sampled before (its outcome space known) that run inside
``submit``: a few table lookups each, about 3 ms for 2^12 shots all different on 62 bits
(writing the count keys is most of it)."""
PLAN_CACHE_SIZE = 128
EXPECTATION_CHUNK_BYTES = 64 << 20
"""States computed at once by ``StatevectorExtension.expectations`` (bytes)."""

_OPTIONS = {
    "name", "seed", "precision", "threads", "max_memory_bytes", "fusion", "max_fused_qubits",
    "block_qubits", "blocking_threshold", "method",
}
METHODS = ("auto", "statevector", "stabilizer")
AUTO_STABILIZER_QUBITS = 20
"""With ``method="auto"``, Clifford circuits wider than this run on the stabilizer tableau
(narrower ones cost microseconds as statevectors, with plans cached per circuit)."""

CircuitLike = Circuit | str | LoweredCircuit


# ------------------------------------------------------------------------------------------
# memory
# ------------------------------------------------------------------------------------------


def _meminfo(field: str) -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def total_memory() -> int:
    """Physical memory in bytes (``MemTotal``, else ``sysconf``)."""
    value = _meminfo("MemTotal")
    if value is None:
        try:
            value = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            value = 8 << 30
    return int(value)


def available_memory() -> int:
    """Memory this process may still allocate (``MemAvailable``, else ``sysconf``)."""
    value = _meminfo("MemAvailable")
    if value is None:
        try:
            value = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            value = total_memory()
    return int(value)


def _format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


# ------------------------------------------------------------------------------------------
# the worker thread
# ------------------------------------------------------------------------------------------


class _Worker:
    """One long-lived daemon thread that runs background jobs in submission order.

    Jobs use every core, so running them one at a time loses nothing; a persistent thread
    also keeps its OpenMP thread team (GNU OpenMP builds one per calling thread, which cost
    ~10 ms per job with a thread per job). Restarted after ``fork``.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Any, tuple[Any, ...]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Any, *args: Any) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._loop, args=(self._queue,),
                                                name="hal-sim-worker", daemon=True)
                self._thread.start()
            self._queue.put((fn, args))

    @staticmethod
    def _loop(jobs: queue.SimpleQueue[tuple[Any, tuple[Any, ...]]]) -> None:
        while True:
            fn, args = jobs.get()
            try:
                fn(*args)
            except Exception:
                logger.exception("sim worker: a background task failed")


_worker = _Worker()


# ------------------------------------------------------------------------------------------
# options
# ------------------------------------------------------------------------------------------


def _int_option(spec: Mapping[str, Any], key: str, minimum: int, maximum: int | None = None,
                default: int | None = None) -> int | None:
    value = spec.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigurationError(f"sim: option {key!r} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ConfigurationError(f"sim: option {key!r} must be >= {minimum}{upper}, got {value}")
    return int(value)


def _method_option(spec: Mapping[str, Any]) -> str:
    """The spec's ``method``, else the configuration's ``simulator.method``."""
    method = spec.get("method")
    if method is None:
        from hal_workflow import config

        method = config.get("simulator.method", "auto")
    if method not in METHODS:
        raise ConfigurationError(
            f"sim: option 'method' must be one of {', '.join(METHODS)}, got {method!r}")
    return str(method)


def _parse_options(spec: Mapping[str, Any]) -> tuple[EngineOptions, int | None, int | None]:
    unknown = sorted(set(spec) - _OPTIONS)
    if unknown:
        raise ConfigurationError(
            f"sim: unknown option(s) {', '.join(map(repr, unknown))}; known options: "
            f"{', '.join(sorted(_OPTIONS - {'name'}))}"
        )
    precision = spec.get("precision", "complex128")
    if precision not in DTYPES:
        raise ConfigurationError(
            f"sim: option 'precision' must be one of {sorted(DTYPES)}, got {precision!r}"
        )
    fusion = spec.get("fusion", True)
    if not isinstance(fusion, bool):
        raise ConfigurationError(f"sim: option 'fusion' must be true or false, got {fusion!r}")
    seed = _int_option(spec, "seed", 0)
    memory = _int_option(spec, "max_memory_bytes", 1)
    options = EngineOptions(
        precision=precision,
        fusion=fusion,
        max_fused_qubits=_int_option(spec, "max_fused_qubits", 1, 5, 4) or 4,
        block_qubits=_int_option(spec, "block_qubits", 2, 14),
        blocking_threshold=_int_option(spec, "blocking_threshold", 4, None, 16) or 16,
        threads=_int_option(spec, "threads", 1),
    )
    return options, seed, memory


# ------------------------------------------------------------------------------------------
# the backend
# ------------------------------------------------------------------------------------------


class SimulatorBackend(Backend):
    """The default statevector simulator (see the module docstring for options)."""

    records_jobs = True
    """Its job table writes every job to the job journal (so ``sync`` need not)."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self._options, self._seed, self._max_memory = _parse_options(spec)
        self._method = _method_option(spec)
        self._jobs = LocalJobTable(f"{NAME}-{secrets.token_hex(3)}", spec)
        self._plans: OrderedDict[Any, Executable] = OrderedDict()
        self._plans_lock = threading.Lock()
        self._pinned: dict[str, dict[Any, Executable]] = {}
        self._waiters: dict[str, list[Any]] = {}
        self._waiters_lock = threading.Lock()
        self._closed = False
        self._itemsize = self._options.dtype.itemsize
        super().__init__(spec)
        # no warm-up: each kernel compiles (or loads) on first use, small states run on NumPy
        # meanwhile, and jobs that must wait for numba wait on a thread (kernels.Kernel)

    # -- capabilities -----------------------------------------------------------------------
    def _discover_capabilities(self) -> Capabilities:
        fits = int(math.log2(max(total_memory() // self._itemsize, 2)))
        self._statevector_qubits = max(1, min(MAX_QUBITS, fits))
        widest = self._statevector_qubits if self._method == "statevector" else max(
            self._statevector_qubits, stabilizer.MAX_QUBITS)
        return Capabilities(
            name=NAME,
            num_qubits=widest,
            gate_set=GATE_SET,
            coupling_map=None,
            max_shots=MAX_SHOTS,
            simulator=True,
            supports_measurement=True,
            supports_reset=True,
            supports_mid_circuit_measurement=True,
            extensions=frozenset({"batch", "sessions", "statevector"}),
        )

    def _extensions(self) -> Mapping[str, object]:
        return {
            "batch": SimulatorBatch(self),
            "sessions": SimulatorSessions(self),
            "statevector": StatevectorExtension(self),
        }

    @property
    def options(self) -> EngineOptions:
        return self._options

    # -- circuits and plans ---------------------------------------------------------------
    def _key_and_lowered(self, circuit: CircuitLike) -> tuple[Any, Any]:
        if isinstance(circuit, str):
            return circuit, None
        if isinstance(circuit, Circuit):
            return circuit.qasm, circuit
        if isinstance(circuit, LoweredCircuit):
            return ("lowered", id(circuit)), circuit
        converted = as_circuit(circuit)  # a registered framework circuit (QuantumCircuit...)
        return converted.qasm, converted

    def executable(self, circuit: CircuitLike, session: str | None = None) -> Executable:
        """The compiled plan of ``circuit`` (cached per circuit text).

        Raises ``CircuitError`` for text that does not parse and ``ValidationError``
        (GATE_NOT_SUPPORTED) for an operation the simulator cannot run.
        """
        key, obj = self._key_and_lowered(circuit)
        if session is not None:
            found = self._pinned.get(session, {}).get(key)
            if found is not None:
                return found
        with self._plans_lock:
            found = self._plans.get(key)
            if found is not None:
                self._plans.move_to_end(key)
        if found is not None and isinstance(obj, LoweredCircuit) and found.lowered is not obj:
            found = None  # an id() reused by a newer object
        if found is None:
            if obj is None:
                obj = as_circuit(key)  # the conversion registry's parse, shared
            lowered = obj if isinstance(obj, LoweredCircuit) else obj.lowered
            try:
                found = Executable(lowered, self._options)
            except (KeyError, ValueError) as exc:
                message = exc.args[0] if exc.args else str(exc)
                raise ValidationError(
                    [ValidationIssue(ValidationCode.GATE_NOT_SUPPORTED, f"{message}")], NAME
                ) from exc
            found.memory_budget = self._memory_limit()
            with self._plans_lock:
                self._plans[key] = found
                while len(self._plans) > PLAN_CACHE_SIZE:
                    self._plans.popitem(last=False)
        if session is not None and session in self._pinned:
            self._pinned[session][key] = found
        return found

    @staticmethod
    def _program_text(circuit: CircuitLike) -> str | None:
        if isinstance(circuit, str):
            return circuit
        if isinstance(circuit, Circuit):
            return circuit.qasm
        if isinstance(circuit, LoweredCircuit):
            return None
        return as_circuit(circuit).qasm

    # -- validation -----------------------------------------------------------------------
    def _memory_limit(self) -> int:
        available = available_memory()
        return available if self._max_memory is None else min(available, self._max_memory)

    def _issues(self, exe: Executable, shots: int | None,
                parameters: Mapping[str, float] | None,
                check_unbound: bool) -> list[ValidationIssue]:
        issues: list[ValidationIssue] = []
        caps = self._capabilities
        n = exe.num_qubits
        if n > caps.num_qubits:
            issues.append(ValidationIssue(
                ValidationCode.TOO_MANY_QUBITS,
                f"circuit has {n} qubits; sim ({self._options.precision}) simulates at most "
                f"{caps.num_qubits} on this machine",
            ))
        elif n > self._statevector_qubits:
            issues.append(ValidationIssue(
                ValidationCode.TOO_MANY_QUBITS,
                f"circuit has {n} qubits and is not a Clifford circuit (as bound): the "
                f"statevector method simulates at most {self._statevector_qubits} here; "
                f"Clifford circuits run on the stabilizer method up to {caps.num_qubits}",
            ))
        else:
            copies = 2 if exe.per_shot else 1
            needed = copies * (1 << n) * self._itemsize
            if needed > (64 << 20) or self._max_memory is not None:  # small states fit: skip /proc
                limit = self._memory_limit()
                if needed > limit:
                    source = ("max_memory_bytes" if self._max_memory is not None
                              and self._max_memory <= available_memory() else "available memory")
                    issues.append(ValidationIssue(
                        ValidationCode.RESOURCE_LIMIT,
                        f"{n} qubits need {needed} bytes ({_format_bytes(needed)}, "
                        f"{copies} x 2^{n} {self._options.precision} amplitudes); "
                        f"{limit} bytes ({_format_bytes(limit)}) available ({source})",
                    ))
        issues += self._shots_issues(shots)
        if check_unbound:
            missing = exe.missing(parameters)
            if missing:
                issues.append(ValidationIssue(
                    ValidationCode.UNBOUND_PARAMETERS,
                    f"unbound input parameter(s): {', '.join(missing)}",
                ))
        return issues

    def _shots_issues(self, shots: int | None) -> list[ValidationIssue]:
        maximum = self._capabilities.max_shots
        integral = isinstance(shots, (int, np.integer)) and not isinstance(shots, bool)
        if shots is None or (integral and 1 <= shots <= maximum):
            return []
        return [ValidationIssue(
            ValidationCode.SHOTS_OUT_OF_RANGE,
            f"shots must be an integer between 1 and {maximum}, got {shots!r}",
        )]

    # -- the stabilizer method ------------------------------------------------------------
    def _stabilizer_plan(self, circuit: CircuitLike, parameters: Mapping[str, float]
                         ) -> stabilizer.StabilizerProgram | None:
        """The stabilizer program of ``circuit`` as bound, when the method takes it (see the
        module docstring); None sends it to the statevector method. With method
        ``"stabilizer"`` a non-Clifford circuit is a ValidationError."""
        if self._method == "statevector":
            return None
        lowered = circuit if isinstance(circuit, LoweredCircuit) else as_circuit(circuit).lowered
        n = lowered.num_qubits
        if n > stabilizer.MAX_QUBITS or set(lowered.parameters) - set(parameters):
            return None  # too wide for any method, or unbound: the checks below report it
        if self._method == "auto" and n <= AUTO_STABILIZER_QUBITS:
            return None
        program = stabilizer.compile_clifford(lowered, parameters)
        if program is None and self._method == "stabilizer":
            raise ValidationError([ValidationIssue(
                ValidationCode.GATE_NOT_SUPPORTED,
                "method 'stabilizer' runs Clifford circuits only (h, s, cx, ..., rotations by "
                "multiples of pi/2); this circuit has another gate as bound",
            )], NAME)
        return program

    def _submit_stabilizer(self, program: stabilizer.StabilizerProgram, shots: int,
                           parameters: Mapping[str, float] | None, seed: int,
                           text: str | None) -> JobId:
        ValidationResult(tuple(self._shots_issues(shots))).raise_for_issues(NAME)
        # a program sampled before (outcome space known) costs table lookups: run inline
        inline = program.cheap and shots <= INLINE_STABILIZER_SHOTS
        job = self._jobs.create(circuit=text, shots=shots, parameters=parameters,
                                publish=not inline)

        def work(job: LocalJob) -> ExecutionResult:
            start = time.perf_counter()
            rng = np.random.Generator(np.random.PCG64(seed))
            counts = program.sample(shots, rng, job.cancel_event.is_set)
            return ExecutionResult(
                counts=counts, shots=shots, job_id=job.job_id, backend=NAME,
                timings={"execution_s": time.perf_counter() - start}, executed_program=text,
                metadata={"seed": seed, "method": "stabilizer"})

        if inline:
            self._jobs.run(job, work)
        else:
            _worker.submit(self._run_and_notify, job, work)
        return JobId(job.job_id)

    def _check_parameters(self, exe: Executable, parameters: Mapping[str, float] | None) -> None:
        if not parameters:
            return
        unknown = sorted(set(parameters) - set(exe.parameters))
        if unknown:
            free = ", ".join(exe.parameters) or "none"
            raise CircuitError(
                f"unknown parameter(s) {', '.join(unknown)} (free parameters: {free})"
            )
        for name, value in parameters.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not math.isfinite(float(value)):
                raise CircuitError(f"parameter {name!r} must be a finite number, got {value!r}")

    async def validate(self, circuit: CircuitLike, shots: int | None = None,
                       parameters: Mapping[str, float] | None = None) -> ValidationResult:
        """Every reason ``circuit`` cannot run. ``parameters``, when given, must bind every
        ``input`` (UNBOUND_PARAMETERS otherwise); ``submit`` always checks that."""
        try:
            if self._method != "statevector":
                program = await asyncio.to_thread(self._stabilizer_plan, circuit,
                                                  as_bindings(parameters) or {})
                if program is not None:
                    return ValidationResult(tuple(self._shots_issues(shots)))
            if self._parse_off_loop(circuit):
                exe = await asyncio.to_thread(self.executable, circuit)
            else:
                exe = self.executable(circuit)
        except ValidationError as exc:
            return ValidationResult(exc.issues)
        if parameters is not None:
            self._check_parameters(exe, parameters)
        return ValidationResult(tuple(self._issues(exe, shots, parameters, parameters is not None)))

    def _checked(self, circuit: CircuitLike, shots: int, parameters: Mapping[str, float] | None,
                 session: str | None = None) -> Executable:
        exe = self.executable(circuit, session)
        self._check_parameters(exe, parameters)
        issues = self._issues(exe, shots, parameters, True)
        if issues:
            raise ValidationError(issues, NAME)
        return exe

    # -- jobs -----------------------------------------------------------------------------
    async def availability(self) -> BackendAvailability:
        return BackendAvailability(AvailabilityStatus.ONLINE, queue_depth=0, estimated_wait_s=0.0)

    def _job_seed(self, seed: int | None) -> int:
        if seed is not None:
            return int(seed)
        if self._seed is not None:
            return self._seed
        return secrets.randbits(63)

    def _inline(self, exe: Executable, elements: int = 1) -> bool:
        """Whether running ``exe`` (``elements`` times) is cheap enough for the caller's loop."""
        return (not exe.per_shot and exe.num_qubits <= INLINE_MAX_QUBITS
                and elements * max(1, exe.gate_count) << exe.num_qubits <= INLINE_WORK
                and kernels.is_compiled(exe.dtype, exe.num_qubits))

    def _parse_off_loop(self, circuit: CircuitLike) -> bool:
        """Whether ``circuit`` is long program text (or a Circuit of one) not planned yet."""
        text = circuit if isinstance(circuit, str) else getattr(circuit, "qasm", None)
        if not isinstance(text, str) or len(text) <= INLINE_PARSE_CHARS:
            return False
        with self._plans_lock:
            if text in self._plans:
                return False
        if self._method != "statevector":  # a known Clifford program needs no plan
            parsed = cached_circuit(text)
            return parsed is None or not stabilizer.is_compiled(parsed.lowered)
        return True

    def _result(self, job: LocalJob, exe: Executable, counts: dict[str, int], shots: int,
                seed: int, elapsed: float, program: str | None, **extra: Any) -> ExecutionResult:
        metadata = {"seed": seed, "precision": self._options.precision, "method": exe.mode,
                    "plan": exe.plan_summary(), **extra}
        return ExecutionResult(counts=counts, shots=shots, job_id=job.job_id, backend=NAME,
                               timings={"execution_s": elapsed}, executed_program=program,
                               metadata=metadata)

    def _work(self, exe: Executable, shots: int, parameters: Mapping[str, float] | None,
              seed: int, program: str | None) -> Any:
        threads = self._options.threads

        def work(job: LocalJob) -> ExecutionResult:
            start = time.perf_counter()
            run = make_run(threads, job.cancel_event.is_set)
            rng = np.random.Generator(np.random.PCG64(seed))
            counts = exe.sample(shots, parameters, rng, run)
            return self._result(job, exe, counts, shots, seed, time.perf_counter() - start,
                                program)

        return work

    def _start(self, exe: Executable, work: Any, program: str | None, shots: int,
               parameters: Mapping[str, float] | None) -> JobId:
        inline = self._inline(exe)
        job = self._jobs.create(circuit=program, shots=shots, parameters=parameters,
                                publish=not inline)
        if inline:
            self._jobs.run(job, work)
        else:
            _worker.submit(self._run_and_notify, job, work)
        return JobId(job.job_id)

    def _run_and_notify(self, job: LocalJob, work: Any) -> None:
        self._jobs.run(job, work)
        self._notify(job.job_id)

    def _notify(self, job_id: str) -> None:
        """Wake the coroutines waiting for ``job_id`` (on whatever loops they run)."""
        with self._waiters_lock:
            callbacks = self._waiters.pop(job_id, [])
        for wake in callbacks:
            wake()

    async def _until_done(self, job: LocalJob, timeout: float | None) -> bool:
        """Wait for ``job`` without polling and without a helper thread; False on timeout."""
        if job.done.is_set():
            return True
        if job.foreign:  # it runs in another process: follow it through the journal
            return (await self._jobs.until_done(job, timeout)).done.is_set()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def settle() -> None:
            if not future.done():
                future.set_result(None)

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(settle)

        with self._waiters_lock:
            self._waiters.setdefault(job.job_id, []).append(wake)
        if job.done.is_set():  # finished while we registered
            settle()
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            return job.done.is_set()
        return True

    async def submit(self, circuit: CircuitLike, shots: int,
                     parameters: Mapping[str, float] | None = None, *,
                     seed: int | None = None) -> JobId:
        """Validate, then run ``circuit`` (inline when small, else on a worker thread)."""
        if self._parse_off_loop(circuit):
            return await asyncio.to_thread(self._submit, circuit, shots, parameters, seed)
        return self._submit(circuit, shots, parameters, seed)

    async def run(self, circuit: CircuitLike, shots: int,
                  parameters: Mapping[str, float] | None = None,
                  timeout: float | None = None) -> ExecutionResult:
        """Submit, wait and fetch the result in one call; a job that completed inside
        ``submit`` (a small circuit) is read back at once, without the waiting machinery."""
        job_id = await self.submit(circuit, shots, parameters)
        job = self._jobs.get(job_id)
        if job.done.is_set() and job.state is JobState.COMPLETED:
            return await self._jobs.result(job_id)
        return await self.result_when_done(job_id, timeout=timeout)

    def _submit(self, circuit: CircuitLike, shots: int, parameters: Mapping[str, float] | None,
                seed: int | None, session: str | None = None) -> JobId:
        if self._closed:
            raise HalError("sim: backend is closed")
        parameters = as_bindings(parameters)
        program = self._stabilizer_plan(circuit, parameters or {})
        if program is not None:
            return self._submit_stabilizer(program, shots, parameters, self._job_seed(seed),
                                           self._program_text(circuit))
        exe = self._checked(circuit, shots, parameters, session)
        job_seed = self._job_seed(seed)
        program = self._program_text(circuit)
        work = self._work(exe, shots, parameters, job_seed, program)
        return self._start(exe, work, program, shots, parameters)

    async def status(self, job_id: str) -> JobStatus:
        return self._jobs.status(job_id)

    async def result(self, job_id: str) -> ExecutionResult:
        await self._until_done(self._jobs.get(job_id), None)
        return await self._jobs.result(job_id)

    async def cancel(self, job_id: str) -> None:
        self._jobs.cancel(job_id)
        if self._jobs.get(job_id).done.is_set():
            self._notify(job_id)  # cancelled while queued: it will never run

    async def wait(self, job_id: str, timeout: float | None = None, poll_interval: float = 0.01,
                   max_poll_interval: float = 2.0, backoff: float = 1.5) -> JobStatus:
        """Wait for the job to end. Jobs live in this process, so this waits on their
        completion instead of polling (the polling arguments are accepted and unused)."""
        if not await self._until_done(self._jobs.get(job_id), timeout):
            status = self._jobs.status(job_id)
            raise HalTimeoutError(f"job {job_id} still {status.state.value} after {timeout} s")
        return self._jobs.status(job_id)

    async def aclose(self) -> None:
        self._closed = True

    # -- batches --------------------------------------------------------------------------
    def _sweep(self, circuit: CircuitLike, bindings: Sequence[Mapping[str, float]],
               shots: int, seed: int | None) -> list[JobId]:
        if self._closed:
            raise HalError("sim: backend is closed")
        bindings = [as_bindings(b) or {} for b in bindings]
        if self._method != "statevector" and bindings:
            programs = [self._stabilizer_plan(circuit, b) for b in bindings]
            if all(p is not None for p in programs):  # element i seeded seed + i, as below
                base, text = self._job_seed(seed), self._program_text(circuit)
                return [self._submit_stabilizer(p, shots, b, base + i, text)  # type: ignore[arg-type]
                        for i, (p, b) in enumerate(zip(programs, bindings, strict=True))]
        exe = self.executable(circuit)
        for binding in bindings:
            self._check_parameters(exe, binding)
        issues = self._issues(exe, shots, None, False)
        missing = sorted({p for b in bindings for p in exe.missing(b)})
        if missing:
            issues.append(ValidationIssue(
                ValidationCode.UNBOUND_PARAMETERS,
                f"unbound input parameter(s) in the sweep: {', '.join(missing)}",
            ))
        if issues:
            raise ValidationError(issues, NAME)
        job_seed = self._job_seed(seed)
        seeds = [job_seed + i for i in range(len(bindings))]
        program = self._program_text(circuit)
        if not bindings:
            return []
        batched = (not exe.per_shot and exe.num_qubits <= SMALL_SAMPLE_QUBITS
                   and kernels.is_compiled(exe.dtype, exe.num_qubits))
        inline = batched and self._inline(exe, len(bindings))
        jobs = [self._jobs.create(circuit=program, shots=shots, parameters=binding,
                                  publish=not inline) for binding in bindings]

        def run_all() -> None:
            if batched:
                start = time.perf_counter()
                all_counts = exe.sample_batch(shots, bindings, seeds,
                                              make_run(self._options.threads))
                each = (time.perf_counter() - start) / len(jobs)
                for job, counts, s in zip(jobs, all_counts, seeds, strict=True):
                    result = self._result(job, exe, counts, shots, s, each, program)
                    self._run_and_notify(job, lambda _job, r=result: r)
                return
            for job, binding, s in zip(jobs, bindings, seeds, strict=True):
                self._run_and_notify(job, self._work(exe, shots, binding, s, program))

        if inline:
            run_all()
        else:
            _worker.submit(run_all)
        return [JobId(job.job_id) for job in jobs]


class SimulatorBatch:
    """The ``batch`` extension: many circuits, or one circuit over many bindings, at once."""

    def __init__(self, backend: SimulatorBackend) -> None:
        self._backend = backend

    async def submit_batch(self, circuits: Sequence[CircuitLike], shots: int, *,
                           seed: int | None = None) -> list[JobId]:
        """One job per circuit, in order; element ``i`` uses seed ``seed + i``."""
        base = self._backend._job_seed(seed)
        return [self._backend._submit(c, shots, None, base + i) for i, c in enumerate(circuits)]

    async def submit_sweep(self, circuit: CircuitLike, bindings: Sequence[Mapping[str, float]],
                           shots: int, *, seed: int | None = None) -> list[JobId]:
        """One job per binding of ``circuit``'s inputs; binding ``i`` uses seed ``seed + i``.
        The circuit is compiled once; each binding only re-evaluates its parameter-dependent
        matrices, and small circuits run every binding in one batched kernel call."""
        bindings = list(bindings)
        if len(bindings) > INLINE_BINDINGS or self._backend._parse_off_loop(circuit):
            # checking and creating thousands of jobs is itself too long for the loop
            return await asyncio.to_thread(self._backend._sweep, circuit, bindings, shots, seed)
        return self._backend._sweep(circuit, bindings, shots, seed)


class SimulatorSession:
    """A session: jobs submitted through it reuse compiled plans pinned for its lifetime."""

    def __init__(self, backend: SimulatorBackend, session_id: str) -> None:
        self._backend = backend
        self._id = session_id

    @property
    def session_id(self) -> str:
        return self._id

    async def submit(self, circuit: CircuitLike, shots: int,
                     parameters: Mapping[str, float] | None = None, *,
                     seed: int | None = None) -> JobId:
        if self._id not in self._backend._pinned:  # left the context: the session is closed
            raise SubmissionError(f"session {self._id} is closed")
        if self._backend._parse_off_loop(circuit):
            return await asyncio.to_thread(self._backend._submit, circuit, shots, parameters,
                                           seed, self._id)
        return self._backend._submit(circuit, shots, parameters, seed, session=self._id)


class SimulatorSessions:
    """The ``sessions`` extension (plans stay compiled while the session is open)."""

    def __init__(self, backend: SimulatorBackend) -> None:
        self._backend = backend

    @contextlib.asynccontextmanager
    async def session(self, max_time_s: float | None = None) -> AsyncIterator[SimulatorSession]:
        session_id = f"{NAME}-session-{secrets.token_hex(4)}"
        self._backend._pinned[session_id] = {}
        try:
            yield SimulatorSession(self._backend, session_id)
        finally:
            self._backend._pinned.pop(session_id, None)


class StatevectorExtension:
    """Exact answers: amplitudes, probabilities and Pauli expectation values.

    Amplitude ``i`` belongs to the basis state whose bit ``q`` is qubit ``q`` (little-endian,
    as ``qiskit.quantum_info.Statevector``), global phase included. Final measurements are
    ignored; circuits with mid-circuit measurement, reset or ``if`` have no single final
    state and raise ``ValidationError`` (UNSUPPORTED_FEATURE).
    """

    def __init__(self, backend: SimulatorBackend) -> None:
        self._backend = backend

    def _exact(self, circuit: CircuitLike, parameters: Mapping[str, float] | None) -> Executable:
        backend = self._backend
        parameters = as_bindings(parameters)
        exe = backend.executable(circuit)
        backend._check_parameters(exe, parameters)
        issues = backend._issues(exe, None, parameters, True)
        if exe.per_shot:
            issues.append(ValidationIssue(
                ValidationCode.UNSUPPORTED_FEATURE,
                "the circuit measures or resets mid-circuit (or branches on a measurement), "
                "so it has no single final state; sample it with submit() instead",
            ))
        if issues:
            raise ValidationError(issues, NAME)
        return exe

    def _state(self, exe: Executable, parameters: Mapping[str, float] | None) -> np.ndarray:
        run = make_run(self._backend.options.threads)
        values = exe.values([parameters or {}]) if exe.parameters else None
        state = exe.final_states(values, 1, run)[0]
        return exe.logical(state, values, run)

    async def _call(self, exe: Executable, fn: Any) -> Any:
        if self._backend._inline(exe):
            return fn()
        return await asyncio.to_thread(fn)

    async def statevector(self, circuit: CircuitLike,
                          parameters: Mapping[str, float] | None = None) -> np.ndarray:
        """The final state as a ``2^n`` complex array (the spec's precision)."""
        exe = self._exact(circuit, parameters)
        parameters = as_bindings(parameters)
        return await self._call(exe, lambda: self._state(exe, parameters))

    async def probabilities(self, circuit: CircuitLike,
                            parameters: Mapping[str, float] | None = None) -> np.ndarray:
        """``|amplitude|^2`` of every basis state (float64, same indexing)."""
        exe = self._exact(circuit, parameters)
        parameters = as_bindings(parameters)

        def probs() -> np.ndarray:
            state = self._state(exe, parameters)
            return state.real.astype(np.float64) ** 2 + state.imag.astype(np.float64) ** 2

        return await self._call(exe, probs)

    async def expectation(self, circuit: CircuitLike, observable: Any,
                          parameters: Mapping[str, float] | None = None) -> float:
        """``<observable>`` of the final state: any form :func:`~hal_workflow.circuits.
        observables.as_observable` reads (a ``PauliSum``, ``{label: coeff}``, ``(label,
        coeff)`` pairs, a ``SparsePauliOp``); labels in Qiskit order (rightmost = qubit 0).
        Bad observables raise ``ValidationError`` naming the term."""
        exe = self._exact(circuit, as_bindings(parameters))
        values = await self.expectations(circuit, [observable], [parameters or {}], exe=exe)
        return float(values[0, 0])

    async def expectations(self, circuit: CircuitLike, observables: Sequence[Any],
                           bindings: Sequence[Mapping[str, float]], *,
                           exe: Executable | None = None) -> np.ndarray:
        """``<observables[o]>`` at every binding: a ``(len(bindings), len(observables))``
        float64 array. The circuit is compiled once, the states are computed in batches and
        the terms folded by X mask (:mod:`hal_workflow.simulator.expectation`)."""
        from hal_workflow.simulator.expectation import expectation_values, folded_diagonals

        folded: list[Any] = []

        def per_chunk(states: np.ndarray, paulis: list[Any], exe: Executable,
                      start: int) -> np.ndarray:
            if not folded:
                folded.append(folded_diagonals(paulis, exe.perm))
            return expectation_values(states, paulis, exe.perm, folded[0])

        (values,) = await self._over_states(circuit, observables, bindings, per_chunk, exe)
        return values

    async def measured_expectations(self, circuit: CircuitLike, observables: Sequence[Any],
                                    bindings: Sequence[Mapping[str, float]], shots: int, *,
                                    seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Estimates of ``<observables[o]>`` from ``shots`` measurements per qubit-wise
        commuting basis, and the variance of each: two ``(len(bindings), len(observables))``
        arrays. Binding ``i`` is sampled with seed ``seed + i`` (see
        :func:`hal_workflow.simulator.expectation.measured_expectations`): the distribution
        of running each basis circuit, without evolving the state once per basis."""
        from hal_workflow.simulator.expectation import measured_expectations

        if not (isinstance(shots, int) and 1 <= shots <= MAX_SHOTS):
            raise ValidationError([ValidationIssue(
                ValidationCode.SHOTS_OUT_OF_RANGE,
                f"shots must be an integer between 1 and {MAX_SHOTS}, got {shots!r}")], NAME)
        base = self._backend._job_seed(seed)

        def per_chunk(states: np.ndarray, paulis: list[Any], exe: Executable,
                      start: int) -> tuple[np.ndarray, np.ndarray]:
            seeds = [base + start + i for i in range(states.shape[0])]
            return measured_expectations(states, paulis, exe.perm, shots, seeds)

        means, variances = await self._over_states(circuit, observables, bindings, per_chunk)
        return means, variances

    async def _over_states(self, circuit: CircuitLike, observables: Sequence[Any],
                           bindings: Sequence[Mapping[str, float]], per_chunk: Any,
                           exe: Executable | None = None) -> tuple[np.ndarray, ...]:
        """``per_chunk(states, paulis, exe, start)`` over the final states of every binding,
        computed in chunks of :data:`EXPECTATION_CHUNK_BYTES`; its arrays concatenated."""
        from hal_workflow.circuits.observables import as_observable

        named = [as_bindings(b) or {} for b in bindings]
        if not named:
            empty = np.zeros((0, len(observables)), dtype=np.float64)
            return empty, empty
        if exe is None:
            exe = self._exact(circuit, named[0])
        for binding in named[1:]:
            self._backend._check_parameters(exe, binding)
        missing = sorted({p for b in named for p in exe.missing(b)})
        if missing:
            raise ValidationError([ValidationIssue(
                ValidationCode.UNBOUND_PARAMETERS,
                f"unbound input parameter(s): {', '.join(missing)}")], NAME)
        paulis = [as_observable(o, exe.num_qubits) for o in observables]
        checked = exe

        def compute() -> tuple[np.ndarray, ...]:
            run = make_run(self._backend.options.threads)
            per_state = (1 << checked.num_qubits) * self._backend._itemsize
            chunk = max(1, EXPECTATION_CHUNK_BYTES // per_state)
            parts = []
            for start in range(0, len(named), chunk):
                part = named[start:start + chunk]
                values = checked.values(part) if checked.parameters else None
                states = checked.final_states(values, len(part), run)
                run.check()
                result = per_chunk(states, paulis, checked, start)
                parts.append(result if isinstance(result, tuple) else (result,))
            return tuple(np.concatenate(arrays) for arrays in zip(*parts, strict=True))

        if len(named) * (1 << exe.num_qubits) <= (1 << INLINE_MAX_QUBITS) \
                and kernels.is_compiled(exe.dtype):
            return compute()
        return await asyncio.to_thread(compute)


__all__ = [
    "SimulatorBackend",
    "SimulatorBatch",
    "SimulatorSession",
    "SimulatorSessions",
    "StatevectorExtension",
    "available_memory",
    "total_memory",
]
