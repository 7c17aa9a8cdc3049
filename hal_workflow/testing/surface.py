"""A JSON description of the public surface of ``hal_workflow.contract`` (contract v1).

A released contract version never changes, so ``tests/contract/test_surface.py`` compares
this description with the checked-in ``tests/contract/contract_v1_surface.json``. After an
intended change (which means a new contract version or a new extension), regenerate it with::

    python -m hal_workflow.testing.surface > tests/contract/contract_v1_surface.json

For every name in ``hal_workflow.contract.__all__`` it records: functions' signatures;
constants' values; enums' members; dataclasses' fields (name, type, default, in order);
classes' bases, ``__init__`` signature, methods and properties (public ones, plus the
underscore hooks a backend implements, ``_discover_capabilities`` and ``_extensions``).
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import sys
from typing import Any

# Methods inherited from these are the language's, not the contract's.
_FOREIGN = (object, Exception, BaseException, str, enum.Enum)
_HOOKS = frozenset({"_discover_capabilities", "_extensions"})


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return "<no signature>"


def _field(f: dataclasses.Field[Any]) -> str:
    """``name: type = default`` of a dataclass field (a factory shows as ``<factory name>``)."""
    text = f"{f.name}: {f.type}"
    if f.default is not dataclasses.MISSING:
        return f"{text} = {f.default!r}"
    if f.default_factory is not dataclasses.MISSING:
        return f"{text} = <factory {getattr(f.default_factory, '__qualname__', '?')}>"
    return text


def _own_classes(cls: type) -> list[type]:
    """``cls`` and its bases that belong to hal_workflow (whose members are the contract's)."""
    return [k for k in cls.__mro__ if k.__module__.startswith("hal_workflow.")]


def _members(cls: type) -> dict[str, Any]:
    methods: dict[str, str] = {}
    properties: list[str] = []
    attributes: dict[str, str] = {}
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    for klass in reversed(_own_classes(cls)):
        for name, value in vars(klass).items():
            if name in fields:
                continue
            public = not name.startswith("_") or name in _HOOKS
            if not public or isinstance(value, enum.Enum):
                continue
            if isinstance(value, property):
                properties.append(name)
            elif isinstance(value, (staticmethod, classmethod)):
                methods[name] = f"{type(value).__name__} {_signature(value.__func__)}"
            elif inspect.isfunction(value):
                prefix = "async " if inspect.iscoroutinefunction(value) else ""
                methods[name] = prefix + _signature(value)
            elif not callable(value) and not isinstance(value, dataclasses.Field):
                attributes[name] = repr(value)
    out: dict[str, Any] = {"methods": dict(sorted(methods.items()))}
    if properties:
        out["properties"] = sorted(set(properties))
    if attributes:
        out["attributes"] = dict(sorted(attributes.items()))
    return out


def describe(obj: Any) -> dict[str, Any]:
    """The surface of one public object."""
    if inspect.isclass(obj):
        out: dict[str, Any] = {
            "kind": "class",
            "bases": [b.__name__ for b in obj.__bases__ if b is not object],
        }
        if issubclass(obj, enum.Enum):
            out["kind"] = "enum"
            out["members"] = {m.name: m.value for m in obj}
        elif dataclasses.is_dataclass(obj):
            out["kind"] = "dataclass"
            out["frozen"] = obj.__dataclass_params__.frozen  # type: ignore[attr-defined]
            out["fields"] = [_field(f) for f in dataclasses.fields(obj)]
        elif getattr(obj, "_is_protocol", False):
            out["kind"] = "protocol"
        else:
            if issubclass(obj, BaseException):
                out["kind"] = "exception"
                out["mro"] = [k.__name__ for k in obj.__mro__ if k not in _FOREIGN]
            if "__init__" in vars(obj):
                out["init"] = _signature(obj.__init__)
        if inspect.isabstract(obj):
            out["abstract"] = sorted(obj.__abstractmethods__)  # type: ignore[attr-defined]
        out.update(_members(obj))
        return out
    if inspect.isfunction(obj):
        kind = "async function" if inspect.iscoroutinefunction(obj) else "function"
        return {"kind": kind, "signature": _signature(obj)}
    if callable(obj) and hasattr(obj, "__supertype__"):  # typing.NewType
        return {"kind": "newtype", "of": obj.__supertype__.__name__}
    if isinstance(obj, (frozenset, set)):
        return {"kind": "constant", "value": sorted(obj)}
    return {"kind": "constant", "value": obj}


def contract_surface() -> dict[str, Any]:
    """The whole v1 surface: ``{name: description}`` for ``hal_workflow.contract.__all__``."""
    import hal_workflow.contract as contract

    return {name: describe(getattr(contract, name)) for name in sorted(contract.__all__)}


def main() -> None:
    json.dump(contract_surface(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
