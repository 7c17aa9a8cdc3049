"""One configuration for hal-workflow, on donfig (the library behind ``dask.config``).

Sources, later ones winning: the packaged, commented defaults (``hal_workflow/config.yaml``),
``/etc/hal-workflow/`` (a cluster's site-wide file; ``$HAL_WORKFLOW_ROOT_CONFIG`` moves it),
``~/.config/hal-workflow/`` (the user's), ``$HAL_WORKFLOW_CONFIG`` (one more file or directory),
and environment variables spelt ``HAL_WORKFLOW__SECTION__KEY``. Keys use dashes
(``poll-interval``); underscores are accepted everywhere, as in Dask.
``hal-workflow config show`` prints the merged result and where each value came from
(:func:`explain`).

    >>> from hal_workflow import config
    >>> config.get("scheduler.poll-interval")
    1.0
    >>> with config.set({"retry.max-attempts": 1}):
    ...     ...

The variables of earlier releases (``HAL_WORKFLOW_JOB_ROOT``, ``HAL_WORKFLOW_SITES``,
``HAL_WORKFLOW_CONFIG_DIR``) still work for this release: each is read into its new key with a
``FutureWarning`` naming that key (:data:`LEGACY_VARIABLES`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DEFAULTS_FILE", "LEGACY_VARIABLES", "data_dir", "explain", "get", "install_hint",
           "refresh", "set"]

NAME = "hal-workflow"
ENV_PREFIX = "HAL_WORKFLOW__"
DEFAULTS_FILE = Path(__file__).with_name("config.yaml")
_NO_DEFAULT = object()

LEGACY_VARIABLES: dict[str, str] = {
    "HAL_WORKFLOW_JOB_ROOT": "scheduler.job-root",
    "HAL_WORKFLOW_SITES": "sites.path",
    "HAL_WORKFLOW_CONFIG_DIR": "sites.engine-path",
}
"""Variables of earlier releases -> the key that replaces each (path lists split on ``:``)."""

_LIST_KEYS = {"sites.path", "sites.engine-path"}


def env_name(key: str) -> str:
    """The environment variable for ``key``: ``scheduler.job-root`` ->
    ``HAL_WORKFLOW__SCHEDULER__JOB_ROOT``."""
    return ENV_PREFIX + "__".join(part.replace("-", "_").upper() for part in key.split("."))


def _nested(key: str, value: Any) -> dict[str, Any]:
    for part in reversed(key.split(".")):
        value = {part: value}
    return value  # type: ignore[no-any-return]


def _legacy(environ: Mapping[str, str], warn: bool) -> list[tuple[str, str, Any]]:
    """``(variable, key, value)`` for each old variable set (and not overridden by its new one)."""
    found = []
    for variable, key in LEGACY_VARIABLES.items():
        raw = environ.get(variable)
        if not raw or env_name(key) in environ:
            continue
        value: Any = [p for p in raw.split(os.pathsep) if p] if key in _LIST_KEYS else raw
        if warn:
            warnings.warn(
                f"{variable} is deprecated and will be removed in the next release; set the "
                f"configuration key '{key}' instead ({env_name(key)} or "
                "~/.config/hal-workflow/config.yaml)",
                FutureWarning, stacklevel=4,
            )
        found.append((variable, key, value))
    return found


def _environment() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("HAL_WORKFLOW")))


def _config() -> Any:
    """The donfig ``Config``, rebuilt when a ``HAL_WORKFLOW*`` variable changed (as in tests)."""
    return _build(_environment())


@lru_cache(maxsize=1)
def _build(environment: tuple[tuple[str, str], ...]) -> Any:
    from donfig import Config
    from donfig.config_obj import update

    defaults = yaml.safe_load(DEFAULTS_FILE.read_text())
    for _variable, key, value in _legacy(os.environ, warn=True):
        update(defaults, _nested(key, value))  # over the defaults; files and new variables win
    return Config(NAME, defaults=[defaults], env_prefix=ENV_PREFIX,
                  env_var="HAL_WORKFLOW_CONFIG", root_env_var="HAL_WORKFLOW_ROOT_CONFIG")


def get(key: str, default: Any = _NO_DEFAULT) -> Any:
    """The value of ``key`` (dotted, e.g. ``"journal.path"``) from the merged configuration."""
    if default is _NO_DEFAULT:
        return _config().get(key)
    return _config().get(key, default)


def set(*args: Any, **kwargs: Any) -> Any:
    """Set values for this process, or temporarily as a context manager (``dask.config.set``)."""
    return _config().set(*args, **kwargs)


def refresh() -> None:
    """Re-read every file and environment variable (after changing them in a test, say)."""
    _build.cache_clear()
    _config()


def data_dir() -> Path:
    """The data directory: ``data-dir`` if set, else ``$XDG_DATA_HOME/hal-workflow``."""
    configured = get("data-dir", None)
    if configured:
        return Path(os.path.expandvars(str(configured))).expanduser()
    home = os.path.expanduser("~")
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    return Path(base) / "hal-workflow"


# --------------------------------------------------------------------------- explain

def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, Mapping) or (prefix and not data):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        canonical = str(key).replace("_", "-")
        flat.update(_flatten(value, f"{prefix}.{canonical}" if prefix else canonical))
    return flat


def _yaml_files(path: str) -> list[Path]:
    """The YAML files donfig reads from ``path`` (a file, or a directory's ``*.yaml``)."""
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml", ".json"))
    return [p] if p.is_file() else []


def _layers() -> list[tuple[str, dict[str, Any]]]:
    """Every source in precedence order (lowest first) as ``(source, flat values)``."""
    from donfig.config_obj import collect_env

    config = _config()
    layers = [(f"default ({DEFAULTS_FILE})", _flatten(yaml.safe_load(DEFAULTS_FILE.read_text())))]
    for variable, key, value in _legacy(os.environ, warn=False):
        layers.append((f"environment {variable} (deprecated: use {key})", {key: value}))
    for path in config.paths:
        for file in _yaml_files(path):
            try:
                data = yaml.safe_load(file.read_text()) or {}
            except (OSError, yaml.YAMLError) as exc:
                layers.append((f"{file} (unreadable: {exc})", {}))
                continue
            layers.append((str(file), _flatten(data)))
    env = collect_env(ENV_PREFIX, os.environ)
    for key, value in _flatten(env).items():
        layers.append((f"environment {env_name(key)}", {key: value}))
    return layers


def explain(key: str | None = None) -> list[dict[str, Any]]:
    """The merged configuration as rows ``{"key", "value", "source"}`` (``key`` and below).

    ``source`` names the file or variable that set the value; values set in this process
    (:func:`set`) say so.
    """
    merged = _flatten(_config().config)
    sources: dict[str, str] = {}
    values: dict[str, Any] = {}
    for source, flat in _layers():
        for name, value in flat.items():
            sources[name], values[name] = source, value
    rows = []
    for name in sorted(merged):
        if key and not (name == key or name.startswith(key + ".")):
            continue
        source = sources.get(name, "set in this process")
        if name in values and values[name] != merged[name]:
            source = "set in this process"
        rows.append({"key": name, "value": merged[name], "source": source})
    if key and not rows:
        from hal_workflow.contract.errors import ConfigurationError

        raise ConfigurationError(f"no configuration key {key!r} (see `hal-workflow config show`)")
    return rows



def install_hint(extra: str) -> str:
    """The command that adds ``extra`` to this installation: ``pip install -e 'CHECKOUT[extra]'``
    for an editable install or a source checkout, ``pip install 'hal-workflow[extra]'``
    otherwise (with this interpreter's pip, so the right environment gets it)."""
    import json
    import shlex
    import sys
    from importlib import metadata

    pip = f"{shlex.quote(sys.executable)} -m pip install"
    checkout = Path(__file__).resolve().parent.parent
    try:
        direct = metadata.distribution("hal-workflow").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        direct = None
    editable = False
    if direct:
        try:
            editable = bool(json.loads(direct).get("dir_info", {}).get("editable"))
        except ValueError:
            editable = False
    if editable or (direct is None and (checkout / "pyproject.toml").is_file()):
        return f"{pip} -e {shlex.quote(f'{checkout}[{extra}]')}"
    return f"{pip} 'hal-workflow[{extra}]'"
