"""Bounded work: programs that would expand without bound are refused by counting first.

Each refusal is a :class:`CircuitLimitError` (a :class:`CircuitError`) naming the
``limits.*`` key that raises it; memory is measured with tracemalloc, so a test that expanded
the program instead of counting it would fail rather than pass slowly.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hal_workflow import config
from hal_workflow.circuits import Circuit
from hal_workflow.circuits.limits import CircuitLimitError, Limits
from hal_workflow.contract.errors import CircuitError, ConfigurationError

H = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\n'
MiB = 1 << 20


def doubling_definitions(levels: int) -> str:
    """``levels`` gate definitions each calling the previous twice: 2**levels gates."""
    lines = ["gate g0 a { x a; }"]
    lines += [f"gate g{i} a {{ g{i - 1} a; g{i - 1} a; }}" for i in range(1, levels + 1)]
    return H + "\n".join(lines) + f"\ng{levels} q[0];\n"


def refused(text: str, key: str, source: str | None = None) -> CircuitLimitError:
    """The limit error ``text`` raises, checked to name ``key`` and stay within 50 MiB."""
    tracemalloc.start()
    try:
        with pytest.raises(CircuitLimitError) as info:
            Circuit.from_qasm(text, source=source)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * MiB, f"refusing took {peak / MiB:.0f} MiB"
    error = info.value
    assert error.key == key and key in str(error)
    assert "HAL_WORKFLOW__LIMITS__" in str(error)  # says how to raise it
    assert "\n" not in str(error)
    return error


@pytest.fixture
def limit() -> Iterator[Callable[[str, int], None]]:
    """Set a limits.* key for one test."""
    stack: list[object] = []

    def set_limit(key: str, value: int) -> None:
        context = config.set({f"limits.{key}": value})
        context.__enter__()
        stack.append(context)

    yield set_limit
    for context in reversed(stack):
        context.__exit__(None, None, None)  # type: ignore[attr-defined]


def test_doubling_gate_definitions_are_refused_before_expanding() -> None:
    text = doubling_definitions(40)
    assert len(text.encode()) < 1400  # the 1.2 KB file of the issue
    error = refused(text, "limits.max-gates", source="bomb.qasm")
    assert error.value == 2**40
    assert str(error).startswith("bomb.qasm:45:1: gate 'g40' expands to 1,099,511,627,776 gates")


def test_definitions_under_the_limit_still_expand() -> None:
    assert Circuit.from_qasm(doubling_definitions(10)).gate_counts == {"x": 1024}


def test_pow_of_a_custom_gate_is_counted_before_repeating() -> None:
    refused(H + "gate g a { x a; h a; }\npow(20000000) @ g q[0];\n", "limits.max-gates")


def test_nested_loops_are_refused_by_counting_not_running() -> None:
    text = H + "for int i in [0:999999] { for int j in [0:999999] { x q[0]; } }\n"
    error = refused(text, "limits.max-loop-iterations")
    assert error.value >= 10**12


def test_inner_loop_depending_on_the_outer_variable_is_counted_at_its_first_value() -> None:
    text = H + "for int i in [1:999999] { for int j in [0:i * 100] { x q[0]; } }\n"
    refused(text, "limits.max-loop-iterations")


def test_one_long_loop_is_refused_before_its_first_iteration() -> None:
    error = refused(H + "for int i in [0:99999999] { x q[0]; }\n", "limits.max-loop-iterations")
    assert error.value == 10**8


def test_loop_body_gates_are_counted_before_unrolling() -> None:
    text = H + "for int i in [0:999999] { " + "x q[0]; " * 20 + "}\n"
    refused(text, "limits.max-gates")


def test_gate_limit_applies_to_straight_line_programs(limit) -> None:
    limit("max-gates", 5)
    Circuit.from_qasm(H + "x q[0];\n" * 5)
    error = refused(H + "x q[1];\n" * 6, "limits.max-gates")
    assert error.line == 9  # the sixth gate
    refused(H + "x q;\n" * 3, "limits.max-gates")  # broadcasting counts each gate


def test_loop_limit_is_configurable(limit) -> None:
    limit("max-loop-iterations", 10)
    Circuit.from_qasm(H + "for int i in [0:9] { x q[0]; }\n")
    refused(H + "for int i in [0:10] { x q[1]; }\n", "limits.max-loop-iterations")
    refused(H + "for int i in [0:4] { for int j in [0:1] { x q[0]; } }\n",
            "limits.max-loop-iterations")


def test_nesting_depth_of_blocks_brackets_and_gate_calls(limit) -> None:
    limit("max-nesting-depth", 8)
    ifs = H + "bit c;\n" + "if (c) { " * 9 + "x q[0];" + " }" * 9 + "\n"
    refused(ifs, "limits.max-nesting-depth")
    refused(H + "rx(" + "(" * 9 + "1" + ")" * 9 + ") q[0];\n", "limits.max-nesting-depth")
    chain = H + "gate g0 a { x a; }\n" + "".join(
        f"gate g{i} a {{ g{i - 1} a; }}\n" for i in range(1, 10)) + "g9 q[0];\n"
    refused(chain, "limits.max-nesting-depth")
    Circuit.from_qasm(H + "bit c;\n" + "if (c) { " * 3 + "x q[0];" + " }" * 3 + "\n")


def test_deep_expressions_are_refused_with_the_default_limit() -> None:
    refused(H + "rx(" + "(" * 5000 + "1" + ")" * 5000 + ") q[0];\n",
            "limits.max-nesting-depth")


def test_file_size_limit_for_text_and_files(limit, tmp_path: Path) -> None:
    limit("max-file-bytes", 200)
    text = H + "x q[0];\n" * 30
    assert len(text) > 200
    error = refused(text, "limits.max-file-bytes")
    assert error.value == len(text)
    path = tmp_path / "big.qasm"
    path.write_text(text)
    with pytest.raises(CircuitLimitError, match=r"big\.qasm: program is") as info:
        Circuit.from_file(path)
    assert info.value.source == str(path)


def test_full_parser_input_is_bounded_where_the_fast_path_stops(limit) -> None:
    limit("max-parser-bytes", 300)
    straight = H + "x q[0];\n" * 40
    assert len(straight) > 300
    assert Circuit.from_qasm(straight).gate_counts == {"x": 40}  # the fast path takes it
    error = refused(H + "x q[1];\nfor int i in [0:1] { x q[0]; }\n" + "h q[0];\n" * 40,
                    "limits.max-parser-bytes")
    assert error.line == 5 and "needs the full OpenQASM parser" in str(error)
    Circuit.from_qasm(H + "for int i in [0:1] { x q[0]; }\n")  # small ones still parse


def test_limit_errors_keep_their_type_with_a_file_name(limit, tmp_path: Path) -> None:
    path = tmp_path / "loops.qasm"
    path.write_text(H + "for int i in [0:99999999] { x q[0]; }\n")
    with pytest.raises(CircuitLimitError) as info:
        Circuit.from_file(path)
    assert str(info.value).startswith(f"{path}:4:")


def test_malformed_limit_configuration_is_a_configuration_error(limit) -> None:
    limit("max-gates", "lots")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"limits\.max-gates"):
        Circuit.from_qasm(H + "y q[0];\n")


def test_limits_are_read_from_the_configuration(limit) -> None:
    limit("max-gates", 7)
    limit("max-nesting-depth", 3)
    assert Limits.current() == Limits(max_gates=7, max_nesting_depth=3)


@pytest.mark.parametrize(("text", "message"), [
    ("", "no quantum program: file is empty"),
    ("  \n\t\n", "no quantum program: file is empty"),
    ("// only a comment\n/* and another */\n", "no quantum program: file has only comments"),
])
def test_empty_and_comment_only_programs_are_one_line_errors(text: str, message: str,
                                                             tmp_path: Path) -> None:
    with pytest.raises(CircuitError) as info:
        Circuit.from_qasm(text, source="empty.qasm")
    assert str(info.value) == f"empty.qasm: {message}"
    path = tmp_path / "blank.qasm"
    path.write_text(text)
    with pytest.raises(CircuitError, match=f"^{path}: {message}$"):
        Circuit.from_file(path)
