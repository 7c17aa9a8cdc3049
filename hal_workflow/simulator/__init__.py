"""The built-in statevector simulator, registered as the ``"sim"`` backend.

``import hal_workflow.simulator`` stays cheap: numba loads only when a backend is built (the
``backend`` and ``kernels`` modules import it), so this package re-exports lazily.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hal_workflow.simulator.backend import SimulatorBackend, StatevectorExtension

_LAZY = {
    "SimulatorBackend": "hal_workflow.simulator.backend",
    "StatevectorExtension": "hal_workflow.simulator.backend",
}

__all__ = ["SimulatorBackend", "StatevectorExtension"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hal_workflow.simulator' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
