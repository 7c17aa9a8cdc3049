"""The simulator benchmark's ``--cell`` path runs one tiny cell for every simulator that is
installed, and every simulator's counts follow the exact distribution of the program (so the
gate mappings to qulacs and qsim and every peer's bit order are right)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import program, reference_state

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "simulator.py"
# (column, module it needs) as in benchmarks/simulator.py's MODULES
COLUMNS = {"sim": "numba", "sim64": "numba", "sim-auto": "numba", "aer": "qiskit_aer",
           "qulacs": "qulacs", "qsim": "qsimcirq", "prism": "prism_q", "prism-auto": "prism_q",
           "braket": "braket"}
SHOTS = 4000

# Every gate the benchmark classes use, on 4 qubits, then every qubit measured.
BODY = ["h q[0];", "x q[1];", "s q[0];", "U(0.7, 1.1, -0.4) q[2];", "cx q[0], q[2];",
        "rx(0.9) q[3];", "ry(1.3) q[1];", "cz q[1], q[3];", "rz(0.6) q[2];", "cx q[3], q[0];",
        "ry(0.4) q[0];", "h q[3];", "rz(1.7) q[0];", "cx q[2], q[1];", "rx(-0.8) q[2];"]


def test_benchmark_module_lists_the_same_columns() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        import benchmarks.simulator as bench
    finally:
        sys.path.remove(str(ROOT))
    assert {k: v.split(".")[0] for k, v in bench.MODULES.items()} == COLUMNS
    assert set(bench.SIMULATORS) == set(COLUMNS)


@pytest.mark.parametrize("column", sorted(COLUMNS))
def test_cell_runs_and_samples_the_right_distribution(column: str, tmp_path: Path) -> None:
    if importlib.util.find_spec(COLUMNS[column]) is None:
        missing = f"{COLUMNS[column]} (for {column}) is not installed: pip install -e '.[bench]'"
        if os.environ.get("CI"):  # .ci/run installs the bench extra: every peer must run
            pytest.fail(missing)
        pytest.skip(missing)
    text = program(4, [*BODY, "c = measure q;"], num_clbits=4)
    source = tmp_path / "cell.qasm"
    source.write_text(text)
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--cell", column, "file", "4", "--qasm", str(source),
         "--repeat", "1", "--shots", str(SHOTS), "--threads", "1", "--counts"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    cell = json.loads(out.stdout.strip().splitlines()[-1])
    assert cell["seconds"] > 0 and cell["peak_mib"] >= 0
    counts = cell["counts"]
    assert sum(counts.values()) == SHOTS
    ideal = np.abs(reference_state(text)) ** 2
    observed = np.zeros(16)
    for key, value in counts.items():
        observed[int(key, 2)] += value / SHOTS
    # total variation distance: ~0.02 expected at 4000 shots over 16 outcomes; a wrong gate
    # convention moves it far beyond 0.06 (flipped rotation signs: 0.15, U's phi and lambda
    # swapped: 0.33, reversed bit order: 0.39, computed with Qiskit for this program)
    assert 0.5 * np.abs(observed - ideal).sum() < 0.06, (counts, ideal)
