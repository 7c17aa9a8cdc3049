"""Fixtures for the IQM and QDMI adapter tests (the IBM/Braket tests bring their own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

IQM_ENVIRONMENT = ("IQM_TOKEN", "IQM_TOKENS_FILE", "IQM_SERVER_URL", "IQM_QUANTUM_COMPUTER")


@pytest.fixture(scope="module")
def iqm_server() -> Iterator[object]:
    """A local IQM server (``tests/adapters/iqm_server.py``) for one test module.

    IQM's own environment variables are cleared meanwhile, so a developer's real credentials
    never reach the local server and every test states the credentials it uses.
    """
    from iqm_server import IQMMockServer

    with pytest.MonkeyPatch.context() as patch:
        for name in IQM_ENVIRONMENT:
            patch.delenv(name, raising=False)
        with IQMMockServer() as server:
            yield server


@pytest.fixture(autouse=True)
def fast_retries() -> Iterator[None]:
    """The configured retry policy with short waits: errors are still retried (the
    behaviour under test), but a test of an unreachable server takes milliseconds."""
    from hal_workflow import config

    with config.set({"retry.initial-delay": 0.001, "retry.max-delay": 0.01}):
        yield
