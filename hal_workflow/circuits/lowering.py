"""OpenQASM AST to :class:`~hal_workflow.circuits.ir.LoweredCircuit`.

One pass over the program does every semantic check and produces the flat IR:

- registers (``qubit``/``qreg``, ``bit``/``creg``/``output bit``) are flattened in declaration
  order; physical qubits ``$n`` map to index ``n`` (they cannot be mixed with registers);
- gate calls are broadcast over registers, checked (known gate, parameter and qubit counts,
  duplicate qubits), and custom gates are inlined recursively with their modifiers pushed into
  the body (``inv`` reverses it, ``ctrl``/``negctrl`` control every gate, integer ``pow``
  repeats it); standard gates keep their modifiers;
- ``for`` loops over ranges or sets are unrolled, ``if`` becomes :class:`IfOp`, constants fold
  and expressions over ``input`` parameters become :class:`Expr`;
- anything else (``while``, ``def``, ``extern``, ``box``, ``delay``, ...) is rejected by name.

Every error is a :class:`CircuitError` with the source, line and column of the offending node.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, NoReturn, TypeVar

from openqasm3 import ast

from hal_workflow.circuits.expressions import CONSTANTS, Evaluator, Sym, Value
from hal_workflow.circuits.gates import (
    BUILTIN_GATES,
    GATE_ALIASES,
    KNOWN_INCLUDES,
    QELIB1_EXTRAS,
    QELIB1_EXTRAS_QASM,
    STANDARD_GATES,
)
from hal_workflow.circuits.ir import (
    BarrierOp,
    Condition,
    Expr,
    GateOp,
    IfOp,
    LoweredCircuit,
    MeasureOp,
    Modifier,
    Operation,
    Param,
    ResetOp,
)
from hal_workflow.circuits.limits import CircuitLimitError, Limits
from hal_workflow.circuits.parsing import Positions, parse
from hal_workflow.contract.errors import CircuitError

__all__ = ["STANDARD_GATES", "InputDeclaration", "Lowering", "lower"]

_COMMENTS = re.compile(r"//[^\n]*|/\*.*?(?:\*/|\Z)", re.DOTALL)
_BRACKETS = re.compile(r"[\[\](){}]")
_OPENING = frozenset("[({")

_UNSUPPORTED = {
    "WhileLoop": "while loops",
    "SubroutineDefinition": "subroutine definitions (def)",
    "ExternDeclaration": "extern declarations",
    "Box": "box (timing)",
    "DelayInstruction": "delay (timing)",
    "SwitchStatement": "switch statements",
    "AliasStatement": "aliases (let)",
    "ReturnStatement": "return",
    "EndStatement": "end",
    "BreakStatement": "break",
    "ContinueStatement": "continue",
    "ClassicalAssignment": "classical assignment",
    "ExpressionStatement": "expression statements",
    "CalibrationGrammarDeclaration": "defcalgrammar",
    "CalibrationStatement": "cal blocks",
    "CalibrationDefinition": "defcal",
}


@dataclass(frozen=True)
class InputDeclaration:
    """An ``input`` parameter and where its declaration statement sits in the text."""

    name: str
    integer: bool  # int/uint inputs only take whole numbers
    start: int  # [start, end) character offsets of the whole statement, ';' included
    end: int


@dataclass(frozen=True)
class Lowering:
    circuit: LoweredCircuit
    inputs: tuple[InputDeclaration, ...]


def lower(text: str, source: str | None = None, limits: Limits | None = None) -> Lowering:
    """Parse and lower an OpenQASM 2/3 program; raises :class:`CircuitError` when invalid.

    Straight-line programs take a fast path (:mod:`.fastpath`); anything it does not handle,
    errors included, goes through the ``openqasm3`` reference parser, so error positions and
    messages are the full parser's. Work is bounded by ``limits`` (the configured
    ``limits.*`` when omitted): every refusal is a :class:`CircuitLimitError`.
    """
    from hal_workflow.circuits.fastpath import lower_fast

    limits = limits or Limits.current()
    limits.check_text(text, source)
    stopped: list[int] = []
    fast = lower_fast(text, source, limits, stopped)
    if fast is not None:
        return fast
    check_program_text(text, source, limits, stopped[0] if stopped else None)
    program = parse(text, source)
    return lower_program(program, text, source, limits)


def lower_program(program: ast.Program, text: str, source: str | None,
                  limits: Limits) -> Lowering:
    """Lower a parsed program (see :func:`lower`)."""
    return _guarded(source, lambda: _Lowerer(text, source, limits).run(program))


_T = TypeVar("_T")


def _guarded(source: str | None, work: Callable[[], _T]) -> _T:
    try:
        return work()
    except CircuitError:
        raise
    except RecursionError as exc:
        raise CircuitError("program is nested too deeply to lower (limits.max-nesting-depth)",
                           source=source) from exc
    except (AttributeError, TypeError, ValueError, IndexError, KeyError,
            OverflowError, ZeroDivisionError) as exc:
        # An AST shape the checks above did not foresee: still a contract error, cause kept.
        raise CircuitError(f"cannot lower this program ({type(exc).__name__}: {exc})",
                           source=source) from exc


def check_program_text(text: str, source: str | None, limits: Limits,
                       line: int | None = None) -> None:
    """Refuse what the parser should never see: no program at all, more text than
    ``limits.max-parser-bytes`` (``line``: where the fast path stopped), or brackets nested
    deeper than ``limits.max-nesting-depth`` (the parser recurses once per level)."""
    code = _COMMENTS.sub(" ", text)
    if not code.strip():
        what = "file is empty" if not text.strip() else "file has only comments"
        raise CircuitError(f"no quantum program: {what}", source=source)
    limits.check_parser_input(text, source, line)
    depth = deepest = 0
    for match in _BRACKETS.finditer(code):
        if match[0] in _OPENING:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limits.max_nesting_depth:
                    line = code.count("\n", 0, match.start()) + 1
                    column = match.start() - (code.rfind("\n", 0, match.start()) + 1)
                    raise CircuitLimitError("brackets nested {value} deep", deepest,
                                            "limits.max-nesting-depth",
                                            limits.max_nesting_depth, source=source,
                                            line=line, column=column)
        else:
            depth = max(0, depth - 1)


# -- symbols ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Register:
    kind: str  # "qubit" | "bit"
    name: str
    first: int
    size: int
    single: bool  # declared without a size: ``qubit q;`` / ``bit b;``

    def indices(self) -> list[int]:
        return list(range(self.first, self.first + self.size))


@dataclass(frozen=True)
class _GateDefinition:
    name: str
    params: tuple[str, ...]
    qubits: tuple[str, ...]
    body: tuple[Any, ...]
    line: int | None
    size: int = 1  # gates one call emits (a lower bound when pow depends on parameters)


class _Unset:
    """A classical variable declared without a value."""


_UNSET = _Unset()
_Symbol = _Register | Value | _Unset


@dataclass
class _Scope:
    parent: _Scope | None = None
    symbols: dict[str, _Symbol] = field(default_factory=dict)
    lines: dict[str, int | None] = field(default_factory=dict)

    def lookup(self, name: str) -> _Symbol | None:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.symbols:
                return scope.symbols[name]
            scope = scope.parent
        return None


# -- name resolution where a statement is lowered ---------------------------------------------


class _ProgramContext:
    """Names resolve through the program's (nested) scopes."""

    line: int | None = None  # ops take their own statement's line

    def __init__(self, lowerer: _Lowerer, scope: _Scope) -> None:
        self.lowerer, self.scope = lowerer, scope
        self.evaluator = Evaluator(self.resolve, lowerer.fail)

    def resolve(self, node: ast.Identifier) -> Value:
        symbol = self.scope.lookup(node.name)
        if symbol is None:
            self.lowerer.fail(node, f"undeclared identifier '{node.name}'")
        if isinstance(symbol, _Register):
            self.lowerer.fail(node, f"{symbol.kind} register '{node.name}' used as a number")
        if isinstance(symbol, _Unset):
            self.lowerer.fail(node, f"variable '{node.name}' is used before it has a value")
        return symbol

    def operand(self, node: Any) -> tuple[list[int], bool]:
        """The qubit indices a gate operand names, and whether it is a register (broadcast)."""
        if isinstance(node, ast.Identifier) and node.name.startswith("$"):
            return [self.lowerer.physical_qubit(node)], False
        return self.lowerer.select(node, "qubit", self.scope, self.evaluator)


