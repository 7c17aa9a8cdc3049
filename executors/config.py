"""Site configs: ready Parsl configs and Dask clusters by name (``"local_htex"``, ``"slurm"``).

Sites live in config directories, searched in this order (the first holding a name wins):

1. the directories of the configuration key ``sites.engine-path`` (``HAL_WORKFLOW__SITES__
   ENGINE_PATH``; formerly ``$HAL_WORKFLOW_CONFIG_DIR``), your own sites;
2. ``configs/`` of the source checkout this package runs from (editable installs, CI);
3. ``<sys.prefix>/share/hal-workflow/configs`` (where a wheel may install them).

A directory holds Parsl sites as ``parsl/<site>.py`` modules exposing ``make_config(**overrides)``
(or a fixed ``config``), and ``jobqueue.yaml`` with dask-jobqueue settings per scheduler
(``slurm``, ``pbs``...). Those settings are merged into ``dask.config`` as defaults (every
directory's file, later directories first, so ``sites.engine-path`` wins), below the
user's own dask config and explicit arguments.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hal_workflow.contract.errors import ConfigurationError
from hal_workflow.executors._resources import export_lines, thread_environment

if TYPE_CHECKING:
    from parsl.config import Config

CONFIG_DIR_KEY = "sites.engine-path"
CONFIG_DIR_ENV = "HAL_WORKFLOW_CONFIG_DIR"  # deprecated spelling of CONFIG_DIR_KEY, one release

JOBQUEUE_CLUSTERS = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
    "oar": "OARCluster",
    "htcondor": "HTCondorCluster",
    "moab": "MoabCluster",
}
"""dask-jobqueue's config section -> its cluster class."""

_applied_jobqueue: set[tuple[str, float]] = set()
logger = logging.getLogger(__name__)


def config_dirs() -> list[Path]:
    """The directories searched for sites, highest precedence first (existing ones only)."""
    from hal_workflow import config

    # sites.engine-path (the old $HAL_WORKFLOW_CONFIG_DIR sets it, with a FutureWarning)
    candidates = [Path(p).expanduser() for p in config.get("sites.engine-path", None) or []]
    candidates.append(Path(__file__).resolve().parent.parent / "configs")
    candidates.append(Path(sys.prefix) / "share" / "hal-workflow" / "configs")
    found: list[Path] = []
    for path in candidates:
        if path.is_dir() and path.resolve() not in found:
            found.append(path.resolve())
    return found


def _parsl_sites() -> dict[str, Path]:
    sites: dict[str, Path] = {}
    for directory in config_dirs():
        for path in sorted((directory / "parsl").glob("*.py")):
            if not path.name.startswith("_"):
                sites.setdefault(path.stem, path)
    return sites


def _jobqueue_sections() -> set[str]:
    import yaml

    sections: set[str] = set()
    for path in _jobqueue_files():
        data = yaml.safe_load(path.read_text()) or {}
        sections.update((data.get("jobqueue") or {}).keys())
    return sections


def _jobqueue_files() -> list[Path]:
    """``jobqueue.yaml`` files, lowest precedence first."""
    return [d / "jobqueue.yaml" for d in reversed(config_dirs()) if (d / "jobqueue.yaml").is_file()]


def list_sites(engine: str | None = None) -> list[str]:
    """Site names for ``engine`` (``"parsl"`` or ``"dask"``), or for both when None."""
    if engine not in (None, "parsl", "dask"):
        raise ConfigurationError(f"engine must be 'parsl' or 'dask', not {engine!r}")
    names: set[str] = set()
    if engine in (None, "parsl"):
        names.update(_parsl_sites())
    if engine in (None, "dask"):
        names.add("local")
        names.update(s for s in _jobqueue_sections() if s in JOBQUEUE_CLUSTERS)
    return sorted(names)


