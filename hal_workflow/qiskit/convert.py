"""Qiskit ``QuantumCircuit`` -> :class:`~hal_workflow.circuits.Circuit`, registered with the
one conversion registry (:mod:`hal_workflow.circuits.conversion`).

Unbound ``Parameter``s and ``ParameterVector`` elements become ``input float`` parameters. Their
names are a pure function of the Qiskit parameter (:func:`parameter_name`), so bindings may be
given by ``Parameter`` or by name, in any process: ``θ`` -> ``theta``, ``x[3]`` -> ``x_3``,
anything else outside ``[A-Za-z0-9_]`` -> ``_``. The export itself is
:func:`hal_workflow.compilation.qiskit_bridge.from_qiskit` (``qiskit.qasm3.dumps``).
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from typing import Any

from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVectorElement

from hal_workflow.circuits.circuit import Circuit
from hal_workflow.compilation.qiskit_bridge import from_qiskit as qasm_from_qiskit
from hal_workflow.contract.errors import CircuitError

__all__ = ["from_qiskit", "parameter_name"]

_INVALID = re.compile(r"[^A-Za-z0-9_]")
# OpenQASM 3 keywords and built-ins a parameter must not shadow.
_RESERVED = frozenset({
    "OPENQASM", "include", "defcalgrammar", "def", "cal", "defcal", "gate", "extern", "box",
    "let", "break", "continue", "if", "else", "end", "return", "for", "while", "in", "switch",
    "case", "default", "input", "output", "const", "readonly", "mutable", "qreg", "qubit",
    "creg", "bool", "bit", "int", "uint", "float", "angle", "complex", "array", "void",
    "duration", "stretch", "gphase", "inv", "pow", "ctrl", "negctrl", "durationof", "delay",
    "reset", "measure", "barrier", "true", "false", "pi", "tau", "euler", "U", "CX",
    "sin", "cos", "tan", "arcsin", "arccos", "arctan", "exp", "log", "sqrt", "ceiling", "floor",
    "mod", "popcount", "rotl", "rotr", "real", "imag", "sizeof",
    # stdgates.inc, which every exported program includes
    "p", "x", "y", "z", "h", "s", "sdg", "t", "tdg", "sx", "rx", "ry", "rz", "cx", "cy", "cz",
    "cp", "crx", "cry", "crz", "ch", "swap", "ccx", "cswap", "cu", "phase", "cphase", "id",
    "u1", "u2", "u3",
})


def _ascii(text: str) -> str:
    """``text`` with each non-ASCII letter spelled out (``θ`` -> ``theta``) where Unicode
    names it a letter, else replaced by ``_``."""
    out = []
    for char in text:
        if char.isascii():
            out.append(char)
            continue
        name = unicodedata.name(char, "")
        if " LETTER " in name:
            word = name.rsplit(" ", 1)[-1]
            out.append(word.lower() if "SMALL" in name else word.capitalize())
        else:
            out.append("_")
    return "".join(out)


def parameter_name(parameter: Parameter | str) -> str:
    """The OpenQASM ``input`` name of a Qiskit parameter (a string is taken as a name).

    Stable and valid: a vector element ``x[3]`` is ``x_3``, non-ASCII letters are spelled out,
    other characters become ``_``, and a name that starts with a digit, is an OpenQASM
    keyword or a ``stdgates.inc`` gate (``t``, ``h``...) gets a ``p_`` prefix.
    """
    if isinstance(parameter, ParameterVectorElement):
        raw = f"{parameter.vector.name}_{parameter.index}"
    else:
        raw = parameter if isinstance(parameter, str) else parameter.name
    name = _INVALID.sub("_", _ascii(raw)) or "p"
    if name[0].isdigit() or name in _RESERVED or keyword.iskeyword(name):
        name = f"p_{name}"
    return name


def _renamed(qc: QuantumCircuit) -> QuantumCircuit:
    """``qc`` with every parameter renamed to :func:`parameter_name` (same order)."""
    mapping: dict[Parameter, Parameter] = {}
    seen: dict[str, str] = {}
    for parameter in qc.parameters:
        name = parameter_name(parameter)
        if name in seen:
            raise CircuitError(
                f"parameters {seen[name]!r} and {parameter.name!r} of {qc.name!r} both become "
                f"the OpenQASM input {name!r}; rename one of them"
            )
        seen[name] = parameter.name
        if name != parameter.name:
            mapping[parameter] = Parameter(name)
    if not mapping:
        return qc
    return qc.assign_parameters(mapping, inplace=False, strict=False)


def from_qiskit(qc: QuantumCircuit) -> Circuit:
    """``qc`` as a :class:`Circuit`; unbound parameters become ``input float[64]`` inputs
    named by :func:`parameter_name`.

    Raises ``CircuitError`` when the circuit holds something OpenQASM 3 cannot express or the
    exported program names its parameters differently (a clash with a register or gate name).
    """
    if not isinstance(qc, QuantumCircuit):
        raise CircuitError(f"expected a QuantumCircuit, got {type(qc).__name__}")
    renamed = _renamed(qc)
    circuit = Circuit.from_qasm(qasm_from_qiskit(renamed), source=f"<QuantumCircuit {qc.name}>")
    expected = {p.name for p in renamed.parameters}
    found = set(circuit.parameters)
    if expected != found:
        raise CircuitError(
            f"exporting {qc.name!r} renamed its parameters {sorted(expected - found)} "
            f"(they clash with a register or gate name); rename them",
            source=f"<QuantumCircuit {qc.name}>",
        )
    return circuit


def binding_key(key: Any) -> str:
    """A binding key (``Parameter``, vector element or name) as an input name."""
    return parameter_name(key)
