"""PennyLane on HAL backends (extra ``pennylane``).

* ``qml.device("hal.sim", wires=2, shots=1000)`` / ``qml.device("hal", backend=SPEC, ...)``:
  :class:`~hal_workflow.pennylane.device.HalDevice` (entry points ``pennylane.plugins``);
* :func:`~hal_workflow.pennylane.convert.from_tape`: a tape as a
  :class:`~hal_workflow.circuits.Circuit` (what ``hal_workflow.run(tape, ...)`` uses).

Importing this package does not import PennyLane; the names load on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "HalDevice": "hal_workflow.pennylane.device",
    "HalSimDevice": "hal_workflow.pennylane.device",
    "from_tape": "hal_workflow.pennylane.convert",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hal_workflow.pennylane' has no attribute {name!r}")
    return getattr(import_module(module), name)
