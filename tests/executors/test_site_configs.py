"""Site configs render without a cluster: Parsl providers carry the settings, dask-jobqueue
job scripts carry the #SBATCH/#PBS lines and the thread caps, and sites are found in the
repository and in $HAL_WORKFLOW_CONFIG_DIR."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from parsl.executors import HighThroughputExecutor, ThreadPoolExecutor
from parsl.providers import LocalProvider, PBSProProvider, SlurmProvider, TorqueProvider

from hal_workflow.contract.errors import ConfigurationError
from hal_workflow.executors.config import (
    CONFIG_DIR_ENV,
    config_dirs,
    dask_cluster,
    list_sites,
    parsl_config,
)

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_repository_sites_are_listed() -> None:
    assert REPO_CONFIGS in config_dirs()
    assert {"local_threads", "local_htex", "slurm", "pbs"} <= set(list_sites("parsl"))
    assert {"local", "slurm", "pbs"} <= set(list_sites("dask"))
    assert set(list_sites()) == set(list_sites("parsl")) | set(list_sites("dask"))


def test_local_configs(tmp_path: Path) -> None:
    threads = parsl_config("local_threads", max_threads=3, run_dir=str(tmp_path))
    (executor,) = threads.executors
    assert isinstance(executor, ThreadPoolExecutor) and executor.max_threads == 3
    assert threads.run_dir == str(tmp_path)

    htex = parsl_config("local_htex", max_workers=2, backend_threads=1, run_dir=str(tmp_path))
    (executor,) = htex.executors
    assert isinstance(executor, HighThroughputExecutor)
    assert isinstance(executor.provider, LocalProvider)
    assert executor.max_workers_per_node == 2
    assert executor.address == executor.loopback_address == "127.0.0.1"
    assert "export NUMBA_NUM_THREADS=1" in executor.provider.worker_init
    assert "export HAL_WORKFLOW_BACKEND_THREADS=1" in executor.provider.worker_init


def test_slurm_config_from_arguments_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAL_WORKFLOW_SLURM_ACCOUNT", "from-env")
    monkeypatch.setenv("HAL_WORKFLOW_SLURM_PARTITION", "env-partition")
    config = parsl_config(
        "slurm", partition="debug", qos="high", walltime="00:05:00", cores_per_node=4,
        max_workers_per_node=2, worker_init_lines="module load python", address="127.0.0.1",
    )
    (executor,) = config.executors
    provider = executor.provider
    assert isinstance(provider, SlurmProvider)
    assert provider.partition == "debug"  # the argument beats the environment
    assert provider.account == "from-env"
    assert (provider.qos, provider.walltime, provider.cores_per_node) == ("high", "00:05:00", 4)
    assert "module load python" in provider.worker_init
    assert "export NUMBA_NUM_THREADS=2" in provider.worker_init  # 4 cores / 2 workers
    assert executor.max_workers_per_node == 2
    assert executor.address == executor.loopback_address == "127.0.0.1"


@pytest.mark.parametrize(("variant", "provider_class"),
                         [("pbspro", PBSProProvider), ("torque", TorqueProvider)])
def test_pbs_variants(variant: str, provider_class: type, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAL_WORKFLOW_PBS_QUEUE", "workq")
    config = parsl_config("pbs", variant=variant, account="proj", walltime="01:00:00")
    provider = config.executors[0].provider
    assert isinstance(provider, provider_class)
    assert (provider.queue, provider.account, provider.walltime) == ("workq", "proj", "01:00:00")


def test_unknown_site_and_bad_override_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="local_htex"):
        parsl_config("no_such_site")
    with pytest.raises(ConfigurationError, match="no_such_option"):
        parsl_config("local_threads", no_such_option=1)
    with pytest.raises(ConfigurationError, match="pbspro"):
        parsl_config("pbs", variant="lsf")
    with pytest.raises(ConfigurationError, match="unknown Dask site"):
        dask_cluster("no_such_site")


def test_sites_from_the_config_dir_env_take_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "parsl").mkdir()
    (tmp_path / "parsl" / "mysite.py").write_text(textwrap.dedent("""
        from parsl.config import Config
        from parsl.executors import ThreadPoolExecutor
        config = Config(executors=[ThreadPoolExecutor(label="mine", max_threads=5)])
    """))
    (tmp_path / "parsl" / "local_threads.py").write_text(textwrap.dedent("""
        from parsl.config import Config
        from parsl.executors import ThreadPoolExecutor
        def make_config(**kw):
            return Config(executors=[ThreadPoolExecutor(label="shadow", max_threads=1)])
    """))
    monkeypatch.setenv(CONFIG_DIR_ENV, str(tmp_path))
    assert config_dirs()[0] == tmp_path.resolve()
    assert "mysite" in list_sites("parsl")
    assert parsl_config("mysite").executors[0].label == "mine"
    assert parsl_config("local_threads").executors[0].label == "shadow"
    with pytest.raises(ConfigurationError, match="fixed `config`"):
        parsl_config("mysite", max_threads=2)


LOOPBACK = {"interface": "lo", "scheduler_options": {"interface": "lo", "dashboard_address": ":0"}}


def test_slurm_job_script_renders_from_jobqueue_yaml() -> None:
    with dask_cluster("slurm", queue="debug", account="proj", walltime="00:05:00",
                      job_extra_directives=["--qos=normal"], **LOOPBACK) as cluster:
        script = cluster.job_script()
    lines = script.splitlines()
    for expected in ("#SBATCH -J hal-worker", "#SBATCH -p debug", "#SBATCH -A proj",
                     "#SBATCH -t 00:05:00", "#SBATCH --qos=normal", "#SBATCH --mem=2G",
                     "export NUMBA_NUM_THREADS=1", "export HAL_WORKFLOW_BACKEND_THREADS=1"):
        assert expected in lines, (expected, script)
    assert "distributed.cli.dask_worker" in script


def test_pbs_job_script_renders_with_thread_budget() -> None:
    with dask_cluster("pbs", queue="workq", cores=4, processes=1, backend_threads=2,
                      **LOOPBACK) as cluster:
        script = cluster.job_script()
    lines = script.splitlines()
    assert "#PBS -q workq" in lines and "#PBS -N hal-worker" in lines
    assert any(line.startswith("#PBS -l select=1:ncpus=4") for line in lines), script
    assert "export NUMBA_NUM_THREADS=2" in lines
    assert "--nthreads 4" in script


def test_user_dask_config_beats_jobqueue_yaml() -> None:
    import dask.config

    with dask.config.set({"jobqueue.slurm.walltime": "02:00:00"}):
        with dask_cluster("slurm", **LOOPBACK) as cluster:
            assert "#SBATCH -t 02:00:00" in cluster.job_script().splitlines()
