"""One configuration for hal-workflow, on donfig (the library behind ``dask.config``).

Sources, later ones winning: the packaged, commented defaults (``hal_workflow/config.yaml``),
``/etc/hal-workflow/`` (a cluster's site-wide file), ``~/.config/hal-workflow/`` (the user's),
``$HAL_WORKFLOW_CONFIG``, and environment variables spelt ``HAL_WORKFLOW__SECTION__KEY``.
Keys use dashes (``poll-interval``); underscores are accepted everywhere, as in Dask.

    >>> from hal_workflow import config
    >>> config.get("scheduler.poll-interval")
    1.0
    >>> with config.set({"retry.max-attempts": 1}):
    ...     ...
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

__all__ = ["DEFAULTS_FILE", "data_dir", "get", "refresh", "set"]

DEFAULTS_FILE = Path(__file__).with_name("config.yaml")
_NO_DEFAULT = object()


@lru_cache(maxsize=1)
def _config() -> Any:
    from donfig import Config

    defaults = yaml.safe_load(DEFAULTS_FILE.read_text())
    return Config(
        "hal-workflow",
        defaults=[defaults],
        env_prefix="HAL_WORKFLOW__",
        env_var="HAL_WORKFLOW_CONFIG",
        root_env_var="HAL_WORKFLOW_ROOT_CONFIG",
    )


def get(key: str, default: Any = _NO_DEFAULT) -> Any:
    """The value of ``key`` (dotted, e.g. ``"journal.path"``) from the merged configuration."""
    if default is _NO_DEFAULT:
        return _config().get(key)
    return _config().get(key, default)


def set(*args: Any, **kwargs: Any) -> Any:  # noqa: A001 - mirrors dask.config.set
    """Set values for this process, or temporarily as a context manager (``dask.config.set``)."""
    return _config().set(*args, **kwargs)


def refresh() -> None:
    """Re-read every file and environment variable (after changing them in a test, say)."""
    _config().refresh()


def data_dir() -> Path:
    """The data directory: ``data-dir`` if set, else ``$XDG_DATA_HOME/hal-workflow``."""
    configured = get("data-dir", None)
    if configured:
        return Path(os.path.expandvars(str(configured))).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "hal-workflow"
