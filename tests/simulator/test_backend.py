"""The backend contract of ``SimulatorBackend``: jobs, cancellation, validation, extensions."""

from __future__ import annotations

import asyncio
import itertools
import math
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import assert_distribution, make_backend, program, run

from hal_workflow.circuits import Circuit, random_layered
from hal_workflow.contract import (
    BatchExtension,
    CircuitError,
    ConfigurationError,
    JobCancelledError,
    JobNotFoundError,
    JobState,
    Session,
    SessionExtension,
    ValidationCode,
    ValidationError,
)
from hal_workflow.simulator.backend import SimulatorBackend

ROTATION = program(1, ["ry(theta) q[0];", "c[0] = measure q[0];"], num_clbits=1,
                   inputs=["theta"])


def _codes(error: ValidationError) -> set[ValidationCode]:
    return {issue.code for issue in error.issues}


def test_capabilities() -> None:
    caps = make_backend().capabilities()
    assert caps.name == "sim" and caps.simulator and caps.coupling_map is None
    assert caps.supports_mid_circuit_measurement and caps.supports_reset
    assert {"h", "cx", "U", "gphase", "cswap", "cu"} <= caps.gate_set
    assert caps.extensions == {"batch", "sessions", "statevector"}
    # method "auto": Clifford circuits run on the stabilizer tableau, up to its width
    from hal_workflow.simulator.stabilizer import MAX_QUBITS as TABLEAU_QUBITS

    assert caps.num_qubits == TABLEAU_QUBITS
    statevector = make_backend(method="statevector").capabilities()
    assert 20 <= statevector.num_qubits <= 32
    # complex64 halves the bytes per amplitude: one more qubit fits (up to the cap)
    assert make_backend(precision="complex64", method="statevector").capabilities(
        ).num_qubits >= statevector.num_qubits


def test_registry_builds_it() -> None:
    from hal_workflow.backends.registry import get_backend

    backend = get_backend({"name": "sim", "seed": 3, "precision": "complex64"})
    assert isinstance(backend, SimulatorBackend)
    assert backend.options.precision == "complex64"


@pytest.mark.parametrize("spec, word", [
    ({"colour": "blue"}, "colour"),
    ({"precision": "complex256"}, "precision"),
    ({"threads": 0}, "threads"),
    ({"max_fused_qubits": 9}, "max_fused_qubits"),
    ({"fusion": "yes"}, "fusion"),
    ({"seed": -1}, "seed"),
])
def test_bad_options(spec: dict[str, object], word: str) -> None:
    with pytest.raises(ConfigurationError, match=word):
        make_backend(**spec)


def test_small_job_completes_inline_with_result_fields() -> None:
    """Once the kernels are loaded (the first job may wait for that on a thread), a small
    job is done when ``submit`` returns."""

    async def go() -> tuple[object, object]:
        backend = make_backend(seed=11)
        await backend.result(await backend.submit(Circuit.bell(), 10))
        job_id = await backend.submit(Circuit.bell(), 500)
        status = await backend.status(job_id)
        return status, await backend.result(job_id)

    status, result = run(go())
    assert status.state is JobState.COMPLETED
    assert result.backend == "sim" and result.shots == 500
    assert set(result.counts) <= {"00", "11"} and sum(result.counts.values()) == 500
    assert result.executed_program == Circuit.bell().qasm
    assert result.metadata == {"seed": 11, "precision": "complex128", "method": "statevector",
                               # h folded into the initial product state, cx left to the read-out
                               "plan": {"initial_product_gates": 1, "trailing_permutations": 1}}
    assert result.timings["execution_s"] >= 0


def test_threaded_job_states_are_monotonic() -> None:
    text = random_layered(18, 6, seed=1).qasm

    async def go() -> list[JobState]:
        backend = make_backend(seed=2)
        job_id = await backend.submit(text, 100)
        states = []
        while True:
            status = await backend.status(job_id)
            states.append(status.state)
            if status.is_terminal:
                break
            await asyncio.sleep(0.002)
        await backend.result(job_id)
        return states

    states = run(go())
    assert states[-1] is JobState.COMPLETED
    assert all(a.can_become(b) for a, b in itertools.pairwise(states))