def _load_module(path: Path) -> Any:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    spec = importlib.util.spec_from_file_location(f"hal_workflow_site_{path.stem}_{digest}", path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot load site config {path}")
    from hal_workflow import config as hal_config

    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:
        raise ConfigurationError(
            f"site config {path} needs a missing package ({exc}); "
            f"install it with: {hal_config.install_hint('parsl')}"
        ) from exc
    return module


def parsl_config(site: str, **overrides: Any) -> Config:
    """A fresh ``parsl.Config`` for ``site``, with ``overrides`` passed to its ``make_config``.

    Raises ``ConfigurationError`` for an unknown site (naming those available) or an
    override the site does not take.
    """
    sites = _parsl_sites()
    if site not in sites and (from_file := site_allocation(site, "parsl")) is not None:
        logger.debug("Parsl site %r from its site file: %s %s", site, *from_file)
        site, overrides = from_file[0], {**from_file[1], **overrides}
    if site not in sites:
        searched = ", ".join(str(d) for d in config_dirs()) or "no directory"
        raise ConfigurationError(
            f"unknown Parsl site {site!r}; available: {', '.join(sorted(sites)) or 'none'} "
            f"(searched {searched}; add yours with the configuration key {CONFIG_DIR_KEY})"
        )
    path = sites[site]
    module = _load_module(path)
    make = getattr(module, "make_config", None)
    if make is not None:
        try:
            made: Config = make(**overrides)
        except TypeError as exc:
            raise ConfigurationError(f"Parsl site {site!r} ({path}): {exc}") from exc
        if not made.retries and "retries" not in overrides:
            from hal_workflow.executors.parsl import DEFAULT_RETRIES

            made.retries = DEFAULT_RETRIES
        return made
    config = getattr(module, "config", None)
    if config is None:
        raise ConfigurationError(f"{path} defines neither make_config() nor config")
    if overrides:
        raise ConfigurationError(
            f"Parsl site {site!r} ({path}) has a fixed `config` and takes no overrides "
            f"(got {', '.join(sorted(overrides))})"
        )
    return config


def load_jobqueue_defaults() -> None:
    """Merge every ``jobqueue.yaml`` into ``dask.config`` as defaults (once per file version)."""
    import dask.config
    import dask_jobqueue  # noqa: F401  (registers dask-jobqueue's own defaults first)
    import yaml

    for path in _jobqueue_files():
        version = (str(path), path.stat().st_mtime)
        if version not in _applied_jobqueue:
            dask.config.update_defaults(yaml.safe_load(path.read_text()) or {})
            _applied_jobqueue.add(version)


def dask_cluster(site: str, backend_threads: int | None = None, **overrides: Any) -> Any:
    """A Dask cluster for ``site``: ``LocalCluster`` for ``"local"``, else dask-jobqueue's.

    ``"local"`` passes ``overrides`` to :func:`hal_workflow.executors.dask.local_cluster`.
    Scheduler sites (``"slurm"``, ``"pbs"``...) build ``SLURMCluster``/``PBSCluster`` from
    dask.config, into which ``jobqueue.yaml`` was merged, with ``overrides`` as keyword
    arguments (``queue``, ``account``, ``walltime``, ``cores``...). The job script's
    prologue caps the simulator at ``backend_threads`` threads per worker thread (default 1,
    as each core already runs a worker thread). Nothing is submitted until you scale it.
    """
    if site == "local":
        from hal_workflow.executors.dask import local_cluster

        return local_cluster(backend_threads=backend_threads, **overrides)
    if site not in JOBQUEUE_CLUSTERS and (from_file := site_allocation(site, "dask")) is not None:
        logger.debug("Dask site %r from its site file: %s %s", site, *from_file)
        site, overrides = from_file[0], {**from_file[1], **overrides}
    if site not in JOBQUEUE_CLUSTERS:
        raise ConfigurationError(
            f"unknown Dask site {site!r}; available: {', '.join(list_sites('dask'))}"
        )
    import dask.config
    import dask_jobqueue

    load_jobqueue_defaults()
    prologue = overrides.pop("job_script_prologue", None)
    if prologue is None:
        prologue = dask.config.get(f"jobqueue.{site}.job-script-prologue", default=None) or []
    exports = export_lines(thread_environment(backend_threads or 1))
    cluster_class = getattr(dask_jobqueue, JOBQUEUE_CLUSTERS[site])
    try:
        return cluster_class(job_script_prologue=[*prologue, *exports], **overrides)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"Dask site {site!r}: {exc}") from exc


