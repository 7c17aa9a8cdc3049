"""Shared helpers of the simulator tests: backends, the Qiskit reference, random programs."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Mapping
from typing import Any, TypeVar

import numpy as np
import pytest

from hal_workflow.simulator.gates import GATES

_T = TypeVar("_T")

HEADER = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'

# Custom gates used by the random programs (their bodies use modifiers themselves).
CUSTOM_GATES = """gate mix(a, b) x, y { rx(a) x; cu(a, b, 0.3, 0.1) x, y; sdg y; ctrl @ s y, x; }
gate hop x { h x; t x; negctrl @ gphase(0.7) x; }
"""
CUSTOM_ARITY = {"mix": (2, 2), "hop": (0, 1)}

# Modifier prefixes: (text, controls added, integer-power only?)
MODIFIERS = [
    ("ctrl @ ", 1), ("negctrl @ ", 1), ("ctrl(2) @ ", 2), ("negctrl(2) @ ", 2), ("inv @ ", 0),
    ("pow(2) @ ", 0), ("pow(-1) @ ", 0), ("pow(0.5) @ ", 0), ("pow(1.5) @ ", 0),
    ("pow(-0.25) @ ", 0),
]


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine on a fresh event loop."""
    return asyncio.run(coro)


def make_backend(**options: Any) -> Any:
    from hal_workflow.simulator.backend import SimulatorBackend

    return SimulatorBackend({"name": "sim", **options})


def reference_state(text: str, parameters: Mapping[str, float] | None = None) -> np.ndarray:
    """Qiskit's statevector of ``text`` (parsed by Qiskit's own OpenQASM 3 importer).

    Inputs are bound by writing their values into the text, since Qiskit cannot raise an
    unbound parametric gate to a power.
    """
    import re

    from qiskit import qasm3
    from qiskit.quantum_info import Statevector

    for name, value in (parameters or {}).items():
        text = text.replace(f"input float {name};\n", "")
        text = re.sub(rf"\b{name}\b", f"({value!r})", text)
    circuit = qasm3.loads(text).remove_final_measurements(inplace=False)
    return np.asarray(Statevector(circuit).data)


def program(num_qubits: int, body: Iterable[str], num_clbits: int = 0,
            inputs: Iterable[str] = (), custom: bool = False) -> str:
    lines = [HEADER.rstrip("\n")]
    lines += [f"input float {name};" for name in inputs]
    if custom:
        lines.append(CUSTOM_GATES.rstrip("\n"))
    lines.append(f"qubit[{num_qubits}] q;")
    if num_clbits:
        lines.append(f"bit[{num_clbits}] c;")
    lines += list(body)
    return "\n".join(lines) + "\n"


def random_program(rng: np.random.Generator, num_qubits: int, num_ops: int,
                   modifiers: bool = True, custom: bool = True,
                   inputs: tuple[str, ...] = ()) -> str:
    """A random circuit over every standard gate (and two custom gates), with modifiers.

    Angles stay inside (-3, 3) so that fractional powers of rotations agree between the
    angle-scaling and principal-power conventions (they differ only beyond +-pi).
    """
    names = sorted(GATES) + (sorted(CUSTOM_ARITY) if custom else [])
    body = [f"ry({rng.uniform(0.2, 2.9):.6f}) q[{q}];" for q in range(num_qubits)]
    while len(body) < num_ops:
        name = names[rng.integers(len(names))]
        if name in CUSTOM_ARITY:
            num_params, arity = CUSTOM_ARITY[name]
        else:
            definition = GATES[name]
            num_params, arity = definition.num_params, definition.num_qubits
        params = []
        for _ in range(num_params):
            if inputs and rng.random() < 0.4:
                params.append(f"{inputs[rng.integers(len(inputs))]} * {rng.uniform(-1, 1):.4f}")
            else:
                params.append(f"{rng.uniform(-3, 3):.6f}")
        prefix, controls = "", 0
        if modifiers and rng.random() < 0.45:
            for _ in range(1 + int(rng.random() < 0.3)):
                text, extra = MODIFIERS[rng.integers(len(MODIFIERS))]
                if name in CUSTOM_ARITY and "pow(" in text and "." in text:
                    continue  # fractional powers of custom gates are not OpenQASM we lower
                prefix += text
                controls += extra
        width = arity + controls
        if width > num_qubits or (width == 0 and prefix):
            continue
        qubits = rng.choice(num_qubits, size=width, replace=False)
        args = f"({', '.join(params)})" if params else ""
        operands = ", ".join(f"q[{int(q)}]" for q in qubits)
        body.append(f"{prefix}{name}{args} {operands};".replace(" ;", ";"))
    return program(num_qubits, body, inputs=inputs, custom=custom)


def assert_distribution(counts: Mapping[str, int], ideal: Mapping[str, float],
                        sigmas: float = 5.0) -> None:
    """Every outcome within ``sigmas`` binomial deviations; nothing outside the support."""
    shots = sum(counts.values())
    support = {k for k, p in ideal.items() if p > 1e-12}
    stray = {k: v for k, v in counts.items() if k not in support and v}
    assert not stray, f"impossible outcomes {stray}"
    for key, p in ideal.items():
        mean = shots * p
        bound = sigmas * np.sqrt(shots * p * (1 - p)) + 1e-9
        assert abs(counts.get(key, 0) - mean) <= bound, (key, counts.get(key, 0), mean, bound)


def ideal_from_state(state: np.ndarray, clbit_of_qubit: Mapping[int, int],
                     num_clbits: int) -> dict[str, float]:
    """Exact outcome probabilities when qubit ``q`` is measured into ``clbit_of_qubit[q]``."""
    probs = np.abs(state) ** 2
    out: dict[str, float] = {}
    for index, p in enumerate(probs):
        if p < 1e-15:
            continue
        bits = ["0"] * num_clbits
        for q, c in clbit_of_qubit.items():
            bits[num_clbits - 1 - c] = str((index >> q) & 1)
        key = "".join(bits)
        out[key] = out.get(key, 0.0) + float(p)
    return out


@pytest.fixture(scope="session")
def sim() -> Any:
    """One default backend (complex128, fusion on) shared by the tests that only read."""
    return make_backend(seed=1234)
