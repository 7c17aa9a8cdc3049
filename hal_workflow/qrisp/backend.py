"""``HalQrispBackend``: a Qrisp backend (``qrisp.interface.VirtualBackend``) on any HAL spec.

::

    from qrisp import QuantumFloat
    a = QuantumFloat(3); a[:] = 3
    (a + 2).get_measurement(backend=HalQrispBackend("sim"))     # {5: 1.0}

Qrisp compiles its high-level program to an OpenQASM 2 circuit and calls the backend's run
function with it and the number of shots; this one parses it with hal-workflow's own parser
(a ``CircuitError`` naming the line for anything it cannot read), runs it on the spec's backend
and hands back the counts (bitstrings over all classical bits, bit 0 rightmost, which is what
Qrisp expects from a Qiskit-style backend).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qrisp.interface import VirtualBackend

from hal_workflow.backends.registry import BackendSpec, normalize_spec

__all__ = ["DEFAULT_SHOTS", "HalQrispBackend"]

DEFAULT_SHOTS = 100_000
"""Shots when Qrisp asks for none (its own simulator's default)."""


class HalQrispBackend(VirtualBackend):  # type: ignore[misc]
    """Run Qrisp programs on the HAL backend ``backend`` (a spec; built once per process).

    Args:
        backend: the backend spec (``"sim"``, ``{"name": "slurm", "backend": "sim"}``...).
        timeout: seconds to wait for each job (None: no limit).
    """

    def __init__(self, backend: BackendSpec = "sim", timeout: float | None = None) -> None:
        self._spec = normalize_spec(backend)
        self._timeout = timeout
        super().__init__(self._run)

    @property
    def backend_spec(self) -> dict[str, Any]:
        return dict(self._spec)

    def _run(self, qasm_str: str, shots: int | None = None, token: str = "") -> Mapping[str, int]:
        from hal_workflow.circuits import Circuit
        from hal_workflow.orchestration.sync import run

        del token  # credentials come from the backend's own configuration, never from Qrisp
        circuit = Circuit.from_qasm(qasm_str, source="<qrisp circuit>")
        result = run(circuit, backend=self._spec, shots=DEFAULT_SHOTS if shots is None else shots,
                     timeout=self._timeout)
        return dict(result.counts)
