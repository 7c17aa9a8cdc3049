"""One registry through which every framework's circuits enter hal-workflow.

Every entry point that takes a circuit (``run``, ``submit``, ``sweep``, ``validate``,
``Backend.submit``, the Dask and Parsl helpers, the batch extension) calls :func:`as_circuit`,
which accepts a :class:`Circuit`, OpenQASM text, or any object whose type is registered here: a
Qiskit ``QuantumCircuit``, a ``cirq.Circuit``, a Braket ``Circuit`` ... Converters are
registered by the *fully qualified name* of the type (``"qiskit.circuit.quantumcircuit.
QuantumCircuit"``) and a ``"module:function"`` path, so nothing is imported until such an
object actually arrives: ``import hal_workflow`` stays free of every framework.

Third-party packages add their own through the entry-point group
``hal_workflow.converters`` (name: the type's qualified name, value: ``module:function``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any

from hal_workflow.contract.errors import CircuitError

if TYPE_CHECKING:
    from hal_workflow.circuits.circuit import Circuit

__all__ = [
    "as_bindings",
    "as_circuit",
    "converter_for",
    "register_converter",
    "register_parameter_key",
    "registered_types",
]

Converter = Callable[[Any], "Circuit"]

# type qualname -> "module:function" (resolved lazily) or the function itself
_CONVERTERS: dict[str, str | Converter] = {
    "qiskit.circuit.quantumcircuit.QuantumCircuit": "hal_workflow.qiskit.convert:from_qiskit",
    "cirq.circuits.circuit.Circuit": "hal_workflow.cirq.convert:from_cirq",
    "cirq.circuits.frozen_circuit.FrozenCircuit": "hal_workflow.cirq.convert:from_cirq",
    "pennylane.tape.qscript.QuantumScript": "hal_workflow.pennylane.convert:from_tape",
    "pennylane.tape.tape.QuantumTape": "hal_workflow.pennylane.convert:from_tape",
}
# parameter-object type qualname -> "module:function" giving the input name it binds
_PARAMETER_KEYS: dict[str, str | Callable[[Any], str]] = {
    "qiskit.circuit.parameter.Parameter": "hal_workflow.qiskit.convert:parameter_name",
    "qiskit._accelerate.circuit.Parameter": "hal_workflow.qiskit.convert:parameter_name",
}
_LOCK = threading.Lock()
_ENTRY_POINTS_LOADED = False


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_converter(type_name: str | type, converter: str | Converter) -> None:
    """Register ``converter`` (a function or ``"module:function"``) for ``type_name``.

    ``type_name`` is a class or its fully qualified name; subclasses are converted by the
    nearest registered base class.
    """
    key = type_name if isinstance(type_name, str) else _qualname(type_name)
    with _LOCK:
        _CONVERTERS[key] = converter


def registered_types() -> list[str]:
    """The qualified type names that have a converter."""
    _load_entry_points()
    return sorted(_CONVERTERS)


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    from importlib.metadata import entry_points

    with _LOCK:
        for ep in entry_points(group="hal_workflow.converters"):
            _CONVERTERS.setdefault(ep.name, ep.value)
        _ENTRY_POINTS_LOADED = True


def _lookup(table: dict[str, Any], obj: Any) -> Any:
    """The function ``table`` holds for ``type(obj)`` or its nearest base (imported on first
    use and cached), or None."""
    for cls in type(obj).__mro__:
        found = table.get(_qualname(cls))
        if found is None:
            continue
        if isinstance(found, str):
            module, _, attr = found.partition(":")
            try:
                found = getattr(import_module(module), attr)
            except ImportError as exc:
                raise CircuitError(
                    f"cannot convert a {type(obj).__name__}: {exc}; install the matching "
                    "extra of hal-workflow"
                ) from exc
            with _LOCK:
                table[_qualname(cls)] = found
        return found
    return None


def converter_for(obj: Any) -> Converter | None:
    """The converter registered for ``type(obj)`` or its nearest base, or None."""
    _load_entry_points()
    return _lookup(_CONVERTERS, obj)  # type: ignore[no-any-return]


def register_parameter_key(type_name: str | type, namer: str | Callable[[Any], str]) -> None:
    """Register how a framework's parameter object (a binding key) names its ``input``."""
    key = type_name if isinstance(type_name, str) else _qualname(type_name)
    with _LOCK:
        _PARAMETER_KEYS[key] = namer


def as_bindings(values: Mapping[Any, Any] | None) -> dict[str, Any] | None:
    """``values`` keyed by input name: strings stay, registered parameter objects (a Qiskit
    ``Parameter`` or ``ParameterVector`` element) become the name their converter gives them.

    Raises ``CircuitError`` for any other key, or two keys naming the same input.
    """
    if values is None:
        return None
    if all(isinstance(key, str) for key in values):
        return dict(values)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(key, str):
            name = key
        else:
            namer = _lookup(_PARAMETER_KEYS, key)
            if namer is None:
                raise CircuitError(
                    f"a parameter binding is keyed by name or by a framework parameter, "
                    f"not {type(key).__name__} ({key!r})"
                )
            name = namer(key)
        if name in out:
            raise CircuitError(f"parameter {name!r} is bound twice")
        out[name] = value
    return out


_CACHED_TEXT_CHARS = 20_000
"""Program texts up to this length are parsed once per process (an LRU of recent ones)."""


_PARSED: OrderedDict[str, Circuit] = OrderedDict()
_PARSED_SIZE = 256
_PARSED_LOCK = threading.Lock()


def _parsed(text: str) -> Circuit:
    """``text`` parsed, from the cache of recent texts when it is there."""
    from hal_workflow.circuits.circuit import Circuit

    found = cached_circuit(text)
    if found is None:
        found = Circuit.from_qasm(text)
        with _PARSED_LOCK:
            _PARSED[text] = found
            while len(_PARSED) > _PARSED_SIZE:
                _PARSED.popitem(last=False)
    return found


def cached_circuit(text: str) -> Circuit | None:
    """The circuit of ``text`` if :func:`as_circuit` parsed it recently, else None (a caller
    can then tell whether getting it costs a parse)."""
    with _PARSED_LOCK:
        found = _PARSED.get(text)
        if found is not None:
            _PARSED.move_to_end(text)
        return found


def as_circuit(circuit: Any) -> Circuit:
    """``circuit`` as a :class:`Circuit`.

    Text is parsed and checked by our own parser, so every backend reports a malformed program
    with the same ``CircuitError``; registered foreign circuits are converted once.
    """
    from hal_workflow.circuits.circuit import Circuit

    if isinstance(circuit, Circuit):
        return circuit
    if isinstance(circuit, str):
        if len(circuit) <= _CACHED_TEXT_CHARS:  # loops resubmit the same text: parse once
            return _parsed(circuit)
        return Circuit.from_qasm(circuit)
    converter = converter_for(circuit)
    if converter is not None:
        converted = converter(circuit)
        if not isinstance(converted, Circuit):
            raise CircuitError(
                f"the converter for {type(circuit).__name__} returned "
                f"{type(converted).__name__}, not a Circuit"
            )
        return converted
    raise CircuitError(
        f"expected a Circuit, OpenQASM 3 text or a registered framework circuit "
        f"({', '.join(t.rsplit('.', 1)[-1] for t in registered_types())}), "
        f"got {type(circuit).__name__}"
    )
