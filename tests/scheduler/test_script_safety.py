"""Issue 10, scheduler side, without a cluster: batch scripts that cannot be escaped, spec
values checked before anything runs, private job files, redacted specs, the job root.

The probe's hostile values each produced a script that ran an attacker's command on the
compute node; now each is a ``ConfigurationError`` naming its key. A hypothesis property
test writes scripts from arbitrary strings and runs them: nothing but the intended command
(replaced by a marker) may execute.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scheduler_helpers import BELL

from hal_workflow import config
from hal_workflow.backends.registry import get_backend, register_backend
from hal_workflow.contract.errors import ConfigurationError
from hal_workflow.contract.secrets import Secret
from hal_workflow.orchestration import jobdir
from hal_workflow.orchestration.jobdir import JobDir, Task
from hal_workflow.orchestration.runjob import run_job_dir
from hal_workflow.orchestration.scheduler import SchedulerBackend, job_options
from hal_workflow.orchestration.schedulers.base import TASK_INDEX_ENV, array_spec, call
from hal_workflow.orchestration.schedulers.pbs import PBS
from hal_workflow.orchestration.schedulers.slurm import Slurm


@pytest.fixture(autouse=True)
def _procsim() -> None:
    register_backend("procsim", "hal_scheduler_testkit:ProcessBackend")


def spec(tmp_path: Path, **options: Any) -> dict[str, Any]:
    return {"name": "slurm", "backend": {"name": "procsim", "root": str(tmp_path / "vendor")},
            "job_root": str(tmp_path / "jobs"), **options}


# ------------------------------------------------------------------ the probe's values
@pytest.mark.parametrize(("key", "value"), [
    ("job_name", "x\ntouch /tmp/pwned"),
    ("partition", "debug\ntouch /tmp/pwned"),
    ("qos", "normal\ntouch /tmp/pwned"),
    ("account", "proj\ntouch /tmp/pwned"),
    ("job_name", "a b"),
    ("partition", "debug;id"),
    ("account", "$(id)"),
    ("job_root", "/tmp/jobs\ntouch /tmp/pwned"),
    ("extra_directives", ["--comment=x\ntouch /tmp/pwned"]),
    ("prologue", ["module load x\ntouch /tmp/pwned"]),
    ("python", "/usr/bin/python3\ntouch /tmp/pwned"),
])
def test_hostile_values_are_refused_naming_the_key(tmp_path: Path, key: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=key):
        get_backend(spec(tmp_path, **{key: value}))
    assert not (tmp_path / "jobs").exists()  # refused before any directory was made


@pytest.mark.parametrize("env", [{"A=1; touch x": "1"}, {"1A": "x"}, {"A B": "x"},
                                 {"": "x"}, {TASK_INDEX_ENV: "3"}, {"A": "x\0y"}])
def test_hostile_env_keys_are_refused(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="env"):
        get_backend(spec(tmp_path, env=env))


def test_env_values_are_quoted_and_never_shown_in_errors(tmp_path: Path) -> None:
    hostile = "$(touch pwned); `touch pwned2`\n'; touch pwned3 #"
    backend = get_backend(spec(tmp_path, env={"HOSTILE_VALUE": hostile}))
    assert isinstance(backend, SchedulerBackend)
    script = backend.job_script(str(tmp_path))
    marker = tmp_path / "marker"
    script = script.replace(script.splitlines()[-1], f"exec touch {marker}")
    subprocess.run(["bash", "-c", script], cwd=tmp_path, check=True, timeout=30)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["marker"]
    with pytest.raises(ConfigurationError) as info:
        get_backend(spec(tmp_path, env={"SECRET_VALUE": "abc\0def"}))
    assert "abc" not in str(info.value)


def test_job_dir_in_the_comment_line_is_quoted(tmp_path: Path) -> None:
    script = get_backend(spec(tmp_path)).job_script("/jobs/a b'c")  # type: ignore[attr-defined]
    assert "# hal-workflow job '/jobs/a b'\"'\"'c'" in script
    with pytest.raises(ConfigurationError, match="job_root"):
        get_backend(spec(tmp_path)).job_script("/jobs/x\ntouch y")  # type: ignore[attr-defined]


def test_spec_values_are_checked_before_sbatch_runs(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe: ``"poll_interval": "x"`` was refused only after sbatch ran."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ran = tmp_path / "sbatch-ran"
    (bin_dir / "sbatch").write_text(f"#!/bin/sh\ntouch {ran}\necho 1\n")
    (bin_dir / "sbatch").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    for bad in ({"poll_interval": "x"}, {"poll_interval": -1}, {"max_poll_interval": "y"},
                {"submit_timeout": 0}, {"cpus": "4"}, {"job_root": 42}, {"python": ["x"]},
                {"memory": "lots"}, {"time": "soon"}, {"hooks": {"never": "x"}}):
        with pytest.raises(ConfigurationError):
            get_backend(spec(tmp_path, **bad))
    assert not ran.exists()


def test_nested_scheduler_specs_are_refused(tmp_path: Path) -> None:
    for inner in ("slurm", {"name": "pbs", "backend": "sim"}, {"name": "slurm"}):
        with pytest.raises(ConfigurationError, match="itself a batch scheduler"):
            get_backend({"name": "slurm", "backend": inner, "job_root": str(tmp_path)})
        with pytest.raises(ConfigurationError, match="itself a batch scheduler"):
            get_backend({"name": "pbs", "backend": inner, "job_root": str(tmp_path)})


# ------------------------------------------------------------------ property test
FIELDS = ("job_name", "partition", "qos", "account", "extra_directives", "env_key",
          "env_value", "job_dir")


def render(field: str, text: str, job_dir: Path, marker: Path) -> str:
    settings_: dict[str, Any] = {"job_name": "hal-x", "env": {"OK": "1"}}
    if field == "extra_directives":
        settings_[field] = [text]
    elif field == "env_key":
        settings_["env"] = {text: "1"}
    elif field == "env_value":
        settings_["env"] = {"VALUE": text}
    elif field != "job_dir":
        settings_[field] = text
    options = job_options(settings_, "slurm", "hal-x")
    directory = str(job_dir / text) if field == "job_dir" else str(job_dir)
    return Slurm().job_script(options, ["touch", str(marker)], directory, array=False)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), text=st.text(max_size=40))
def test_no_string_escapes_the_script(tmp_path_factory: pytest.TempPathFactory, field: str,
                                      text: str) -> None:
    """Any string in any field: refused, or a script that ``bash -n`` accepts and that, run,
    creates the marker (its command) and nothing else."""
    sandbox = tmp_path_factory.mktemp("sandbox")
    job_dir, marker = sandbox / "job", sandbox / "marker"
    job_dir.mkdir()
    try:
        script = render(field, text, job_dir, marker)
    except ConfigurationError:
        return
    subprocess.run(["bash", "-n"], input=script, text=True, check=True, timeout=30)
    if field == "job_dir":
        try:
            (job_dir / text).mkdir(parents=True, exist_ok=True)
        except (OSError, ValueError):
            return  # not a path this filesystem can hold: sbatch could not run it either
    before = {p for p in sandbox.rglob("*")}
    proc = subprocess.run(["bash", "-c", script], cwd=sandbox, capture_output=True,
                          timeout=30, check=False)
    after = {p for p in sandbox.rglob("*")}
    assert after - before == {marker}, (script, proc.stderr)


# ------------------------------------------------------------------ job files
def test_job_files_are_private_whatever_the_umask(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(jobdir.JOB_ROOT_ENV, raising=False)
    old = os.umask(0)
    try:
        root = tmp_path / "fresh-root"
        directory = JobDir.create(root)
        directory.write_inputs("slurm", {"name": "procsim", "root": str(tmp_path / "v"),
                                         "duration": 0.05}, 10, [BELL], [Task(0, 0, None)],
                               array=False, submit={"job_name": "hal-x", "tag": "t"})
        directory.write_text("job.sh", "#!/bin/sh\n")
        assert run_job_dir(str(directory.path)) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE(directory.path.stat().st_mode) == 0o700
    files = list(directory.path.iterdir())
    assert {p.name for p in files} >= {"job.json", "job.sh", "circuit-0.qasm", "result.json",
                                       "started.json", "vendor_job.json"}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {oct(0o600)}


def test_job_json_holds_no_credential(tmp_path: Path) -> None:
    from hal_workflow.contract import CredentialsError

    directory = JobDir.create(tmp_path)
    by_value = {"name": "iqm", "token": "TOKEN-abc123", "nested": {"api_key": Secret("KEY-xyz")}}
    with pytest.raises(CredentialsError, match="by value"):  # refused: never written
        directory.write_inputs("slurm", by_value, 10, [BELL], [Task(0, 0, None)], array=False,
                               submit={"job_name": "hal-x", "tag": "t"})
    by_reference = {"name": "iqm", "token": {"env": "IQM_TOKEN"},
                    "tokens_file": "~/.iqm/tokens.json"}
    directory.write_inputs("slurm", by_reference, 10, [BELL], [Task(0, 0, None)], array=False,
                           submit={"job_name": "hal-x", "tag": "t"})
    stored = json.loads((directory.path / "job.json").read_text())["backend"]
    assert stored["token"] == {"env": "IQM_TOKEN"}
    assert stored["tokens_file"] == "~/.iqm/tokens.json"


def test_default_job_root_follows_the_configuration(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(jobdir.JOB_ROOT_ENV, raising=False)
    with config.set({"data-dir": str(tmp_path / "data")}):
        assert jobdir.default_job_root() == tmp_path / "data" / "jobs"
        with config.set({"scheduler.job-root": str(tmp_path / "configured")}):
            assert jobdir.default_job_root() == tmp_path / "configured"
            monkeypatch.setenv(jobdir.JOB_ROOT_ENV, str(tmp_path / "legacy"))
            assert jobdir.default_job_root() == tmp_path / "legacy"  # still honoured


def test_internal_variables_never_reach_commands_or_single_jobs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TASK_INDEX_ENV, "7")
    printed = call(["env"], what="env").stdout
    assert TASK_INDEX_ENV not in printed and "PATH=" in printed
    script = get_backend(spec(tmp_path)).job_script("/j")  # type: ignore[attr-defined]
    assert f"unset {TASK_INDEX_ENV}" in script
    marker = tmp_path / "env.txt"
    body = script.replace(script.splitlines()[-1], f"exec env > {marker}")
    (tmp_path / "j").mkdir()
    subprocess.run(["bash", "-c", body.replace("cd /j", f"cd {tmp_path / 'j'}")],
                   check=True, timeout=30)
    assert TASK_INDEX_ENV not in marker.read_text()


def test_array_specs_and_sparse_pbs_arrays() -> None:
    assert array_spec(range(30)) == "0-29"
    assert array_spec([9, 3, 5, 6]) == "3,5-6,9"
    args = Slurm().submit_args("/j/job.sh", "/j", [3, 5, 9], "hal-workflow:x")
    assert "--array=3,5,9" in args and "--comment=hal-workflow:x" in args
    assert "-t" in PBS("torque").submit_args("/j/job.sh", "/j", [3, 5, 9], "t")
    with pytest.raises(ConfigurationError, match="qsub -J"):
        PBS("pbspro").submit_args("/j/job.sh", "/j", [3, 5, 9], "t")
    assert "--array=0-29%2" in Slurm().submit_args("/j/job.sh", "/j", range(30), "t", 2)
    assert "0-29%2" in PBS("torque").submit_args("/j/job.sh", "/j", range(30), "t", 2)
    assert "max_run_subjobs=2" in PBS("pbspro").submit_args("/j/job.sh", "/j", range(30),
                                                             "t", 2)


def test_array_tasks_carry_the_sweep_seeds(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Task ``i`` is seeded ``seed + i`` (explicit, the spec's, or the wrapped spec's), also
    for sparse indices; recorded in job.json, which run-job reads. sbatch is a stub here (the
    real runs are in test_slurm_faults.py)."""
    import asyncio

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text("#!/bin/sh\necho 123\n")
    (bin_dir / "sbatch").chmod(0o755)
    (bin_dir / "scontrol").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "scontrol").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    rx = BELL.replace("h q[0];", "rx(theta) q[0];").replace("bit[2] c;",
                                                           "bit[2] c;\ninput float theta;")

    def seeds(backend_spec: dict[str, Any], **kwargs: Any) -> list[Any]:
        backend = get_backend(backend_spec)
        assert isinstance(backend, SchedulerBackend)
        bindings = [{"theta": 0.1 * i} for i in range(len(kwargs.get("indices", [0, 1, 2])))]
        ids = asyncio.run(backend.submit_sweep(rx, bindings, 10, **kwargs))
        job = json.loads((Path(ids[0].partition("@")[2]) / "job.json").read_text())
        return [(t["index"], t["seed"]) for t in job["tasks"]]

    inner = {"name": "sim", "seed": 40}
    base = {"name": "slurm", "backend": inner, "job_root": str(tmp_path / "jobs")}
    assert seeds(base) == [(0, 40), (1, 41), (2, 42)]
    assert seeds(base, seed=7) == [(0, 7), (1, 8), (2, 9)]
    assert seeds({**base, "seed": 100}) == [(0, 100), (1, 101), (2, 102)]
    assert seeds(base, indices=[3, 5, 9]) == [(3, 43), (5, 45), (9, 49)]
    assert seeds({**base, "backend": "sim"}) == [(0, None), (1, None), (2, None)]


def test_bad_shots_and_inner_specs_are_contract_errors_before_anything_is_written(
        tmp_path: Path) -> None:
    """The probe: ``shots=None`` was accepted and failed later as JobFailedError(TypeError)."""
    import asyncio

    from hal_workflow.contract.errors import ValidationError

    backend = get_backend(spec(tmp_path))
    for shots in (None, "10", 1.5, True):
        with pytest.raises(ValidationError, match="shots"):
            asyncio.run(backend.submit(BELL, shots))  # type: ignore[arg-type]
    for inner in (None, 42, "", {"no": "name"}):
        with pytest.raises(ConfigurationError):
            get_backend({"name": "slurm", "backend": inner, "job_root": str(tmp_path / "j")})
    assert not (tmp_path / "jobs").exists() and not (tmp_path / "j").exists()


def test_a_credential_in_env_is_refused() -> None:
    from hal_workflow.backends.registry import get_backend
    from hal_workflow.contract import CredentialsError

    with pytest.raises(CredentialsError, match=r"env\[IQM_TOKEN\] holds a credential"):
        get_backend({"name": "slurm", "backend": "sim", "env": {"IQM_TOKEN": "s3cr3t-value"}})
