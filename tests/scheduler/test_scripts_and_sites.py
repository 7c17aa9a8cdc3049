"""Batch scripts, site configs, options and hooks, checked without a cluster (dry runs)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from scheduler_helpers import BELL

from hal_workflow.backends.registry import get_backend, register_backend
from hal_workflow.contract.errors import ConfigurationError, SubmissionError
from hal_workflow.orchestration import hooks
from hal_workflow.orchestration.jobdir import JobDir, Task, write_json
from hal_workflow.orchestration.scheduler import SchedulerBackend, run_job_dir
from hal_workflow.orchestration.schedulers.base import format_hms, parse_memory, parse_time
from hal_workflow.orchestration.sites import REPO_SITES, load_site


@pytest.fixture(autouse=True)
def _procsim(tmp_path: Path) -> None:
    register_backend("procsim", "hal_scheduler_testkit:ProcessBackend")


def backend(tmp_path: Path, name: str = "slurm", **options: object) -> SchedulerBackend:
    spec = {"name": name, "backend": {"name": "procsim", "root": str(tmp_path / "vendor")},
            "job_root": str(tmp_path / "jobs"), **options}
    built = get_backend(spec)
    assert isinstance(built, SchedulerBackend)
    return built


@pytest.mark.parametrize(("text", "seconds"), [
    ("00:10:00", 600), ("10", 600), ("2:30", 150), ("1-00:00:00", 86400), ("1-2", 93600),
    ("1-02:03", 93780), (5, 300), (0.5, 30), ("100:00:00", 360000),
])
def test_time_limits_read_like_sbatch(text: str | int, seconds: int) -> None:
    assert parse_time(text) == seconds


@pytest.mark.parametrize("bad", ["", "ten minutes", "1:2:3:4", "-5", 0, "00:00:00", True])
def test_bad_time_limits_are_configuration_errors(bad: object) -> None:
    with pytest.raises(ConfigurationError):
        parse_time(bad)  # type: ignore[arg-type]


def test_memory_and_hms() -> None:
    assert [parse_memory(m) for m in ("1GB", "1G", "1gib", "512MB", "1.5g", "2T", 2**30)] == [
        1024, 1024, 1024, 512, 1536, 2 * 1024**2, 1024]
    with pytest.raises(ConfigurationError, match="memory"):
        parse_memory("lots")
    assert format_hms(3599) == "00:59:59" and format_hms(86400 * 2) == "48:00:00"


def test_slurm_script_from_explicit_options(tmp_path: Path) -> None:
    b = backend(tmp_path, partition="gpu", time="1-00:00:00", account="proj", qos="high",
                cpus=4, memory="16GB", extra_directives=["--constraint=a100", "#SBATCH -x n1"],
                prologue=["module load python/3.11"], env={"OMP_NUM_THREADS": 4},
                python="/opt/py/bin/python")
    script = b.job_script("/shared/jobs/hal-1", job_name="hal-abc")
    header = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    assert header == [
        "#SBATCH --job-name=hal-abc", "#SBATCH --ntasks=1", "#SBATCH --cpus-per-task=4",
        "#SBATCH --partition=gpu", "#SBATCH --time=24:00:00", "#SBATCH --account=proj",
        "#SBATCH --qos=high", "#SBATCH --mem=16384M", "#SBATCH --constraint=a100",
        "#SBATCH -x n1",
    ]
    lines = script.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert lines.index("module load python/3.11") < lines.index("export OMP_NUM_THREADS=4")
    assert lines[-1] == "exec /opt/py/bin/python -m hal_workflow.cli run-job /shared/jobs/hal-1"
    assert "unset HAL_WORKFLOW_TASK_INDEX" in script  # never inherited by a single job
    array = b.job_script("/shared/jobs/hal-1", array=True)
    assert 'export HAL_WORKFLOW_TASK_INDEX="${SLURM_ARRAY_TASK_ID}"' in array
    subprocess.run(["bash", "-n"], input=array, text=True, check=True)  # valid shell


@pytest.mark.parametrize(("flavor", "expected"), [
    ("pbspro", ["#PBS -N hal-x", "#PBS -q workq", "#PBS -A proj", "#PBS -l walltime=02:00:00",
                "#PBS -l select=1:ncpus=8:mem=32768mb", "#PBS -l place=excl"]),
    ("torque", ["#PBS -N hal-x", "#PBS -q workq", "#PBS -A proj", "#PBS -l walltime=02:00:00",
                "#PBS -l nodes=1:ppn=8", "#PBS -l mem=32768mb", "#PBS -l place=excl"]),
])
def test_pbs_script_per_flavor(tmp_path: Path, flavor: str, expected: list[str]) -> None:
    b = backend(tmp_path, "pbs", flavor=flavor, queue="workq", account="proj", time="02:00:00",
                cpus=8, memory="32GB", extra_directives=["-l place=excl"])
    script = b.job_script("/jobs/x", array=True, job_name="hal-x")
    assert [line for line in script.splitlines() if line.startswith("#PBS")] == expected
    assert "${PBS_ARRAY_INDEX:-${PBS_ARRAYID:-${SLURM_ARRAY_TASK_ID:-}}}" in script


def test_repository_site_examples_load(tmp_path: Path) -> None:
    assert {"ci", "ci-pbs", "example-slurm", "example-pbspro"} <= {
        p.stem for p in REPO_SITES.glob("*.yaml")}
    slurm = backend(tmp_path, site="example-slurm")
    script = slurm.job_script("/j", job_name="n")
    for line in ("#SBATCH --partition=quantum", "#SBATCH --account=proj-1234",
                 "#SBATCH --qos=normal", "#SBATCH --time=01:00:00", "#SBATCH --mem=16384M",
                 "#SBATCH --constraint=cpu", "module load python/3.11"):
        assert line in script
    assert len(slurm._hooks["after_submit"]) == 1 and len(slurm._hooks["on_terminal"]) == 1
    pbs = backend(tmp_path, "pbs", site="example-pbspro")
    assert "#PBS -l select=1:ncpus=8:mem=32768mb" in pbs.job_script("/j")
    assert load_site("ci-pbs")["flavor"] == "torque"


def test_site_precedence_explicit_over_site_over_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sites = tmp_path / "sites"
    sites.mkdir()
    (sites / "mysite.yaml").write_text(
        "scheduler: slurm\npartition: from-site\naccount: site-account\ntime: '00:20:00'\n"
        "extra-directives: ['--constraint=site']\n")
    monkeypatch.setenv("HAL_WORKFLOW_SITES", str(sites))
    b = backend(tmp_path, site="mysite", account="explicit-account")
    script = b.job_script("/j")
    assert "#SBATCH --partition=from-site" in script          # from the site
    assert "#SBATCH --account=explicit-account" in script     # explicit beats site
    assert "#SBATCH --time=00:20:00" in script
    assert "#SBATCH --cpus-per-task=1" in script              # built-in default
    assert "#SBATCH --constraint=site" in script
    # a site file given by path works too, and the spec keeps the site's name
    path_site = backend(tmp_path, site=str(sites / "mysite.yaml"))
    assert "#SBATCH --partition=from-site" in path_site.job_script("/j")
    assert path_site.spec["site"] == str(sites / "mysite.yaml")


def test_configuration_errors_name_the_problem(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    sites = tmp_path / "sites"
    sites.mkdir()
    (sites / "pbs-only.yaml").write_text("scheduler: pbs\nqueue: workq\n")
    (sites / "typo.yaml").write_text("scheduler: slurm\npartitoin: debug\n")
    monkeypatch.setenv("HAL_WORKFLOW_SITES", str(sites))
    cases = [
        ({"site": "nowhere"}, "unknown site 'nowhere'"),
        ({"site": "pbs-only"}, "is for 'pbs', not 'slurm'"),
        ({"site": "typo"}, "unknown key(s) partitoin"),
        ({"partitoin": "debug"}, "unknown option(s) partitoin"),
        ({"time": "soon"}, "cannot read time limit 'soon'"),
        ({"partition": "a", "queue": "b"}, "partition 'a' and queue 'b' differ"),
        ({"cpus": 0}, "cpus must be a positive integer"),
        ({"flavor": "torque"}, "'flavor' is a PBS setting"),
        ({"hooks": {"before_sumbit": ["true"]}}, "unknown hook event 'before_sumbit'"),
    ]
    for options, message in cases:
        with pytest.raises(ConfigurationError) as info:
            backend(tmp_path, **options)
        assert message in str(info.value), (options, str(info.value))
    with pytest.raises(ConfigurationError, match="PBS has no QOS"):
        backend(tmp_path, "pbs", qos="high")
    with pytest.raises(ConfigurationError, match="unknown PBS flavor 'lsf'"):
        backend(tmp_path, "pbs", flavor="lsf")


def test_capabilities_are_the_inner_ones_renamed(tmp_path: Path) -> None:
    b = backend(tmp_path)
    inner = b.inner.capabilities()
    caps = b.capabilities()
    assert caps.name == "slurm:procsim"
    assert (caps.num_qubits, caps.gate_set, caps.simulator) == (
        inner.num_qubits, inner.gate_set, inner.simulator)
    assert caps.extensions == frozenset({"batch"}) and b.extension("batch") is b
    assert "token" not in repr(backend(tmp_path, env={"X": "1"}))


def test_hooks_parse_and_fail_as_documented(tmp_path: Path) -> None:
    parsed = hooks.parse_hooks({
        "before-submit": "hal_scheduler_testkit:record_hook",
        "after_submit": [{"run": "echo a:b"}, "echo plain", {"call": "x.y:z"}],
    })
    assert parsed["before_submit"][0].target == "hal_scheduler_testkit:record_hook"
    assert [h.command for h in parsed["after_submit"][:2]] == ["echo a:b", "echo plain"]
    assert parsed["after_submit"][2].target == "x.y:z" and parsed["on_terminal"] == ()
    context = hooks.HookContext("before_submit", "slurm:sim", "slurm", str(tmp_path), "job.sh")
    with pytest.raises(SubmissionError, match=r"before_submit hook .* status 3: no budget left"):
        hooks.run_hooks([hooks.Hook(command="echo no budget left >&2; exit 3")], context)
    with pytest.raises(SubmissionError, match="cannot be loaded"):
        hooks.run_hooks([hooks.Hook(target="no_such_module_xyz:fn")], context)
    after = hooks.HookContext("after_submit", "slurm:sim", "slurm", str(tmp_path), "job.sh",
                              job_id="1@/x")
    hooks.run_hooks([hooks.Hook(command="exit 1")], after)  # logged, not raised: the job exists


def test_failed_before_submit_hook_submits_nothing(tmp_path: Path) -> None:
    b = backend(tmp_path, hooks={"before_submit": ["echo over quota >&2; exit 1"]})
    with pytest.raises(SubmissionError, match="over quota"):
        asyncio.run(b.submit(BELL, 10))
    assert not list((tmp_path / "jobs").iterdir())  # a refused submission leaves no job dir


def test_results_are_written_once_and_never_overwritten(tmp_path: Path) -> None:
    first = tmp_path / "result.json"
    assert write_json(first, {"n": 1}, overwrite=False)
    assert not write_json(first, {"n": 2}, overwrite=False)
    assert first.read_text().count('"n": 1') == 1
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary left


def _job_dir(tmp_path: Path, qasm: str) -> JobDir:
    directory = JobDir.create(tmp_path / "jobs")
    spec = {"name": "procsim", "root": str(tmp_path / "vendor"), "duration": 0.05}
    directory.write_inputs("slurm", spec, 10, [qasm], [Task(0, 0, None)], array=False,
                           submit={"job_name": "hal-test", "tag": "hal-workflow:test"})
    return directory


def test_run_job_dir_keeps_an_existing_result(tmp_path: Path) -> None:
    directory = _job_dir(tmp_path, BELL)
    directory.write("result", {"counts": {"11": 10}, "shots": 10, "job_id": "a", "backend": "b"})
    before = directory.file("result").read_bytes()
    assert run_job_dir(str(directory.path)) == 0
    assert directory.file("result").read_bytes() == before
    assert not directory.has("vendor_job")  # it did not run again


def test_run_job_dir_records_vendor_job_result_and_errors(tmp_path: Path) -> None:
    good = _job_dir(tmp_path, BELL)
    assert run_job_dir(str(good.path)) == 0
    assert good.read("vendor_job")["job_id"]
    result = good.read("result")
    assert result["counts"] == {"00": 10}
    assert result["metadata"]["vendor_job_id"] == good.read("vendor_job")["job_id"]
    bad = _job_dir(tmp_path, BELL.replace("h q[0];", "hh q[0];"))
    assert run_job_dir(str(bad.path)) == 1
    assert "hh" in bad.read("error")["reason"] and not bad.has("result")
    assert run_job_dir(str(tmp_path / "not-a-job")) == 2


def test_no_scheduler_on_path_is_offline_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hal_workflow.contract.errors import BackendUnavailableError
    from hal_workflow.contract.types import AvailabilityStatus

    b = backend(tmp_path)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    availability = asyncio.run(b.availability())
    assert availability.status is AvailabilityStatus.OFFLINE
    assert "'scontrol' is not on PATH" in (availability.message or "")
    with pytest.raises(BackendUnavailableError, match="'sbatch' is not on PATH"):
        asyncio.run(b.submit(BELL, 10))
