"""The ``hal-workflow`` command line, run as a user would run it (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
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


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hal_workflow.cli", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def bell_file(tmp_path: Path) -> Path:
    path = tmp_path / "bell.qasm"
    path.write_text(BELL)
    return path


def test_run_prints_counts_over_all_bits(bell_file: Path) -> None:
    out = cli("run", str(bell_file), "--backend", '{"name": "sim", "seed": 3}', "--shots", "400")
    assert out.returncode == 0, out.stderr
    counts = {line.split()[0]: int(line.split()[1]) for line in out.stdout.splitlines()}
    assert set(counts) == {"00", "11"}
    assert sum(counts.values()) == 400


def test_run_json_is_an_execution_result(bell_file: Path) -> None:
    out = cli("run", str(bell_file), "--shots", "100", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["shots"] == 100 and data["backend"] == "sim"
    assert sum(data["counts"].values()) == 100 and data["job_id"]


def test_run_binds_parameters(tmp_path: Path) -> None:
    path = tmp_path / "rot.qasm"
    path.write_text('OPENQASM 3.0;\ninclude "stdgates.inc";\ninput float theta;\n'
                    "qubit[1] q;\nbit[1] c;\nrx(theta) q[0];\nc[0] = measure q[0];\n")
    out = cli("run", str(path), "--param", "theta=3.141592653589793", "--shots", "50")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "50"]


def test_syntax_error_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.qasm"
    path.write_text('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nhh q[0];\n')
    out = cli("run", str(path))
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert "broken.qasm:4" in out.stderr and "hh" in out.stderr


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    out = cli("run", str(tmp_path / "nope.qasm"))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "nope.qasm" in out.stderr


def test_validate_reports_each_issue(tmp_path: Path) -> None:
    path = tmp_path / "wide.qasm"
    # 40 qubits and a T gate: too wide for a statevector, and not a Clifford circuit
    path.write_text('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[40] q;\nt q[0];\n')
    ok = cli("validate", str(path), "--backend", "sim")
    assert ok.returncode == 1
    assert "TOO_MANY_QUBITS" in ok.stderr and "40" in ok.stderr


def test_validate_accepts_a_valid_circuit(bell_file: Path) -> None:
    out = cli("validate", str(bell_file), "--backend", "sim", "--shots", "10")
    assert out.returncode == 0 and "valid" in out.stdout


def test_unknown_backend_lists_the_known_ones(bell_file: Path) -> None:
    out = cli("run", str(bell_file), "--backend", "nosuch")
    assert out.returncode == 1
    assert "unknown backend 'nosuch'" in out.stderr and "sim" in out.stderr


def test_bad_json_spec_is_a_clear_error(bell_file: Path) -> None:
    out = cli("run", str(bell_file), "--backend", "{not json")
    assert out.returncode == 2 and "Traceback" not in out.stderr  # a usage error, as in click
    assert "--backend" in out.stderr and "not valid JSON" in out.stderr


def test_backends_lists_the_simulator() -> None:
    out = cli("backends", "--json")
    assert out.returncode == 0, out.stderr
    rows = {row["name"]: row for row in json.loads(out.stdout)}
    assert rows["sim"]["capabilities"]["simulator"] is True
    assert {"ibm", "braket", "iqm", "qdmi", "slurm", "pbs"} <= set(rows)


def test_backends_lists_every_qdmi_device() -> None:
    from hal_workflow.backends.qdmi import list_qdmi_devices

    out = cli("backends", "--json")
    assert out.returncode == 0, out.stderr
    listed = {row["spec"]["device"]: row for row in json.loads(out.stdout)
              if row["name"] == "qdmi"}
    devices = {device.id: device for device in list_qdmi_devices()}
    assert set(listed) == set(devices)
    for device_id, row in listed.items():
        assert row["capabilities"]["num_qubits"] > 0
        assert row["capabilities"]["name"], device_id
