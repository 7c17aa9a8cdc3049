"""A fast path for straight-line OpenQASM: most programs in the wild, lowered without ANTLR.

The ``openqasm3`` reference parser costs about 0.2 ms per gate, far more than lowering. Large
programs (QASMBench, transpiler output) are almost always *straight-line*: a header, includes,
register and ``input float`` declarations, standard gate calls with constant or simple
parameter expressions, ``measure``, ``reset`` and ``barrier``, one statement per line. This
module recognises exactly that subset with a few regular expressions and lowers it through the
same :class:`~hal_workflow.circuits.lowering._Lowerer` (declarations, includes, ``qelib1.inc``
gates and expressions go through its handlers, as AST nodes built here; standard gate calls are
emitted directly with the same checks). Parameter expressions and operands repeat a lot, so
each distinct text is evaluated once per program.

Anything outside the subset, and anything wrong, makes :func:`lower_fast` return ``None`` and
the caller parses with the full parser, which then reports the error with its exact position
and message. The two paths are checked to give identical lowerings in ``tests/circuits``.
Only a :class:`~hal_workflow.circuits.limits.CircuitLimitError` is raised from here: a
program over a limit must not be handed to the slower parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from openqasm3 import ast

from hal_workflow.circuits.gates import GATE_ALIASES, QELIB1_EXTRAS, STANDARD_GATES
from hal_workflow.circuits.ir import BarrierOp, GateOp, MeasureOp, Operation, Param, ResetOp
from hal_workflow.circuits.limits import CircuitLimitError, Limits
from hal_workflow.circuits.lowering import Lowering, _guarded, _Lowerer, _ProgramContext, _Register
from hal_workflow.contract.errors import CircuitError

__all__ = ["lower_fast"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_VERSION = re.compile(r"OPENQASM\s+(\d+(?:\.\d+)?)")
_INCLUDE = re.compile(r'include\s*"([^"]*)"')
_QUBITS = re.compile(rf"(?:qubit\s*\[\s*(\d+)\s*\]\s*({_NAME})|qubit\s+({_NAME})"
                     rf"|qreg\s+({_NAME})\s*\[\s*(\d+)\s*\])")
_BITS = re.compile(rf"(?:bit\s*\[\s*(\d+)\s*\]\s*({_NAME})|bit\s+({_NAME})"
                   rf"|creg\s+({_NAME})\s*\[\s*(\d+)\s*\])")
_INPUT = re.compile(rf"input\s+float(?:\s*\[\s*(\d+)\s*\]\s*|\s+)({_NAME})")
# name, optional (parameters) with one level of nested parentheses, operands
_CALL = re.compile(rf"({_NAME})(?:\s*\(((?:[^()]|\([^()]*\))*)\)\s*|\s+)(.+)", re.DOTALL)
_OPERAND = re.compile(rf"\s*({_NAME})\s*(?:\[\s*(\d+)\s*\])?\s*")
_MEASURE2 = re.compile(r"measure\s(.+)->(.+)", re.DOTALL)
_MEASURE3 = re.compile(r"(.+?)=\s*measure\s(.+)", re.DOTALL)
_RESET = re.compile(r"reset\s(.+)", re.DOTALL)
_BARRIER = re.compile(r"barrier(?:\s(.*))?", re.DOTALL)
_KEYWORD = re.compile(_NAME)
_GATE_START = re.compile(r"\s*gate\s")
_DEFINITION = re.compile(
    rf"\s*gate\s+({_NAME})\s*(?:\(([^()]*)\))?\s*([^{{}}()]+)\{{([^{{}}]*)\}}\s*", re.DOTALL)
_TOKEN = re.compile(r"\s*(?:(\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)"
                    rf"|(\d+)|({_NAME})|([-+*/()]))")

_NUMBER = re.compile(r"(-?)\s*(?:(\d+)|(\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?"
                     r"|\d+[eE][+-]?\d+))")

_FAST_GATES = {name: shape for name, shape in STANDARD_GATES.items() if shape[1] > 0}
_BINARY = {"+": ast.BinaryOperator["+"], "-": ast.BinaryOperator["-"],
           "*": ast.BinaryOperator["*"], "/": ast.BinaryOperator["/"]}


class _Fallback(Exception):
    """The program leaves the fast subset (or is wrong): use the full parser."""


def lower_fast(text: str, source: str | None, limits: Limits,
               stopped: list[int] | None = None) -> Lowering | None:
    """The lowering of ``text`` if it is a valid straight-line program, else ``None``
    (then the line where the fast path stopped is appended to ``stopped``).

    Raises:
        CircuitLimitError: the program exceeds ``limits``.
    """
    lowerer = _FastLowerer(text, source, limits)
    try:
        if "/*" in text:
            lowerer.line = text.count("\n", 0, text.index("/*")) + 1
            raise _Fallback
        return _guarded(source, lowerer.run)
    except CircuitLimitError:
        raise
    except (_Fallback, CircuitError):
        if stopped is not None:
            stopped.append(lowerer.line)
        return None


class _FastLowerer:
    def __init__(self, text: str, source: str | None, limits: Limits) -> None:
        self.text = text
        self.lowerer = _Lowerer(text, source, limits)
        self.context = _ProgramContext(self.lowerer, self.lowerer.globals)
        self.params: dict[str, Param] = {}
        self.operands: dict[tuple[str, str], tuple[list[int], bool]] = {}
        self.calls: dict[str, tuple[str, tuple[Param, ...], list[tuple[int, ...]]]] = {}
        self.out: list[Operation] = []
        self.line = 1  # the line being read
        self.handlers: dict[str, Callable[[str, int, int], None]] = {
            "OPENQASM": self.version, "include": self.include, "qubit": self.qubits,
            "qreg": self.qubits, "bit": self.bits, "creg": self.bits, "input": self.input,
            "measure": self.measure, "reset": self.reset, "barrier": self.barrier,
        }

    def run(self) -> Lowering | None:
        statements = 0
        offset = 0  # of the current line in the text
        lines = self.text.split("\n")
        number = 0
        while number < len(lines):
            line = lines[number]
            number += 1
            self.line = number
            code = line if "//" not in line else _code(line)
            if "gate" in code and _GATE_START.match(code):  # a definition, maybe several lines
                first, start = number, offset + len(code) - len(code.lstrip())
                while "}" not in code and number < len(lines):
                    offset += len(line) + 1
                    line = lines[number]
                    number += 1
                    code += "\n" + _code(line)
                self.definition(code, first, start)
                statements += 1
                offset += len(line) + 1
                continue
            if code.count(";") == 1:  # the common case: one statement on the line
                head, _, tail = code.partition(";")
                statement = head.strip()
                if tail.strip() or not statement:
                    raise _Fallback
                start = offset + len(head) - len(head.lstrip())
                self.statement(statement, number, start, statements == 0)
                statements += 1
                offset += len(line) + 1
                continue
            pieces = code.split(";")
            if pieces[-1].strip():
                raise _Fallback  # a statement continues on the next line
            column = 0
            for piece in pieces[:-1]:
                statement = piece.strip()
                if not statement:
                    raise _Fallback  # an empty statement is a syntax error
                start = column + len(piece) - len(piece.lstrip())
                self.statement(statement, number, offset + start, statements == 0)
                statements += 1
                column += len(piece) + 1
            offset += len(line) + 1
        if statements == 0:
            return None  # empty or comments only: the full path says so
        return self.lowerer.finish(self.out)

    # -- statements ---------------------------------------------------------------------------

    def definition(self, code: str, line: int, start: int) -> None:
        match = _DEFINITION.fullmatch(code)
        if match is None:
            raise _Fallback
        name, param_text, qubit_text, body_text = match[1], match[2], match[3], match[4]
        params = [] if param_text is None or not param_text.strip() else \
            [_identifier(t, line, start, self.text) for t in param_text.split(",")]
        qubits = [_identifier(t, line, start, self.text) for t in qubit_text.split(",")]
        pieces = body_text.split(";")
        if pieces[-1].strip():
            raise _Fallback
        body: list[ast.QuantumStatement] = []
        for piece in pieces[:-1]:
            call = _CALL.fullmatch(piece.strip())
            if call is None:
                raise _Fallback
            texts = [] if call[2] is None else [t.strip() for t in call[2].split(",")]
            node = ast.QuantumGate(
                [], _name(call[1], line, start, self.text),
                [_expression(t, line, start, self.text) for t in texts],
                [_identifier(t, line, start, self.text) for t in call[3].split(",")])
            body.append(_at(node, line, start, self.text))
        definition = ast.QuantumGateDefinition(_name(name, line, start, self.text), params,
                                               qubits, list(body))
        self.lowerer._QuantumGateDefinition(_at(definition, line, start, self.text),
                                            self.context, self.out)
        self.calls.clear()  # a call of this name read before now meant another gate

    def statement(self, statement: str, line: int, start: int, first: bool) -> None:
        call = self.calls.get(statement)
        if call is not None:
            self.emit(call, line, start)
            return
        keyword = _KEYWORD.match(statement)
        word = keyword[0] if keyword else ""
        handler = self.handlers.get(word)
        if word == "OPENQASM" and not first:
            raise _Fallback
        if handler is not None:
            handler(statement, line, start)
        elif word in _FAST_GATES or word in QELIB1_EXTRAS or word in self.lowerer.gates:
            self.gate(statement, line, start)
        elif "=" in statement and "measure" in statement:
            self.measure(statement, line, start)
        else:
            raise _Fallback

    def version(self, statement: str, line: int, start: int) -> None:
        match = _VERSION.fullmatch(statement)
        if match is None or match[1].split(".")[0] not in ("2", "3"):
            raise _Fallback

    def include(self, statement: str, line: int, start: int) -> None:
        match = _INCLUDE.fullmatch(statement)
        if match is None:
            raise _Fallback
        self.lowerer._Include(_at(ast.Include(match[1]), line, start, self.text),
                              self.context, self.out)

    def qubits(self, statement: str, line: int, start: int) -> None:
        match = _QUBITS.fullmatch(statement)
        if match is None:
            raise _Fallback
        size, name = _size_and_name(match)
        node = ast.QubitDeclaration(_name(name, line, start, self.text), size)
        self.lowerer._QubitDeclaration(_at(node, line, start, self.text), self.context, self.out)

    def bits(self, statement: str, line: int, start: int) -> None:
        match = _BITS.fullmatch(statement)
        if match is None:
            raise _Fallback
        size, name = _size_and_name(match)
        node = ast.ClassicalDeclaration(ast.BitType(size), _name(name, line, start, self.text),
                                        None)
        self.lowerer._ClassicalDeclaration(_at(node, line, start, self.text), self.context,
                                           self.out)

    def input(self, statement: str, line: int, start: int) -> None:
        match = _INPUT.fullmatch(statement)
        if match is None:
            raise _Fallback
        size = None if match[1] is None else ast.IntegerLiteral(int(match[1]))
        node = ast.IODeclaration(ast.IOKeyword.input, ast.FloatType(size),
                                 _name(match[2], line, start, self.text))
        self.lowerer._IODeclaration(_at(node, line, start, self.text), self.context, self.out)

    def gate(self, statement: str, line: int, start: int) -> None:
        match = _CALL.fullmatch(statement)
        if match is None:
            raise _Fallback
        name, param_text, operand_text = match[1], match[2], match[3]
        texts = [] if param_text is None else [p.strip() for p in param_text.split(",")]
        if any(t.count("(") != t.count(")") for t in texts):
            raise _Fallback  # a comma inside a function call
        operands = [self.operand(text, "qubit") for text in operand_text.split(",")]
        # without an include, a user definition may take a standard gate's name
        shape = None if name in self.lowerer.gates else _FAST_GATES.get(name)
        if shape is None:  # a qelib1.inc gate: inlined by the lowerer from an AST node
            node = ast.QuantumGate([], _name(name, line, start, self.text),
                                   [_expression(t, line, start, self.text) for t in texts],
                                   [_operand_node(t, line, start, self.text)
                                    for t in operand_text.split(",")])
            self.lowerer._QuantumGate(_at(node, line, start, self.text), self.context, self.out)
            return
        if len(texts) != shape[0] or len(operands) != shape[1]:
            raise _Fallback
        params = tuple(self.param(text, line, start) for text in texts)
        if any(many for _, many in operands):
            calls = self.lowerer._broadcast(None, operands)
        else:
            calls = [tuple(indices[0] for indices, _ in operands)]
        for qubits in calls:
            if len(set(qubits)) != len(qubits):
                raise _Fallback
        call = (GATE_ALIASES.get(name, name), params, calls)
        self.calls[statement] = call
        self.emit(call, line, start)

    def emit(self, call: tuple[str, tuple[Param, ...], list[tuple[int, ...]]], line: int,
             start: int) -> None:
        name, params, calls = call
        lowerer = self.lowerer
        if lowerer.gate_count + len(calls) > lowerer.limits.max_gates:  # refused here
            lowerer.add_gates(_at(ast.Identifier(name), line, start, self.text), len(calls))
        lowerer.gate_count += len(calls)
        if len(calls) == 1:
            self.out.append(GateOp(name, calls[0], params, (), line))
        else:
            self.out.extend(GateOp(name, qubits, params, (), line) for qubits in calls)

    def measure(self, statement: str, line: int, start: int) -> None:
        match = _MEASURE2.fullmatch(statement)
        if match is not None:
            qubit_text, bit_text = match[1], match[2]
        else:
            match = _MEASURE3.fullmatch(statement)
            if match is None:
                raise _Fallback
            bit_text, qubit_text = match[1], match[2]
        qubits = self.operand(qubit_text, "qubit")[0]
        bits = self.operand(bit_text, "bit")[0]
        if len(qubits) != len(bits):
            raise _Fallback
        self.out.extend(MeasureOp(q, b, line) for q, b in zip(qubits, bits, strict=True))

    def reset(self, statement: str, line: int, start: int) -> None:
        match = _RESET.fullmatch(statement)
        if match is None:
            raise _Fallback
        self.out.extend(ResetOp(q, line) for q in self.operand(match[1], "qubit")[0])

    def barrier(self, statement: str, line: int, start: int) -> None:
        match = _BARRIER.fullmatch(statement)
        if match is None:
            raise _Fallback
        if match[1] is None or not match[1].strip():
            qubits = list(range(self.lowerer.num_qubits))
        else:
            qubits = [q for text in match[1].split(",")
                      for q in self.operand(text, "qubit")[0]]
        self.out.append(BarrierOp(tuple(dict.fromkeys(qubits)), line))

    # -- operands and parameters ----------------------------------------------------------------

    def operand(self, text: str, kind: str) -> tuple[list[int], bool]:
        """Indices ``text`` names in a register of ``kind``, and whether it is a whole register."""
        key = (text, kind)
        known = self.operands.get(key)
        if known is not None:
            return known
        match = _OPERAND.fullmatch(text)
        if match is None:
            raise _Fallback
        register = self.lowerer.globals.symbols.get(match[1])
        if not isinstance(register, _Register) or register.kind != kind:
            raise _Fallback
        if match[2] is None:
            result = (register.indices(), not register.single)
        else:
            index = int(match[2])
            if register.single or index >= register.size:
                raise _Fallback
            result = ([register.first + index], False)
        self.operands[key] = result
        return result

    def param(self, text: str, line: int, start: int) -> Param:
        value = self.params.get(text)
        if value is None:
            number = _NUMBER.fullmatch(text)
            if number is not None:  # a literal, as the parser folds it: -(1.5), float(-(3))
                literal: float = float(number[3]) if number[3] is not None else int(number[2])
                value = self.params[text] = float(-literal if number[1] else literal)
                return value
            node = _expression(text, line, start, self.text)
            value = self.params[text] = self.lowerer.param(self.context.evaluator.value(node))
        return value


# -- building AST nodes ----------------------------------------------------------------------


def _at(node: Any, line: int, start: int, text: str) -> Any:
    """``node`` with a span at ``start`` (an offset into ``text`` on ``line``), as the parser
    gives statements: errors and line numbers come out the same."""
    column = start - (text.rfind("\n", 0, start) + 1)
    node.span = ast.Span(line, column, line, column)
    return node


def _name(name: str, line: int, start: int, text: str) -> ast.Identifier:
    return _at(ast.Identifier(name), line, start, text)  # type: ignore[no-any-return]


def _code(line: str) -> str:
    """``line`` without its ``//`` comment."""
    cut = line.find("//")
    return line if cut < 0 else line[:cut]


