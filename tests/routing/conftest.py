"""Fixtures for the routing tests: local IQM servers, a private budget store, specs.

The IQM server is ``tests/adapters/iqm_server.py`` (a real IQMClient talks to it over HTTP);
each test gets its own, so making it busy, refusing or offline never leaks into another test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ADAPTERS = Path(__file__).resolve().parents[1] / "adapters"
if str(ADAPTERS) not in sys.path:
    sys.path.insert(0, str(ADAPTERS))

IQM_ENVIRONMENT = ("IQM_TOKEN", "IQM_TOKENS_FILE", "IQM_SERVER_URL", "IQM_QUANTUM_COMPUTER")

@pytest.fixture
def iqm() -> Iterator[Any]:
    """A fresh local IQM server (alias ``mock``: backend name ``iqm:mock``)."""
    from iqm_server import IQMMockServer

    with pytest.MonkeyPatch.context() as patch:
        for name in IQM_ENVIRONMENT:
            patch.delenv(name, raising=False)
        with IQMMockServer() as server:
            yield server


@pytest.fixture(autouse=True)
def budget_path(tmp_path: Path) -> Iterator[Path]:
    """Every test keeps its budgets in its own file (``route.budget-path``)."""
    from hal_workflow import config

    path = tmp_path / "budgets.sqlite"
    with config.set({"route.budget-path": str(path)}):
        yield path
