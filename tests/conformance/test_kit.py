"""The kit itself: it catches broken backends, and its pytest plugin runs it from the CLI.

Each broken backend below is the example backend with one promise of the contract broken;
the kit's check for that promise must fail on it (and passes on the example, see test_sim.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from conformance_helpers import EXAMPLE, load_example, run_check

from hal_workflow.backends.local_jobs import LocalJobTable
from hal_workflow.contract import (
    Capabilities,
    ExecutionResult,
    JobNotFoundError,
    JobState,
    JobStatus,
    SubmissionError,
    ValidationResult,
)
from hal_workflow.testing import ConformanceSuite
from hal_workflow.testing.conformance import KNOBS

Example = load_example().ExampleBackend
SPEC = {"name": "example", "num_qubits": 10, "seed": 5}
Failed = pytest.fail.Exception


class UncachedCapabilities(Example):
    def capabilities(self) -> Capabilities:
        return self._discover_capabilities()


class BitZeroLeftmost(Example):
    async def result(self, job_id: str) -> ExecutionResult:
        result = await super().result(job_id)
        counts = {key[::-1]: n for key, n in result.counts.items()}
        return ExecutionResult(counts, result.shots, result.job_id, result.backend)


class LosesShots(Example):
    async def result(self, job_id: str) -> ExecutionResult:
        result = await super().result(job_id)
        counts = {key: n - 1 for key, n in result.counts.items()}
        return ExecutionResult(counts, result.shots, result.job_id, result.backend)


class AlwaysZero(Example):
    async def result(self, job_id: str) -> ExecutionResult:
        result = await super().result(job_id)
        return ExecutionResult({"00": result.shots}, result.shots, result.job_id, result.backend)


class ForgetsTerminalStates(Example):
    """Reports RUNNING again once a job has been seen COMPLETED."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.seen_done: set[str] = set()
        super().__init__(spec)

    async def status(self, job_id: str) -> JobStatus:
        status = await super().status(job_id)
        if job_id in self.seen_done:
            return JobStatus(job_id, JobState.RUNNING)
        if status.is_terminal:
            self.seen_done.add(job_id)
        return status


class LeaksKeyError(Example):
    async def status(self, job_id: str) -> JobStatus:
        if not job_id.startswith("example-"):
            raise KeyError(job_id)
        return await super().status(job_id)


class AcceptsEverything(Example):
    async def validate(self, circuit: Any, shots: int | None = None) -> ValidationResult:
        return ValidationResult()


class BlocksTheLoop(Example):
    async def submit(self, circuit: Any, shots: int, parameters: Any = None) -> Any:
        time.sleep(1.2)  # a blocking SDK call made on the event loop
        return await super().submit(circuit, shots, parameters)


class AdvertisesMissingExtension(Example):
    def _discover_capabilities(self) -> Capabilities:
        caps = super()._discover_capabilities()
        return Capabilities(**{**caps.__dict__, "extensions": caps.extensions | {"pulse"}})


class CancelDoesNothing(Example):
    async def cancel(self, job_id: str) -> None:
        await self.status(job_id)  # JobNotFoundError still works; the job runs on


class WaitIgnoresTimeout(Example):
    async def wait(self, job_id: str, timeout: float | None = None, **kwargs: Any) -> JobStatus:
        return await super().wait(job_id, None, **kwargs)


class SessionsForwardToSubmit(Example):
    """A sessions extension that is only submit() under another name."""

    def _extensions(self) -> Mapping[str, object]:
        backend = self

        class Forwarding:
            session_id = "forwarding"

            async def submit(self, circuit: Any, shots: int, parameters: Any = None) -> str:
                return await backend.submit(circuit, shots, parameters)

        class Sessions:
            @contextlib.asynccontextmanager
            async def session(self, max_time_s: float | None = None) -> AsyncIterator[Any]:
                yield Forwarding()

        return {**super()._extensions(), "sessions": Sessions()}