def test_cancel_long_job_while_running() -> None:
    """A deep 22-qubit circuit is cancelled mid-run and ends CANCELLED within a second."""
    text = random_layered(22, 120, seed=3, measure=True).qasm

    async def go() -> tuple[JobState, float]:
        backend = make_backend()
        job_id = await backend.submit(text, 10)
        deadline = time.monotonic() + 30
        while (await backend.status(job_id)).state is not JobState.RUNNING:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.2)  # well inside the run (it takes several seconds)
        start = time.monotonic()
        await backend.cancel(job_id)
        final = await backend.wait(job_id, timeout=10)
        elapsed = time.monotonic() - start
        with pytest.raises(JobCancelledError):
            await backend.result(job_id)
        await backend.cancel(job_id)  # cancelling again is a no-op
        return final.state, elapsed

    state, elapsed = run(go())
    assert state is JobState.CANCELLED
    assert elapsed < 1.0


@pytest.mark.parametrize("call", ["status", "result", "cancel"])
def test_unknown_job_id(call: str) -> None:
    with pytest.raises(JobNotFoundError):
        run(getattr(make_backend(), call)("sim-nope-1"))


def test_validation_errors() -> None:
    backend = make_backend()
    caps = backend.capabilities()
    wide = f'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[{caps.num_qubits + 1}] q;\nh q[0];\n'
    report = run(backend.validate(wide, 10))
    assert _codes(ValidationError(report.issues)) == {ValidationCode.TOO_MANY_QUBITS}
    assert str(caps.num_qubits + 1) in report.issues[0].message
    for shots in (0, caps.max_shots + 1):
        with pytest.raises(ValidationError) as info:
            run(backend.submit(Circuit.bell(), shots))
        assert _codes(info.value) == {ValidationCode.SHOTS_OUT_OF_RANGE}
    with pytest.raises(ValidationError) as info:
        run(backend.submit(ROTATION, 10))
    assert _codes(info.value) == {ValidationCode.UNBOUND_PARAMETERS}
    assert "theta" in str(info.value)
    assert run(backend.validate(ROTATION, 10)).valid  # parameters may come at submit
    assert not run(backend.validate(ROTATION, 10, parameters={})).valid
    with pytest.raises(CircuitError, match="phi"):
        run(backend.submit(ROTATION, 10, {"theta": 1.0, "phi": 2.0}))
    with pytest.raises(CircuitError):
        run(backend.validate("OPENQASM 3.0;\nqubit[1] q;\nnot a statement;\n"))


def test_memory_limit() -> None:
    backend = make_backend(max_memory_bytes=1 << 20)
    text = program(17, ["h q[0];"])
    with pytest.raises(ValidationError) as info:
        run(backend.submit(text, 10))
    assert _codes(info.value) == {ValidationCode.RESOURCE_LIMIT}
    message = str(info.value)
    assert "17 qubits" in message and str(2 * 1 << 20) in message and str(1 << 20) in message
    assert run(backend.validate(program(15, ["h q[0];"]), 10)).valid  # 512 KiB fits


def test_per_submit_seed_and_sweep_reproducible() -> None:
    async def go() -> tuple[list[dict[str, int]], list[dict[str, int]]]:
        backend = make_backend()
        ext = backend.extension("batch")
        bindings = [{"theta": t} for t in np.linspace(0, math.pi, 9)]
        out = []
        for _ in range(2):
            ids = await ext.submit_sweep(ROTATION, bindings, 2000, seed=77)
            out.append([dict((await backend.result(j)).counts) for j in ids])
        return out[0], out[1]

    first, second = run(go())
    assert first == second
    for counts, theta in zip(first, np.linspace(0, math.pi, 9), strict=True):
        p1 = math.sin(theta / 2) ** 2
        assert_distribution(counts, {"0": 1 - p1, "1": p1})


@pytest.mark.parametrize("width", [1, 13], ids=["batched", "one-by-one"])
def test_sweep_element_i_uses_seed_plus_i(width: int) -> None:
    """Chunked sweeps equal one sweep, and element ``i`` equals a single run with
    ``seed + i`` (13 qubits: the bindings run one by one on the worker)."""
    body = [f"h q[{q}];" for q in range(1, width)] + ["ry(theta) q[0];", "c[0] = measure q[0];"]
    text = program(width, body, num_clbits=1, inputs=["theta"])
    bindings = [{"theta": t} for t in np.linspace(0.2, 3.0, 6)]

    async def go() -> tuple[list[dict[str, int]], list[dict[str, int]], list[dict[str, int]]]:
        backend = make_backend()
        ext = backend.extension("batch")

        async def counts(ids: list[str]) -> list[dict[str, int]]:
            return [dict((await backend.result(j)).counts) for j in ids]

        whole = await counts(await ext.submit_sweep(text, bindings, 300, seed=50))
        chunks = (await counts(await ext.submit_sweep(text, bindings[:4], 300, seed=50))
                  + await counts(await ext.submit_sweep(text, bindings[4:], 300, seed=54)))
        single = [await counts([await backend.submit(text, 300, b, seed=50 + i)])
                  for i, b in enumerate(bindings)]
        return whole, chunks, [c for [c] in single]

    whole, chunks, single = run(go())
    assert whole == chunks == single
    assert len({tuple(sorted(c.items())) for c in whole}) > 1


