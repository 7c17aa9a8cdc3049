"""hal-workflow: quantum backends as first-class citizens of HPC workflow engines.

``import hal_workflow`` is cheap: it loads the contract and nothing heavy; circuits, backends
and engines load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from hal_workflow.contract import *  # noqa: F403
from hal_workflow.contract import CONTRACT_VERSION
from hal_workflow.contract import __all__ as _contract_all

__version__ = "0.1.0"

_LAZY = {
    "Circuit": "hal_workflow.circuits",
    "get_backend": "hal_workflow.backends.registry",
    "available_backends": "hal_workflow.backends.registry",
    "register_backend": "hal_workflow.backends.registry",
    "run": "hal_workflow.orchestration.sync",
    "sweep": "hal_workflow.orchestration.sync",
    "submit": "hal_workflow.orchestration.sync",
    "validate": "hal_workflow.orchestration.sync",
    "Job": "hal_workflow.orchestration.sync",
}

if TYPE_CHECKING:
    from hal_workflow.backends.registry import available_backends, get_backend, register_backend  # noqa: F401
    from hal_workflow.circuits import Circuit  # noqa: F401
    from hal_workflow.orchestration.sync import Job, run, submit, sweep, validate  # noqa: F401


_SUBMODULES = ("config",)
"""Submodules reachable as attributes without an import (``hal_workflow.config.get(...)``)."""


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return import_module(f"hal_workflow.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hal_workflow' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The eager names plus the lazy ones, so tab completion (Jupyter, IPython) sees ``run``,
    ``sweep``, ``Circuit``, ``get_backend``... before their first use."""
    return sorted({*globals(), *_LAZY, *_SUBMODULES})


__all__ = [*_contract_all, "CONTRACT_VERSION", "__version__", *_LAZY]
