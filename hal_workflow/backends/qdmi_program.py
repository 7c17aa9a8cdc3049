"""Write a lowered circuit as the OpenQASM 3 program that mqt-core's DDSIM QDMI device runs.

The user's text cannot be sent as it is: DDSIM rejects ``input`` parameters ("floating-point
SSA value has no concrete ... binding"), a declared bit that is never written ("Output register
'c' is not fully initialized") and integer comparisons of bits (``c[0] == 1``). So the program
is rebuilt from the lowered IR with every parameter bound: one ``qubit[n] q`` register, one
``bit[m] c`` register initialised to zeros (classical bit ``i`` of the circuit is ``c[i]``, so
DDSIM's counts keys are already in the contract's order, bit 0 rightmost), standard gates with
their modifiers, and conditions written as conjunctions of ``c[i] == true/false``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hal_workflow.circuits.ir import (
    BarrierOp,
    Condition,
    GateOp,
    IfOp,
    LoweredCircuit,
    MeasureOp,
    Modifier,
    Operation,
    ResetOp,
    evaluate_param,
)

__all__ = ["ddsim_qasm"]


def ddsim_qasm(circuit: LoweredCircuit, bindings: Mapping[str, float] | None = None) -> str:
    """The OpenQASM 3 text of ``circuit`` with ``bindings`` substituted (see module docstring)."""
    values = dict(bindings or {})
    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";', f"qubit[{circuit.num_qubits}] q;"]
    if circuit.num_clbits:
        lines.append(f'bit[{circuit.num_clbits}] c = "{"0" * circuit.num_clbits}";')
    lines += _statements(circuit.operations, values, "")
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return repr(float(value))


def _modifier(modifier: Modifier, values: Mapping[str, float]) -> str:
    argument = evaluate_param(modifier.argument, values)
    if modifier.kind in ("ctrl", "negctrl"):
        count = int(argument)
        return modifier.kind if count == 1 else f"{modifier.kind}({count})"
    return "inv" if modifier.kind == "inv" else f"pow({_number(argument)})"


def _gate(op: GateOp, values: Mapping[str, float]) -> str:
    prefix = "".join(f"{_modifier(m, values)} @ " for m in op.modifiers)
    params = ", ".join(_number(evaluate_param(p, values)) for p in op.params)
    qubits = ", ".join(f"q[{q}]" for q in op.qubits)
    call = f"{op.name}({params})" if op.params else op.name
    return f"{prefix}{call} {qubits};" if qubits else f"{prefix}{call};"


def _condition(condition: Condition) -> str:
    return " && ".join(
        f"c[{clbit}] == {'true' if condition.value >> i & 1 else 'false'}"
        for i, clbit in enumerate(condition.clbits)
    )


def _statements(operations: Iterable[Operation], values: Mapping[str, float],
                indent: str) -> list[str]:
    lines: list[str] = []
    for op in operations:
        if isinstance(op, GateOp):
            lines.append(indent + _gate(op, values))
        elif isinstance(op, MeasureOp):
            lines.append(f"{indent}c[{op.clbit}] = measure q[{op.qubit}];")
        elif isinstance(op, ResetOp):
            lines.append(f"{indent}reset q[{op.qubit}];")
        elif isinstance(op, BarrierOp):
            targets = ", ".join(f"q[{q}]" for q in op.qubits) or "q"
            lines.append(f"{indent}barrier {targets};")
        elif isinstance(op, IfOp):
            lines.append(f"{indent}if ({_condition(op.condition)}) {{")
            lines += _statements(op.body, values, indent + "  ")
            if op.else_body:
                lines.append(f"{indent}}} else {{")
                lines += _statements(op.else_body, values, indent + "  ")
            lines.append(f"{indent}}}")
    return lines