class _GateBodyContext:
    """Inside a gate definition: the gate's parameters, its qubit arguments, global constants."""

    def __init__(self, lowerer: _Lowerer, definition: _GateDefinition, args: Sequence[Value],
                 qubits: Sequence[int], line: int | None) -> None:
        self.lowerer, self.definition, self.line = lowerer, definition, line
        self.params = dict(zip(definition.params, args, strict=True))
        self.qubits = dict(zip(definition.qubits, qubits, strict=True))
        self.evaluator = Evaluator(self.resolve, lowerer.fail)

    def resolve(self, node: ast.Identifier) -> Value:
        if node.name in self.params:
            return self.params[node.name]
        symbol = self.lowerer.globals.symbols.get(node.name)
        if isinstance(symbol, (int, float)):  # global constants are visible in gate bodies
            return symbol
        self.lowerer.fail(node, f"undeclared identifier '{node.name}' in gate "
                                f"'{self.definition.name}'")

    def operand(self, node: Any) -> tuple[list[int], bool]:
        if isinstance(node, ast.Identifier) and node.name in self.qubits:
            return [self.qubits[node.name]], False
        name = node.name.name if isinstance(node, ast.IndexedIdentifier) else node.name
        if isinstance(node, ast.IndexedIdentifier):
            self.lowerer.fail(node, f"qubit argument '{name}' cannot be indexed inside gate "
                                    f"'{self.definition.name}'")
        self.lowerer.fail(node, f"'{name}' is not a qubit argument of gate "
                                f"'{self.definition.name}'")


_Context = _ProgramContext | _GateBodyContext


# -- the lowering pass ------------------------------------------------------------------------


