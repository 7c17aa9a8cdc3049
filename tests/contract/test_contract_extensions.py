"""``submit_many``/``run_many``: the batch extension when offered, plain ``submit`` otherwise."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from contract_backends import BatchingBackend, ClassicalBackend, classical_program, outcome

from hal_workflow.contract import (
    BatchExtension,
    CalibrationExtension,
    HalError,
    PulseExtension,
    SessionExtension,
    run_many,
    submit_many,
)

FLIPS = [[0], [1, 2], [], [0, 1, 2]]
CIRCUITS = [classical_program(3, f) for f in FLIPS]
BINDINGS = [{"theta": 0.5}, {"theta": 1.5}, {"theta": 2.5}]
BACKENDS = {"batch": BatchingBackend, "fallback": ClassicalBackend}


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Any:
    return BACKENDS[request.param]({"name": f"classical-{request.param}"})


def batch_calls(backend: Any) -> list[str]:
    return backend.batch.calls if isinstance(backend, BatchingBackend) else []


def test_run_many_circuits_in_order(backend: Any) -> None:
    results = asyncio.run(run_many(backend, CIRCUITS, shots=10, timeout=5))
    assert [r.counts for r in results] == [{outcome(3, f): 10} for f in FLIPS]
    assert len({r.job_id for r in results}) == len(FLIPS)
    assert batch_calls(backend) == (["submit_batch"] if "batch" in backend.name else [])


def test_run_many_sweep_in_order(backend: Any) -> None:
    results = asyncio.run(run_many(backend, CIRCUITS[1], 4, bindings=BINDINGS, timeout=5))
    assert [r.metadata["parameters"] for r in results] == BINDINGS
    assert all(r.counts == {outcome(3, FLIPS[1]): 4} for r in results)
    assert batch_calls(backend) == (["submit_sweep"] if "batch" in backend.name else [])


def test_submit_many_one_circuit(backend: Any) -> None:
    ids = asyncio.run(submit_many(backend, CIRCUITS[0], 2))
    assert ids == backend.submitted and len(ids) == 1


def test_submit_many_returns_known_ids(backend: Any) -> None:
    ids = asyncio.run(submit_many(backend, CIRCUITS, 2))
    assert ids == backend.submitted


def test_bindings_need_one_circuit(backend: Any) -> None:
    with pytest.raises((TypeError, HalError)):
        asyncio.run(submit_many(backend, CIRCUITS, 2, bindings=BINDINGS))
    assert backend.submitted == []


def test_batch_object_matches_the_protocol() -> None:
    ext = BatchingBackend({"name": "b"}).extension("batch")
    assert isinstance(ext, BatchExtension)
    for protocol in (SessionExtension, CalibrationExtension, PulseExtension):
        assert not isinstance(ext, protocol)
