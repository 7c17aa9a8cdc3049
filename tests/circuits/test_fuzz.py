"""Fuzzing ``Circuit.from_qasm``: any text gives a circuit or a contract error, quickly.

Random bytes and mutated programs (the malformed corpus and good programs: the library,
Qiskit exports, the lowering tests' programs) must raise nothing but ``CircuitError`` or
``ValidationError``, each example within 1 s (hypothesis ``deadline``) and 200 MiB (peak
traced by tracemalloc in this process).
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest
import qiskit.qasm2
import qiskit.qasm3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit.circuit.random import random_circuit
from test_lowering import UNITARY_PROGRAMS
from test_malformed import CORPUS

from hal_workflow.circuits import Circuit, library
from hal_workflow.contract.errors import CircuitError, ValidationError

MiB = 1 << 20
MEMORY_LIMIT = 200 * MiB

SEEDS = [case.text for case in CORPUS] + list(UNITARY_PROGRAMS.values()) + [
    library.bell().qasm, library.qft(4).qasm, library.hardware_efficient_ansatz(3, 2).qasm,
    qiskit.qasm2.dumps(random_circuit(4, 4, measure=True, seed=7)),
    qiskit.qasm3.dumps(random_circuit(4, 4, measure=True, seed=8)),
]

# Fragments that push a parser or lowering towards its limits when spliced in anywhere.
TOKENS = [
    "for int i in [0:999999] {", "for int j in [0:999999] { x q[0]; }", "}", "{", "(", ")",
    "[", "]", ";", "\n", "gate g a { g a; }", "gate g2 a { x a; x a; }", "pow(1000000) @ ",
    "inv @ ", "ctrl(40) @ ", "1e308", "-1", "**", "2**1000000", "measure", "if (c) {",
    "qubit[100000000] r;", "bit[2000000000] d;", "input float t;", "$3", "π", "\x00", "//",
    "/*", "*/", '"', "OPENQASM 4.0;", 'include "x.inc";', "while (true) {", "q[-1]",
    "q[0:2:9]", "barrier", "reset q;", "U(0,0,0)", "gphase(pi);", "1/0", "sqrt(-1)",
]


@pytest.fixture(scope="module", autouse=True)
def traced() -> Iterator[None]:
    tracemalloc.start()
    yield
    tracemalloc.stop()


def check(text: str) -> None:
    tracemalloc.reset_peak()
    try:
        Circuit.from_qasm(text, source="fuzz.qasm")
    except (CircuitError, ValidationError) as error:
        assert "\n" not in str(error).strip() or isinstance(error, ValidationError)
        assert str(error).startswith("fuzz.qasm") or isinstance(error, ValidationError)
    peak = tracemalloc.get_traced_memory()[1]
    assert peak < MEMORY_LIMIT, f"{peak / MiB:.0f} MiB for {text[:200]!r}"


@st.composite
def mutated_programs(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            text = draw(st.sampled_from(TOKENS))
            continue
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 40)))
        operation = draw(st.sampled_from(["delete", "insert", "duplicate", "replace"]))
        if operation == "delete":
            text = text[:start] + text[end:]
        elif operation == "duplicate":
            text = text[:end] + text[start:end] * draw(st.integers(1, 50)) + text[end:]
        else:
            piece = draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=8)))
            text = text[:start] + piece + text[end if operation == "replace" else start:]
    return text


FUZZ = settings(max_examples=150, deadline=1000,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    check(data.decode("latin-1"))


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_after_a_header(data: bytes) -> None:
    check('OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[3] q;\nbit[3] c;\n'
          + data.decode("utf-8", "replace"))


@FUZZ
@given(mutated_programs())
def test_mutated_programs(text: str) -> None:
    check(text)