class _Lowerer:
    def __init__(self, text: str, source: str | None, limits: Limits | None = None) -> None:
        self.positions = Positions(text)
        self.source = source
        self.limits = limits or Limits()
        self.gate_count = 0  # GateOps emitted so far, against limits.max-gates
        self.iterations = 0  # loop iterations run so far, against limits.max-loop-iterations
        self.depth = 0  # open blocks and inlined gate calls, against limits.max-nesting-depth
        self.globals = _Scope()
        self.gates: dict[str, _GateDefinition] = {}
        self.included: set[str] = set()
        self.num_qubits = 0
        self.num_clbits = 0
        self.qubit_registers: list[tuple[str, int, int]] = []
        self.clbit_registers: list[tuple[str, int, int]] = []
        self.max_physical = -1
        self.inputs: list[InputDeclaration] = []
        self._exprs: dict[str, Expr] = {}

    # -- errors -----------------------------------------------------------------------------

    def fail(self, node: Any, detail: str) -> NoReturn:
        line, column = self.positions.of(node)
        raise CircuitError(detail, source=self.source, line=line, column=column)

    def unsupported(self, node: Any, construct: str) -> NoReturn:
        self.fail(node, f"unsupported construct: {construct}")

    def over_limit(self, node: Any, what: str, value: int, key: str, limit: int) -> NoReturn:
        line, column = self.positions.of(node)
        raise CircuitLimitError(what, value, key, limit, source=self.source, line=line,
                                column=column)

    def add_gates(self, node: Any, count: int) -> None:
        """Account for ``count`` more gates, refusing before they exceed limits.max-gates."""
        self.gate_count += count
        if self.gate_count > self.limits.max_gates:
            self.over_limit(node, "program unrolls to more than {value} gates", self.gate_count,
                            "limits.max-gates", self.limits.max_gates)

    def enter(self, node: Any) -> None:
        """Open a block or gate call; ``leave`` closes it."""
        self.depth += 1
        if self.depth > self.limits.max_nesting_depth:
            self.over_limit(node, "blocks and gate calls nested {value} deep", self.depth,
                            "limits.max-nesting-depth", self.limits.max_nesting_depth)

    def leave(self) -> None:
        self.depth -= 1

    # -- program ----------------------------------------------------------------------------

    def run(self, program: ast.Program) -> Lowering:
        version = program.version
        if version is not None and version.split(".")[0] not in ("2", "3"):
            raise CircuitError(f"unsupported OpenQASM version {version}", source=self.source,
                               line=1)
        operations: list[Operation] = []
        context = _ProgramContext(self, self.globals)
        for statement in program.statements:
            self.statement(statement, context, operations)
        return self.finish(operations)

    def finish(self, operations: list[Operation]) -> Lowering:
        """The lowering of a program whose statements gave ``operations``."""
        num_qubits = self.num_qubits if self.qubit_registers else self.max_physical + 1
        circuit = LoweredCircuit(
            num_qubits=num_qubits,
            num_clbits=self.num_clbits,
            operations=tuple(operations),
            parameters=tuple(declaration.name for declaration in self.inputs),
            qubit_registers=tuple(self.qubit_registers),
            clbit_registers=tuple(self.clbit_registers),
        )
        return Lowering(circuit, tuple(self.inputs))

    def statement(self, node: Any, context: _ProgramContext, out: list[Operation]) -> None:
        kind = type(node).__name__
        handler: Callable[[Any, _ProgramContext, list[Operation]], None] | None = getattr(
            self, f"_{kind}", None)
        if handler is not None:
            handler(node, context, out)
        elif kind in _UNSUPPORTED:
            self.unsupported(node, _UNSUPPORTED[kind])
        else:
            self.unsupported(node, kind)

    def block(self, node: Any, statements: Iterable[Any],
              context: _ProgramContext) -> tuple[Operation, ...]:
        inner = _ProgramContext(self, _Scope(parent=context.scope))
        out: list[Operation] = []
        self.enter(node)
        for statement in statements:
            self.statement(statement, inner, out)
        self.leave()
        return tuple(out)

    def _Pragma(self, node: Any, context: _ProgramContext, out: list[Operation]) -> None:
        """Pragmas carry no semantics here."""

    def _Include(self, node: ast.Include, context: _ProgramContext, out: list[Operation]) -> None:
        if node.filename not in KNOWN_INCLUDES:
            self.fail(node, f"cannot include '{node.filename}': only stdgates.inc and qelib1.inc "
                            "are available")
        self.included.add(node.filename)

    # -- declarations -----------------------------------------------------------------------

    def declare(self, scope: _Scope, name_node: ast.Identifier, symbol: _Symbol) -> None:
        name = name_node.name
        if name in CONSTANTS:
            self.fail(name_node, f"'{name}' is a built-in constant and cannot be redeclared")
        if name in scope.symbols or (scope is self.globals and name in self.gates):
            line = scope.lines.get(name) if name in scope.symbols else self.gates[name].line
            where = f" (first declared on line {line})" if line is not None else ""
            self.fail(name_node, f"'{name}' is already declared{where}")
        scope.symbols[name] = symbol
        scope.lines[name] = self.positions.of(name_node)[0]

    def _register(self, kind: str, name_node: ast.Identifier, size_node: Any,
                  context: _ProgramContext) -> _Register:
        size = 1
        if size_node is not None:
            size = context.evaluator.integer(size_node, f"{kind} register size")
            if size < 1:
                self.fail(size_node, f"{kind} register '{name_node.name}' must have a positive "
                                     f"size, got {size}")
        if kind == "qubit":
            if self.max_physical >= 0:
                self.fail(name_node, "qubit registers cannot be mixed with physical qubits ($n)")
            register = _Register(kind, name_node.name, self.num_qubits, size, size_node is None)
            self.num_qubits += size
            self.qubit_registers.append((register.name, register.first, size))
        else:
            register = _Register(kind, name_node.name, self.num_clbits, size, size_node is None)
            self.num_clbits += size
            self.clbit_registers.append((register.name, register.first, size))
        self.declare(context.scope, name_node, register)
        return register

    def _QubitDeclaration(self, node: ast.QubitDeclaration, context: _ProgramContext,
                          out: list[Operation]) -> None:
        self._register("qubit", node.qubit, node.size, context)

    def _ClassicalDeclaration(self, node: ast.ClassicalDeclaration, context: _ProgramContext,
                              out: list[Operation]) -> None:
        init = node.init_expression
        if isinstance(node.type, ast.BitType):
            register = self._register("bit", node.identifier, node.type.size, context)
            if isinstance(init, ast.QuantumMeasurement):
                qubits, _ = context.operand(init.qubit)
                self._measure(node, qubits, register.indices(), out)
            elif init is not None and context.evaluator.number(init, "bit initialiser") != 0:
                self.unsupported(init, "initialising bits to a non-zero value")
            return
        if isinstance(node.type, ast.ArrayType):
            self.unsupported(node, "arrays")
        if isinstance(init, ast.QuantumMeasurement):
            self.unsupported(init, f"measuring into a {_type_name(node.type)} variable")
        value: _Symbol = _UNSET if init is None else context.evaluator.value(init)
        self.declare(context.scope, node.identifier, value)

    def _ConstantDeclaration(self, node: ast.ConstantDeclaration, context: _ProgramContext,
                             out: list[Operation]) -> None:
        value = context.evaluator.value(node.init_expression)
        if isinstance(value, Sym):
            self.fail(node.init_expression, f"constant '{node.identifier.name}' cannot depend on "
                                            f"input parameter(s) {', '.join(sorted(value.free))}")
        self.declare(context.scope, node.identifier, value)

    def _IODeclaration(self, node: ast.IODeclaration, context: _ProgramContext,
                       out: list[Operation]) -> None:
        name = node.identifier.name
        if node.io_identifier.name == "output":
            if not isinstance(node.type, ast.BitType):
                self.unsupported(node, f"output of type {_type_name(node.type)}")
            self._register("bit", node.identifier, node.type.size, context)
            return
        if not isinstance(node.type, (ast.FloatType, ast.AngleType, ast.IntType, ast.UintType)):
            self.unsupported(node, f"input of type {_type_name(node.type)}")
        if not name.isidentifier() or keyword.iskeyword(name) or \
                unicodedata.normalize("NFKC", name) != name:
            self.fail(node.identifier, f"input parameter name '{name}' is not supported "
                                       "(it must also be a valid Python identifier)")
        self.declare(context.scope, node.identifier, Sym(name, frozenset((name,))))
        span = node.span
        assert span is not None  # the parser gives every statement a span
        start = self.positions.offset(span.start_line, span.start_column)
        end = self.positions.offset(span.end_line, span.end_column)
        self.inputs.append(InputDeclaration(
            name, isinstance(node.type, (ast.IntType, ast.UintType)), start,
            self.positions.text.index(";", end) + 1))

    def _QuantumGateDefinition(self, node: ast.QuantumGateDefinition, context: _ProgramContext,
                               out: list[Operation]) -> None:
        name = node.name.name
        if name in BUILTIN_GATES:
            self.fail(node.name, f"cannot redefine built-in gate '{name}'")
        if name in self.gates:
            self.fail(node.name, f"gate '{name}' is already defined (line {self.gates[name].line})")
        for include, names in (("stdgates.inc", STANDARD_GATES), ("qelib1.inc", QELIB1_EXTRAS)):
            if include in self.included and name in names:
                self.fail(node.name, f"gate '{name}' is already defined by {include}")
        if name in self.globals.symbols:
            self.fail(node.name, f"'{name}' is already declared "
                                 f"(first declared on line {self.globals.lines.get(name)})")
        seen: set[str] = set()
        for argument in (*node.arguments, *node.qubits):
            if argument.name in seen:
                self.fail(argument, f"duplicate argument '{argument.name}' in gate '{name}'")
            seen.add(argument.name)
        size = 0  # counted now, so a call is refused before it is expanded
        for statement in node.body:  # calls must name known gates, which also rules out recursion
            if isinstance(statement, ast.QuantumGate):
                callee = self.signature(statement.name)[2]
                size += (1 if callee is None else callee.size) * _pow_factor(statement.modifiers)
            elif isinstance(statement, ast.QuantumPhase):
                size += _pow_factor(statement.modifiers)
            elif not isinstance(statement, ast.QuantumBarrier):
                self.unsupported(statement, f"{_statement_name(statement)} inside gate '{name}'")
        self.gates[name] = _GateDefinition(
            name, tuple(a.name for a in node.arguments), tuple(q.name for q in node.qubits),
            tuple(node.body), self.positions.of(node)[0], size)

    # -- operands ---------------------------------------------------------------------------

    def physical_qubit(self, node: ast.Identifier) -> int:
        if self.qubit_registers:
            self.fail(node, f"physical qubit '{node.name}' cannot be mixed with qubit registers")
        index = int(node.name[1:])
        self.max_physical = max(self.max_physical, index)
        return index

    def select(self, node: Any, kind: str, scope: _Scope,
               evaluator: Evaluator) -> tuple[list[int], bool]:
        """Indices named by ``name`` or ``name[index-or-range-or-set]`` for a register of
        ``kind``, and whether more than one may be meant (a register, range or set)."""
        if isinstance(node, ast.Identifier):
            register = self._lookup_register(node, node.name, kind, scope)
            return register.indices(), not register.single
        if not isinstance(node, ast.IndexedIdentifier):
            self.fail(node, f"expected a {kind} operand")
        register = self._lookup_register(node.name, node.name.name, kind, scope)
        if len(node.indices) != 1:
            self.fail(node, "multi-dimensional indexing is not supported")
        return self.index(node, register, node.indices[0], evaluator)

    def _lookup_register(self, node: Any, name: str, kind: str, scope: _Scope) -> _Register:
        symbol = scope.lookup(name)
        if symbol is None:
            self.fail(node, f"undeclared {kind} '{name}'")
        if not isinstance(symbol, _Register) or symbol.kind != kind:
            what = f"{symbol.kind} register" if isinstance(symbol, _Register) else "classical value"
            self.fail(node, f"'{name}' is a {what}, not a {kind}")
        return symbol

    def index(self, node: Any, register: _Register, element: Any,
              evaluator: Evaluator) -> tuple[list[int], bool]:
        if register.single:
            self.fail(node, f"'{register.name}' is a single {register.kind} and cannot be indexed")
        if isinstance(element, ast.DiscreteSet):
            items = [(v, evaluator.integer(v, "index")) for v in element.values]
            return [self._position(register, item, i) for item, i in items], True
        if len(element) != 1:
            self.fail(node, "multi-dimensional indexing is not supported")
        item = element[0]
        if not isinstance(item, ast.RangeDefinition):
            return [self._position(register, item, evaluator.integer(item, "index"))], False
        size = register.size
        start = 0 if item.start is None else evaluator.integer(item.start, "range start")
        step = 1 if item.step is None else evaluator.integer(item.step, "range step")
        end = size - 1 if item.end is None else evaluator.integer(item.end, "range end")
        if step == 0:
            self.fail(item, "range step cannot be zero")
        start, end = (self._position(register, item, bound) for bound in (start, end))
        return list(range(start, end + (1 if step > 0 else -1), step)), True

    def _position(self, register: _Register, node: Any, index: int) -> int:
        position = index + register.size if index < 0 else index
        if not 0 <= position < register.size:
            self.fail(node, f"index {index} out of range for {register.kind} register "
                            f"'{register.name}' of size {register.size}")
        return register.first + position

    def qubit_label(self, index: int) -> str:
        for name, first, size in self.qubit_registers:
            if first <= index < first + size:
                return f"{name}[{index - first}]"
        return f"${index}"

    # -- gates ------------------------------------------------------------------------------

    def signature(self, name_node: ast.Identifier) -> tuple[int, int, _GateDefinition | None]:
        """(parameters, qubits, definition or None for a standard gate) of a gate name."""
        name = name_node.name
        definition = self.gates.get(name)
        if definition is None and name in STANDARD_GATES:
            return (*STANDARD_GATES[name], None)
        if definition is None:
            definition = _qelib1_extras().get(name)
        if definition is None:
            self.fail(name_node, f"unknown gate '{name}'")
        return len(definition.params), len(definition.qubits), definition

    def _QuantumGate(self, node: ast.QuantumGate, context: _Context,
                     out: list[Operation]) -> None:
        if node.duration is not None:
            self.unsupported(node, "gate durations (timing)")
        self.gate(node, node.name, node.modifiers, node.arguments, node.qubits, context, out)

    def _QuantumPhase(self, node: ast.QuantumPhase, context: _Context,
                      out: list[Operation]) -> None:
        name = ast.Identifier("gphase")
        name.span = node.span
        self.gate(node, name, node.modifiers, [node.argument], node.qubits, context, out)

    def gate(self, node: Any, name_node: ast.Identifier, modifier_nodes: Sequence[Any],
             argument_nodes: Sequence[Any], qubit_nodes: Sequence[Any], context: _Context,
             out: list[Operation]) -> None:
        name = name_node.name
        evaluator = context.evaluator
        modifiers = tuple(self._modifier(m, evaluator) for m in modifier_nodes)
        controls = sum(_control_count(m) for m in modifiers)
        num_params, num_qubits, definition = self.signature(name_node)
        if len(argument_nodes) != num_params:
            self.fail(node, f"gate '{name}' takes {_plural(num_params, 'parameter')}, "
                            f"got {len(argument_nodes)}")
        args = [evaluator.value(argument) for argument in argument_nodes]
        operands = [context.operand(qubit) for qubit in qubit_nodes]
        if len(operands) != controls + num_qubits:
            expected = _plural(num_qubits, "qubit")
            if controls:
                expected += f" plus {_plural(controls, 'control qubit')}"
            self.fail(node, f"gate '{name}' acts on {expected}, got {len(operands)}")
        line = context.line if context.line is not None else self.positions.of(node)[0]
        params = tuple(self.param(arg) for arg in args)
        calls = self._broadcast(node, operands)
        if definition is not None:  # refuse an expansion over the limit before expanding it
            expansion = len(calls) * definition.size * _pow_factor_of(modifiers)
            if self.gate_count + expansion > self.limits.max_gates:
                self.over_limit(node, f"gate '{name}' expands to {{value}} gates",
                                expansion, "limits.max-gates", self.limits.max_gates)
        for qubits in calls:
            if len(set(qubits)) != len(qubits):
                duplicate = next(q for q in qubits if qubits.count(q) > 1)
                self.fail(node, f"qubit {self.qubit_label(duplicate)} is used more than once in "
                                f"gate '{name}'")
            if definition is None:
                self.add_gates(node, 1)
                out.append(GateOp(GATE_ALIASES.get(name, name), qubits, params, modifiers, line))
            else:
                self.enter(node)
                out.extend(self._inline(node, definition, args, qubits, modifiers, controls, line))
                self.leave()

    def _modifier(self, node: ast.QuantumGateModifier, evaluator: Evaluator) -> Modifier:
        kind = node.modifier.name
        if kind in ("ctrl", "negctrl"):
            count = 1 if node.argument is None else evaluator.integer(node.argument,
                                                                      f"{kind} count")
            if count < 1:
                self.fail(node, f"{kind} count must be positive, got {count}")
            return Modifier(kind, float(count))
        if kind == "inv":
            return Modifier("inv")
        return Modifier("pow", self.param(evaluator.value(node.argument)))

    def param(self, value: Value) -> Param:
        if not isinstance(value, Sym):
            return float(value)
        expr = self._exprs.get(value.source)
        if expr is None:
            expr = self._exprs[value.source] = Expr(value.source, value.free)
        return expr

    def _broadcast(self, node: Any,
                   operands: Sequence[tuple[list[int], bool]]) -> list[tuple[int, ...]]:
        sizes = sorted({len(indices) for indices, many in operands if many})
        if not sizes:
            return [tuple(indices[0] for indices, _ in operands)]
        if len(sizes) > 1:
            self.fail(node, f"registers of different sizes ({', '.join(map(str, sizes))}) "
                            "in one gate call")
        return [tuple(indices[i] if many else indices[0] for indices, many in operands)
                for i in range(sizes[0])]

    def _inline(self, node: Any, definition: _GateDefinition, args: Sequence[Value],
                qubits: tuple[int, ...], modifiers: tuple[Modifier, ...], controls: int,
                line: int | None) -> list[GateOp]:
        context = _GateBodyContext(self, definition, args, qubits[controls:], line)
        body: list[Operation] = []
        for statement in definition.body:
            if isinstance(statement, ast.QuantumGate):
                self._QuantumGate(statement, context, body)
            elif isinstance(statement, ast.QuantumPhase):
                self._QuantumPhase(statement, context, body)
            # barriers inside a definition carry no meaning once the gate is inlined
        ops: list[GateOp] = [op for op in body if isinstance(op, GateOp)]
        end = controls  # modifiers apply innermost first; outer controls lead the qubit list
        for modifier in reversed(modifiers):
            if modifier.kind in ("ctrl", "negctrl"):
                count = _control_count(modifier)
                wires = qubits[end - count:end]
                end -= count
                ops = [replace(op, qubits=wires + op.qubits, modifiers=(modifier, *op.modifiers))
                       for op in ops]
            elif modifier.kind == "inv":
                ops = _inverse(ops)
            else:
                exponent = modifier.argument
                if isinstance(exponent, Expr) or not float(exponent).is_integer():
                    self.unsupported(node, f"non-integer pow on custom gate '{definition.name}'")
                count = int(exponent)
                self.add_gates(node, len(ops) * (abs(count) - 1))  # the repetitions
                ops = (_inverse(ops) if count < 0 else ops) * abs(count)
        return ops

    # -- non-unitary operations -------------------------------------------------------------

    def _QuantumMeasurementStatement(self, node: ast.QuantumMeasurementStatement,
                                     context: _ProgramContext, out: list[Operation]) -> None:
        if node.target is None:
            self.unsupported(node, "measure without a target bit (write 'c = measure q;')")
        qubits, _ = context.operand(node.measure.qubit)
        bits, _ = self.select(node.target, "bit", context.scope, context.evaluator)
        self._measure(node, qubits, bits, out)

    def _measure(self, node: Any, qubits: list[int], bits: list[int],
                 out: list[Operation]) -> None:
        if len(qubits) != len(bits):
            self.fail(node, f"cannot measure {_plural(len(qubits), 'qubit')} into "
                            f"{_plural(len(bits), 'bit')}")
        line = self.positions.of(node)[0]
        out.extend(MeasureOp(qubit, bit, line) for qubit, bit in zip(qubits, bits, strict=True))

    def _QuantumReset(self, node: ast.QuantumReset, context: _ProgramContext,
                      out: list[Operation]) -> None:
        qubits, _ = context.operand(node.qubits)
        line = self.positions.of(node)[0]
        out.extend(ResetOp(qubit, line) for qubit in qubits)

    def _QuantumBarrier(self, node: ast.QuantumBarrier, context: _ProgramContext,
                        out: list[Operation]) -> None:
        if node.qubits:
            qubits = [q for operand in node.qubits for q in context.operand(operand)[0]]
        else:
            qubits = list(range(self.num_qubits if self.qubit_registers else
                                self.max_physical + 1))
        out.append(BarrierOp(tuple(dict.fromkeys(qubits)), self.positions.of(node)[0]))

    # -- control flow -----------------------------------------------------------------------

    def _BranchingStatement(self, node: ast.BranchingStatement, context: _ProgramContext,
                            out: list[Operation]) -> None:
        condition, negated = self._condition(node.condition, context)
        body = self.block(node, node.if_block, context)
        else_body = self.block(node, node.else_block, context)
        if negated:
            body, else_body = else_body, body
        if isinstance(condition, bool):
            out.extend(body if condition else else_body)
        elif body or else_body:
            out.append(IfOp(condition, body, else_body, self.positions.of(node)[0]))

    def _condition(self, node: Any, context: _ProgramContext) -> tuple[Condition | bool, bool]:
        """The condition as ``bits == value`` (or a constant) and whether it is negated."""
        if isinstance(node, ast.BinaryExpression) and node.op.name in ("==", "!="):
            negated = node.op.name == "!="
            bits, other = self._condition_bits(node.lhs, context), node.rhs
            if bits is None:
                bits, other = self._condition_bits(node.rhs, context), node.lhs
            if bits is not None:
                value = context.evaluator.integer(other, "comparison value")
                if not 0 <= value < 1 << len(bits):
                    return False, negated
                return Condition(tuple(bits), value), negated
        elif isinstance(node, ast.UnaryExpression) and node.op.name == "!":
            bits = self._condition_bits(node.expression, context)
            if bits is not None:
                return Condition(tuple(bits), 0), False
        else:
            bits = self._condition_bits(node, context)
            if bits is not None:  # a bit is true when 1, a register when not 0
                return (Condition(tuple(bits), 1), False) if len(bits) == 1 else \
                    (Condition(tuple(bits), 0), True)
        constant = context.evaluator.value(node)
        if isinstance(constant, Sym):
            self.fail(node, "conditions on input parameters are not supported")
        return bool(constant), False

    def _condition_bits(self, node: Any, context: _ProgramContext) -> list[int] | None:
        if isinstance(node, ast.Identifier):
            symbol = context.scope.lookup(node.name)
            if isinstance(symbol, _Register) and symbol.kind == "bit":
                return symbol.indices()
        if isinstance(node, ast.IndexExpression) and isinstance(node.collection, ast.Identifier):
            symbol = context.scope.lookup(node.collection.name)
            if isinstance(symbol, _Register) and symbol.kind == "bit":
                return self.index(node, symbol, node.index, context.evaluator)[0]
        return None

    def _ForInLoop(self, node: ast.ForInLoop, context: _ProgramContext,
                   out: list[Operation]) -> None:
        values = self._loop_values(node.set_declaration, context.evaluator)
        if values:  # count (a lower bound of) the work first: nested loops, gates in the body
            iterations, gates = self._estimate(node, values, context)
            if self.iterations + iterations > self.limits.max_loop_iterations:
                self.over_limit(node, "loops run at least {value} iterations",
                                self.iterations + iterations, "limits.max-loop-iterations",
                                self.limits.max_loop_iterations)
            if self.gate_count + gates > self.limits.max_gates:
                self.over_limit(node, "loops unroll to at least {value} gates",
                                self.gate_count + gates, "limits.max-gates",
                                self.limits.max_gates)
        self.enter(node)
        for value in values:
            self.iterations += 1
            if self.iterations > self.limits.max_loop_iterations:
                self.over_limit(node, "loops run more than {value} iterations", self.iterations,
                                "limits.max-loop-iterations", self.limits.max_loop_iterations)
            scope = _Scope(parent=context.scope)
            self.declare(scope, node.identifier, value)
            inner = _ProgramContext(self, scope)
            for statement in node.block:
                self.statement(statement, inner, out)
        self.leave()

    def _estimate(self, loop: ast.ForInLoop, values: Sequence[int | float],
                  context: _ProgramContext) -> tuple[int, int]:
        """Lower bounds of the iterations and gates a loop runs, counted without running it:
        nested loop ranges are evaluated with the loop variable at its first value, ``if``
        takes its smaller branch, a range that cannot be evaluated counts as empty."""
        scope = _Scope(parent=context.scope)
        scope.symbols[loop.identifier.name] = values[0]
        iterations, gates = self._estimate_block(loop.block, _ProgramContext(self, scope), 0)
        return len(values) * (1 + iterations), len(values) * gates

    def _estimate_block(self, statements: Iterable[Any], context: _ProgramContext,
                        depth: int) -> tuple[int, int]:
        if depth > self.limits.max_nesting_depth:
            return 0, 0  # the real pass refuses it by depth
        iterations = gates = 0
        for statement in statements:
            if isinstance(statement, ast.ForInLoop):
                try:
                    values = self._loop_values(statement.set_declaration, context.evaluator)
                except CircuitError:
                    continue
                if not values:
                    continue
                scope = _Scope(parent=context.scope)
                scope.symbols[statement.identifier.name] = values[0]
                body = self._estimate_block(statement.block, _ProgramContext(self, scope),
                                            depth + 1)
                iterations += len(values) * (1 + body[0])
                gates += len(values) * body[1]
            elif isinstance(statement, ast.BranchingStatement):
                branches = [self._estimate_block(block, context, depth + 1)
                            for block in (statement.if_block, statement.else_block)]
                iterations += min(b[0] for b in branches)
                gates += min(b[1] for b in branches)
            elif isinstance(statement, ast.QuantumGate):
                definition = self.gates.get(statement.name.name)
                gates += (1 if definition is None else definition.size) * \
                    _pow_factor(statement.modifiers)
            elif isinstance(statement, ast.QuantumPhase):
                gates += 1
        return iterations, gates

    def _loop_values(self, node: Any, evaluator: Evaluator) -> Sequence[int | float]:
        if isinstance(node, ast.DiscreteSet):
            return [evaluator.number(value, "loop value") for value in node.values]
        if not isinstance(node, ast.RangeDefinition):
            self.unsupported(node, "loops over registers or arrays")
        if node.start is None or node.end is None:
            self.fail(node, "loop ranges need a start and an end")
        start = evaluator.integer(node.start, "loop start")
        end = evaluator.integer(node.end, "loop end")
        step = 1 if node.step is None else evaluator.integer(node.step, "loop step")
        if step == 0:
            self.fail(node, "loop step cannot be zero")
        values = range(start, end + (1 if step > 0 else -1), step)  # OpenQASM ranges include end
        if len(values) > self.limits.max_loop_iterations:
            self.over_limit(node, "loop runs {value} iterations", len(values),
                            "limits.max-loop-iterations", self.limits.max_loop_iterations)
        return values