def test_batch_extension() -> None:
    async def go() -> list[dict[str, int]]:
        backend = make_backend(seed=5)
        ext = backend.extension("batch")
        assert isinstance(ext, BatchExtension)
        circuits = [Circuit.bell(), program(2, ["x q[1];", "c[0] = measure q[1];"], 1),
                    random_layered(17, 2, seed=1)]
        ids = await ext.submit_batch(circuits, 400)
        assert len(set(ids)) == 3
        results = [await backend.result(j) for j in ids]
        assert [r.metadata["seed"] for r in results] == [5, 6, 7]
        return [dict(r.counts) for r in results]

    bell, flipped, wide = run(go())
    assert set(bell) <= {"00", "11"} and flipped == {"1": 400}
    assert sum(wide.values()) == 400 and all(len(k) == 17 for k in wide)


def test_sweep_large_circuit_runs_on_thread_and_binds_each() -> None:
    body = [f"h q[{q}];" for q in range(16)] + ["ry(theta) q[16];", "c[0] = measure q[16];"]
    text = program(17, body, num_clbits=1, inputs=["theta"])

    async def go() -> list[dict[str, int]]:
        backend = make_backend(seed=1)
        ids = await backend.extension("batch").submit_sweep(
            text, [{"theta": 0.0}, {"theta": math.pi}], 100)
        return [dict((await backend.result_when_done(j, 30)).counts) for j in ids]

    assert run(go()) == [{"0": 100}, {"1": 100}]


def test_sessions_pin_plans() -> None:
    async def go() -> None:
        backend = make_backend(seed=1)
        ext = backend.extension("sessions")
        assert isinstance(ext, SessionExtension)
        async with ext.session() as session:
            assert isinstance(session, Session)
            ids = [await session.submit(ROTATION, 100, {"theta": t}) for t in (0.0, math.pi)]
            pinned = backend._pinned[session.session_id]
            assert len(pinned) == 1  # one circuit, compiled once, kept for the session
            backend._plans.clear()  # evicting the shared cache does not lose the session's plan
            await session.submit(ROTATION, 100, {"theta": 0.0})
            assert backend.executable(ROTATION, session.session_id) is next(iter(pinned.values()))
        assert session.session_id not in backend._pinned
        assert [dict((await backend.result(j)).counts) for j in ids] == [{"0": 100}, {"1": 100}]

    run(go())


def test_closed_backend_refuses_jobs() -> None:
    async def go() -> None:
        backend = make_backend()
        await backend.aclose()
        with pytest.raises(Exception) as info:
            await backend.submit(Circuit.bell(), 10)
        from hal_workflow.contract import HalError

        assert isinstance(info.value, HalError)

    run(go())


def test_import_does_not_load_numba() -> None:
    code = ("import sys, hal_workflow, hal_workflow.simulator; "
            "print('numba' in sys.modules); "
            "from hal_workflow.simulator import SimulatorBackend; "
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    # not loaded by the package imports, nor by the backend class: only by the first kernel
    # that needs numba (small circuits run on NumPy kernels, tests/simulator/test_cold_start.py)
    assert out.stdout.split() == ["False", "False"]


def test_sweep_element_j_is_seeded_with_seed_plus_j() -> None:
    """Chunk-invariant seeding (what the Dask and Parsl sweeps rely on): element ``j`` of
    ``submit_sweep(seed=s)`` samples exactly as element 0 of ``submit_sweep(seed=s + j)``."""
    from hal_workflow.circuits import Circuit
    from hal_workflow.orchestration.sync import backend_for, run_sync

    circuit = Circuit.from_qasm('OPENQASM 3.0; include "stdgates.inc"; input float t; '
                                "qubit[3] q; bit[3] c; ry(t) q[0]; h q[1]; h q[2]; c = measure q;")
    backend = backend_for({"name": "sim", "threads": 1})
    batch = backend.extension("batch")

    async def counts(seed: int, bindings: list[dict[str, float]]) -> list[dict[str, int]]:
        ids = await batch.submit_sweep(circuit, bindings, 100, seed=seed)
        return [dict((await backend.result(i)).counts) for i in ids]

    bindings = [{"t": 0.3}, {"t": 1.1}]
    whole = run_sync(counts(5, bindings))
    assert whole[1] == run_sync(counts(6, bindings[1:]))[0]
    assert whole[0] != whole[1]  # different seeds and angles give different samples
