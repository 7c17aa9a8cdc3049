"""Fuzzing ``hal-workflow run FILE``: whatever the file holds, the command ends with exit code
0 (it ran), 1 (one ``error:`` line naming the file) or 2 (usage), never a traceback, each
within a second. In process through click's test runner, so hypothesis can try many files."""

from __future__ import annotations

import time
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hal_workflow.cli import main

PROGRAMS = [
    'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nbit[2] c;\nh q[0];\ncx q[0], q[1];\n'
    "c = measure q;\n",
    'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[3];\ncreg c[3];\nh q[0];\nccx q[0],q[1],q[2];\n'
    "measure q -> c;\n",
    'OPENQASM 3.0;\ninclude "stdgates.inc";\ninput float t;\nqubit[1] q;\nbit[1] c;\n'
    "ry(t) q[0];\nc[0] = measure q[0];\n",
]
PIECES = ["for int i in [0:99999999] { x q[0]; }", "gate g a { g a; }", "qubit[100000000] r;",
          "pow(1000000) @ x q[0];", "}", "{", ";", "\x00", "ctrl(30) @ x q[0];", "if (c) {",
          "2**100000", "//", "/*", "q[-1]", "measure", "\n"]


@st.composite
def files(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return draw(st.binary(max_size=300)).decode("latin-1")
    text = draw(st.sampled_from(PROGRAMS))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        piece = draw(st.one_of(st.sampled_from(PIECES), st.text(max_size=6)))
        cut = draw(st.integers(0, 10)) if draw(st.booleans()) else 0
        text = text[:at] + piece + text[at + cut:]
    return text


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(files())
def test_run_any_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.qasm"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    started = time.monotonic()
    result = CliRunner().invoke(main, ["run", str(path), "--backend", "sim", "--shots", "10"])
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 or result.exit_code == 0, f"{elapsed:.2f} s for {text[:200]!r}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception} for {text[:200]!r}")
    assert result.exit_code in (0, 1, 2), (result.exit_code, text[:200])
    assert "Traceback" not in result.output + result.stderr
    if result.exit_code == 1:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        assert "fuzz.qasm" in lines[0], lines[0]
