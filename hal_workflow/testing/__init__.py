"""Testing aids for backend authors: the HAL contract v1 conformance kit.

``from hal_workflow.testing import ConformanceSuite`` and subclass it (see
``docs/conformance.md``). Loaded lazily: this package is imported by the pytest plugin in every
pytest run, so importing it must stay cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hal_workflow.testing.conformance import ConformanceSuite, Harness, JobTrace

__all__ = ["ConformanceSuite", "Harness", "JobTrace"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hal_workflow.testing import conformance

        return getattr(conformance, name)
    raise AttributeError(f"module 'hal_workflow.testing' has no attribute {name!r}")