# ---------------------------------------------------------------------------- site files

_MEMORY_UNITS = {"": 1e-9, "B": 1e-9, "K": 1e-6, "KB": 1e-6, "M": 1e-3, "MB": 1e-3, "G": 1.0,
                 "GB": 1.0, "T": 1e3, "TB": 1e3, "KIB": 1.024e-6, "MIB": 1.048576e-3,
                 "GIB": 1.073741824, "TIB": 1099.511627776}


def _gigabytes(value: Any, source: str) -> int:
    """``16GB``, ``512M``, ``2`` (GB) as whole gigabytes (Parsl's ``mem_per_node``)."""
    import re

    match = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]*)\s*", str(value))
    unit = match.group(2).upper() if match else ""
    if not match or unit not in _MEMORY_UNITS:
        raise ConfigurationError(f"{source}: memory {value!r} is not a size like 16GB")
    return max(1, round(float(match.group(1)) * _MEMORY_UNITS[unit]))


def site_allocation(site: str, engine: str) -> tuple[str, dict[str, Any]] | None:
    """The engine site and keyword arguments that site file ``site`` (``NAME.yaml`` on the
    site path, :mod:`hal_workflow.orchestration.sites`) describes for ``engine`` (``"parsl"``
    or ``"dask"``), or None when there is no such file.

    A site is one file for every use: the dispatch keys (``scheduler``, ``partition`` or
    ``queue``, ``walltime``, ``account``, ``qos``, ``cores``, ``memory``, ``prologue``,
    ``extra-directives``) also shape Parsl blocks and dask-jobqueue jobs, and optional
    ``parsl:`` and ``dask:`` sections add engine-only keyword arguments. ``time`` and ``cpus``
    are read as ``walltime`` and ``cores``.
    """
    from hal_workflow.orchestration.sites import find_site, load_site

    try:
        find_site(site)
    except ConfigurationError:
        return None
    settings = load_site(site)
    source = str(settings.get("_source", site))
    scheduler = str(settings.get("scheduler") or "slurm")
    if scheduler not in ("slurm", "pbs"):
        raise ConfigurationError(f"{source}: scheduler must be 'slurm' or 'pbs' for {engine}")
    queue = settings.get("partition") or settings.get("queue")
    walltime = settings.get("walltime") or settings.get("time")
    cores = settings.get("cores") or settings.get("cpus")
    memory = settings.get("memory")
    prologue = [str(line) for line in settings.get("prologue") or []]
    directives = [str(d) for d in settings.get("extra_directives") or []]
    flag = "#SBATCH" if scheduler == "slurm" else "#PBS"
    kwargs: dict[str, Any]
    if engine == "dask":
        kwargs = {"queue": queue, "walltime": walltime, "account": settings.get("account"),
                  "cores": cores, "memory": memory,
                  "job_extra_directives": directives or None,
                  "job_script_prologue": prologue or None}
    else:
        kwargs = {"walltime": walltime, "account": settings.get("account"),
                  "worker_init_lines": "\n".join(prologue) or None,
                  "scheduler_options": "\n".join(f"{flag} {d}" for d in directives) or None}
        if scheduler == "slurm":
            kwargs.update(partition=queue, qos=settings.get("qos"), cores_per_node=cores,
                          mem_per_node=_gigabytes(memory, source) if memory else None)
        else:
            kwargs.update(queue=queue, cpus_per_node=cores)
    section = settings.get(engine) or {}
    if not isinstance(section, Mapping):
        raise ConfigurationError(f"{source}: '{engine}' must be a mapping of keyword arguments")
    kwargs.update({str(k).replace("-", "_"): v for k, v in section.items()})
    return scheduler, {k: v for k, v in kwargs.items() if v is not None}
