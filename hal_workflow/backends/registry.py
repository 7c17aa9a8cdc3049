"""Resolve backend specs to backends.

A spec is a name (``"sim"``) or a mapping with a ``"name"`` key and backend options
(``{"name": "ibm", "backend": "fake_manila"}``). Specs are plain data so they pickle: a Dask or
Parsl worker rebuilds its own backend from the spec instead of receiving SDK clients, sockets
or credentials over the wire.

Built-in backends are listed in :data:`BUILTIN_BACKENDS`; third-party packages add their own
through the entry-point group ``hal_workflow.backends``, whose entries point at a class (or
factory) called with the normalised spec mapping.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, TypeAlias

from hal_workflow.contract.errors import ConfigurationError, HalError

if TYPE_CHECKING:
    from hal_workflow.contract.backend import Backend

BackendSpec: TypeAlias = "str | Mapping[str, Any]"
ENTRY_POINT_GROUP = "hal_workflow.backends"

BUILTIN_BACKENDS: dict[str, str] = {
    "sim": "hal_workflow.simulator.backend:SimulatorBackend",
    "ibm": "hal_workflow.backends.ibm:IBMBackend",
    "braket": "hal_workflow.backends.braket:BraketBackend",
    "iqm": "hal_workflow.backends.iqm:IQMBackend",
    "qdmi": "hal_workflow.backends.qdmi:QDMIBackend",
    "slurm": "hal_workflow.orchestration.scheduler:SlurmBackend",
    "pbs": "hal_workflow.orchestration.scheduler:PBSBackend",
    "cudaq": "hal_workflow.backends.cudaq:CudaqBackend",
}
"""Name -> ``module:attribute`` of the backends that ship with hal-workflow."""

BackendFactory = Callable[[dict[str, Any]], "Backend"]
_registered: dict[str, BackendFactory | str] = {}


def normalize_spec(spec: BackendSpec) -> dict[str, Any]:
    """The mapping form of ``spec`` (``"sim"`` -> ``{"name": "sim"}``); a fresh dict."""
    if isinstance(spec, str):
        if not spec.strip():
            raise ConfigurationError("empty backend spec")
        return {"name": spec.strip()}
    if isinstance(spec, Mapping):
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"backend spec needs a 'name' string, got keys {sorted(spec)}")
        return dict(spec)
    raise ConfigurationError(
        f"a backend spec is a name or a mapping with 'name', not {type(spec).__name__}"
    )


def register_backend(name: str, factory: BackendFactory | str) -> None:
    """Register ``factory`` (a class, a callable, or ``"module:attr"``) under ``name``."""
    _registered[name] = factory
    _entry_point_backends.cache_clear()


@lru_cache(maxsize=1)
def _entry_point_backends() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_backends() -> list[str]:
    """Names that :func:`get_backend` resolves (built-in, registered, entry points)."""
    return sorted(set(BUILTIN_BACKENDS) | set(_registered) | set(_entry_point_backends()))


def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def resolve_factory(name: str) -> BackendFactory:
    """The class or factory registered for ``name``."""
    target: Any
    if name in _registered:
        target = _registered[name]
    elif name in _entry_point_backends():
        target = _entry_point_backends()[name]
    elif name in BUILTIN_BACKENDS:
        target = BUILTIN_BACKENDS[name]
    else:
        raise ConfigurationError(
            f"unknown backend {name!r}; available: {', '.join(available_backends())}"
        )
    try:
        if isinstance(target, str):
            return _load(target)  # type: ignore[no-any-return]
        if hasattr(target, "load"):  # an entry point
            return target.load()  # type: ignore[no-any-return]
    except ImportError as exc:
        raise _missing_sdk(name, exc) from exc
    return target  # type: ignore[no-any-return]


def get_backend(spec: BackendSpec) -> Backend:
    """Build the backend that ``spec`` names.

    Raises ``ConfigurationError`` for an unknown name or a missing optional extra, and passes
    on the backend's own contract errors (e.g. ``CredentialsError``).
    """
    normalised = normalize_spec(spec)
    factory = resolve_factory(normalised["name"])
    try:
        return factory(normalised)
    except HalError:
        raise
    except TypeError as exc:
        raise ConfigurationError(f"backend {normalised['name']!r}: bad options: {exc}") from exc
    except ImportError as exc:  # an SDK the adapter imports when it builds its device
        raise _missing_sdk(normalised["name"], exc) from exc


def _missing_sdk(name: str, exc: ImportError) -> ConfigurationError:
    """The error for a backend whose SDK is not installed, with the command that adds it."""
    from hal_workflow import config

    extra = name in {"sim", "ibm", "braket", "iqm", "qdmi", "cudaq"}  # backends that are extras
    hint = f"; install it with: {config.install_hint(name)}" if extra else ""
    return ConfigurationError(f"backend {name!r} cannot be loaded: {exc}{hint}")
