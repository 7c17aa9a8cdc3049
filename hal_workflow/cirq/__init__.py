"""Cirq on HAL backends (extra ``cirq``).

* :class:`~hal_workflow.cirq.sampler.HalSampler`: a ``cirq.Sampler`` on any backend spec;
* :func:`~hal_workflow.cirq.convert.from_cirq`: a ``cirq.Circuit`` as a
  :class:`~hal_workflow.circuits.Circuit` (what ``hal_workflow.run(circuit, ...)`` uses).

Importing this package does not import Cirq; the names load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "HalSampler": "hal_workflow.cirq.sampler",
    "from_cirq": "hal_workflow.cirq.convert",
    "to_program": "hal_workflow.cirq.convert",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hal_workflow.cirq' has no attribute {name!r}")
    return getattr(import_module(module), name)
