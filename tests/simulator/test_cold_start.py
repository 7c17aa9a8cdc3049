"""Cold start: the NumPy versions of the small-state kernels (used while numba compiles or
loads) against Qiskit's ``Statevector``, and the one-line notice when compiling is needed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import make_backend, random_program, reference_state, run

from hal_workflow.simulator import kernels as K

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def numpy_kernels(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Numba's small-state kernels count as not ready, and nothing compiles meanwhile."""
    calls: list[str] = []
    for name in K._FALLBACKS:
        kernel = getattr(K, name)
        monkeypatch.setattr(kernel, "ready", set())
        fallback = kernel.fallback
        monkeypatch.setattr(kernel, "fallback",
                            lambda *a, _f=fallback, _n=name: (calls.append(_n), _f(*a))[1])
    monkeypatch.setattr(K.Kernel, "compile", lambda self, dtype, announce=False: None)
    yield calls
    assert "run_direct" in calls  # the NumPy path really ran


@pytest.mark.parametrize("precision", ["complex128", "complex64"])
@pytest.mark.parametrize("seed", range(3))
def test_numpy_kernels_match_qiskit(numpy_kernels: list[str], precision: str,
                                    seed: int) -> None:
    rng = np.random.default_rng(77 + seed)
    backend = make_backend(precision=precision)
    tolerance = 1e-10 if precision == "complex128" else 2e-5
    for num_qubits in (2, 5, 9):
        text = random_program(rng, num_qubits, num_ops=40)
        ours = run(backend.extension("statevector").statevector(text))
        np.testing.assert_allclose(ours, reference_state(text), atol=tolerance, err_msg=text)


def test_small_states_run_on_numpy_even_once_numba_is_compiled(
        numpy_kernels: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Which kernel computes a state depends on its size alone, never on what the process
    compiled before: the NumPy and numba kernels differ in the last bits, and a seeded sample
    can then differ (seen: element 2 of a sweep), so a sweep element computed in a fresh worker
    must go through the same kernel as in a driver that compiled numba long ago."""
    text = ('OPENQASM 3.0;\ninclude "stdgates.inc";\ninput float t;\nqubit[3] q;\nbit[3] c;\n'
            "h q[0];\nrx(t) q[1];\ncx q[0], q[2];\nry(t) q[2];\nc = measure q;\n")
    bindings = [{"t": 0.3 * i} for i in range(6)]
    fresh = [r.counts for r in run(_sweep(make_backend(seed=5), text, bindings))]
    monkeypatch.undo()  # numba's kernels are real again: compile them
    K.ensure_compiled(np.complex128)
    assert K.run_direct.ready >= {"complex128"}
    calls: list[str] = []
    fallback = K.run_direct.fallback
    monkeypatch.setattr(K.run_direct, "fallback",
                        lambda *a: (calls.append("run_direct"), fallback(*a))[1])
    compiled = [r.counts for r in run(_sweep(make_backend(seed=5), text, bindings))]
    assert calls, "a 3-qubit state ran on numba once it was compiled"
    assert compiled == fresh


async def _sweep(backend: object, text: str, bindings: list[dict[str, float]]) -> list[object]:
    from hal_workflow.contract.extensions import run_many

    return await run_many(backend, text, 500, bindings)  # type: ignore[arg-type]


@pytest.mark.slow
def test_compiling_says_so_once_and_a_bell_pair_does_not_wait(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    bell = subprocess.run([sys.executable, "-m", "hal_workflow.cli", "run",
                           str(REPO / "examples" / "bell.qasm")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert bell.returncode == 0, bell.stderr
    assert K.NOTICE not in bell.stderr  # the NumPy kernels ran it: nothing to wait for
    wide = tmp_path / "wide.qasm"
    # the rx keeps the cx in the plan (a cx before the measurements only permutes outcomes)
    wide.write_text('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[12] q;\nbit[12] c;\n'
                    "h q;\ncx q[0], q[11];\nrx(0.3) q[0];\nc = measure q;\n")
    out = subprocess.run([sys.executable, "-m", "hal_workflow.cli", "run", str(wide),
                          "--shots", "10"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count(K.NOTICE) == 1 and len(out.stderr.splitlines()) == 1
    assert list((tmp_path / "cache").rglob("*.nbi"))  # compiled into the shared cache
    again = subprocess.run([sys.executable, "-m", "hal_workflow.cli", "run", str(wide),
                            "--shots", "10"], capture_output=True, text=True, env=env,
                           timeout=300)
    assert again.returncode == 0 and K.NOTICE not in again.stderr  # loaded, not compiled
