"""The lowered form of a circuit that backends execute.

``Circuit`` parses OpenQASM 3 once and lowers it into this flat, immutable instruction list:
registers are flattened to integer indices (declaration order), custom gates are inlined,
loops are unrolled, and only standard gates (``stdgates.inc`` plus ``U`` and ``gphase``),
measurements, resets, barriers and classically-conditioned blocks remain. Gate parameters are
either plain floats or :class:`Expr` objects that depend on free ``input float`` parameters,
so a parametrised circuit is lowered once and evaluated cheaply per binding.

Qubit order inside ``GateOp.qubits`` is the OpenQASM order: for ``ctrl @ g`` the control
qubits come first, then the qubits of ``g``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import CodeType
from typing import TypeAlias

_MATH_NAMESPACE: dict[str, object] = {
    "__builtins__": {},
    "pi": math.pi,
    "π": math.pi,
    "tau": math.tau,
    "τ": math.tau,
    "euler": math.e,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "arcsin": math.asin,
    "arccos": math.acos,
    "arctan": math.atan,
    "exp": math.exp,
    "log": math.log,
    "sqrt": math.sqrt,
    "abs": abs,
    "mod": math.fmod,
    "floor": math.floor,
    "ceiling": math.ceil,
}


@dataclass(frozen=True)
class Expr:
    """A real-valued expression over free ``input float`` parameters.

    ``source`` is a Python expression (built by the lowering, never from user text directly)
    using the names in ``free`` and the functions of OpenQASM 3's standard library.
    """

    source: str
    free: frozenset[str]
    _code: CodeType = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_code", compile(self.source, "<hal-expr>", "eval"))

    def evaluate(self, bindings: Mapping[str, float]) -> float:
        """Evaluate with ``bindings`` (every name in ``free`` must be bound)."""
        return float(eval(self._code, _MATH_NAMESPACE, dict(bindings)))

    def __reduce__(self) -> tuple[object, tuple[str, frozenset[str]]]:
        return (Expr, (self.source, self.free))


Param: TypeAlias = "float | Expr"


def evaluate_param(value: Param, bindings: Mapping[str, float]) -> float:
    """The numeric value of a gate parameter under ``bindings``."""
    return value.evaluate(bindings) if isinstance(value, Expr) else float(value)


@dataclass(frozen=True, slots=True)
class Modifier:
    """An OpenQASM 3 gate modifier: ``ctrl``/``negctrl`` (count), ``inv``, ``pow`` (exponent)."""

    kind: str  # "ctrl" | "negctrl" | "inv" | "pow"
    argument: Param = 1.0


@dataclass(frozen=True, slots=True)
class GateOp:
    """A standard gate (or ``U``/``gphase``) on flattened qubit indices.

    ``modifiers`` are kept outermost-first, as written (``ctrl @ inv @ x`` gives
    ``(ctrl, inv)``); the control qubits of ``ctrl``/``negctrl`` lead ``qubits``.
    """

    name: str
    qubits: tuple[int, ...]
    params: tuple[Param, ...] = ()
    modifiers: tuple[Modifier, ...] = ()
    line: int | None = None


@dataclass(frozen=True, slots=True)
class MeasureOp:
    qubit: int
    clbit: int
    line: int | None = None


@dataclass(frozen=True, slots=True)
class ResetOp:
    qubit: int
    line: int | None = None


@dataclass(frozen=True, slots=True)
class BarrierOp:
    qubits: tuple[int, ...]
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    """``value_of(clbits) == value``; clbits[0] is the least significant bit."""

    clbits: tuple[int, ...]
    value: int


@dataclass(frozen=True, slots=True)
class IfOp:
    condition: Condition
    body: tuple[Operation, ...]
    else_body: tuple[Operation, ...] = ()
    line: int | None = None


Operation: TypeAlias = "GateOp | MeasureOp | ResetOp | BarrierOp | IfOp"


@dataclass(frozen=True)
class LoweredCircuit:
    """The executable form of a circuit (see module docstring)."""

    num_qubits: int
    num_clbits: int
    operations: tuple[Operation, ...]
    parameters: tuple[str, ...] = ()
    qubit_registers: tuple[tuple[str, int, int], ...] = ()  # (name, first index, size)
    clbit_registers: tuple[tuple[str, int, int], ...] = ()