def _control_count(modifier: Modifier) -> int:
    """How many control qubits a modifier adds (``ctrl``/``negctrl`` carry a whole count)."""
    if modifier.kind not in ("ctrl", "negctrl"):
        return 0
    return int(modifier.argument)  # type: ignore[arg-type]


def _pow_factor(modifiers: Sequence[ast.QuantumGateModifier]) -> int:
    """How many times constant integer ``pow`` modifiers repeat a call (1 where unknown)."""
    factor = 1
    for modifier in modifiers:
        if modifier.modifier.name == "pow":
            factor *= _literal_count(modifier.argument)
    return factor


def _literal_count(node: Any) -> int:
    sign = 1
    if isinstance(node, ast.UnaryExpression) and node.op.name == "-":
        node, sign = node.expression, -1
    if isinstance(node, (ast.IntegerLiteral, ast.FloatLiteral)) and \
            float(node.value).is_integer():
        return abs(int(node.value) * sign)
    return 1


def _pow_factor_of(modifiers: Sequence[Modifier]) -> int:
    """As :func:`_pow_factor`, for lowered modifiers."""
    factor = 1
    for modifier in modifiers:
        if modifier.kind == "pow" and isinstance(modifier.argument, float) and \
                modifier.argument.is_integer():
            factor *= abs(int(modifier.argument))
    return factor


def _inverse(ops: list[GateOp]) -> list[GateOp]:
    inv = Modifier("inv")
    return [replace(op, modifiers=(inv, *op.modifiers)) for op in reversed(ops)]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _type_name(node: Any) -> str:
    return type(node).__name__.removesuffix("Type").lower()


def _statement_name(node: Any) -> str:
    kind = type(node).__name__
    return _UNSUPPORTED.get(kind, kind)


@lru_cache(maxsize=1)
def _qelib1_extras() -> dict[str, _GateDefinition]:
    """The qelib1.inc gates that stdgates.inc lacks, parsed once from :mod:`.gates`."""
    lowerer = _Lowerer(QELIB1_EXTRAS_QASM, "<qelib1.inc>")
    lowerer.run(parse(QELIB1_EXTRAS_QASM, "<qelib1.inc>"))
    return lowerer.gates
