"""Cirq circuits as OpenQASM 3 text (the conversion registry's entry for ``cirq.Circuit``).

Qubits are numbered in Cirq's sorted order (``sorted(circuit.all_qubits())``). Measurement
keys get classical bits in the order they first appear, each key's bits in its measurement's
qubit order, all in one register ``c``; :class:`CirqProgram` records that layout so results
can be cut back into Cirq's keys. ``sympy`` symbols in exponents become ``input float``s of
the same name, so one parametrised circuit serves a whole sweep.

Gates map exactly, global phase included: ``XPowGate(t, s)`` is ``rx(pi t)`` times
``exp(i pi t (s + 1/2))``, ``ZPowGate(t, s)`` is ``p(pi t)`` times ``exp(i pi t s)``...
Other gates are decomposed with Cirq's own ``decompose``; a gate that has neither a mapping
nor a decomposition but a unitary on one or two qubits is synthesised from that unitary.
"""

from __future__ import annotations

import cmath
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cirq
import numpy as np
import sympy

from hal_workflow.contract.errors import CircuitError

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit

__all__ = ["CirqProgram", "from_cirq", "to_program"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RESERVED = frozenset({
    "pi", "tau", "euler", "input", "output", "qubit", "bit", "float", "int", "uint", "angle",
    "bool", "const", "gate", "measure", "reset", "if", "else", "for", "while", "in", "return",
    "def", "barrier", "ctrl", "negctrl", "inv", "pow", "U", "gphase", "c", "q", "im",
    "sin", "cos", "tan", "exp", "ln", "sqrt", "mod", "let", "box", "delay", "duration",
    "stretch", "complex", "array", "include", "cal", "defcal", "extern", "break", "continue",
    "end", "switch", "case", "default", "true", "false", "void", "mutable", "readonly",
})


@dataclass(frozen=True)
class CirqProgram:
    """A converted circuit: its text, symbol names, and where each key's bits are.

    ``keys`` maps a measurement key to its classical bit indices (in the measured qubits'
    order); ``num_clbits`` is the width of register ``c``.
    """

    qasm: str
    parameters: tuple[str, ...]
    keys: Mapping[str, tuple[int, ...]]
    num_clbits: int


def _expr(value: Any, what: str) -> str:
    """A number or a sympy expression of symbols as OpenQASM expression text."""
    if isinstance(value, sympy.Basic):
        if value.free_symbols:
            return _sympy_text(value, what)
        value = complex(value)
    number = complex(value)
    if number.imag != 0 or not math.isfinite(number.real):
        raise CircuitError(f"{what}: parameter {value!r} is not a finite real number")
    return repr(float(number.real))


def _sympy_text(expr: sympy.Basic, what: str) -> str:
    if isinstance(expr, sympy.Symbol):
        return _symbol_name(expr)
    if expr is sympy.pi:
        return "pi"
    if expr.is_Number:
        return repr(float(expr))
    if isinstance(expr, sympy.Add):
        return "(" + " + ".join(_sympy_text(a, what) for a in expr.args) + ")"
    if isinstance(expr, sympy.Mul):
        return "(" + " * ".join(_sympy_text(a, what) for a in expr.args) + ")"
    if isinstance(expr, sympy.Pow):
        base, exponent = expr.args
        return f"({_sympy_text(base, what)} ** {_sympy_text(exponent, what)})"
    raise CircuitError(f"{what}: cannot express {expr} in OpenQASM (use +, -, *, / and powers)")


def _symbol_name(symbol: sympy.Symbol) -> str:
    name = symbol.name
    if not _IDENTIFIER.match(name) or name in _RESERVED or name.startswith("_"):
        raise CircuitError(
            f"symbol {name!r} is not usable as an OpenQASM input name "
            "(letters, digits and _, not a keyword)"
        )
    return name


def _scaled(exponent: Any, factor: float | str, what: str) -> str:
    """``factor * exponent`` as text (``factor`` a number or ``"pi"``)."""
    return f"{factor} * {_expr(exponent, what)}"


class _Writer:
    def __init__(self, qubits: list[cirq.Qid]) -> None:
        self.index = {q: i for i, q in enumerate(qubits)}
        self.lines: list[str] = []
        self.keys: dict[str, tuple[int, ...]] = {}
        self.num_clbits = 0
        self.symbols: dict[str, None] = {}

    def q(self, qubit: cirq.Qid) -> str:
        if qubit.dimension != 2:
            raise CircuitError(f"qudit {qubit} of dimension {qubit.dimension}: only qubits")
        return f"q[{self.index[qubit]}]"

    def emit(self, line: str, indent: str = "") -> None:
        self.lines.append(indent + line)

    def phase(self, exponent: Any, shift: float, extra: float, what: str, indent: str) -> None:
        """``gphase(pi * t * (shift + extra))`` when that is not identically zero."""
        coefficient = shift + extra
        if coefficient != 0:
            self.emit(f"gphase({math.pi * coefficient!r} * {_expr(exponent, what)});", indent)


def _eigen(op: cirq.Operation) -> tuple[Any, float]:
    gate = op.gate
    return gate.exponent, float(getattr(gate, "global_shift", 0.0))  # type: ignore[union-attr]


def _write_op(w: _Writer, op: cirq.Operation, indent: str = "") -> None:
    gate = op.gate
    qs = [w.q(q) for q in op.qubits]
    what = str(op)
    for symbol in cirq.parameter_symbols(op):
        w.symbols.setdefault(_symbol_name(symbol), None)

    if isinstance(op, cirq.ClassicallyControlledOperation):
        conditions = op.classical_controls
        tests = []
        for condition in conditions:
            if not isinstance(condition, cirq.KeyCondition):
                raise CircuitError(f"{what}: only plain measurement-key conditions are supported")
            bits = w.keys.get(str(condition.key))
            if bits is None:
                raise CircuitError(f"{what}: condition on key {condition.key!s}, which is not "
                                   "measured before it")
            # a key condition holds when any of the key's bits is 1
            tests.append(" || ".join(f"c[{b}]" for b in bits))
        w.emit(f"if ({' && '.join(f'({t})' for t in tests)}) {{", indent)
        _write_op(w, op.without_classical_controls(), indent + "  ")
        w.emit("}", indent)
        return
    if isinstance(gate, cirq.MeasurementGate):
        key = gate.key
        if key in w.keys:
            raise CircuitError(f"measurement key {key!r} is used twice")
        bits = tuple(range(w.num_clbits, w.num_clbits + len(qs)))
        w.num_clbits += len(qs)
        w.keys[key] = bits
        inverted = gate.full_invert_mask()
        for bit, qubit, flip in zip(bits, qs, inverted, strict=True):
            if flip:
                w.emit(f"x {qubit};", indent)
            w.emit(f"c[{bit}] = measure {qubit};", indent)
            if flip:
                w.emit(f"x {qubit};", indent)
        return
    if isinstance(gate, cirq.ResetChannel):
        w.emit(f"reset {qs[0]};", indent)
        return
    if isinstance(gate, (cirq.IdentityGate, cirq.WaitGate)) or (gate is None and not qs):
        return
    if isinstance(gate, cirq.GlobalPhaseGate):
        coefficient = gate.coefficient
        if isinstance(coefficient, sympy.Basic) and coefficient.free_symbols:
            raise CircuitError(f"{what}: a symbolic global phase is not supported")
        w.emit(f"gphase({cmath.phase(complex(coefficient))!r});", indent)
        return
    writer = next((_WRITERS[c] for c in type(gate).__mro__ if c in _WRITERS), None)
    if writer is not None:
        writer(w, op, qs, what, indent)
        return
    # no direct mapping: Cirq's decomposition, else synthesis from the unitary
    parts = cirq.decompose_once(op, default=None)
    if parts is not None:
        for part in parts:
            _write_op(w, part, indent)
        return
    if cirq.is_parameterized(op):
        raise CircuitError(f"unsupported operation {what}: no decomposition for symbolic use")
    matrix = cirq.unitary(op, default=None)
    if matrix is None:
        raise CircuitError(f"unsupported operation {what} ({type(gate).__name__}): no unitary "
                           "and no decomposition")
    if len(qs) == 1:
        _write_unitary_1q(w, matrix, qs[0], indent)
        return
    if len(qs) == 2:
        ops = cirq.two_qubit_matrix_to_cz_operations(op.qubits[0], op.qubits[1], matrix,
                                                      allow_partial_czs=False)
        for part in ops:
            _write_op(w, part, indent)
        rebuilt = cirq.unitary(cirq.Circuit(ops), default=None)
        if rebuilt is not None:
            phase = _phase_between(matrix, rebuilt)
            if phase:
                w.emit(f"gphase({phase!r});", indent)
        return
    raise CircuitError(f"unsupported operation {what} ({type(gate).__name__}) on {len(qs)} "
                       "qubits: no decomposition")


def _phase_between(target: np.ndarray, built: np.ndarray) -> float:
    """The global phase ``a`` with ``target = exp(i a) built``."""
    index = np.unravel_index(np.argmax(np.abs(built)), built.shape)
    return float(cmath.phase(target[index] / built[index]))


def _write_unitary_1q(w: _Writer, matrix: np.ndarray, qubit: str, indent: str) -> None:
    """``U(theta, phi, lambda)`` plus ``gphase`` reproducing a 2x2 unitary exactly."""
    theta = 2 * math.atan2(abs(matrix[1, 0]), abs(matrix[0, 0]))
    if abs(matrix[0, 0]) > 1e-12:
        alpha = cmath.phase(matrix[0, 0])
        phi = cmath.phase(matrix[1, 0]) - alpha if abs(matrix[1, 0]) > 1e-12 else 0.0
        lam = cmath.phase(-matrix[0, 1]) - alpha if abs(matrix[0, 1]) > 1e-12 else (
            cmath.phase(matrix[1, 1]) - alpha - phi)
    else:  # theta = pi: U = [[0, -e^{i lam}], [e^{i phi}, 0]] e^{i alpha}
        alpha, phi = 0.0, cmath.phase(matrix[1, 0])
        lam = cmath.phase(-matrix[0, 1])
    w.emit(f"U({theta!r}, {phi!r}, {lam!r}) {qubit};", indent)
    if alpha:
        w.emit(f"gphase({alpha!r});", indent)


# ----------------------------------------------------------------------------------------------
# direct mappings (exact, global phase included)

_Writer_t = Callable[[_Writer, cirq.Operation, list[str], str, str], None]


def _pauli_pow(name: str, extra: float) -> _Writer_t:
    """X/Y: ``name(pi t)`` times ``exp(i pi t (s + extra))`` with extra = 1/2."""
    def write(w: _Writer, op: cirq.Operation, qs: list[str], what: str, indent: str) -> None:
        t, s = _eigen(op)
        if t == 1 and s == 0:
            w.emit(f"{name[1]} {qs[0]};", indent)
            return
        w.emit(f"{name}({_scaled(t, 'pi', what)}) {qs[0]};", indent)
        w.phase(t, s, extra, what, indent)
    return write


def _z_pow(w: _Writer, op: cirq.Operation, qs: list[str], what: str, indent: str) -> None:
    t, s = _eigen(op)
    fixed = {1: "z", 0.5: "s", -0.5: "sdg", 0.25: "t", -0.25: "tdg"}
    if s == 0 and not cirq.is_parameterized(op) and float(t) in fixed:
        w.emit(f"{fixed[float(t)]} {qs[0]};", indent)
        return
    w.emit(f"p({_scaled(t, 'pi', what)}) {qs[0]};", indent)
    w.phase(t, s, 0.0, what, indent)


def _h_pow(w: _Writer, op: cirq.Operation, qs: list[str], what: str, indent: str) -> None:
    t, s = _eigen(op)
    if cirq.is_parameterized(op) or float(t) != 1:
        for part in cirq.decompose_once(op):
            _write_op(w, part, indent)
        return
    w.emit(f"h {qs[0]};", indent)
    w.phase(t, s, 0.0, what, indent)


def _cz_pow(w: _Writer, op: cirq.Operation, qs: list[str], what: str, indent: str) -> None:
    t, s = _eigen(op)
    if s == 0 and not cirq.is_parameterized(op) and float(t) == 1:
        w.emit(f"cz {qs[0]}, {qs[1]};", indent)
        return
    w.emit(f"cp({_scaled(t, 'pi', what)}) {qs[0]}, {qs[1]};", indent)
    w.phase(t, s, 0.0, what, indent)


def _cx_pow(w: _Writer, op: cirq.Operation, qs: list[str], what: str, indent: str) -> None:
    t, s = _eigen(op)
    if s == 0 and not cirq.is_parameterized(op) and float(t) == 1:
        w.emit(f"cx {qs[0]}, {qs[1]};", indent)
        return
    # controlled X^t = controlled (exp(i pi t / 2) rx(pi t)) = p(pi t / 2) on the control, crx
    w.emit(f"p({_scaled(t, math.pi / 2, what)}) {qs[0]};", indent)
    w.emit(f"crx({_scaled(t, 'pi', what)}) {qs[0]}, {qs[1]};", indent)
    w.phase(t, s, 0.0, what, indent)


def _fixed(name: str) -> _Writer_t:
    """Gates without a symbolic form here (SWAP, CCX, CSWAP): exponent 1 maps by name."""
    def write(w: _Writer, op: cirq.Operation, qs: list[str], what: str, indent: str) -> None:
        t, s = _eigen(op) if hasattr(op.gate, "exponent") else (1, 0.0)
        if not cirq.is_parameterized(op) and float(t) == 1:
            w.emit(f"{name} {', '.join(qs)};", indent)
            w.phase(t, s, 0.0, what, indent)
            return
        for part in cirq.decompose_once(op):
            _write_op(w, part, indent)
    return write


_WRITERS: dict[type, _Writer_t] = {
    cirq.XPowGate: _pauli_pow("rx", 0.5),
    cirq.YPowGate: _pauli_pow("ry", 0.5),
    cirq.ZPowGate: _z_pow,
    cirq.HPowGate: _h_pow,
    cirq.CZPowGate: _cz_pow,
    cirq.CXPowGate: _cx_pow,
    cirq.SwapPowGate: _fixed("swap"),
    cirq.CCXPowGate: _fixed("ccx"),
    cirq.CSwapGate: _fixed("cswap"),
}


def to_program(circuit: cirq.AbstractCircuit) -> CirqProgram:
    """Convert ``circuit`` (its symbols stay free ``input float``s)."""
    if not isinstance(circuit, cirq.AbstractCircuit):
        raise CircuitError(f"expected a cirq.Circuit, got {type(circuit).__name__}")
    qubits = sorted(circuit.all_qubits())
    w = _Writer(qubits)
    def flat(o: cirq.Operation) -> bool:
        return not isinstance(o, cirq.CircuitOperation)

    for op in circuit.all_operations():
        for inner in [op] if flat(op) else cirq.decompose(op, keep=flat):
            _write_op(w, inner)
    declarations = [f"input float {name};" for name in w.symbols]
    width = max(len(qubits), 1)
    body = [f"qubit[{width}] q;"]
    if w.num_clbits:
        body.append(f"bit[{w.num_clbits}] c;")
    text = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n' + "\n".join(
        [*declarations, *body, *w.lines]) + "\n"
    return CirqProgram(text, tuple(w.symbols), dict(w.keys), w.num_clbits)


def from_cirq(circuit: cirq.AbstractCircuit) -> Circuit:
    """``circuit`` as a :class:`Circuit`: qubits in sorted order, measurement keys' bits in
    order of appearance in one register ``c`` (see the module docstring); symbols become free
    parameters of the same name."""
    from hal_workflow.circuits import Circuit

    return Circuit.from_qasm(to_program(circuit).qasm, source="<cirq circuit>")
