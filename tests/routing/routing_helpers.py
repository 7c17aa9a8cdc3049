"""Circuits and specs shared by the routing tests."""

from __future__ import annotations

from typing import Any

BELL = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
cx q[0], q[1];
c = measure q;
"""

GHZ3 = """OPENQASM 3.0;
include "stdgates.inc";
qubit[3] q;
bit[3] c;
h q[0];
cx q[0], q[1];
cx q[1], q[2];
c = measure q;
"""

FLIP = """OPENQASM 3.0;
include "stdgates.inc";
input float theta;
qubit[1] q;
bit[1] c;
rx(theta) q[0];
c = measure q;
"""
"""rx(theta): theta = 0 always reads 0, theta = pi always reads 1 (exact on noiseless engines)."""


def ghz(n: int) -> str:
    lines = [f"qubit[{n}] q;", f"bit[{n}] c;", "h q[0];"]
    lines += [f"cx q[{i}], q[{i + 1}];" for i in range(n - 1)]
    return 'OPENQASM 3.0;\ninclude "stdgates.inc";\n' + "\n".join(lines) + "\nc = measure q;\n"


def iqm_spec(server: Any, **options: Any) -> dict[str, Any]:
    return {"name": "iqm", "url": server.url, "seed": 3, **options}


IBM = {name: {"name": "ibm", "backend": name, "seed": 5}
       for name in ("fake_manila", "fake_lima", "fake_belem", "fake_quito")}
