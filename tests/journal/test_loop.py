"""No simulator coroutine holds the event loop: a 5 ms heartbeat keeps beating while a deep
15-qubit circuit (first call: parsed and planned too) and a 2,000-binding sweep run.

Two measures, both bounded by the contract's own 50 ms (section 12), not a loosened one:

* the CPU time the loop's thread spends in any one step of the loop (``time.thread_time``
  around each callback): exactly "a coroutine holding the loop", and blind to a loaded
  machine, which only delays the thread. Every attempt must stay under 50 ms.
* the heartbeat's longest late wake-up, as a user sees it. On this 2-core machine shared by
  several test runs (load averages above 10 seen), the OS alone can keep a thread off the
  CPU for longer than 50 ms, so the scenario is run up to three times and the best attempt
  must stay under 50 ms (the rule "rerun, never loosen", applied inside the test).

Before the work moved off the loop, single steps took 300-800 ms. Python's cyclic garbage
collector stops every thread for a time proportional to the whole heap, pytest's and every
imported SDK's included, so the heap that exists before the scenario is moved out of its
reach (``gc.freeze``): that pause is not a coroutine holding the loop.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Awaitable
from typing import Any

import numpy as np
import pytest

from hal_workflow.circuits import hardware_efficient_ansatz, random_layered
from hal_workflow.journal import Journal
from hal_workflow.orchestration.sync import run_seeded
from hal_workflow.simulator.backend import SimulatorBackend

MAX_HOLD_S = 0.050
BEAT_S = 0.005
ATTEMPTS = 3


async def _measure(work: Awaitable[Any], steps: list[float]) -> tuple[float, float, Any]:
    """(longest heartbeat delay, longest loop step in CPU seconds, work's value)."""
    gaps: list[float] = []
    stop = asyncio.Event()

    async def heartbeat() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(BEAT_S)
            now = time.perf_counter()
            gaps.append(now - last - BEAT_S)
            last = now

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(0.02)
    steps.clear()
    try:
        value = await work
    finally:
        stop.set()
        await beat
    return max(gaps), max(steps), value


@pytest.fixture
def step_cpu_times(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """CPU seconds of every loop step run on the calling thread."""
    steps: list[float] = []
    run = asyncio.events.Handle._run
    me = threading.get_ident()

    def timed(handle: asyncio.events.Handle) -> None:
        if threading.get_ident() != me:
            return run(handle)
        start = time.thread_time()
        run(handle)
        steps.append(time.thread_time() - start)

    monkeypatch.setattr(asyncio.events.Handle, "_run", timed)
    return steps


def test_heartbeat_during_deep_circuit_and_large_sweep(journal: Journal,
                                                        step_cpu_times: list[float]) -> None:
    ansatz = hardware_efficient_ansatz(5, 1)
    rng = np.random.default_rng(0)
    bindings = [dict(zip(ansatz.parameters, rng.uniform(0, 6.28, len(ansatz.parameters)),
                         strict=True)) for _ in range(2000)]
    best = {"deep": float("inf"), "sweep": float("inf")}
    for attempt in range(ATTEMPTS):
        backend = SimulatorBackend({"name": "sim", "threads": 1, "seed": 3})
        asyncio.run(backend.run("OPENQASM 3.0; qubit[2] q; bit[2] c; c = measure q;", 10))
        deep = random_layered(15, 60, seed=attempt)  # 1000+ gates, ~60 KB, never seen before

        async def scenario(backend: SimulatorBackend = backend,
                           deep: Any = deep) -> dict[str, tuple[float, float, Any]]:
            return {
                "deep": await _measure(backend.run(deep, 1000), step_cpu_times),
                "sweep": await _measure(run_seeded(backend, ansatz, bindings, 1000, seed=11),
                                        step_cpu_times),
            }

        gc.collect()
        gc.freeze()
        try:
            measured = asyncio.run(scenario())
        finally:
            gc.unfreeze()
        assert measured["deep"][2].shots == 1000 and len(measured["sweep"][2]) == 2000
        for name, (gap, step, _) in measured.items():
            assert step < MAX_HOLD_S, f"{name}: one loop step ran {step * 1e3:.0f} ms of CPU"
            best[name] = min(best[name], gap)
        if max(best.values()) < MAX_HOLD_S:
            break
    for name, gap in best.items():
        assert gap < MAX_HOLD_S, f"{name}: heartbeat late by {gap * 1e3:.0f} ms at best"
