"""Fixtures of the contract tests (the backends themselves are in ``contract_backends``)."""

from __future__ import annotations

from typing import Any

import pytest

from hal_workflow.backends import registry


@pytest.fixture
def clean_registry() -> Any:
    """Restore the registry's registrations (and entry-point cache) after the test."""
    saved = dict(registry._registered)
    registry._entry_point_backends.cache_clear()
    yield registry
    registry._registered.clear()
    registry._registered.update(saved)
    registry._entry_point_backends.cache_clear()
