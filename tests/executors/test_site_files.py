"""A site is one file: the dispatch site files (``configs/sites/*.yaml``, ``sites.path``) also
give Parsl and dask-jobqueue allocations, one key per concept."""

from __future__ import annotations

from pathlib import Path

import pytest

from hal_workflow import config
from hal_workflow.contract.errors import ConfigurationError
from hal_workflow.executors.config import dask_cluster, parsl_config, site_allocation

PBS_SITE = """scheduler: pbs
queue: workq
walltime: "02:00:00"
account: proj-9
cores: 8
memory: 32GB
prologue: [module load python]
extra-directives: ["-l place=scatter"]
dask:
  processes: 2
parsl:
  variant: torque
"""


@pytest.fixture
def pbs_site(tmp_path: Path) -> str:
    (tmp_path / "bigiron.yaml").write_text(PBS_SITE)
    with config.set({"sites.path": [str(tmp_path)]}):
        yield "bigiron"


def test_the_ci_site_file_shapes_a_dask_slurm_job() -> None:
    cluster = dask_cluster("ci", interface="lo", scheduler_options={"interface": "lo"})
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -p debug" in script and "#SBATCH -t 00:10:00" in script
    assert "--cpus-per-task=1" in script


def test_the_ci_site_file_shapes_a_parsl_slurm_block(tmp_path: Path) -> None:
    provider = parsl_config("ci", run_dir=str(tmp_path)).executors[0].provider
    assert type(provider).__name__ == "SlurmProvider"
    assert (provider.partition, provider.walltime) == ("debug", "00:10:00")


def test_one_pbs_file_for_both_engines_and_overrides_win(pbs_site: str, tmp_path: Path) -> None:
    cluster = dask_cluster(pbs_site, walltime="00:05:00", interface="lo",
                           scheduler_options={"interface": "lo"})
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#PBS -q workq" in script and "#PBS -A proj-9" in script
    assert "walltime=00:05:00" in script and "02:00:00" not in script  # the argument wins
    assert "#PBS -l place=scatter" in script and "module load python" in script
    assert "--nworkers 2" in script  # from the file's dask: section
    provider = parsl_config(pbs_site, run_dir=str(tmp_path)).executors[0].provider
    assert type(provider).__name__ == "TorqueProvider"  # the file's parsl: section
    assert (provider.queue, provider.walltime, provider.account) == ("workq", "02:00:00",
                                                                     "proj-9")
    assert "module load python" in provider.worker_init


def test_memory_and_scheduler_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "odd.yaml").write_text("scheduler: slurm\nmemory: lots\n")
    (tmp_path / "lsf.yaml").write_text("scheduler: lsf\n")
    with config.set({"sites.path": [str(tmp_path)]}):
        with pytest.raises(ConfigurationError, match=r"odd\.yaml: memory 'lots'"):
            site_allocation("odd", "parsl")
        with pytest.raises(ConfigurationError, match=r"lsf\.yaml: scheduler must be"):
            site_allocation("lsf", "dask")
    assert site_allocation("no-such-site", "dask") is None


@pytest.mark.slurm
def test_a_dask_worker_from_the_ci_site_file_runs_a_circuit(tmp_path: Path) -> None:
    from dask.distributed import Client

    from hal_workflow.circuits import Circuit
    from hal_workflow.executors import dask as hal_dask

    cluster = dask_cluster("ci", interface="lo", scheduler_options={"interface": "lo"},
                           job_extra_directives=[f"--output={tmp_path}/dask-%j.out"])
    with cluster, Client(cluster) as client:
        cluster.scale(1)
        client.wait_for_workers(1, timeout=120)
        result = hal_dask.submit_circuit(client, Circuit.bell(), backend="sim",
                                         shots=200).result(timeout=120)
    assert set(result.counts) <= {"00", "11"} and sum(result.counts.values()) == 200


def test_old_site_variables_still_work_with_a_warning_naming_the_site_file_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAL_WORKFLOW_SLURM_PARTITION", "from-env")
    with pytest.warns(FutureWarning, match=r"HAL_WORKFLOW_SLURM_PARTITION.*'partition'"):
        provider = parsl_config("slurm", run_dir=str(tmp_path)).executors[0].provider
    assert provider.partition == "from-env"
