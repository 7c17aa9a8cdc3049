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
