"""A corpus of malformed OpenQASM: each must raise CircuitError at the right place, saying why.

Each case names the text it expects at the reported position: ``"h ^r[0]"`` means the reported
line, cut at the reported column, ends with ``"h "`` before the cut and starts with ``"r[0]"``
after it. The marker text occurs once in the program, so this also pins the line.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import NamedTuple

import pytest

from hal_workflow.circuits import Circuit
from hal_workflow.contract.errors import CircuitError

H = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nbit[2] c;\n'


class Case(NamedTuple):
    name: str
    text: str
    message: str  # must appear in the error's detail
    pointer: str | None  # "before^after" at the reported line and column; None: line 1 only


CORPUS = [
    Case('missing-semicolon', H + 'h q[0]\n',
         'end of input', 'h q[0]^'),
    Case('unclosed-designator', H + 'qubit[2 r;\n',
         "unexpected 'r'", '^r;'),
    Case('bad-character', H + 'h q[0];\n  # x q[1];\n',
         "unexpected character '#'", '^#'),
    Case('unknown-gate', H + 'h q[0];\nhh q[1];\n',
         "unknown gate 'hh'", '^hh q[1]'),
    Case('too-few-qubits', H + 'cx q[0];\n',
         "gate 'cx' acts on 2 qubits, got 1", '^cx q[0]'),
    Case('missing-parameter', H + 'rx q[0];\n',
         "gate 'rx' takes 1 parameter, got 0", '^rx q[0]'),
    Case('extra-parameter', H + 'h(0.1) q[0];\n',
         "gate 'h' takes 0 parameters, got 1", '^h(0.1)'),
    Case('undeclared-qubit', H + 'h r[0];\n',
         "undeclared qubit 'r'", 'h ^r[0]'),
    Case('undeclared-bit', H + 'd[0] = measure q[0];\n',
         "undeclared bit 'd'", '^d[0]'),
    Case('undeclared-identifier', H + 'rx(2 * theta) q[0];\n',
         "undeclared identifier 'theta'", '2 * ^theta'),
    Case('qubit-index-out-of-range', H + 'x q[0];\nh q[2];\n',
         "index 2 out of range for qubit register 'q' of size 2", 'h q[^2]'),
    Case('bit-index-out-of-range', H + 'c[5] = measure q[0];\n',
         "index 5 out of range for bit register 'c' of size 2", 'c[^5]'),
    Case('duplicate-qubit', H + 'cx q[1], q[1];\n',
         "qubit q[1] is used more than once in gate 'cx'", '^cx'),
    Case('redeclared-register', H + 'qubit q;\n',
         "'q' is already declared (first declared on line 3)", 'qubit ^q;'),
    Case('redefined-gate', H + 'gate g a { x a; }\ngate g a { y a; }\n',
         "gate 'g' is already defined", 'gate ^g a { y'),
    Case('redefined-standard-gate', H + 'gate h a { U(pi/2, 0, pi) a; }\n',
         "gate 'h' is already defined by stdgates.inc", 'gate ^h a'),
    Case('redefined-builtin', H + 'gate U(a, b, c) x { }\n',
         "cannot redefine built-in gate 'U'", 'gate ^U('),
    Case('unbound-size', 'OPENQASM 3.0;\ninput int n;\nqubit[n] q;\n',
         'unbound free parameter(s) n where a number is needed', 'qubit^[n]'),
    Case('unbound-loop-bound', H + 'input int n;\nfor int i in [0:n] { x q[0]; }\n',
         'unbound free parameter(s) n', '[0:^n]'),
    Case('while-loop', H + 'while (true) { x q[0]; }\n',
         'unsupported construct: while loops', '^while'),
    Case('subroutine', H + 'def f(qubit a) { x a; }\n',
         'unsupported construct: subroutine definitions', '^def'),
    Case('extern', H + 'extern f(int) -> int;\n',
         'unsupported construct: extern', '^extern'),
    Case('box', H + 'box { x q[0]; }\n',
         'unsupported construct: box', '^box'),
    Case('delay', H + 'delay[100ns] q[0];\n',
         'unsupported construct: delay', '^delay'),
    Case('switch', H + 'int i = 1;\nswitch (i) { case 1 { x q[0]; } }\n',
         'unsupported construct: switch', '^switch'),
    Case('classical-assignment', H + 'int i = 1;\ni = 2;\n',
         'unsupported construct: classical assignment', '^i = 2'),
    Case('measure-without-target', H + 'measure q[0];\n',
         'measure without a target bit', '^measure'),
    Case('measure-size-mismatch', H + 'bit[3] d;\nd = measure q;\n',
         'cannot measure 2 qubits into 3 bits', '^d = measure'),
    Case('broadcast-size-mismatch', H + 'qubit[3] r;\ncx q, r;\n',
         'registers of different sizes (2, 3)', '^cx q, r'),
    Case('unknown-include', 'OPENQASM 3.0;\ninclude "mygates.inc";\n',
         "cannot include 'mygates.inc'", '^include'),
    Case('unsupported-version', 'OPENQASM 4.0;\nqubit q;\n',
         'unsupported OpenQASM version 4.0', None),
    Case('division-by-zero', H + 'const float x = 1 / 0;\n',
         'division by zero', '= ^1 / 0'),
    Case('unknown-function', H + 'rx(foo(1.0)) q[0];\n',
         "unknown function 'foo'", 'rx(^foo'),
    Case('unknown-gate-in-body', H + 'gate g a {\n  hh a;\n}\n',
         "unknown gate 'hh'", '  ^hh a;'),
    Case('recursive-gate', H + 'gate g a { g a; }\n',
         "unknown gate 'g'", '{ ^g a; }'),
    Case('measure-in-gate', H + 'gate g a { measure a; }\n',
         "non-unitary 'measure'", '{ ^measure'),
    Case('fractional-pow-on-custom-gate', H + 'gate g a { x a; }\npow(0.5) @ g q[0];\n',
         "non-integer pow on custom gate 'g'", '^pow(0.5)'),
    Case('missing-control-qubit', H + 'ctrl @ x q[0];\n',
         "gate 'x' acts on 1 qubit plus 1 control qubit, got 1", '^ctrl @ x'),
    Case('zero-size-register', H + 'qubit[0] r;\n',
         "qubit register 'r' must have a positive size", 'qubit^[0]'),
    Case('physical-and-virtual', H + 'h $0;\n',
         "physical qubit '$0' cannot be mixed", 'h ^$0'),
    Case('indexing-single-qubit', H + 'qubit r;\nh r[0];\n',
         "'r' is a single qubit and cannot be indexed", 'h ^r[0]'),
    Case('bit-as-qubit', H + 'h c;\n',
         "'c' is a bit register, not a qubit", 'h ^c;'),
    Case('const-from-input', H + 'input float t;\nconst float x = 2 * t;\n',
         "constant 'x' cannot depend on input parameter(s) t", '= ^2 * t'),
    Case('keyword-parameter-name', H + 'input float lambda;\n',
         "input parameter name 'lambda' is not supported", 'float ^lambda'),
    Case('unclosed-gate-body', H + 'gate g a { x a;\n',
         'end of input', '{ x a;^'),
    Case('loop-step-zero', H + 'for int i in [0:0:3] { x q[0]; }\n',
         'loop step cannot be zero', '[^0:0:3]'),
    Case('nonzero-bit-initialiser', H + 'bit[2] d = "01";\n',
         'initialising bits to a non-zero value', '= ^"01"'),
    Case('qubit-argument-indexed', H + 'gate g a { x a[0]; }\ng q[0];\n',
         "qubit argument 'a' cannot be indexed", 'x ^a[0]'),
    Case('gate-body-outer-register', H + 'gate g a { cx a, q; }\ng q[0];\n',
         "'q' is not a qubit argument of gate 'g'", 'cx a, ^q;'),
    Case('break-outside-loop', H + 'break;\n',
         "'break' statement outside loop", '^break'),
    Case('physical-in-gate-body', H + 'gate g a { cx a, $1; }\ng q[0];\n',
         'is not a qubit argument', 'cx a, ^$1'),
    Case('math-domain', H + 'rx(sqrt(-1)) q[0];\n',
         'cannot evaluate expression', 'rx(^sqrt(-1))'),
    Case('complex-literal', H + 'rx(1im) q[0];\n',
         'complex numbers are not supported', 'rx(^1im)'),
]


def test_corpus_is_large_and_uniquely_named() -> None:
    assert len(CORPUS) >= 30
    assert len({case.name for case in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_malformed_program_raises_positioned_circuit_error(case: Case, capfd) -> None:
    with pytest.raises(CircuitError) as info:
        Circuit.from_qasm(case.text)
    error = info.value
    assert case.message in error.detail
    assert error.source == "<string>"
    assert str(error).startswith(f"<string>:{error.line}")
    if case.pointer is None:
        assert error.line == 1
    else:
        before, after = case.pointer.split("^")
        assert case.text.count(before + after) == 1, "the marker must pick one place"
        line = case.text.splitlines()[error.line - 1]
        assert error.column is not None
        assert line[:error.column].endswith(before), (line, error.column)
        assert line[error.column:].startswith(after), (line, error.column)
    assert capfd.readouterr().err == ""  # nothing from ANTLR on stderr


def test_errors_from_the_parser_chain_the_original() -> None:
    with pytest.raises(CircuitError) as info:
        Circuit.from_qasm(H + "h q[0]\n")
    assert info.value.__cause__ is not None


def test_from_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.qasm"
    path.write_text(H + "h q[0];\nhh q[1];\n")
    with pytest.raises(CircuitError) as info:
        Circuit.from_file(path)
    assert info.value.source == str(path)
    assert str(info.value).startswith(f"{path}:6:1: unknown gate 'hh'")  # 1-based in text


def test_source_name_is_used_for_cached_failures_too() -> None:
    text = H + "cx q[0];\n"
    for source in (None, "a.qasm", "b.qasm"):
        with pytest.raises(CircuitError) as info:
            Circuit.from_qasm(text, source=source)
        assert info.value.source == (source or "<string>")


def test_circuit_error_pickles() -> None:
    with pytest.raises(CircuitError) as info:
        Circuit.from_qasm(H + "hh q[0];\n", source="x.qasm")
    error = pickle.loads(pickle.dumps(info.value))
    assert str(error) == str(info.value)
