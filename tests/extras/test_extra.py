"""Each extra on its own: ``.ci/run`` installs ``hal-workflow[EXTRA]`` alone in a fresh venv and
runs this file with ``HAL_EXTRA=EXTRA``; the smoke test of that extra must pass with nothing
else installed (``[braket]`` without qiskit, say). In the full test environment (no
``HAL_EXTRA``) every core extra's smoke test runs.

Each smoke test runs the Bell pair through the extra's own path and checks the counts against
the exact distribution (only ``00`` and ``11``, about half each).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

BELL = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
cx q[0], q[1];
c = measure q;
"""
SHOTS = 2000


def check_bell(counts: dict[str, int], shots: int = SHOTS, noisy: bool = False) -> None:
    """Only 00 and 11, about half each (5 sigma); a noisy fake device: 00/11 at least 85%."""
    assert sum(counts.values()) == shots, counts
    correlated = counts.get("00", 0) + counts.get("11", 0)
    assert correlated >= (0.85 * shots if noisy else shots), counts
    assert abs(counts.get("00", 0) - correlated / 2) < 5 * (shots / 4) ** 0.5, counts


def run(spec: object) -> dict[str, int]:
    import hal_workflow as hal

    return dict(hal.run(BELL, backend=spec, shots=SHOTS).counts)  # type: ignore[arg-type]


def smoke_core() -> None:
    """No extra at all: the default backend works after a plain ``pip install hal-workflow``."""
    import hal_workflow as hal

    check_bell(run(hal.config.get("default-backend")))


def smoke_sim() -> None:
    check_bell(run({"name": "sim", "seed": 1, "precision": "complex64"}))


def smoke_dask() -> None:
    from dask.distributed import Client

    from hal_workflow.executors import dask as hal_dask

    with Client(hal_dask.local_cluster(n_workers=1, processes=False)) as client:
        future = hal_dask.submit_circuit(client, BELL, backend="sim", shots=SHOTS)
        check_bell(dict(future.result().counts))


def smoke_parsl(tmp_path: Path) -> None:
    import parsl

    from hal_workflow.executors import parsl as hal_parsl
    from hal_workflow.executors.config import parsl_config

    with parsl.load(parsl_config("local_threads", run_dir=str(tmp_path / "runinfo"))):
        check_bell(dict(hal_parsl.run_circuit(BELL, backend="sim", shots=SHOTS).result().counts))


def smoke_ibm() -> None:
    check_bell(run({"name": "ibm", "backend": "fake_manila", "seed": 3}), noisy=True)


def smoke_braket() -> None:
    check_bell(run({"name": "braket", "device": "local"}))


def smoke_iqm() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "adapters"))
    from iqm_server import IQMMockServer

    with IQMMockServer() as server:
        check_bell(run({"name": "iqm", "url": server.url}))


def smoke_qdmi() -> None:
    check_bell(run({"name": "qdmi", "device": "mqt.ddsim.default"}))


def smoke_qir() -> None:
    """QIR written by us, read back through pyqir, runs with the Bell pair's counts."""
    from hal_workflow.circuits import Circuit

    qir = Circuit.from_qasm(BELL).to_qir()
    check_bell(run_foreign(Circuit.from_qir(qir)))


def smoke_jupyter() -> None:
    """Progress bars as notebook widgets: tqdm's notebook bar needs ipywidgets."""
    import ipywidgets  # noqa: F401
    from tqdm.notebook import tqdm

    with tqdm(total=1, disable=False) as bar:
        bar.update(1)
    smoke_core()


def _foreign_bell(framework: str) -> object:
    if framework == "qiskit":
        from qiskit import QuantumCircuit

        qc = QuantumCircuit(2, 2)
        qc.h(0)
        qc.cx(0, 1)
        qc.measure([0, 1], [0, 1])
        return qc
    if framework == "cirq":
        import cirq

        a, b = cirq.LineQubit.range(2)
        return cirq.Circuit([cirq.H(a), cirq.CNOT(a, b), cirq.measure(a, b, key="c")])
    raise AssertionError(f"no foreign Bell circuit for {framework}")


def smoke_framework(framework: str) -> Callable[[], None]:
    def smoke() -> None:
        check_bell(run_foreign(_foreign_bell(framework)))

    return smoke


def run_foreign(circuit: object) -> dict[str, int]:
    import hal_workflow as hal

    return dict(hal.run(circuit, backend="sim", shots=SHOTS).counts)  # type: ignore[arg-type]


SMOKES: dict[str, Callable[..., None]] = {
    "core": smoke_core, "sim": smoke_sim, "dask": smoke_dask, "parsl": smoke_parsl,
    "ibm": smoke_ibm, "braket": smoke_braket, "iqm": smoke_iqm, "qdmi": smoke_qdmi,
    "qir": smoke_qir, "jupyter": smoke_jupyter,
    "qiskit": smoke_framework("qiskit"), "cirq": smoke_framework("cirq"),
}
CORE = ["core", "sim", "dask", "parsl", "ibm", "braket", "iqm", "qdmi", "qir", "cirq"]
NOT_NEEDED = {"braket": "qiskit", "sim": "qiskit", "dask": "qiskit", "parsl": "qiskit",
              "qdmi": "qiskit", "core": "numba_nonexistent"}
"""A package an extra must work without (checked only in its own venv)."""

EXTRA = os.environ.get("HAL_EXTRA")


@pytest.mark.parametrize("extra", [EXTRA] if EXTRA else CORE)
def test_extra_smoke(extra: str, tmp_path: Path) -> None:
    own_tests = Path(__file__).resolve().parents[1] / extra
    if extra not in SMOKES and not own_tests.is_dir():
        pytest.fail(f"HAL_EXTRA={extra}: no smoke test in {__file__}; add one to SMOKES")
    # a framework extra with its own tests (tests/EXTRA, run beside this file by .ci/run):
    # here, that the default backend works in its venv
    smoke = SMOKES.get(extra, smoke_core)
    if "tmp_path" in smoke.__code__.co_varnames[: smoke.__code__.co_argcount]:
        smoke(tmp_path)
    else:
        smoke()


@pytest.mark.skipif(EXTRA is None, reason="only in the extra's own venv (.ci/run)")
def test_extra_installs_nothing_it_does_not_need() -> None:
    unwanted = NOT_NEEDED.get(EXTRA or "")
    if unwanted:
        assert importlib.util.find_spec(unwanted) is None, (
            f"[{EXTRA}] pulled in {unwanted}, which it does not need")


def test_import_loads_no_sdk() -> None:
    import subprocess

    code = ("import sys, hal_workflow; heavy = [m for m in ('numba', 'qiskit', 'braket', 'dask',"
            " 'parsl', 'mqt', 'iqm_client', 'pyqir') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
