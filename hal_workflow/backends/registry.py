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
import json
import numbers
import os
from collections.abc import Callable, Mapping
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, TypeAlias

from hal_workflow.contract.errors import ConfigurationError, HalError
from hal_workflow.contract.secrets import Secret, wrap_secrets

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
    "route": "hal_workflow.backends.route:RouteBackend",
}
"""Name -> ``module:attribute`` of the backends that ship with hal-workflow."""

BackendFactory = Callable[[dict[str, Any]], "Backend"]
_registered: dict[str, BackendFactory | str] = {}


_PLAIN = (str, bytes, numbers.Number, Secret, os.PathLike)


def max_spec_depth() -> int:
    """How deeply specs and their values may nest (configuration ``limits.max-spec-depth``)."""
    from hal_workflow import config

    return int(config.get("limits.max-spec-depth", 32))


def check_spec_data(spec: Mapping[str, Any], limit: int | None = None) -> None:
    """Raise ``ConfigurationError`` unless ``spec`` is plain data nested at most ``limit`` deep.

    Plain data: text, numbers, booleans, None, paths, :class:`Secret`, and lists, tuples, sets
    and mappings (with text keys) of those. Walked without recursion, so a spec nested 20,000
    deep (or one that contains itself) is refused with a message, not a ``RecursionError``.
    """
    limit = max_spec_depth() if limit is None else limit
    stack: list[tuple[Any, int, str]] = [(spec, 1, "")]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, Mapping | list | tuple | set | frozenset) and depth > limit:
            raise ConfigurationError(
                f"backend spec nests deeper than {limit} levels (at {where or 'the top'}); "
                "the limit is the configuration key limits.max-spec-depth"
            )
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise ConfigurationError(
                        f"backend spec keys are text; {where or 'the spec'} has key {key!r}")
                stack.append((item, depth + 1, f"{where}.{key}" if where else key))
        elif isinstance(value, list | tuple | set | frozenset):
            stack.extend((item, depth + 1, f"{where}[{i}]") for i, item in enumerate(value))
        elif value is not None and not isinstance(value, _PLAIN):
            raise ConfigurationError(
                f"backend spec key {where!r} holds a {type(value).__name__}; a spec is plain "
                "data (text, numbers, booleans, None, lists and mappings) so that it pickles "
                "and can be written to a job file"
            )


def normalize_spec(spec: BackendSpec) -> dict[str, Any]:
    """The mapping form of ``spec`` (``"sim"`` -> ``{"name": "sim"}``); a fresh dict.

    Credentials in it, at any depth, are held as :class:`~hal_workflow.contract.secrets.Secret`
    (text or ``{"env": ...}``/``{"file": ...}`` references under a secret key).

    Raises:
        ConfigurationError: not a name or a mapping with a ``name``, nested deeper than
            ``limits.max-spec-depth``, or holding something other than plain data.
    """
    if isinstance(spec, str):
        if not spec.strip():
            raise ConfigurationError("empty backend spec")
        return {"name": spec.strip()}
    if isinstance(spec, Mapping):
        name = spec.get("name")
        if not isinstance(name, str) or not name.strip():
            keys = sorted(map(str, spec))
            raise ConfigurationError(f"backend spec needs a 'name' string, got keys {keys}")
        check_spec_data(spec)
        return wrap_secrets(spec)  # type: ignore[no-any-return]
    raise ConfigurationError(
        f"a backend spec is a name or a mapping with 'name', not {type(spec).__name__}"
    )


def spec_from_text(text: str, source: str = "--backend") -> BackendSpec:
    """A spec from command-line or file text: a name, or a JSON object.

    Nesting is checked before the JSON parser runs, so a deeply nested text is refused with a
    ``ConfigurationError`` naming ``source`` instead of a ``RecursionError``.
    """
    text = text.strip()
    if not text.startswith("{"):
        return text
    limit = max_spec_depth()
    depth = deepest = 0
    in_string = escaped = False
    for char in text:  # bracket depth outside strings: linear, no recursion
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                raise ConfigurationError(
                    f"{source}: the spec nests deeper than {limit} levels; the limit is the "
                    "configuration key limits.max-spec-depth")
        elif char in "]}":
            depth -= 1
    try:
        spec = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ConfigurationError(f"{source} is not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise ConfigurationError(f"{source}: a JSON spec is an object with a 'name'")
    return spec


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
    if getattr(factory, "secret_keys", None):  # keys declared by an adapter just loaded
        normalised = wrap_secrets(normalised)
    try:
        return factory(normalised)
    except HalError:
        raise
    except (TypeError, ValueError) as exc:
        # An option of the wrong type or value that the adapter converted without checking.
        raise ConfigurationError(
            f"backend {normalised['name']!r}: bad options: {type(exc).__name__}: {exc}"
        ) from exc
    except ImportError as exc:  # an SDK the adapter imports when it builds its device
        raise _missing_sdk(normalised["name"], exc) from exc


def _missing_sdk(name: str, exc: ImportError) -> ConfigurationError:
    """The error for a backend whose SDK is not installed, with the command that adds it."""
    from hal_workflow import config

    extra = name in {"sim", "ibm", "braket", "iqm", "qdmi", "cudaq"}  # backends that are extras
    hint = f"; install it with: {config.install_hint(name)}" if extra else ""
    return ConfigurationError(f"backend {name!r} cannot be loaded: {exc}{hint}")
