"""Shots that are not a positive integer are a ValidationError at submit, on every adapter,
before anything runs (not a JobFailedError(TypeError) later); validate accepts None."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from hal_workflow.backends.registry import get_backend
from hal_workflow.contract import Backend, ValidationCode, ValidationError
from hal_workflow.testing import circuits

SPECS = {
    "braket": {"name": "braket", "device": "local"},
    "ibm": {"name": "ibm", "backend": "fake_manila"},
    "qdmi": {"name": "qdmi", "device": "mqt.ddsim.default", "max_qubits": 8},
    "iqm": None,  # the local IQM server's URL, filled in below
}


@pytest.fixture(params=sorted(SPECS), scope="module")
def backend(request: pytest.FixtureRequest, iqm_server: Any) -> Iterator[Backend]:
    spec = SPECS[request.param] or {"name": "iqm", "url": iqm_server.url}
    pytest.importorskip({"braket": "braket.devices", "ibm": "qiskit_ibm_runtime",
                         "qdmi": "mqt.core", "iqm": "iqm.iqm_client"}[request.param])
    yield get_backend(spec)


@pytest.mark.parametrize("shots", [None, True, False, 2.5, "100", 0, -3, 10**12])
def test_bad_shots_are_refused_up_front(backend: Backend, shots: Any) -> None:
    with pytest.raises(ValidationError) as info:
        asyncio.run(backend.submit(circuits.bell()[0], shots))
    assert info.value.issues[0].code is ValidationCode.SHOTS_OUT_OF_RANGE
    assert repr(shots) in str(info.value)


def test_validate_takes_no_shots(backend: Backend) -> None:
    assert asyncio.run(backend.validate(circuits.bell()[0])).valid
    assert not asyncio.run(backend.validate(circuits.bell()[0], True)).valid
