"""The circuit object users hand to backends: OpenQASM text, checked and lowered once.

A :class:`Circuit` *is* its OpenQASM text (equality, hashing and pickling go by the text), so
it travels to Dask and Parsl workers as a string. Construction parses and lowers the program,
raising :class:`CircuitError` for anything wrong; the result is cached per text, so building
the same circuit again (a sweep submitting thousands of copies) costs a dictionary lookup.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from hal_workflow.circuits.binding import bind_lowered, bound_text
from hal_workflow.circuits.ir import LoweredCircuit
from hal_workflow.circuits.limits import Limits, with_source
from hal_workflow.circuits.metrics import depth, gate_counts
from hal_workflow.contract.errors import CircuitError

if TYPE_CHECKING:
    from hal_workflow.circuits.lowering import Lowering

__all__ = ["Circuit", "as_circuit"]

# (template text, bindings): a bound circuit's lowering is derived from its template's.
_Template = tuple[str, tuple[tuple[str, float], ...]]


@lru_cache(maxsize=256)
def _lower_cached(text: str) -> Lowering:
    from hal_workflow.circuits.lowering import lower  # loads openqasm3 and ANTLR on first use

    return lower(text)


def _lower(text: str, source: str | None) -> Lowering:
    try:
        return _lower_cached(text)
    except CircuitError as exc:
        if source is None:
            raise
        raise with_source(exc, source) from exc.__cause__


class Circuit:
    """An OpenQASM 3 (or 2) program, validated and lowered to :class:`LoweredCircuit`.

    Build one with :meth:`from_qasm`, :meth:`from_file`, :meth:`from_qir` or the library
    (:meth:`bell`, :meth:`ghz`, :mod:`hal_workflow.circuits.library`).
    """

    __slots__ = ("_lowered", "_qasm", "_source", "_template")

    def __init__(self, qasm: str, source: str | None = None) -> None:
        """Parse and check ``qasm``; prefer :meth:`from_qasm`."""
        if not isinstance(qasm, str):
            raise CircuitError(f"OpenQASM source must be a str, got {type(qasm).__name__}",
                               source=source)
        self._qasm = qasm
        self._source = source
        self._template: _Template | None = None
        self._lowered: LoweredCircuit | None = _lower(qasm, source).circuit

    @classmethod
    def _restore(cls, qasm: str, source: str | None, template: _Template | None,
                 lowered: LoweredCircuit | None = None) -> Circuit:
        """A circuit known to be valid; it is lowered on first use."""
        circuit = cls.__new__(cls)
        circuit._qasm, circuit._source = qasm, source
        circuit._template, circuit._lowered = template, lowered
        return circuit

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def from_qasm(cls, text: str, source: str | None = None) -> Circuit:
        """A circuit from OpenQASM 3 text (OpenQASM 2 with ``qelib1.inc`` works too).

        Args:
            text: the program.
            source: a name for error messages (a file name); ``"<string>"`` when omitted.

        Raises:
            CircuitError: the program does not parse or is not a valid circuit (an empty or
                comment-only text included); the error names the source, line, column and
                the problem. :class:`~hal_workflow.circuits.limits.CircuitLimitError` (a
                subclass) when it exceeds a ``limits.*`` bound, naming the key to raise.
        """
        return cls(text, source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Circuit:
        """A circuit from an OpenQASM file; every error names the file (this is what the CLI
        calls). A file over ``limits.max-file-bytes`` is refused before it is read."""
        source = os.fspath(path)
        Limits.current().check_file(source)
        try:
            with open(source, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise CircuitError(f"cannot read file: {reason}", source=source) from exc
        return cls(text, source)

    @classmethod
    def from_qir(cls, ir: str | bytes, source: str | None = None) -> Circuit:
        """A circuit from base-profile QIR (LLVM text, or bitcode as bytes); needs ``pyqir``."""
        from hal_workflow.circuits.qir import qasm_from_qir

        return cls(qasm_from_qir(ir, source), source)

    @classmethod
    def bell(cls) -> Circuit:
        """The two-qubit Bell state, measured into ``bit[2] c``."""
        from hal_workflow.circuits.library import bell

        return bell()

    @classmethod
    def ghz(cls, num_qubits: int) -> Circuit:
        """The ``num_qubits``-qubit GHZ state, measured into ``bit[num_qubits] c``."""
        from hal_workflow.circuits.library import ghz

        return ghz(num_qubits)

    # -- facts ------------------------------------------------------------------------------

    @property
    def qasm(self) -> str:
        """The OpenQASM text; ``Circuit.from_qasm(c.qasm) == c``."""
        return self._qasm

    @property
    def source(self) -> str | None:
        """The file the circuit came from, or None."""
        return self._source

    @property
    def lowered(self) -> LoweredCircuit:
        """The flat, executable form (computed once)."""
        if self._lowered is None:
            if self._template is None:
                self._lowered = _lower(self._qasm, self._source).circuit
            else:
                text, bindings = self._template
                self._lowered = bind_lowered(_lower(text, self._source).circuit, dict(bindings))
        return self._lowered

    @property
    def num_qubits(self) -> int:
        return self.lowered.num_qubits

    @property
    def num_clbits(self) -> int:
        return self.lowered.num_clbits

    @property
    def parameters(self) -> tuple[str, ...]:
        """Names of the unbound ``input`` parameters, in declaration order."""
        return self.lowered.parameters

    @property
    def gate_counts(self) -> dict[str, int]:
        """Operations by name after inlining custom gates (see :func:`.metrics.gate_counts`)."""
        return gate_counts(self.lowered)

    @property
    def depth(self) -> int:
        """Circuit depth as Qiskit counts it (see :func:`.metrics.depth`)."""
        return depth(self.lowered)

    # -- parameters -------------------------------------------------------------------------

    def bind(self, values: Mapping[str, float]) -> Circuit:
        """A new circuit with some or all ``input`` parameters fixed.

        The new text declares each bound input as a ``const`` of the same type; parameters
        not in ``values`` stay free.

        Raises:
            CircuitError: a name is not a free parameter, or a value is not a finite number.
        """
        unknown = sorted(set(values) - set(self.parameters))
        if unknown:
            free = ", ".join(self.parameters) or "none"
            raise CircuitError(f"unknown parameter(s) {', '.join(unknown)} "
                               f"(free parameters: {free})", source=self._source)
        if not values:
            return self
        text, previous = self._template or (self._qasm, ())
        template = _lower(text, self._source)
        integer = {d.name: d.integer for d in template.inputs}
        checked = {name: _checked_value(name, value, integer[name], self._source)
                   for name, value in values.items()}
        merged = {**dict(previous), **checked}
        return Circuit._restore(
            bound_text(text, template.inputs, merged),
            self._source,
            (text, tuple(merged.items())),
            bind_lowered(self.lowered, checked),
        )

    # -- QIR --------------------------------------------------------------------------------

    def to_qir(self) -> str:
        """Base-profile QIR (LLVM text) for a circuit of standard gates and final measurements.

        Written as text, so ``pyqir`` is not needed (reading QIR back with :meth:`from_qir` is).

        Raises:
            CircuitError: the circuit uses what the base profile cannot express (classical
                control, reset, gates after measurement, unbound parameters...).
        """
        from hal_workflow.circuits.qir import qir_from_lowered

        return qir_from_lowered(self.lowered, self._source)

    # -- identity ---------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Circuit):
            return NotImplemented
        return self._qasm == other._qasm

    def __hash__(self) -> int:
        return hash(self._qasm)

    def __reduce__(self) -> tuple[Any, ...]:
        # The text (and template) only: the receiver re-lowers on first use, from its cache.
        return (Circuit._restore, (self._qasm, self._source, self._template))

    def __repr__(self) -> str:
        lowered = self.lowered
        name = f"{self._source!r}, " if self._source else ""
        params = f", parameters={list(lowered.parameters)}" if lowered.parameters else ""
        return (f"<Circuit {name}{lowered.num_qubits} qubits, {lowered.num_clbits} clbits, "
                f"{len(lowered.operations)} operations{params}>")


def _checked_value(name: str, value: Any, integer: bool, source: str | None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CircuitError(f"parameter '{name}' must be a real number, got {value!r}",
                           source=source)
    number = float(value)
    if not math.isfinite(number):
        raise CircuitError(f"parameter '{name}' must be finite, got {number}", source=source)
    if integer and not number.is_integer():
        raise CircuitError(f"parameter '{name}' is an integer input, got {number}",
                           source=source)
    return number


def as_circuit(circuit: Any) -> Circuit:
    """``circuit`` as a :class:`Circuit` (see :func:`hal_workflow.circuits.conversion.as_circuit`,
    which also converts registered framework circuits)."""
    from hal_workflow.circuits.conversion import as_circuit as convert

    return convert(circuit)
