"""The conformance kit: checks one backend against ``docs/contract-v1.md``.

A backend package runs the whole kit on its adapter with one subclass in its own tests::

    from hal_workflow.testing import ConformanceSuite

    class TestMyBackend(ConformanceSuite):
        backend_spec = {"name": "mine", "device": "lab-5q"}

or, without writing a file, ``pytest --hal-backend '{"name": "mine"}'`` (see ``plugin``).
Every check is its own test method, so a report names the promise that was broken.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import gc
import itertools
import math
import pickle
import tempfile
import time
import traceback
import weakref
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import pytest

from hal_workflow.contract import (
    CONTRACT_VERSION,
    EXTENSION_NAMES,
    BackendAvailability,
    BatchExtension,
    CalibrationExtension,
    CalibrationSnapshot,
    Capabilities,
    CircuitError,
    ConfigurationError,
    ExecutionResult,
    HalError,
    HalTimeoutError,
    JobCancelledError,
    JobNotFoundError,
    JobState,
    JobStatus,
    PulseExtension,
    Session,
    SessionExtension,
    ValidationCode,
    ValidationError,
    ValidationResult,
    submit_many,
)
from hal_workflow.contract.backend import _SECRET_KEY
from hal_workflow.contract.secrets import reveal
from hal_workflow.testing import circuits

if TYPE_CHECKING:
    from hal_workflow.contract import Backend

_T = TypeVar("_T")

# The long job sized for each backend under test (sized once per backend object).
_SIZED: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
# Most gates the sizing puts in one program before widening instead (parsing cost), and at
# the backend's full width.
_MAX_LONG_GATES = 10_000
_MAX_SIZED_GATES = 200_000

_PROTOCOLS: dict[str, type] = {
    "batch": BatchExtension,
    "sessions": SessionExtension,
    "calibration": CalibrationExtension,
    "pulse": PulseExtension,
}


KNOBS = (
    "noisy", "shots", "sigmas", "plausible_fraction", "timeout", "poll_interval",
    "max_poll_interval", "jobs_outlive_process", "long_circuit", "bell_circuit", "ghz_circuit",
    "rotation_circuit", "bit_order_circuit", "unknown_job_id", "max_loop_block_s",
    "cancel_window_s", "cancels_running_jobs", "loop_sweep_size",
)
"""The class attributes that tune the suite (documented on :class:`ConformanceSuite`)."""


@dataclass
class JobTrace:
    """Everything observed about one job, polled from submit until well after it ended."""

    job_id: str
    statuses: list[JobStatus] = field(default_factory=list)
    after_terminal: list[JobStatus] = field(default_factory=list)
    result: ExecutionResult | None = None
    result_again: ExecutionResult | None = None

    @property
    def final(self) -> JobStatus:
        return self.statuses[-1]


class Harness:
    """Runs a backend's coroutines on the suite's event loop and polices what escapes.

    Any exception that is not a :class:`HalError` fails the test with a message naming the
    call, as does a call that does not return within ``timeout`` seconds.
    """

    def __init__(self, suite: ConformanceSuite, backend: Backend, loop: asyncio.AbstractEventLoop):
        self.suite = suite
        self.backend = backend
        self.loop = loop
        self.block_stacks = ""  # see loop_blocked_for

    def run(self, awaitable: Awaitable[_T], what: str, timeout: float | None = None) -> _T:
        limit = timeout if timeout is not None else 2 * self.suite.timeout
        try:
            return self.loop.run_until_complete(asyncio.wait_for(awaitable, limit))
        except HalError:
            raise
        except asyncio.TimeoutError:
            pytest.fail(f"{what} did not return within {limit} s", pytrace=False)
        except Exception as exc:
            where = "".join(traceback.format_exception(exc)[-12:])
            pytest.fail(
                f"{what} raised {type(exc).__module__}.{type(exc).__name__} ({exc}); the "
                f"contract allows only HalError subclasses to escape.\n{where}",
                pytrace=False,
            )

    async def trace(
        self, circuit: Any, shots: int, parameters: Mapping[str, float] | None = None
    ) -> JobTrace:
        """Submit, poll ``status`` until terminal (recording every state), fetch the result."""
        suite, backend = self.suite, self.backend
        trace = JobTrace(await backend.submit(circuit, shots, parameters))
        deadline = time.monotonic() + suite.timeout
        interval = suite.poll_interval
        while True:
            status = await backend.status(trace.job_id)
            trace.statuses.append(status)
            if status.is_terminal:
                break
            if time.monotonic() > deadline:
                raise HalTimeoutError(f"job {trace.job_id} not terminal after {suite.timeout} s")
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, suite.max_poll_interval)
        for _ in range(2):
            trace.after_terminal.append(await backend.status(trace.job_id))
        if trace.final.state is JobState.COMPLETED:
            trace.result = await backend.result(trace.job_id)
            trace.result_again = await backend.result(trace.job_id)
        return trace

    async def loop_blocked_for(self, awaitable: Awaitable[_T]) -> tuple[_T, float]:
        """Run ``awaitable`` beside a 5 ms heartbeat; return its value and the longest gap.

        When a gap reaches ``max_loop_block_s``, the stacks of every thread at that moment
        are kept in :attr:`block_stacks` (``faulthandler``'s watchdog, which needs no GIL):
        they name what held the loop.

        The objects alive before the check are frozen out of the garbage collector
        (``gc.freeze``) while it runs: a full collection over the heap of a long test
        session (thousands of earlier tests) can take a second in any thread, and that is
        the test process's cost, not the backend's.
        """
        longest = 0.0
        stop = asyncio.Event()
        bound = self.suite.max_loop_block_s
        self.block_stacks = ""

        async def heartbeat() -> None:
            nonlocal longest
            last = time.monotonic()
            while not stop.is_set():
                faulthandler.dump_traceback_later(bound, file=stacks)
                await asyncio.sleep(0.005)
                now = time.monotonic()
                longest = max(longest, now - last)
                last = now

        gc.collect()
        gc.freeze()
        with tempfile.TemporaryFile("w+") as stacks:
            beat = asyncio.ensure_future(heartbeat())
            await asyncio.sleep(0)
            try:
                value = await awaitable
            finally:
                stop.set()
                await beat
                faulthandler.cancel_dump_traceback_later()
                gc.unfreeze()
            stacks.seek(0)
            self.block_stacks = stacks.read(20_000)
        return value, longest


class ConformanceSuite:
    """The HAL contract v1 conformance checks, as a pytest test-class base.

    Subclass it in a test module under a ``Test*`` name and say which backend to check::

        class TestMyBackend(ConformanceSuite):
            backend_spec = {"name": "mine"}

    The backend is built once per class by :meth:`make_backend` (``get_backend(backend_spec)``
    by default). To build it otherwise, override :meth:`make_backend`, or the ``backend``
    fixture (class-scoped: ``@pytest.fixture(scope="class")`` above ``@classmethod``).

    Knobs (class attributes; override in the subclass):

    ``backend_spec``
        The spec (name or mapping) the backend is built from. Required unless
        :meth:`make_backend` or the ``backend`` fixture is overridden.
    ``noisy``
        ``False``: a simulator (``capabilities().simulator``) must give exact distributions
        within ``sigmas`` binomial standard deviations. ``True`` (and every non-simulator):
        distributions need only be plausible: at least ``plausible_fraction`` of the shots
        on the ideal outcomes, and each ideal outcome seen at least a quarter as often as
        ideal.
    ``shots``
        Shots per job (capped at ``max_shots``). Default 1000.
    ``sigmas``, ``plausible_fraction``
        Tolerances of the distribution checks (defaults 5.0 and 0.8).
    ``timeout``
        Seconds any one job may take to finish. Default 60.
    ``poll_interval``, ``max_poll_interval``
        Status polling while a job is traced (seconds; grows by 1.5x). Defaults 0.002, 0.5.
    ``jobs_outlive_process``
        ``True`` for backends whose jobs live outside this process (cloud services, SLURM
        dispatch): a backend rebuilt from the spec must read a job another instance
        submitted. ``False`` skips that check.
    ``long_circuit``
        OpenQASM 3 text of a job that runs, uncancelled, for at least ``cancel_window_s``.
        ``None``: the kit sizes one from measured runs (:meth:`long_circuit_for`), growing a
        deep circuit's depth and width until a run takes that long.
    ``cancel_window_s``
        How long the kit's long job must run uncancelled (default 2.0 s): long enough that a
        cancel which works always wins the race, so a cancel that does nothing is caught.
    ``cancels_running_jobs``
        ``False`` for a backend whose RUNNING jobs cannot be stopped (a device mid-shot, a
        local SDK call that cannot be interrupted); the running-cancel check is then skipped
        with that reason, and :meth:`queued_job` MUST provide a job held QUEUED instead.
    ``loop_sweep_size``
        Bindings in the sweep the event-loop check runs beside its heartbeat (default 200).
    ``bell_circuit``, ``ghz_circuit``, ``rotation_circuit``, ``bit_order_circuit``
        The circuits of the execution checks (OpenQASM 3 over ``h``, ``cx``, ``ry``, ``x``
        and measurement). A backend without those gates may provide equivalents with the
        same outcomes (the rotation keeps its ``input float theta``).
    ``unknown_job_id``
        A well-formed id that names no job (default: an obviously foreign string).
    ``max_loop_block_s``
        Longest the event loop may be held by one backend call. Default 1.0.

    Hooks (methods): :meth:`make_backend`, :meth:`long_circuit_for`, :meth:`queued_job`,
    :meth:`pulse_program` (required when the backend offers ``pulse``).
    """

    backend_spec: ClassVar[str | Mapping[str, Any] | None] = None
    noisy: ClassVar[bool] = False
    shots: ClassVar[int] = 1000
    sigmas: ClassVar[float] = 5.0
    plausible_fraction: ClassVar[float] = 0.8
    timeout: ClassVar[float] = 60.0
    poll_interval: ClassVar[float] = 0.002
    max_poll_interval: ClassVar[float] = 0.5
    jobs_outlive_process: ClassVar[bool] = False
    long_circuit: ClassVar[str | None] = None
    bell_circuit: ClassVar[str] = circuits.bell()[0]
    ghz_circuit: ClassVar[str] = circuits.ghz(3)[0]
    rotation_circuit: ClassVar[str] = circuits.rotation("theta")
    bit_order_circuit: ClassVar[str] = circuits.bit_order()[0]
    unknown_job_id: ClassVar[str] = "hal-conformance-no-such-job-0000"
    max_loop_block_s: ClassVar[float] = 1.0
    cancel_window_s: ClassVar[float] = 2.0
    cancels_running_jobs: ClassVar[bool] = True
    loop_sweep_size: ClassVar[int] = 200

    # -- hooks -------------------------------------------------------------------------
    def make_backend(self, spec: str | Mapping[str, Any] | None = None) -> Backend:
        """Build the backend under test (``spec`` defaults to ``backend_spec``)."""
        from hal_workflow.backends.registry import get_backend

        spec = self.backend_spec if spec is None else spec
        if spec is None:
            raise pytest.UsageError(
                f"{type(self).__name__}: set backend_spec, or override make_backend() or the "
                "'backend' fixture"
            )
        return get_backend(spec)

    async def long_circuit_for(self, backend: Backend) -> str:
        """The job the cancel and timeout checks use: ``long_circuit``, else one sized here.

        A deep entangling circuit grows (more layers, then more qubits) until one uncancelled
        run of it takes ``cancel_window_s``; the size is measured, not guessed, so the same
        check works on a numba simulator, a slow SDK and a batch scheduler.
        """
        if self.long_circuit is not None:
            return self.long_circuit
        cached = _SIZED.get(backend)
        if cached is not None:
            return cached
        caps = backend.capabilities()
        width, layers = min(caps.num_qubits, 8), 8
        max_width = min(caps.num_qubits, 24)
        async def timed(circuit: str) -> float:
            started = time.monotonic()
            await backend.run(circuit, 1, timeout=self.timeout)
            return time.monotonic() - started

        for _ in range(24):
            circuit = circuits.deep(width, layers)
            elapsed = await timed(circuit)
            if elapsed >= self.cancel_window_s:
                # a first run may be slow for reasons a second does not repeat (kernels
                # compiled, plans built): the job must be long when it is run again
                elapsed = await timed(circuit)
            if elapsed >= self.cancel_window_s:
                _SIZED[backend] = circuit
                return circuit
            factor = min(8.0, max(2.0, 1.5 * self.cancel_window_s / max(elapsed, 1e-3)))
            deeper = int(layers * factor) + 1
            if deeper * (3 * width - 1) <= _MAX_LONG_GATES:
                layers = deeper
            elif width < max_width:  # deeper programs mostly cost parsing: widen the state
                width = min(max_width, width + 2)
            elif deeper * (3 * width - 1) <= _MAX_SIZED_GATES:  # as wide as it gets: deeper
                layers = deeper
            else:
                break
        pytest.fail(
            f"could not size a job that runs {self.cancel_window_s} s on this backend (last: "
            f"{width} qubits x {layers} layers); set long_circuit to such a job, or override "
            "queued_job() and set cancels_running_jobs = False",
            pytrace=False,
        )

    @contextlib.asynccontextmanager
    async def queued_job(self, backend: Backend) -> AsyncIterator[str | None]:
        """Yield the id of a job this backend holds QUEUED (None: it cannot hold one).

        Override for backends that can keep a job waiting (a busy worker, a held scheduler
        job); clean up whatever held it after the ``yield``.
        """
        yield None

    def pulse_program(self, formats: frozenset[str]) -> tuple[Any, int] | None:
        """A pulse payload in one of ``formats`` that this backend runs, with its number of
        classical bits. A backend offering ``pulse`` MUST override this: the kit runs the
        payload and checks its counts, so an extension that accepts nothing fails."""
        return None

    # -- fixtures (class-scoped: one backend, one event loop per class) -----------------
    @pytest.fixture(scope="class")
    @classmethod
    def hal_loop(cls) -> Any:
        loop = asyncio.new_event_loop()
        yield loop
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls, hal_loop: asyncio.AbstractEventLoop) -> Any:
        backend = cls().make_backend()
        yield backend
        hal_loop.run_until_complete(backend.aclose())

    @pytest.fixture(scope="class")
    @classmethod
    def hal(cls, backend: Backend, hal_loop: asyncio.AbstractEventLoop) -> Harness:
        return Harness(cls(), backend, hal_loop)

    @pytest.fixture(scope="class")
    @classmethod
    def caps(cls, backend: Backend) -> Capabilities:
        return backend.capabilities()

    @pytest.fixture(scope="class")
    @classmethod
    def bell_trace(cls, hal: Harness) -> JobTrace:
        suite = hal.suite
        return hal.run(hal.trace(suite.bell_circuit, suite._shots(hal.backend)), "Bell job")

    # -- helpers -----------------------------------------------------------------------
    def _shots(self, backend: Backend) -> int:
        return min(self.shots, backend.capabilities().max_shots)

    def _exact(self, backend: Backend) -> bool:
        return backend.capabilities().simulator and not self.noisy

    def check_counts(self, result: ExecutionResult, shots: int, num_clbits: int) -> None:
        """Counts keys are ``num_clbits`` characters of '0'/'1' and sum to ``shots``."""
        assert isinstance(result, ExecutionResult), f"result() returned {type(result).__name__}"
        assert result.shots == shots, f"result.shots is {result.shots}, {shots} were asked for"
        for key, count in result.counts.items():
            assert isinstance(key, str) and len(key) == num_clbits and set(key) <= {"0", "1"}, (
                f"counts key {key!r} is not a bitstring over all {num_clbits} classical bits"
            )
            assert isinstance(count, int) and count >= 0, f"count of {key!r} is {count!r}"
        total = sum(result.counts.values())
        assert total == shots, f"counts sum to {total}, not {shots}: {dict(result.counts)}"

    def check_distribution(
        self, counts: Mapping[str, int], ideal: Mapping[str, float], exact: bool
    ) -> None:
        """Exact: every outcome within ``sigmas`` binomial deviations of ``ideal`` and none
        outside it. Plausible: ``plausible_fraction`` of the shots on ideal outcomes."""
        shots = sum(counts.values())
        support = {k for k, p in ideal.items() if p > 1e-12}  # rounding is not an outcome
        if exact:
            stray = {k: v for k, v in counts.items() if k not in support and v}
            assert not stray, f"outcomes {stray} are impossible for this circuit: {dict(counts)}"
            for key, p in ideal.items():
                n, mean = counts.get(key, 0), shots * p
                bound = self.sigmas * math.sqrt(shots * p * (1 - p)) + 1e-9
                assert abs(n - mean) <= bound, (
                    f"{key!r} seen {n} times in {shots} shots; ideal {mean:.1f} +- {bound:.1f}"
                )
            return
        on_support = sum(counts.get(k, 0) for k in support)
        assert on_support >= self.plausible_fraction * shots, (
            f"only {on_support}/{shots} shots on the ideal outcomes {sorted(support)}: "
            f"{dict(counts)}"
        )
        for key in support:
            assert counts.get(key, 0) >= ideal[key] * shots / 4, (
                f"ideal outcome {key!r} (p={ideal[key]:.2f}) nearly missing: {dict(counts)}"
            )

    def check_monotonic(self, statuses: list[JobStatus], job_id: str) -> None:
        """Successive observations of one job follow ``JobState.can_become``."""
        for status in statuses:
            assert isinstance(status, JobStatus), f"status() returned {type(status).__name__}"
            assert isinstance(status.state, JobState)
            assert status.job_id == job_id, f"status of {job_id} names job {status.job_id}"
        states = [s.state for s in statuses]
        for old, new in itertools.pairwise(states):
            assert old.can_become(new), (
                f"job {job_id} went {old.value} -> {new.value}; observed "
                f"{' -> '.join(s.value for s in states)}"
            )

    # -- capabilities ------------------------------------------------------------------
    def test_capabilities_type(self, backend: Backend, caps: Capabilities) -> None:
        assert isinstance(caps, Capabilities)
        assert isinstance(caps.name, str) and caps.name and caps.name == backend.name
        assert isinstance(caps.num_qubits, int) and caps.num_qubits >= 1
        assert isinstance(caps.max_shots, int) and caps.max_shots >= 1
        assert all(isinstance(g, str) for g in caps.gate_set) and caps.gate_set
        assert "openqasm3" in caps.formats, "every backend must accept OpenQASM 3"
        for a, b in caps.coupling_map or ():
            assert 0 <= a < caps.num_qubits and 0 <= b < caps.num_qubits, (a, b)

    def test_capabilities_cached(self, backend: Backend, caps: Capabilities) -> None:
        assert backend.capabilities() is caps, "capabilities() must return the cached object"

    def test_capabilities_json_round_trip(self, caps: Capabilities) -> None:
        assert Capabilities.from_json(caps.to_json()) == caps

    def test_contract_version(self, backend: Backend, caps: Capabilities) -> None:
        assert caps.contract_version == CONTRACT_VERSION
        assert backend.contract_version == CONTRACT_VERSION

    # -- extensions --------------------------------------------------------------------
    def test_advertised_extensions_are_offered(self, backend: Backend, caps: Capabilities) -> None:
        for name in caps.extensions:
            ext = backend.extension(name)
            assert ext is not None, f"extension {name!r} is advertised but extension() is None"
            if name in _PROTOCOLS:
                assert isinstance(ext, _PROTOCOLS[name]), (
                    f"extension {name!r} does not implement {_PROTOCOLS[name].__name__}"
                )

    def test_other_extensions_are_none(self, backend: Backend, caps: Capabilities) -> None:
        for name in (EXTENSION_NAMES - caps.extensions) | {"hal-conformance-nonexistent"}:
            assert backend.extension(name) is None, f"extension({name!r}) is not advertised"

    def test_batch_extension(self, hal: Harness, caps: Capabilities) -> None:
        ext = self._extension(hal.backend, "batch")
        shots = self._shots(hal.backend)
        exact = self._exact(hal.backend)
        pair = [self.bell_circuit, self.bit_order_circuit]  # 2 and 4 clbits: order shows
        ids = hal.run(ext.submit_batch(pair, shots), "submit_batch")
        assert len(ids) == 2 and len(set(ids)) == 2, f"submit_batch returned {ids}"
        for job_id, (_, ideal) in zip(ids, [circuits.bell(), circuits.bit_order()], strict=True):
            result = hal.run(hal.backend.result_when_done(job_id, self.timeout), "result")
            self.check_counts(result, shots, len(next(iter(ideal))))
            self.check_distribution(result.counts, ideal, exact)
        bindings = [{"theta": 0.0}, {"theta": math.pi}]
        ids = hal.run(ext.submit_sweep(self.rotation_circuit, bindings, shots), "submit_sweep")
        assert len(ids) == 2 and len(set(ids)) == 2, f"submit_sweep returned {ids}"
        for job_id, binding in zip(ids, bindings, strict=True):
            result = hal.run(hal.backend.result_when_done(job_id, self.timeout), "result")
            self.check_distribution(result.counts, circuits.rotation_ideal(binding["theta"]), exact)

    def test_sessions_extension(self, hal: Harness) -> None:
        ext = self._extension(hal.backend, "sessions")
        shots = self._shots(hal.backend)

        async def two_jobs() -> tuple[Any, str, list[str]]:
            async with ext.session() as session:
                ids = [await session.submit(self.bell_circuit, shots) for _ in range(2)]
                return session, session.session_id, ids

        session, session_id, ids = hal.run(two_jobs(), "a session with two jobs")
        assert isinstance(session, Session), "session() must yield a Session"
        assert isinstance(session_id, str) and session_id
        assert len(set(ids)) == 2
        for job_id in ids:  # jobs already submitted still complete after the session closed
            result = hal.run(hal.backend.result_when_done(job_id, self.timeout), "result")
            self.check_counts(result, shots, 2)
        # Leaving the context closes the session (§9.2): a session that still takes jobs holds
        # no reservation of its own; it only forwards to submit().
        try:
            late = hal.run(session.submit(self.bell_circuit, shots), "submit to a closed session")
        except HalError:
            return
        hal.run(hal.backend.cancel(late), "cancel")
        pytest.fail(
            f"session {session_id} accepted job {late} after it was closed; leaving the "
            "context must close the session",
            pytrace=False,
        )

    def test_calibration_extension(self, hal: Harness) -> None:
        ext = self._extension(hal.backend, "calibration")
        snapshot = hal.run(ext.snapshot(), "calibration snapshot()")
        assert isinstance(snapshot, CalibrationSnapshot)
        assert isinstance(snapshot.timestamp, (int, float)) and snapshot.timestamp > 0
        assert CalibrationSnapshot.from_json(snapshot.to_json()) == snapshot

    def test_pulse_extension(self, hal: Harness) -> None:
        ext = self._extension(hal.backend, "pulse")
        formats = ext.formats
        assert isinstance(formats, frozenset) and formats, (
            f"the pulse extension must list the payload formats it accepts, got {formats!r}"
        )
        assert all(isinstance(f, str) and f for f in formats)
        program = self.pulse_program(formats)
        assert program is not None, (
            "the backend offers 'pulse': override pulse_program() with a payload it runs, so "
            "the kit can check that pulse jobs run"
        )
        payload, num_clbits = program
        shots = self._shots(hal.backend)
        job_id = hal.run(ext.submit_pulse(payload, shots), "submit_pulse")
        result = hal.run(hal.backend.result_when_done(job_id, self.timeout), "pulse result")
        self.check_counts(result, shots, num_clbits)

    def _extension(self, backend: Backend, name: str) -> Any:
        if name not in backend.capabilities().extensions:
            pytest.skip(f"backend does not offer the {name!r} extension")
        return backend.extension(name)

    # -- availability ------------------------------------------------------------------
    def test_availability(self, hal: Harness) -> None:
        availability = hal.run(hal.backend.availability(), "availability()")
        assert isinstance(availability, BackendAvailability)
        assert BackendAvailability.from_json(availability.to_json()) == availability

    # -- running circuits --------------------------------------------------------------
    def test_submit_returns_job_id(self, bell_trace: JobTrace) -> None:
        assert isinstance(bell_trace.job_id, str) and bell_trace.job_id

    def test_states_are_monotonic(self, bell_trace: JobTrace) -> None:
        self.check_monotonic(bell_trace.statuses + bell_trace.after_terminal, bell_trace.job_id)

    def test_terminal_state_never_changes(self, bell_trace: JobTrace) -> None:
        later = [s.state for s in bell_trace.after_terminal]
        assert all(s is bell_trace.final.state for s in later), (
            f"terminal {bell_trace.final.state.value} later read as {[s.value for s in later]}"
        )

    def test_bell_completes(self, bell_trace: JobTrace) -> None:
        final = bell_trace.final
        assert final.state is JobState.COMPLETED, f"Bell job ended {final.state.value}: {final}"

    def test_bell_counts(self, hal: Harness, bell_trace: JobTrace) -> None:
        result = self._completed(bell_trace)
        self.check_counts(result, self._shots(hal.backend), 2)
        assert result.job_id == bell_trace.job_id
        assert result.backend == hal.backend.name

    def test_bell_distribution(self, hal: Harness, bell_trace: JobTrace) -> None:
        counts = self._completed(bell_trace).counts
        self.check_distribution(counts, circuits.bell()[1], self._exact(hal.backend))

    def test_result_is_stable(self, bell_trace: JobTrace) -> None:
        result = self._completed(bell_trace)
        assert bell_trace.result_again is not None
        assert dict(bell_trace.result_again.counts) == dict(result.counts)

    def test_result_serialises(self, bell_trace: JobTrace) -> None:
        result = self._completed(bell_trace)
        assert pickle.loads(pickle.dumps(result)) == result
        again = ExecutionResult.from_json(result.to_json())
        assert (dict(again.counts), again.shots, again.job_id, again.backend) == (
            dict(result.counts), result.shots, result.job_id, result.backend
        )
        for key, seconds in result.timings.items():
            assert isinstance(seconds, (int, float)) and seconds >= 0, (key, seconds)

    def test_ghz3(self, hal: Harness, caps: Capabilities) -> None:
        if caps.num_qubits < 3:
            pytest.skip("backend has fewer than 3 qubits")
        shots = self._shots(hal.backend)
        job_id = hal.run(hal.backend.submit(self.ghz_circuit, shots), "submit")
        result = hal.run(hal.backend.result(job_id), "result() of a job still running")
        self.check_counts(result, shots, 3)
        self.check_distribution(result.counts, circuits.ghz(3)[1], self._exact(hal.backend))

    def test_bit_order(self, hal: Harness) -> None:
        shots = self._shots(hal.backend)
        run = hal.backend.run(self.bit_order_circuit, shots, timeout=self.timeout)
        result = hal.run(run, "run")
        ideal = circuits.bit_order()[1]
        self.check_counts(result, shots, len(next(iter(ideal))))
        self.check_distribution(result.counts, ideal, self._exact(hal.backend))

    @pytest.mark.parametrize("theta", [0.0, math.pi / 3, math.pi], ids=["0", "pi-over-3", "pi"])
    def test_parameters(self, hal: Harness, theta: float) -> None:
        shots = self._shots(hal.backend)
        result = hal.run(
            hal.backend.run(self.rotation_circuit, shots, {"theta": theta}, timeout=self.timeout),
            "run with parameters",
        )
        self.check_counts(result, shots, 1)
        self.check_distribution(
            result.counts, circuits.rotation_ideal(theta), self._exact(hal.backend)
        )

    def test_circuit_object(self, hal: Harness) -> None:
        try:
            from hal_workflow.circuits import Circuit
        except ImportError:
            pytest.skip("hal_workflow.circuits.Circuit is not available")
        shots = self._shots(hal.backend)
        result = hal.run(hal.backend.run(Circuit.bell(), shots, timeout=self.timeout), "run")
        self.check_counts(result, shots, 2)
        self.check_distribution(result.counts, circuits.bell()[1], self._exact(hal.backend))

    def test_event_loop_not_blocked(self, hal: Harness, bell_trace: JobTrace) -> None:
        backend = hal.backend
        shots = self._shots(backend)
        long_circuit = hal.run(self.long_circuit_for(backend), "sizing the long job")

        async def calls() -> None:
            await backend.availability()
            await backend.validate(self.bell_circuit, shots)
            job_id = await backend.submit(self.bell_circuit, shots)
            await backend.status(job_id)
            await backend.result_when_done(job_id, self.timeout)
            # the larger work a workflow sends: a long job and a sweep
            await backend.validate(long_circuit, 1)
            job_id = await backend.submit(long_circuit, 1)
            await backend.status(job_id)
            await backend.result_when_done(job_id, self.timeout)
            bindings = [
                {"theta": math.pi * i / self.loop_sweep_size} for i in range(self.loop_sweep_size)
            ]
            ids = await submit_many(backend, self.rotation_circuit, shots, bindings)
            for each in ids:
                await backend.result_when_done(each, self.timeout)

        _, longest = hal.run(
            hal.loop_blocked_for(calls()), "availability/submit/status/result, long job, sweep"
        )
        assert longest <= self.max_loop_block_s, (
            f"a backend call held the event loop for {longest:.2f} s; wrap blocking SDK calls "
            "in asyncio.to_thread (GIL-holding work in a process: "
            f"hal_workflow.compilation.workers). Threads when it was held:\n{hal.block_stacks}"
        )

    def _completed(self, trace: JobTrace) -> ExecutionResult:
        if trace.result is None:
            pytest.fail(f"job did not complete: {trace.final}", pytrace=False)
        return trace.result

    # -- validation --------------------------------------------------------------------
    def test_validate_accepts_valid_circuit(self, hal: Harness) -> None:
        for shots in (None, self._shots(hal.backend)):
            report = hal.run(hal.backend.validate(self.bell_circuit, shots), "validate")
            assert isinstance(report, ValidationResult)
            assert report.valid, f"Bell circuit reported invalid: {report.issues}"

    def test_too_many_qubits(self, hal: Harness, caps: Capabilities) -> None:
        self._rejected(hal, circuits.wide(caps.num_qubits + 1), 1, ValidationCode.TOO_MANY_QUBITS)

    @pytest.mark.parametrize("over", [False, True], ids=["zero", "over-max"])
    def test_shots_out_of_range(self, hal: Harness, caps: Capabilities, over: bool) -> None:
        shots = caps.max_shots + 1 if over else 0
        self._rejected(hal, self.bell_circuit, shots, ValidationCode.SHOTS_OUT_OF_RANGE)

    def test_gate_not_in_gate_set(self, hal: Harness, caps: Capabilities) -> None:
        missing = [
            g for g, (_, arity) in circuits.STANDARD_GATES.items()
            if g not in caps.gate_set and arity <= caps.num_qubits
        ]
        if not missing:
            pytest.skip("the backend accepts every standard gate")
        self._rejected(
            hal,
            circuits.single_gate(missing[0], max(circuits.STANDARD_GATES[missing[0]][1], 1)),
            1,
            ValidationCode.GATE_NOT_SUPPORTED,
            ValidationCode.NEEDS_TRANSPILATION,
        )

    def _rejected(self, hal: Harness, circuit: str, shots: int, *codes: ValidationCode) -> None:
        """validate() reports one of ``codes`` and submit() raises ValidationError."""
        report = hal.run(hal.backend.validate(circuit, shots), "validate")
        assert isinstance(report, ValidationResult)
        assert not report.valid, "validate accepted a circuit it must reject"
        found = {issue.code for issue in report.issues}
        assert found & set(codes), f"expected {[c.value for c in codes]}, got {report.issues}"
        assert all(issue.message for issue in report.issues), "issues need a message"
        with pytest.raises(ValidationError) as info:
            hal.run(hal.backend.submit(circuit, shots), "submit")
        assert {i.code for i in info.value.issues} & set(codes), info.value.issues
        again = pickle.loads(pickle.dumps(info.value))  # errors cross process boundaries
        assert (type(again), again.issues, str(again)) == (
            type(info.value), info.value.issues, str(info.value)
        )

    def test_unparsable_circuit(self, hal: Harness) -> None:
        bad = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[1] q;\nthis is not a statement;\n'
        with pytest.raises(CircuitError):
            hal.run(hal.backend.validate(bad), "validate")
        with pytest.raises(CircuitError):
            hal.run(hal.backend.submit(bad, 1), "submit")

    def test_unbound_parameter(self, hal: Harness) -> None:
        with pytest.raises(ValidationError) as info:
            hal.run(hal.backend.submit(self.rotation_circuit, self._shots(hal.backend)), "submit")
        codes = {i.code for i in info.value.issues}
        assert ValidationCode.UNBOUND_PARAMETERS in codes, info.value.issues

    def test_unknown_parameter(self, hal: Harness) -> None:
        bindings = {"theta": 1.0, "hal_conformance_not_an_input": 2.0}
        with pytest.raises((ValidationError, CircuitError)):
            hal.run(hal.backend.submit(self.rotation_circuit, 1, bindings), "submit")

    # -- unknown ids and cancellation --------------------------------------------------
    @pytest.mark.parametrize("call", ["status", "result", "cancel"])
    def test_unknown_job_id(self, hal: Harness, call: str) -> None:
        with pytest.raises(JobNotFoundError):
            hal.run(getattr(hal.backend, call)(self.unknown_job_id), f"{call}(unknown id)")

    def test_abandoned_result_keeps_job(self, hal: Harness, caps: Capabilities) -> None:
        backend = hal.backend

        async def abandon() -> JobStatus:
            job_id = await backend.submit(self.bell_circuit, self._shots(backend))
            waiting = asyncio.ensure_future(backend.result(job_id))
            await asyncio.sleep(0.01)
            waiting.cancel()  # the caller gives up waiting, not on the job
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
            return await backend.wait(job_id, self.timeout)

        final = hal.run(abandon(), "result() abandoned by its caller")
        assert final.state is JobState.COMPLETED, f"abandoning result() ended the job: {final}"

    def test_cancel_running_job(self, hal: Harness) -> None:
        if not self.cancels_running_jobs:
            pytest.skip("cancels_running_jobs is False: RUNNING jobs of this backend cannot stop")
        backend = hal.backend
        circuit = hal.run(self.long_circuit_for(backend), "sizing the long job")

        async def cancel_running() -> tuple[JobStatus, JobStatus, float]:
            job_id = await backend.submit(circuit, 1)
            before = await backend.status(job_id)
            started = time.monotonic()
            await backend.cancel(job_id)
            returned = time.monotonic() - started
            return before, await backend.wait(job_id, self.timeout), returned

        before, final, returned = hal.run(cancel_running(), "cancel of a running job")
        assert not before.is_terminal, (
            f"a job sized to run {self.cancel_window_s} s was {before.state.value} right after "
            "submit: submit() must return once the job is accepted, not when it is done"
        )
        assert final.state is JobState.CANCELLED, (
            f"cancel() did not stop a job that runs {self.cancel_window_s} s uncancelled: it "
            f"ended {final.state.value} ({final.reason})"
        )
        assert returned < self.cancel_window_s, (
            f"cancel() took {returned:.1f} s; it returns once the request is accepted (§4.3)"
        )
        assert hal.run(backend.status(final.job_id), "status").state is JobState.CANCELLED
        with pytest.raises(JobCancelledError):
            hal.run(backend.result(final.job_id), "result of a cancelled job")

    def test_some_cancel_is_checked(self) -> None:
        if self.cancels_running_jobs:
            return  # test_cancel_running_job checks cancellation
        overridden = type(self).queued_job is not ConformanceSuite.queued_job
        assert overridden, (
            "cancels_running_jobs is False and queued_job() is not overridden: the kit could "
            "not check that cancel() works at all; provide a job held QUEUED"
        )

    def test_cancel_finished_job_is_noop(self, hal: Harness, bell_trace: JobTrace) -> None:
        result = self._completed(bell_trace)
        hal.run(hal.backend.cancel(bell_trace.job_id), "cancel of a completed job")
        status = hal.run(hal.backend.status(bell_trace.job_id), "status")
        assert status.state is JobState.COMPLETED, f"cancel changed a COMPLETED job: {status}"
        again = hal.run(hal.backend.result(bell_trace.job_id), "result")
        assert dict(again.counts) == dict(result.counts)

    def test_cancel_queued_job(self, hal: Harness) -> None:
        backend = hal.backend

        async def cancel_queued() -> tuple[JobStatus, JobStatus] | None:
            async with self.queued_job(backend) as job_id:
                if job_id is None:
                    return None
                before = await backend.status(job_id)
                await backend.cancel(job_id)
                return before, await backend.wait(job_id, self.timeout)

        outcome = hal.run(cancel_queued(), "cancel of a queued job")
        if outcome is None:
            pytest.skip("queued_job() does not provide a held job for this backend")
        before, after = outcome
        assert before.state is JobState.QUEUED, f"queued_job() gave a {before.state.value} job"
        assert after.state is JobState.CANCELLED, f"a cancelled QUEUED job ended {after}"
        with pytest.raises(JobCancelledError):
            hal.run(backend.result(after.job_id), "result of a cancelled job")

    def test_wait_timeout_keeps_job(self, hal: Harness) -> None:
        """wait() gives up at its timeout and leaves the job alone. The job is the sized long
        job, or, for a backend that cannot cancel running jobs, one held QUEUED."""
        backend = hal.backend
        if self.cancels_running_jobs:
            circuit = hal.run(self.long_circuit_for(backend), "sizing the long job")
            job_id = hal.run(backend.submit(circuit, 1), "submit long job")
            try:
                self._wait_times_out(hal, job_id)
            finally:
                hal.run(backend.cancel(job_id), "cancel")
                hal.run(backend.wait(job_id, self.timeout), "wait")
            return

        async def held() -> Any:
            async with self.queued_job(backend) as job_id:
                if job_id is None:
                    return None
                await asyncio.to_thread(self._wait_times_out, Harness(self, backend,
                                                                     asyncio.new_event_loop()),
                                        job_id)
                return job_id

        if hal.run(held(), "wait() on a queued job") is None:
            pytest.skip("cancels_running_jobs is False and queued_job() gives no job")

    def _wait_times_out(self, hal: Harness, job_id: str) -> None:
        started = time.monotonic()
        with pytest.raises(HalTimeoutError):
            hal.run(hal.backend.wait(job_id, timeout=0.05), "wait(timeout=0.05) on a long job")
        waited = time.monotonic() - started
        assert waited < self.cancel_window_s / 2, (
            f"wait(timeout=0.05) returned after {waited:.2f} s"
        )
        status = hal.run(hal.backend.status(job_id), "status")
        assert not status.is_terminal, (
            f"the job was {status.state.value} after wait() timed out: a timeout must leave "
            "the job running"
        )

    # -- specs, repr and reattaching ----------------------------------------------------
    def test_spec_pickles(self, backend: Backend) -> None:
        spec = backend.spec
        assert isinstance(spec, dict) and isinstance(spec.get("name"), str)
        assert pickle.loads(pickle.dumps(spec)) == spec

    def test_rebuild_from_spec(self, hal: Harness, caps: Capabilities) -> None:
        spec = pickle.loads(pickle.dumps(hal.backend.spec))
        rebuilt = self.make_backend(spec)
        try:
            assert rebuilt.capabilities() == caps
        finally:
            hal.run(rebuilt.aclose(), "aclose")

    def test_unknown_option_rejected(self, backend: Backend) -> None:
        spec = {**backend.spec, "hal_conformance_unknown_option": 1}
        with pytest.raises(ConfigurationError, match="hal_conformance_unknown_option"):
            self.make_backend(spec)

    def test_job_ids_unique_across_instances(self, hal: Harness) -> None:
        first, second = (self.make_backend(hal.backend.spec) for _ in range(2))
        try:
            ids = [hal.run(b.submit(self.bell_circuit, 1), "submit") for b in (first, second)]
            assert ids[0] != ids[1], (
                f"two backends built from one spec both issued job id {ids[0]!r}"
            )
        finally:
            for other in (first, second):
                hal.run(other.aclose(), "aclose")

    def test_calls_after_aclose(self, hal: Harness) -> None:
        closed = self.make_backend(hal.backend.spec)
        hal.run(closed.aclose(), "aclose")
        assert closed.capabilities() is closed.capabilities()
        with contextlib.suppress(HalError):  # refusing is fine; a non-contract error is not
            hal.run(closed.submit(self.bell_circuit, 1), "submit after aclose")
        with contextlib.suppress(HalError):
            hal.run(closed.status(self.unknown_job_id), "status after aclose")

    def test_repr_hides_credentials(self, backend: Backend) -> None:
        text = repr(backend) + str(backend)
        for key, value in backend.spec.items():
            value = reveal(value)  # credentials are held as Secret (contract 1.1)
            if _SECRET_KEY.search(str(key)) and isinstance(value, str) and value:
                assert value not in text, f"repr shows the value of spec key {key!r}"

    def test_reattach(self, hal: Harness, bell_trace: JobTrace) -> None:
        if not self.jobs_outlive_process:
            pytest.skip("jobs_outlive_process is False: jobs end with the backend's process")
        result = self._completed(bell_trace)
        other = self.make_backend(pickle.loads(pickle.dumps(hal.backend.spec)))
        try:
            status = hal.run(other.status(bell_trace.job_id), "status from a rebuilt backend")
            assert status.state is JobState.COMPLETED
            again = hal.run(other.result(bell_trace.job_id), "result from a rebuilt backend")
            assert dict(again.counts) == dict(result.counts)
        finally:
            hal.run(other.aclose(), "aclose")


__all__ = ["KNOBS", "ConformanceSuite", "Harness", "JobTrace"]
