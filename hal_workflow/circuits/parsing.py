"""OpenQASM text to the ``openqasm3`` reference AST, with every parser failure as a CircuitError.

We drive the ``openqasm3`` ANTLR lexer and parser ourselves instead of calling
``openqasm3.parse`` for two reasons: ANTLR's default console listener prints lexer errors to
stderr (and swapping ``sys.stderr`` would be visible to every thread), and a syntax error comes
out of ``openqasm3.parse`` with an empty message, so we read the offending token and the
expected tokens from the ANTLR exception to say what was wrong and where.

``openqasm3`` (and with it the ANTLR runtime, ~0.1 s to import) is imported on first use.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, NoReturn

from hal_workflow.contract.errors import CircuitError

if TYPE_CHECKING:
    from openqasm3 import ast

_POSITIONED = re.compile(r"^L(\d+):C(\d+): (.*)$", re.DOTALL)
_MAX_EXPECTED = 4  # list the expected tokens only when there are this few


class _LexerError(Exception):
    def __init__(self, line: int, column: int, text: str) -> None:
        super().__init__(text)
        self.line, self.column, self.text = line, column, text


def parse(text: str, source: str | None = None) -> ast.Program:
    """Parse an OpenQASM 2/3 program into an ``openqasm3.ast.Program``.

    Raises:
        CircuitError: on any lexical or syntax error, with 1-based line and 0-based column.
    """
    from antlr4 import CommonTokenStream, InputStream
    from antlr4.error.ErrorListener import ErrorListener
    from antlr4.error.Errors import ParseCancellationException, RecognitionException
    from antlr4.error.ErrorStrategy import BailErrorStrategy
    from openqasm3 import parser as qasm_parser

    class RaiseOnLexerError(ErrorListener):  # type: ignore[misc]
        def syntaxError(self, recognizer: Any, symbol: Any, line: int, column: int,
                        msg: str, e: Any) -> None:
            # msg reads "token recognition error at: '<text>'"
            raise _LexerError(line, column, msg.partition("at: ")[2][1:-1] or "?")

    lexer = qasm_parser.qasm3Lexer(InputStream(text))
    lexer.removeErrorListeners()
    lexer.addErrorListener(RaiseOnLexerError())
    parser = qasm_parser.qasm3Parser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser._errHandler = BailErrorStrategy()  # what openqasm3.parse does: stop at the first error
    try:
        tree = parser.program()
        return qasm_parser.QASMNodeVisitor().visitProgram(tree)  # type: ignore[no-any-return]
    except _LexerError as exc:
        raise CircuitError(f"unexpected character {exc.text[0]!r}", source=source,
                           line=exc.line, column=exc.column) from exc
    except ParseCancellationException as exc:
        _raise_syntax_error(exc, parser, source)
    except RecognitionException as exc:
        _raise_syntax_error(ParseCancellationException(exc), parser, source)
    except qasm_parser.QASM3ParsingError as exc:
        # Raised by openqasm3's AST builder for constructs the grammar accepts but the language
        # forbids; its message starts with "L<line>:C<column>: ".
        match = _POSITIONED.match(str(exc))
        if match is None:
            raise CircuitError(str(exc) or "invalid program", source=source) from exc
        raise CircuitError(match[3], source=source, line=int(match[1]),
                           column=int(match[2])) from exc
    except RecursionError as exc:
        raise CircuitError("program is nested too deeply to parse", source=source) from exc


def _raise_syntax_error(exc: Exception, parser: Any, source: str | None) -> NoReturn:
    recognition = exc.args[0] if exc.args else None
    token = getattr(recognition, "offendingToken", None)
    if token is None:
        raise CircuitError("syntax error", source=source) from exc
    line, column = token.line, token.column
    if token.type == -1:  # point just past the last real token, not at the line after it
        found = "end of input"
        previous = parser.getTokenStream().LT(-1)
        if previous is not None and previous.type != -1:
            line, column = previous.line, previous.column + len(previous.text or "")
    else:
        found = repr(token.text)
    detail = f"syntax error: unexpected {found}"
    expected = _expected_tokens(recognition, parser)
    if expected:
        detail += f", expected {' or '.join(expected)}"
    raise CircuitError(detail, source=source, line=line, column=column) from exc


def _expected_tokens(recognition: Any, parser: Any) -> list[str]:
    try:
        expected = recognition.getExpectedTokens()
    except Exception:  # ANTLR cannot always compute the set; the message stays useful without
        return []
    if expected is None or not expected.intervals:
        return []
    names: list[str] = []
    for interval in expected.intervals:
        for token_type in interval:
            if token_type == -1:
                names.append("end of input")
            elif 0 <= token_type < len(parser.literalNames) and \
                    parser.literalNames[token_type] != "<INVALID>":
                names.append(parser.literalNames[token_type])
            else:
                names.append(parser.symbolicNames[token_type])
            if len(names) > _MAX_EXPECTED:
                return []
    return names


class Positions:
    """Turns AST spans into (line, column) pairs.

    ``openqasm3`` gives identifiers built from a bare token the token's offset in the whole
    text as their "column"; this maps such a span back to a column within its line.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._starts: list[int] | None = None  # computed on first use: errors, inputs

    @property
    def _line_starts(self) -> list[int]:
        if self._starts is None:
            self._starts = [0]
            self._starts.extend(match.end() for match in re.finditer("\n", self.text))
        return self._starts

    def of(self, node: Any) -> tuple[int | None, int | None]:
        span = getattr(node, "span", None)
        if span is None:
            return None, None
        line, column = span.start_line, span.start_column
        name = getattr(node, "name", None)
        if isinstance(name, str) and 0 < line <= len(self._line_starts):
            start = self._line_starts[line - 1]
            looks_like_column = self.text.startswith(name, start + column)
            if not looks_like_column and column >= start and self.text.startswith(name, column):
                column -= start
        return line, column

    def offset(self, line: int, column: int) -> int:
        """The index in the text of a 1-based line and 0-based column."""
        return self._line_starts[line - 1] + column
