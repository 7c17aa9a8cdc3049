"""Compilation work in worker processes (``hal_workflow.compilation.workers``): what runs
where, that answers and errors come back as they would in process, and that a worker never
runs the caller's script again."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from hal_workflow import config
from hal_workflow.circuits import as_circuit
from hal_workflow.compilation import workers
from hal_workflow.compilation.qiskit_bridge import to_qiskit, transpile_for
from hal_workflow.contract import BackendUnavailableError, CircuitError, ValidationError
from hal_workflow.testing import circuits

BIG = 10**6  # a size above any budget


def test_small_work_stays_here_large_work_goes_to_a_worker() -> None:
    assert workers.call(os.getpid, size=0) == os.getpid()
    assert workers.call(os.getpid, size=BIG) != os.getpid()
    with config.set({"compilation.worker-min-operations": None}):
        assert workers.call(os.getpid, size=BIG) == os.getpid()


def test_estimate_counts_statements() -> None:
    text = circuits.deep(3, 10)  # 10 layers of 3 h + 2 cx + 3 rz, 3 measurements
    assert workers.estimate(text) == workers.estimate(as_circuit(text)) >= 80


def test_transpiled_in_a_worker_equals_transpiled_here() -> None:
    from qiskit.quantum_info import Operator

    text = circuits.program(4, 1, ["h q[0];", "cx q[0], q[3];", "t q[2];", "ccx q[0], q[1], q[2];",
                                   "swap q[1], q[3];"] * 250)
    assert workers.estimate(text) > workers.budget()  # type: ignore[operator]
    options: dict[str, Any] = {"basis_gates": ["rz", "sx", "x", "cx"],
                               "coupling_map": [(0, 1), (1, 2), (2, 3)], "seed": 5}
    there = transpile_for(text, **options)
    with config.set({"compilation.worker-min-operations": None}):
        here = transpile_for(text, **options)
    assert there == here
    assert Operator.from_circuit(there).equiv(Operator(to_qiskit(text)))


def test_contract_errors_come_back_as_themselves() -> None:
    wide = circuits.deep(6, 200)
    with pytest.raises(ValidationError, match="circuit uses 6 qubits, the device has 3"):
        transpile_for(wide, coupling_map=[(0, 1), (1, 2)])
    broken = "OPENQASM 3.0;\nqubit[2] q;\n" + "x q[0];\n" * 1500 + "hh q[1];\n"
    with pytest.raises(CircuitError) as caught:
        workers.call(as_circuit, broken, size=workers.estimate(broken))
    assert caught.value.line == 1503


def _unpicklable_error() -> None:
    class Local(Exception):
        pass

    raise Local("4,0: gate 'hh' is not defined")


def test_an_error_that_does_not_pickle_keeps_its_message() -> None:
    with pytest.raises(RuntimeError, match=r"^4,0: gate 'hh' is not defined$"):
        workers.call(_unpicklable_error, size=BIG)


def test_a_dead_worker_is_reported_and_replaced() -> None:
    with pytest.raises(BackendUnavailableError, match="worker process died running _exit"):
        workers.call(os._exit, 3, size=BIG)
    assert workers.call(os.getpid, size=BIG) != os.getpid()


def test_a_worker_does_not_run_the_callers_script_again(tmp_path: Path) -> None:
    """Unlike a spawn/forkserver pool, which imports the main script in every worker: a
    script without ``if __name__ == "__main__":`` would submit its jobs twice."""
    script = tmp_path / "unguarded.py"
    log = tmp_path / "runs.log"
    script.write_text(textwrap.dedent(f"""
        import os
        from hal_workflow.compilation import workers
        with open({str(log)!r}, "a") as f:
            f.write("ran\\n")
        print(workers.call(os.getpid, size=10**6) != os.getpid())
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    assert log.read_text() == "ran\n"
