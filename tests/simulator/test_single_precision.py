"""Single precision near an eigenstate: a Heisenberg chain started in |0...0> (an eigenstate
of the exact evolution) keeps most amplitudes near zero, and fused matrices carry rounding
residue (1e-17 where the exact entry is 0). Multiplied together in float32 those make
subnormal numbers, which the CPU handles 10-100x slower (complex64 ran the 22-qubit chain 4x
slower than complex128); the simulator drops the residue in single precision."""

from __future__ import annotations

import asyncio

import numpy as np
from qiskit import qasm3
from qiskit.quantum_info import Statevector

from benchmarks.circuits import heisenberg
from hal_workflow.simulator.backend import SimulatorBackend


def final_state(text: str, precision: str) -> np.ndarray:
    backend = SimulatorBackend({"name": "sim", "precision": precision,
                                "method": "statevector"})
    return np.asarray(asyncio.run(backend.extension("statevector").statevector(text)))


def test_no_float32_subnormals_near_an_eigenstate() -> None:
    state = final_state(heisenberg(18), "complex64")  # numba kernels, fused blocks
    parts = state.view(np.float32)
    subnormal = (parts != 0) & (np.abs(parts) < np.finfo(np.float32).tiny)
    assert not subnormal.any(), f"{int(subnormal.sum())} subnormal components"


def test_dropping_the_residue_keeps_single_precision_accuracy() -> None:
    text = heisenberg(14)
    circuit = qasm3.loads(text)
    circuit.remove_final_measurements()
    reference = Statevector(circuit).data
    state = final_state(text, "complex64")
    assert np.max(np.abs(state - reference)) < 1e-5
