"""Site configs: a cluster's partition, account, QOS, time limit, directives and hooks.

A site is a YAML file ``NAME.yaml`` found on the site path: the directories of the
configuration key ``sites.path`` (formerly ``$HAL_WORKFLOW_SITES``), then
``~/.config/hal-workflow/sites`` (or ``~/.config/hal_workflow/sites``), then
the source checkout's ``configs/sites``, then ``<sys.prefix>/share/hal-workflow/configs/sites``
(where a wheel may install them). A spec may also name a file directly
(``"site": "/path/to/site.yaml"``). Keys are kebab-case in YAML (``extra-directives``) and
snake_case in Python; both spellings are accepted. Precedence: explicit spec keys, then the
site, then built-in defaults; nothing scheduler-specific is hard-coded.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hal_workflow.contract.errors import ConfigurationError

SITES_ENV = "HAL_WORKFLOW_SITES"
REPO_SITES = Path(__file__).resolve().parents[2] / "configs" / "sites"


def site_path() -> list[Path]:
    """The directories searched for ``NAME.yaml``, first match wins."""
    from hal_workflow import config

    # the configuration key sites.path (the old $HAL_WORKFLOW_SITES sets it, with a warning)
    dirs = [Path(p).expanduser() for p in config.get("sites.path", None) or []]
    installed = Path(sys.prefix) / "share" / "hal-workflow" / "configs" / "sites"
    user = [Path.home() / ".config" / name / "sites" for name in ("hal-workflow", "hal_workflow")]
    return [*dirs, *user, REPO_SITES, installed]


def available_sites() -> list[str]:
    """Names of the sites found on :func:`site_path`."""
    names = {p.stem for d in site_path() if d.is_dir() for p in d.glob("*.yaml")}
    return sorted(names)


def find_site(name: str) -> Path:
    """The file of site ``name`` (a name on the site path, or a path to a YAML file)."""
    candidate = Path(name).expanduser()
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    for directory in site_path():
        for suffix in (".yaml", ".yml"):
            path = directory / f"{name}{suffix}"
            if path.is_file():
                return path
    searched = ", ".join(str(d) for d in site_path())
    known = ", ".join(available_sites()) or "none"
    raise ConfigurationError(f"unknown site {name!r} (searched {searched}; known sites: {known})")


def snake_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    """Top-level keys with ``-`` spelled ``_`` (``extra-directives`` -> ``extra_directives``)."""
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def load_site(name: str) -> dict[str, Any]:
    """The settings of site ``name`` (snake_case keys) plus ``_source``, the file it came from.

    Raises ``ConfigurationError`` naming the file when it is not a YAML mapping.
    """
    import yaml

    path = find_site(name)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"site {name!r}: cannot read {path}: {exc}") from exc
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"site {name!r}: {path} must hold a mapping of settings")
    settings = snake_keys(data)
    settings["_source"] = str(path)
    return settings