class BlocksTheLoopOnLargeWork(Example):
    """Runs small circuits off the loop but parses large ones on it (0.5 ms per operation,
    at least 1.5 s: however small the kit's sized long job comes out on a loaded machine)."""

    async def submit(self, circuit: Any, shots: int, parameters: Any = None) -> Any:
        text = circuit if isinstance(circuit, str) else ""
        if text.count(";") > 500:
            time.sleep(max(1.5, 0.0005 * text.count(";")))
        return await super().submit(circuit, shots, parameters)


BROKEN = [
    (UncachedCapabilities, "test_capabilities_cached", {}, "cached object"),
    (BitZeroLeftmost, "test_bit_order", {}, "impossible for this circuit"),
    (LosesShots, "test_bell_counts", {}, "counts sum to"),
    (AlwaysZero, "test_bell_distribution", {}, "'00' seen 1000 times"),
    (ForgetsTerminalStates, "test_terminal_state_never_changes", {}, "later read as"),
    (ForgetsTerminalStates, "test_states_are_monotonic", {}, "COMPLETED -> RUNNING"),
    (LeaksKeyError, "test_unknown_job_id", {"call": "status"}, "only HalError"),
    (AcceptsEverything, "test_too_many_qubits", {}, "validate accepted"),
    (BlocksTheLoop, "test_event_loop_not_blocked", {}, "held the event loop"),
    (AdvertisesMissingExtension, "test_advertised_extensions_are_offered", {}, "'pulse'"),
    (CancelDoesNothing, "test_cancel_running_job", {}, "did not stop a job"),
    (WaitIgnoresTimeout, "test_wait_timeout_keeps_job", {}, "HalTimeoutError"),
    (SessionsForwardToSubmit, "test_sessions_extension", {}, "after it was closed"),
    (BlocksTheLoopOnLargeWork, "test_event_loop_not_blocked", {}, "held the event loop"),
]


