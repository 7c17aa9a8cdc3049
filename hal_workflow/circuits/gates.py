"""The gate vocabulary of the lowered IR: the standard gates and how other names reach them.

Standard gates are the gates of OpenQASM 3's ``stdgates.inc`` plus the built-ins ``U`` and
``gphase``; they survive lowering by name, with the matrices Qiskit gives them (as Qiskit's own
OpenQASM importer does). Pure aliases are normalised while lowering (``CX`` -> ``cx``,
``phase`` -> ``p``, ``cphase`` -> ``cp``) so that backends and gate counts see one spelling.

Gates that only ``qelib1.inc`` (OpenQASM 2) defines are written here as OpenQASM gate
definitions over standard gates and are inlined like user gates, so OpenQASM 2 programs lower to
the same vocabulary.
"""

from __future__ import annotations

import re

# name -> (number of parameters, number of qubits)
STANDARD_GATES: dict[str, tuple[int, int]] = {
    "p": (1, 1),
    "x": (0, 1),
    "y": (0, 1),
    "z": (0, 1),
    "h": (0, 1),
    "s": (0, 1),
    "sdg": (0, 1),
    "t": (0, 1),
    "tdg": (0, 1),
    "sx": (0, 1),
    "rx": (1, 1),
    "ry": (1, 1),
    "rz": (1, 1),
    "cx": (0, 2),
    "cy": (0, 2),
    "cz": (0, 2),
    "cp": (1, 2),
    "crx": (1, 2),
    "cry": (1, 2),
    "crz": (1, 2),
    "ch": (0, 2),
    "swap": (0, 2),
    "ccx": (0, 3),
    "cswap": (0, 3),
    "cu": (4, 2),
    "CX": (0, 2),
    "phase": (1, 1),
    "cphase": (1, 2),
    "id": (0, 1),
    "u1": (1, 1),
    "u2": (2, 1),
    "u3": (3, 1),
    "U": (3, 1),
    "gphase": (1, 0),
}

# Names that mean exactly another standard gate; lowering emits the right-hand name.
GATE_ALIASES: dict[str, str] = {"CX": "cx", "phase": "p", "cphase": "cp"}

# Built into the language itself: can never be redefined.
BUILTIN_GATES = frozenset({"U", "gphase"})

# Gates of Qiskit's qelib1.inc that stdgates.inc lacks, as definitions over standard gates
# (matrices equal Qiskit's classes of the same name, global phase included).
QELIB1_EXTRAS_QASM = """
gate u(theta, phi, lambda) q { U(theta, phi, lambda) q; }
gate sxdg a { inv @ sx a; }
gate csx a, b { ctrl @ sx a, b; }
gate cu1(lambda) a, b { cp(lambda) a, b; }
gate cu3(theta, phi, lambda) a, b { cu(theta, phi, lambda, 0) a, b; }
gate rxx(theta) a, b { h a; h b; cx a, b; rz(theta) b; cx a, b; h a; h b; }
gate rzz(theta) a, b { cx a, b; rz(theta) b; cx a, b; }
gate rccx a, b, c {
  u2(0, pi) c; u1(pi/4) c; cx b, c; u1(-pi/4) c; cx a, c; u1(pi/4) c; cx b, c; u1(-pi/4) c;
  u2(0, pi) c;
}
gate c3x a, b, c, d { ctrl(3) @ x a, b, c, d; }
gate c3sqrtx a, b, c, d { ctrl(3) @ sx a, b, c, d; }
gate c4x a, b, c, d, e { ctrl(4) @ x a, b, c, d, e; }
"""
QELIB1_EXTRAS = frozenset(re.findall(r"^gate (\w+)", QELIB1_EXTRAS_QASM, re.MULTILINE))

# The include files whose gates are known without reading any file.
KNOWN_INCLUDES = frozenset({"stdgates.inc", "qelib1.inc"})
