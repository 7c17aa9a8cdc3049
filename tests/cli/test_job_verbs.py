"""The job verbs of ``hal-workflow`` (submit, status, result, cancel, jobs, sweep, sites,
config show), each run as a user runs it: a real subprocess, ``--json`` output parsed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BELL = REPO / "examples" / "bell.qasm"
ROTATION = """OPENQASM 3.0;
include "stdgates.inc";
input float theta;
qubit[1] q;
bit[1] c;
rx(theta) q[0];
c[0] = measure q[0];
"""


def cli(*args: str, env: dict[str, str] | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hal_workflow.cli", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def parsed(out: subprocess.CompletedProcess[str]) -> object:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture
def data(tmp_path: Path) -> dict[str, str]:
    """A private data directory: its own job journal and job root."""
    return {"HAL_WORKFLOW__DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def rotation(tmp_path: Path) -> Path:
    path = tmp_path / "rotation.qasm"
    path.write_text(ROTATION)
    return path


def test_submit_prints_the_job_id_and_says_sim_jobs_run_in_process(data: dict[str, str]) -> None:
    out = cli("submit", str(BELL), "--backend", "sim", "--json", env=data)
    info = parsed(out)
    assert isinstance(info, dict) and info["job_id"].startswith("sim-")
    note = out.stderr.strip().splitlines()
    assert len(note) == 1 and "waited for the result" in note[0]
    plain = cli("submit", str(BELL), env=data)
    assert plain.returncode == 0 and plain.stdout.strip().startswith("sim-")


def test_status_and_result_from_another_process_come_from_the_journal(
        data: dict[str, str]) -> None:
    job_id = parsed(cli("submit", str(BELL), "--shots", "300", "--json",
                        env=data))["job_id"]  # type: ignore[index]
    status = parsed(cli("status", job_id, "--json", env=data))
    assert status["job_id"] == job_id and status["state"] == "COMPLETED"  # type: ignore[index]
    result = parsed(cli("result", job_id, "--json", env=data))
    assert result["job_id"] == job_id and result["shots"] == 300  # type: ignore[index]
    assert set(result["counts"]) <= {"00", "11"}  # type: ignore[index]
    assert sum(result["counts"].values()) == 300  # type: ignore[index]
    text = cli("status", job_id, env=data)
    assert text.returncode == 0 and text.stdout.split() == [job_id, "COMPLETED"]


def test_unknown_job_is_a_json_error_with_exit_1(data: dict[str, str]) -> None:
    out = cli("status", "sim-nosuch-1", "--json", env=data)
    assert out.returncode == 1
    error = json.loads(out.stdout)["error"]
    assert error["type"] == "JobNotFoundError" and "sim-nosuch-1" in error["message"]
    plain = cli("result", "sim-nosuch-1", env=data)
    assert plain.returncode == 1 and plain.stderr.startswith("error: ")
    assert len(plain.stderr.splitlines()) == 1 and "sim-nosuch-1" in plain.stderr


def test_errors_are_json_with_exit_1_and_usage_errors_exit_2(tmp_path: Path) -> None:
    out = cli("run", str(tmp_path / "missing.qasm"), "--json")
    assert out.returncode == 1
    error = json.loads(out.stdout)["error"]
    assert "missing.qasm" in error["message"] and error["exit_code"] == 1
    usage = cli("run", str(BELL), "--shots", "0")
    assert usage.returncode == 2 and "--shots" in usage.stderr
    bad_spec = cli("--json", "run", str(BELL), "--backend", "{1")
    assert bad_spec.returncode == 2
    assert "--backend" in json.loads(bad_spec.stdout)["error"]["message"]


def test_unbound_parameter_names_the_param_option(rotation: Path) -> None:
    out = cli("run", str(rotation))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--param theta=VALUE" in out.stderr


def test_sweep_json_and_csv_bindings_match_and_do_not_depend_on_chunking(
        rotation: Path, tmp_path: Path) -> None:
    thetas = [0.0, 3.141592653589793, 1.0, 2.0, 0.5]
    as_json = tmp_path / "b.json"
    as_json.write_text(json.dumps([{"theta": t} for t in thetas]))
    as_csv = tmp_path / "b.csv"
    as_csv.write_text("theta\n" + "\n".join(str(t) for t in thetas) + "\n")
    spec = '{"name": "sim", "seed": 11}'
    runs = [parsed(cli("sweep", str(rotation), "--bindings", str(f), "--backend", spec,
                       "--shots", "300", "--chunk", chunk, "--json"))
            for f, chunk in ((as_json, "1"), (as_csv, "2"), (as_json, "5"))]
    counts = [[r["counts"] for r in run] for run in runs]  # type: ignore[union-attr]
    assert counts[0] == counts[1] == counts[2]
    assert counts[0][0] == {"0": 300} and counts[0][1] == {"1": 300}  # rx(0), rx(pi): exact
    # element i is sampled with seed + i: element 2 equals a single run seeded 11 + 2
    single = parsed(cli("run", str(rotation), "--param", "theta=1.0", "--shots", "300",
                        "--backend", '{"name": "sim", "seed": 13}', "--json"))
    assert counts[0][2] == single["counts"]  # type: ignore[index]


def test_sweep_shows_a_progress_bar_when_asked(rotation: Path, tmp_path: Path) -> None:
    bindings = tmp_path / "b.json"
    bindings.write_text(json.dumps([{"theta": 0.1 * i} for i in range(20)]))
    out = cli("sweep", str(rotation), "--bindings", str(bindings), "--progress", "--chunk", "5")
    assert out.returncode == 0, out.stderr
    assert "20/20" in out.stderr
    assert len(out.stdout.strip().splitlines()) == 20
    quiet = cli("sweep", str(rotation), "--bindings", str(bindings))  # not a terminal: no bar
    assert quiet.returncode == 0 and "20/20" not in quiet.stderr


def test_sweep_bad_bindings_name_file_and_row(rotation: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("theta\n0.1\nabc\n")
    out = cli("sweep", str(rotation), "--bindings", str(bad))
    assert out.returncode == 1 and "bad.csv" in out.stderr and "row 3" in out.stderr


def test_sites_lists_the_site_files_and_engine_sites() -> None:
    data = parsed(cli("sites", "--json"))
    assert isinstance(data, dict)
    names = {row["name"]: row["file"] for row in data["sites"]}
    assert names["ci"] == str(REPO / "configs" / "sites" / "ci.yaml")
    assert "local_threads" in data["parsl"] and "local" in data["dask"]


def test_config_show_names_the_source_of_each_value(tmp_path: Path) -> None:
    user = tmp_path / "user.yaml"
    user.write_text("scheduler:\n  poll-interval: 2.5\n")
    env = {"HAL_WORKFLOW_CONFIG": str(user), "HAL_WORKFLOW__RETRY__MAX_ATTEMPTS": "9"}
    rows = parsed(cli("config", "show", "--json", env=env))
    by_key = {row["key"]: row for row in rows}  # type: ignore[union-attr]
    assert by_key["scheduler.poll-interval"] == {
        "key": "scheduler.poll-interval", "value": 2.5, "source": str(user)}
    assert by_key["retry.max-attempts"]["value"] == 9
    assert by_key["retry.max-attempts"]["source"] == "environment HAL_WORKFLOW__RETRY__MAX_ATTEMPTS"
    assert by_key["retry.jitter"]["source"].startswith("default (")
    text = cli("config", "show", "retry", env=env)
    assert text.returncode == 0 and "retry.max-attempts = 9" in text.stdout
    assert "scheduler" not in text.stdout
    unknown = cli("config", "show", "nosuch.key")
    assert unknown.returncode == 1 and "nosuch.key" in unknown.stderr


def test_old_variables_still_work_with_a_warning_naming_the_new_key(tmp_path: Path) -> None:
    env = {"HAL_WORKFLOW_JOB_ROOT": str(tmp_path / "jobs")}
    out = cli("config", "show", "scheduler.job-root", "--json", env=env)
    rows = parsed(out)
    assert rows == [{"key": "scheduler.job-root", "value": str(tmp_path / "jobs"),
                     "source": "environment HAL_WORKFLOW_JOB_ROOT (deprecated: use "
                               "scheduler.job-root)"}]
    assert "FutureWarning" in out.stderr and "scheduler.job-root" in out.stderr
    # the new spelling wins over the old one, and silences it
    env["HAL_WORKFLOW__SCHEDULER__JOB_ROOT"] = "/new"
    out = cli("config", "show", "scheduler.job-root", "--json", env=env)
    assert parsed(out)[0]["value"] == "/new" and "FutureWarning" not in out.stderr  # type: ignore[index]


def test_log_level_options_are_accepted() -> None:
    assert cli("-v", "backends", "--json").returncode == 0
    assert cli("--log-level", "debug", "validate", str(BELL)).returncode == 0
    assert cli("--log-level", "loud", "backends").returncode == 2


def test_jobs_lists_the_journal_newest_first_with_filters(data: dict[str, str]) -> None:
    first = parsed(cli("submit", str(BELL), "--json", env=data))["job_id"]  # type: ignore[index]
    second = parsed(cli("submit", str(BELL), "--json", env=data))["job_id"]  # type: ignore[index]
    rows = parsed(cli("jobs", "--json", "--backend", "sim", "--since", "1h", env=data))
    assert [row["job_id"] for row in rows] == [second, first]  # type: ignore[union-attr]
    assert all(row["state"] == "COMPLETED" for row in rows)  # type: ignore[union-attr]
    assert parsed(cli("jobs", "--json", "--state", "failed", env=data)) == []
    assert parsed(cli("jobs", "--json", "--backend", "ibm", env=data)) == []
    assert len(parsed(cli("jobs", "--json", "--limit", "1", env=data))) == 1  # type: ignore[arg-type]
    table = cli("jobs", env=data)
    assert table.returncode == 0 and table.stdout.splitlines()[1].startswith(second)
    assert cli("jobs", "--since", "soon", env=data).returncode == 2


# --------------------------------------------------------------------------- SLURM

SLURM_SPEC = '{"name": "slurm", "backend": {"name": "sim", "seed": 5}, "site": "ci"}'


@pytest.mark.slurm
def test_submit_status_result_through_slurm(tmp_path: Path) -> None:
    env = {"HAL_WORKFLOW__SCHEDULER__JOB_ROOT": str(tmp_path / "jobs"),
           "HAL_WORKFLOW__DATA_DIR": str(tmp_path / "data")}
    job_id = parsed(cli("submit", str(BELL), "--backend", SLURM_SPEC, "--shots", "400",
                        "--json", env=env))["job_id"]  # type: ignore[index]
    assert "@" in job_id
    status = parsed(cli("status", job_id, "--backend", SLURM_SPEC, "--json", env=env))
    assert status["job_id"] == job_id  # type: ignore[index]
    assert status["state"] in {"QUEUED", "RUNNING", "COMPLETED"}  # type: ignore[index]
    result = parsed(cli("result", job_id, "--backend", SLURM_SPEC, "--wait", "--timeout", "120",
                        "--json", env=env))
    local = parsed(cli("run", str(BELL), "--backend", '{"name": "sim", "seed": 5}',
                       "--shots", "400", "--json"))
    assert result["counts"] == local["counts"]  # type: ignore[index]
    done = parsed(cli("status", job_id, "--backend", SLURM_SPEC, "--json", env=env))
    assert done["state"] == "COMPLETED"  # type: ignore[index]
    # without --backend: the spec comes from the job journal, the state from SLURM
    journal = parsed(cli("status", job_id, "--json", env=env))
    assert journal["state"] == "COMPLETED"  # type: ignore[index]
    again = parsed(cli("result", job_id, "--json", env=env))
    assert again["counts"] == local["counts"]  # type: ignore[index]


@pytest.mark.slurm
def test_cancel_through_slurm(tmp_path: Path) -> None:
    env = {"HAL_WORKFLOW__SCHEDULER__JOB_ROOT": str(tmp_path)}
    circuit = tmp_path / "slow.qasm"  # a 25-qubit state, long enough to cancel while it runs
    circuit.write_text('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[25] q;\nbit[25] c;\n'
                       + "for int i in [0:40] { h q; }\nc = measure q;\n")
    job_id = cli("submit", str(circuit), "--backend", SLURM_SPEC, env=env).stdout.strip()
    assert "@" in job_id
    out = cli("cancel", job_id, "--backend", SLURM_SPEC, "--json", env=env)
    assert parsed(out)["state"] in {"CANCELLED", "RUNNING", "QUEUED"}  # type: ignore[index]
    deadline = time.monotonic() + 60
    while True:
        state = parsed(cli("status", job_id, "--backend", SLURM_SPEC, "--json", env=env))
        if state["state"] == "CANCELLED" or time.monotonic() > deadline:  # type: ignore[index]
            break
        time.sleep(1)
    assert state["state"] == "CANCELLED"  # type: ignore[index]
    pending = cli("result", job_id, "--backend", SLURM_SPEC, env=env)
    assert pending.returncode == 1 and "Traceback" not in pending.stderr


def test_a_missing_sdk_is_one_line_naming_the_install_command() -> None:
    """As after ``pip install hal-workflow`` without ``[braket]`` (the SDK hidden here)."""
    code = ("import sys; sys.modules['braket'] = None; sys.argv[0] = 'hal-workflow'; "
            "from hal_workflow.cli import main; main()")
    out = subprocess.run([sys.executable, "-c", code, "run", str(BELL), "--backend", "braket"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert len(out.stderr.splitlines()) == 1, out.stderr
    # this checkout runs editable (or from source): the hint installs into it, with this python
    assert f"install it with: {sys.executable} -m pip install -e '{REPO}[braket]'" in out.stderr