@pytest.mark.parametrize(
    ("backend_class", "check", "arguments", "message"),
    BROKEN,
    ids=[f"{b.__name__}-{c}" for b, c, _, _ in BROKEN],
)
def test_kit_catches_broken_backends(
    backend_class: type, check: str, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises((AssertionError, Failed)) as info:
        run_check(backend_class(SPEC), check, **arguments)
    assert message in str(info.value)


@pytest.mark.parametrize(("backend_class", "check", "arguments", "message"), BROKEN[:4],
                         ids=[c for _, c, _, _ in BROKEN[:4]])
def test_same_checks_pass_on_the_example(
    backend_class: type, check: str, arguments: dict[str, Any], message: str
) -> None:
    run_check(Example(SPEC), check, **arguments)


class Pulses:
    """A pulse extension that accepts nothing it could run: enough for the format check."""

    def __init__(self, formats: frozenset[str]) -> None:
        self.formats = formats

    async def submit_pulse(self, payload: Any, shots: int) -> str:
        raise SubmissionError("this example cannot play pulses")


class WithPulse(Example):
    formats: frozenset[str] = frozenset({"example-pulse/1"})

    def _discover_capabilities(self) -> Capabilities:
        caps = super()._discover_capabilities()
        return Capabilities(**{**caps.__dict__, "extensions": caps.extensions | {"pulse"}})

    def _extensions(self) -> Mapping[str, object]:
        return {**super()._extensions(), "pulse": Pulses(self.formats)}


class WithoutFormats(WithPulse):
    formats = frozenset()


class PulseSuite(ConformanceSuite):
    def pulse_program(self, formats: frozenset[str]) -> tuple[Any, int] | None:
        return "example pulse schedule", 1


class RunsPulses(WithPulse):
    """A pulse extension whose payloads run (as a one-qubit measurement)."""

    def _extensions(self) -> Mapping[str, object]:
        backend = self

        class Running(Pulses):
            async def submit_pulse(self, payload: Any, shots: int) -> str:
                return await backend.submit(
                    'OPENQASM 3.0;\nqubit[1] q;\nbit[1] c;\nc[0] = measure q[0];\n', shots
                )

        return {**super()._extensions(), "pulse": Running(self.formats)}


def test_pulse_check() -> None:
    run_check(RunsPulses(SPEC), "test_pulse_extension", PulseSuite)
    with pytest.raises(AssertionError, match="payload formats"):
        run_check(WithoutFormats(SPEC), "test_pulse_extension", PulseSuite)
    # an extension that takes nothing it could run fails, as does a suite without a program
    with pytest.raises(SubmissionError, match="cannot play pulses"):
        run_check(WithPulse(SPEC), "test_pulse_extension", PulseSuite)
    with pytest.raises(AssertionError, match="override pulse_program"):
        run_check(RunsPulses(SPEC), "test_pulse_extension")


class SharedJobs(Example):
    """Jobs kept in one table for every instance: they outlive the backend that made them."""

    table = LocalJobTable("shared")

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        self._jobs = SharedJobs.table


class Reattaching(ConformanceSuite):
    jobs_outlive_process = True

    def make_backend(self, spec: Any = None) -> Any:
        return self.backend_class(spec or SPEC)


@pytest.mark.parametrize("backend_class", [SharedJobs, Example])
def test_reattach_check(backend_class: type) -> None:
    suite = type("Suite", (Reattaching,), {"backend_class": backend_class})
    if backend_class is SharedJobs:
        run_check(SharedJobs(SPEC), "test_reattach", suite)
        return
    with pytest.raises(JobNotFoundError):  # a fresh Example knows nothing of earlier jobs
        run_check(Example(SPEC), "test_reattach", suite)


def test_noisy_knob_accepts_a_plausible_distribution() -> None:
    class NoisySuite(ConformanceSuite):
        noisy = True

    counts = {"00": 430, "11": 420, "01": 80, "10": 70}
    NoisySuite().check_distribution(counts, {"00": 0.5, "11": 0.5}, exact=False)
    with pytest.raises(AssertionError, match="only 700/1000"):
        NoisySuite().check_distribution({"00": 350, "11": 350, "01": 300}, {"00": 0.5, "11": 0.5},
                                        exact=False)
    with pytest.raises(AssertionError, match="nearly missing"):
        NoisySuite().check_distribution({"00": 990, "11": 10}, {"00": 0.5, "11": 0.5},
                                        exact=False)


def test_knobs_list_every_tunable_attribute() -> None:
    tunable = {
        name for name, value in vars(ConformanceSuite).items()
        if not name.startswith("_") and not callable(value) and not isinstance(value, classmethod)
        and not hasattr(value, "_fixture_function_marker") and name != "backend_spec"
    }
    assert tunable == set(KNOBS)


def test_plugin_import_is_light() -> None:
    code = (
        "import sys, hal_workflow.testing.plugin, hal_workflow.testing; "
        "heavy = [m for m in ('hal_workflow.testing.conformance', 'hal_workflow.backends', "
        "'qiskit', 'numpy', 'openqasm3') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_command_line_option_runs_the_kit(tmp_path: Path) -> None:
    # Install the example as an entry point of a throwaway distribution, as a vendor would.
    info = tmp_path / "example_vendor-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: example-vendor\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[hal_workflow.backends]\nexample-cli = example_backend:ExampleBackend\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(EXAMPLE.parent)])}
    spec = json.dumps({"name": "example-cli", "seed": 3})
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W",
               "ignore::DeprecationWarning", "--hal-backend", spec, "--hal-knob", "shots=200",
               "-k", "bell or capabilities or unknown"]
    out = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    passed = re.search(r"(\d+) passed", out.stdout)
    assert passed and int(passed[1]) >= 10, out.stdout[-3000:]
    assert " failed" not in out.stdout and "error" not in out.stdout.lower()

    bad = subprocess.run([*command[:-2], "--hal-knob", "no_such_knob=1"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=240)
    assert bad.returncode != 0 and "no knob 'no_such_knob'" in bad.stdout + bad.stderr
