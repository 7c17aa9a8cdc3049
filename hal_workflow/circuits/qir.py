"""QIR base profile: export a lowered circuit, and import base-profile QIR as a Circuit.

Export writes the LLVM text itself rather than using ``pyqir``'s builder, because that builder
emits QIR 2.0 (``define void @main()``, no output recording), which the DDSIM QDMI device
rejects. We emit what ``mqt-cc --emit=qir-base`` produces and DDSIM runs: ``define i64
@main()`` with the ``entry_point`` attributes, ``__quantum__rt__initialize``, the gates, the
measurements, ``array_record_output`` plus one ``result_record_output`` per classical bit (bit
``i`` is result ``i``), ``ret i64 0``, opaque pointers, and ``qir_major_version`` 1.

Gates go out under the QIS names that mqt-core's QIR runtime implements; modifiers are
resolved first (``inv`` to adjoints or negated angles, integer ``pow`` to repetition, ``ctrl``
to the controlled gates that exist, ``negctrl`` to X-conjugated controls). Anything the base
profile cannot say (classical control, reset, gates after a measurement, unbound parameters)
raises :class:`CircuitError`.

Import parses with ``pyqir`` and reads the entry point's calls back into OpenQASM 3.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NoReturn

from hal_workflow.circuits.gates import STANDARD_GATES
from hal_workflow.circuits.ir import (
    BarrierOp,
    Expr,
    GateOp,
    LoweredCircuit,
    MeasureOp,
    Modifier,
    evaluate_param,
)
from hal_workflow.contract.errors import CircuitError, ConfigurationError

__all__ = ["qasm_from_qir", "qir_from_lowered"]

# A gate in the QIS vocabulary below: (name, angles, qubits).
_Native = tuple[str, tuple[float, ...], tuple[int, ...]]
_ExportFail = Callable[[int | None, str], NoReturn]  # (line, detail)
_ImportFail = Callable[[str], NoReturn]

# name -> QIS function suffix; angles first, then qubits, as in the QIR specification.
_QIS: dict[str, str] = {
    "x": "x__body", "y": "y__body", "z": "z__body", "h": "h__body",
    "s": "s__body", "sdg": "s__adj", "t": "t__body", "tdg": "t__adj",
    "sx": "sx__body", "sxdg": "sx__adj",
    "rx": "rx__body", "ry": "ry__body", "rz": "rz__body", "p": "p__body", "u3": "u3__body",
    "cx": "cnot__body", "cy": "cy__body", "cz": "cz__body", "ch": "ch__body",
    "swap": "swap__body", "ccx": "ccx__body", "cswap": "cswap__body",
    "cp": "cp__body", "crx": "crx__body", "cry": "cry__body", "crz": "crz__body",
    "cu3": "cu3__body",
}
_ARITY: dict[str, tuple[int, int]] = {
    **{name: STANDARD_GATES[name] for name in _QIS if name in STANDARD_GATES},
    "sxdg": (0, 1), "cu3": (3, 2), "gphase": (1, 0),
}
_INVERSE_NAME = {"s": "sdg", "sdg": "s", "t": "tdg", "tdg": "t", "sx": "sxdg", "sxdg": "sx"}
_SELF_INVERSE = frozenset({"x", "y", "z", "h", "cx", "cy", "cz", "ch", "swap", "ccx", "cswap"})
_NEGATED = frozenset({"rx", "ry", "rz", "p", "cp", "crx", "cry", "crz", "gphase"})
_CONTROLLED = {
    "x": "cx", "cx": "ccx", "y": "cy", "z": "cz", "h": "ch", "swap": "cswap", "p": "cp",
    "rx": "crx", "ry": "cry", "rz": "crz", "u3": "cu3", "gphase": "p",
}


def _pyqir() -> ModuleType:
    try:
        import pyqir
    except ImportError as exc:
        raise ConfigurationError(
            "QIR support needs pyqir: pip install 'hal-workflow[qir]'") from exc
    return pyqir


# -- export -----------------------------------------------------------------------------------


def qir_from_lowered(circuit: LoweredCircuit, source: str | None = None) -> str:
    """Base-profile QIR text for ``circuit`` (see the module docstring)."""
    calls: list[str] = []
    declared: dict[str, str] = {}
    measured: dict[int, int | None] = {}  # qubit -> line of its measurement
    written: set[int] = set()

    def fail(line: int | None, detail: str) -> NoReturn:
        raise CircuitError(f"cannot export to the QIR base profile: {detail}", source=source,
                           line=line)

    for op in circuit.operations:
        if isinstance(op, BarrierOp):
            continue
        if isinstance(op, MeasureOp):
            if op.qubit in measured:
                fail(op.line, f"qubit {op.qubit} is measured twice")
            if op.clbit in written:
                fail(op.line, f"classical bit {op.clbit} is written twice")
            measured[op.qubit] = op.line
            written.add(op.clbit)
            declared["mz__body"] = "declare void @__quantum__qis__mz__body(ptr, ptr writeonly) #1"
            calls.append(f"call void @__quantum__qis__mz__body({_ptr(op.qubit)}, "
                         f"{_ptr(op.clbit)})")
            continue
        if not isinstance(op, GateOp):
            kind = "reset" if type(op).__name__ == "ResetOp" else "classically controlled code"
            fail(op.line, f"{kind} is not part of the base profile")
        for name, angles, qubits in _natives(op, fail):
            after = [q for q in qubits if q in measured]
            if after:
                fail(op.line, f"gate '{op.name}' acts on qubit {after[0]} after it was measured "
                              "(only final measurements are allowed)")
            function = _QIS[name]
            args = [f"double {_double(a)}" for a in angles] + [_ptr(q) for q in qubits]
            declared[function] = (f"declare void @__quantum__qis__{function}("
                                  f"{', '.join(['double'] * len(angles) + ['ptr'] * len(qubits))})")
            calls.append(f"call void @__quantum__qis__{function}({', '.join(args)})")

    results = circuit.num_clbits
    calls.append(f"call void @__quantum__rt__array_record_output(i64 {results}, ptr null)")
    calls += [f"call void @__quantum__rt__result_record_output({_ptr(i)}, ptr null)"
              for i in range(results)]
    declarations = [
        "declare void @__quantum__rt__initialize(ptr)",
        *declared.values(),
        "declare void @__quantum__rt__array_record_output(i64, ptr)",
        "declare void @__quantum__rt__result_record_output(ptr, ptr)",
    ]
    body = "\n".join(f"  {call}" for call in ["call void @__quantum__rt__initialize(ptr null)",
                                               *calls, "ret i64 0"])
    return "\n".join([
        "; ModuleID = 'hal_workflow'",
        'source_filename = "hal_workflow"',
        "",
        "define i64 @main() #0 {",
        "entry:",
        body,
        "}",
        "",
        "\n\n".join(declarations),
        "",
        'attributes #0 = { "entry_point" "output_labeling_schema" "qir_profiles"="base_profile" '
        f'"required_num_qubits"="{circuit.num_qubits}" "required_num_results"="{results}" }}',
        'attributes #1 = { "irreversible" }',
        "",
        "!llvm.module.flags = !{!0, !1, !2, !3}",
        "",
        '!0 = !{i32 1, !"qir_major_version", i32 1}',
        '!1 = !{i32 7, !"qir_minor_version", i32 0}',
        '!2 = !{i32 1, !"dynamic_qubit_management", i1 false}',
        '!3 = !{i32 1, !"dynamic_result_management", i1 false}',
        "",
    ])


def _ptr(index: int) -> str:
    return "ptr null" if index == 0 else f"ptr inttoptr (i64 {index} to ptr)"


def _double(value: float) -> str:
    # LLVM's exact hexadecimal form of an IEEE double
    return "0x" + struct.pack(">d", value).hex().upper()


def _natives(op: GateOp, fail: _ExportFail) -> list[_Native]:
    """``op`` as gates of the QIS vocabulary, modifiers resolved; global phases dropped."""
    if any(isinstance(p, Expr) for p in op.params) or \
            any(isinstance(m.argument, Expr) for m in op.modifiers):
        fail(op.line, f"gate '{op.name}' has unbound parameters; bind them first")
    angles = tuple(evaluate_param(p, {}) for p in op.params)
    num_qubits = STANDARD_GATES[op.name][1]
    end = len(op.qubits) - num_qubits
    sequence = _base(op.name, angles, op.qubits[end:])
    for modifier in reversed(op.modifiers):
        if modifier.kind == "inv":
            sequence = [_invert(g) for g in reversed(sequence)]
        elif modifier.kind == "pow":
            exponent = float(modifier.argument)  # type: ignore[arg-type]
            if not exponent.is_integer():
                fail(op.line, f"pow({exponent}) on gate '{op.name}' has no QIS equivalent")
            if exponent < 0:
                sequence = [_invert(g) for g in reversed(sequence)]
            sequence = sequence * abs(int(exponent))
        else:
            count = int(modifier.argument)  # type: ignore[arg-type]
            wires = op.qubits[end - count:end]
            end -= count
            sequence = _control(sequence, wires, modifier, op, fail)
    return [g for g in sequence if g[2]]  # a bare global phase does not change measurements


def _base(name: str, angles: tuple[float, ...], qubits: tuple[int, ...]) -> list[_Native]:
    if name in ("u1",):
        return [("p", angles, qubits)]
    if name == "U":
        return [("u3", angles, qubits)]
    if name == "u2":
        return [("u3", (math.pi / 2, *angles), qubits)]
    if name == "cu":  # cu(θ, φ, λ, γ) = p(γ) on the control, then controlled-U(θ, φ, λ)
        return [("p", angles[3:], qubits[:1]), ("cu3", angles[:3], qubits)]
    if name == "id":
        return []
    return [(name, angles, qubits)]


def _invert(gate: _Native) -> _Native:
    name, angles, qubits = gate
    if name in _SELF_INVERSE:
        return gate
    if name in _INVERSE_NAME:
        return _INVERSE_NAME[name], angles, qubits
    if name in _NEGATED:
        return name, tuple(-a for a in angles), qubits
    theta, phi, lam = angles  # u3 and cu3: U(θ, φ, λ)^-1 = U(-θ, -λ, -φ)
    return name, (-theta, -lam, -phi), qubits


def _control(sequence: Sequence[_Native], wires: tuple[int, ...], modifier: Modifier,
             op: GateOp, fail: _ExportFail) -> list[_Native]:
    controlled = list(sequence)
    for wire in reversed(wires):
        for i, (name, angles, qubits) in enumerate(controlled):
            if name not in _CONTROLLED:
                fail(op.line, f"controlled '{name}' (from gate '{op.name}') has no QIS "
                              "equivalent")
            controlled[i] = (_CONTROLLED[name], angles, (wire, *qubits))
    if modifier.kind == "negctrl":
        flips: list[_Native] = [("x", (), (wire,)) for wire in wires]
        controlled = flips + controlled + flips
    return controlled


# -- import -----------------------------------------------------------------------------------

# QIS function -> (OpenQASM gate or statement, angles, qubits)
_FROM_QIS: dict[str, tuple[str, int, int]] = {
    **{suffix: (name, *_ARITY[name]) for name, suffix in _QIS.items()},
    "cx__body": ("cx", 0, 2),
    "sx__adj": ("inv @ sx", 0, 1),
    "cu3__body": ("cu3", 3, 2),
    "u2__body": ("u2", 2, 1),
    "i__body": ("id", 0, 1),
    "gphase__body": ("gphase", 1, 0),
    "mz__body": ("measure", 0, 1),
    "m__body": ("measure", 0, 1),
    "reset__body": ("reset", 0, 1),
    "barrier__body": ("barrier", 0, 0),
}
_IGNORED_RUNTIME = frozenset({
    "__quantum__rt__initialize", "__quantum__rt__array_record_output",
    "__quantum__rt__result_record_output", "__quantum__rt__tuple_record_output",
})


def qasm_from_qir(ir: str | bytes, source: str | None = None) -> str:
    """OpenQASM 3 text for a base-profile QIR module (LLVM text, or bitcode bytes)."""
    pyqir = _pyqir()

    def fail(detail: str) -> NoReturn:
        raise CircuitError(detail, source=source)

    try:
        context = pyqir.Context()
        if isinstance(ir, bytes):
            module = pyqir.Module.from_bitcode(context, ir)
        else:
            module = pyqir.Module.from_ir(context, ir, source or "qir")
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CircuitError(f"invalid QIR: {first}", source=source) from exc
    entry_points = [f for f in module.functions if pyqir.is_entry_point(f)]
    if len(entry_points) != 1:
        fail(f"QIR module must have exactly one entry point, found {len(entry_points)}")
    entry = entry_points[0]
    num_qubits = pyqir.required_num_qubits(entry) or 0
    num_results = pyqir.required_num_results(entry) or 0

    lines = ["OPENQASM 3.0;", 'include "stdgates.inc";']
    if num_qubits:
        lines.append(f"qubit[{num_qubits}] q;")
    if num_results:
        lines.append(f"bit[{num_results}] c;")
    for block in entry.basic_blocks:
        for instruction in block.instructions:
            opcode = instruction.opcode
            if opcode == pyqir.Opcode.CALL:
                statement = _statement(pyqir, instruction, num_qubits, num_results, fail)
                if statement:
                    lines.append(statement)
            elif opcode == pyqir.Opcode.BR and len(instruction.operands) == 1:
                continue  # unconditional jumps chain the blocks of straight-line code
            elif opcode != pyqir.Opcode.RET:
                fail(f"unsupported QIR instruction '{opcode}' (only straight-line base-profile "
                     "code can be imported)")
    return "\n".join(lines) + "\n"


def _statement(pyqir: ModuleType, call: Any, num_qubits: int, num_results: int,
               fail: _ImportFail) -> str | None:
    name = call.callee.name
    if name in _IGNORED_RUNTIME:
        return None
    entry = _FROM_QIS.get(name.removeprefix("__quantum__qis__"))
    if not name.startswith("__quantum__qis__") or entry is None:
        fail(f"unsupported QIR call @{name}")
    gate, num_angles, num_qubit_args = entry
    args = list(call.args)
    if gate == "barrier":
        return None
    expected = num_angles + num_qubit_args + (1 if gate == "measure" else 0)
    if len(args) != expected:
        fail(f"@{name} takes {expected} arguments, got {len(args)}")
    angles = []
    for arg in args[:num_angles]:
        if not isinstance(arg, pyqir.FloatConstant):
            fail(f"@{name} needs constant angles (dynamic values are not base profile)")
        angles.append(arg.value)
    qubits = [_static_id(pyqir, arg, num_qubits, "qubit", name, fail)
              for arg in args[num_angles:num_angles + num_qubit_args]]
    operands = ", ".join(f"q[{q}]" for q in qubits)
    if gate == "measure":
        result = _static_id(pyqir, args[-1], num_results, "result", name, fail)
        return f"c[{result}] = measure {operands};"
    if gate == "reset":
        return f"reset {operands};"
    if gate == "cu3":
        gate, angles = "cu", [*angles, 0.0]
    params = f"({', '.join(repr(float(a)) for a in angles)})" if angles else ""
    return f"{gate}{params} {operands};" if operands else f"{gate}{params};"


def _static_id(pyqir: ModuleType, value: Any, limit: int, kind: str, call: str,
               fail: _ImportFail) -> int:
    index = pyqir.ptr_id(value)
    if index is None:
        fail(f"@{call} uses a dynamic {kind}; only static {kind} ids are supported")
    if not 0 <= index < limit:
        fail(f"@{call} uses {kind} {index}, but the entry point declares {limit}")
    return int(index)