def _identifier(text: str, line: int, start: int, source: str) -> ast.Identifier:
    name = text.strip()
    if not re.fullmatch(_NAME, name):
        raise _Fallback
    return _name(name, line, start, source)


def _size_and_name(match: re.Match[str]) -> tuple[ast.IntegerLiteral | None, str]:
    if match[1] is not None:
        return ast.IntegerLiteral(int(match[1])), match[2]
    if match[3] is not None:
        return None, match[3]
    return ast.IntegerLiteral(int(match[5])), match[4]


def _operand_node(text: str, line: int, start: int, source: str) -> Any:
    match = _OPERAND.fullmatch(text)
    if match is None:
        raise _Fallback
    name = _name(match[1], line, start, source)
    if match[2] is None:
        return name
    index = _at(ast.IntegerLiteral(int(match[2])), line, start, source)
    return _at(ast.IndexedIdentifier(name, [[index]]), line, start, source)


def _expression(text: str, line: int, start: int, source: str) -> Any:
    """The AST of a parameter made of numbers, names, ``+ - * /``, unary minus and
    parentheses, shaped as the reference parser shapes it (``-a*b`` is ``(-a)*b``)."""
    tokens: list[tuple[str, Any]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position:].strip():
                raise _Fallback
            break
        position = match.end()
        if match[1] is not None:
            tokens.append(("number", ast.FloatLiteral(float(match[1]))))
        elif match[2] is not None:
            tokens.append(("number", ast.IntegerLiteral(int(match[2]))))
        elif match[3] is not None:
            tokens.append(("number", ast.Identifier(match[3])))
        else:
            tokens.append((match[4], None))
    if not tokens:
        raise _Fallback
    parser = _ExpressionParser(tokens)
    node = parser.additive()
    if parser.position != len(tokens):
        raise _Fallback
    return node  # no spans: an error in it sends the program to the full parser anyway


class _ExpressionParser:
    def __init__(self, tokens: list[tuple[str, Any]]) -> None:
        self.tokens, self.position = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.position][0] if self.position < len(self.tokens) else None

    def additive(self) -> Any:
        return self.left_associative(("+", "-"), self.multiplicative)

    def multiplicative(self) -> Any:
        return self.left_associative(("*", "/"), self.unary)

    def left_associative(self, ops: tuple[str, ...], operand: Callable[[], Any]) -> Any:
        """``operand (op operand)*`` folded to the left, as ``a - b - c`` is ``(a - b) - c``."""
        node = operand()
        while (op := self.peek()) in ops:
            self.position += 1
            node = ast.BinaryExpression(_BINARY[op], node, operand())  # type: ignore[index]
        return node

    def unary(self) -> Any:
        kind = self.peek()
        if kind == "-":
            self.position += 1
            return ast.UnaryExpression(ast.UnaryOperator["-"], self.unary())
        if kind == "(":
            self.position += 1
            node = self.additive()
            if self.peek() != ")":
                raise _Fallback
            self.position += 1
            return node
        if kind == "number":
            node = self.tokens[self.position][1]
            self.position += 1
            return node
        raise _Fallback
