"""The cache-blocked stage kernels (issue 12) against Qiskit's ``Statevector``, at both
precisions: monomial blocks as plain row copies (``cx``, ``x``, ``swap``, ``ccx``: only the
rows that change are moved) and with phases (``y``, ``cy``), dense blocks of 1 to 5 qubits,
and the complex128 kernels compiled for 512-bit vectors. States are small and blocks tiny
(``block_qubits``), so every kernel path runs in a few milliseconds.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import HEADER, make_backend, reference_state, run

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # inside Qiskit's importer

TOLERANCE = {"complex128": 1e-10, "complex64": 2e-5}

ONE = ("h", "s", "sdg", "t", "x", "y", "z", "sx")
TWO = ("cx", "cz", "swap", "cy", "ch")
THREE = ("ccx", "cswap")
PARAM = ("rx", "ry", "rz")


def _program(rng: np.random.Generator, n: int, ops: int, monomial_heavy: bool) -> str:
    """A random program; ``monomial_heavy``: mostly ``cx``/``x``/``swap``/``ccx`` layers with
    few dense gates, so stages hold long runs of monomial blocks (Clifford-like circuits)."""
    lines = [HEADER, f"qubit[{n}] q;"]
    for _ in range(n):  # a random product state first: every amplitude is non-zero
        q = int(rng.integers(n))
        lines.append(f"u3({rng.uniform(0, 3):.3f}, {rng.uniform(0, 3):.3f}, "
                     f"{rng.uniform(0, 3):.3f}) q[{q}];")
    for _ in range(ops):
        r = rng.uniform()
        if monomial_heavy and r < 0.6:
            name = str(rng.choice(("cx", "x", "swap", "ccx", "cy", "y", "cx", "cx")))
        elif r < 0.35:
            name = str(rng.choice(ONE + PARAM))
        elif r < 0.85:
            name = str(rng.choice(TWO))
        else:
            name = str(rng.choice(THREE))
        width = 3 if name in THREE else 2 if name in TWO else 1
        qubits = rng.choice(n, width, replace=False)
        args = f"({rng.uniform(-3, 3):.4f})" if name in PARAM else ""
        lines.append(f"{name}{args} " + ", ".join(f"q[{int(q)}]" for q in qubits) + ";")
    return "\n".join(lines) + "\n"


def _statevector(backend: object, text: str) -> np.ndarray:
    return run(backend.extension("statevector").statevector(text))  # type: ignore[attr-defined]


@pytest.mark.parametrize("precision", ["complex128", "complex64"])
@pytest.mark.parametrize("monomial_heavy", [True, False])
@pytest.mark.parametrize("fused", [2, 3, 4, 5])
def test_blocked_kernels_match_qiskit(precision: str, monomial_heavy: bool, fused: int) -> None:
    rng = np.random.default_rng(fused * 7 + monomial_heavy)
    backend = make_backend(precision=precision, blocking_threshold=4, block_qubits=6,
                           max_fused_qubits=fused, method="statevector")
    for n in (9, 11):
        text = _program(rng, n, 80, monomial_heavy)
        ours = _statevector(backend, text)
        np.testing.assert_allclose(ours, reference_state(text), atol=TOLERANCE[precision],
                                   err_msg=text)
        if monomial_heavy:  # the monomial kernels did run
            measured = text + f"bit[{n}] c;\nc = measure q;\n"
            plan = run(backend.run(measured, 1)).metadata["plan"]  # type: ignore[attr-defined]
            assert plan["perm_blocks"] > 0 and plan["stages"] > 1, plan
