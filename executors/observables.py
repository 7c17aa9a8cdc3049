"""Expectation values of Pauli sums: from measured counts, or exactly from a statevector.

An observable is anything :func:`~hal_workflow.circuits.observables.as_observable` reads (a
:class:`~hal_workflow.circuits.observables.PauliSum`, ``{label: coeff}``, ``(label, coeff)``
pairs, a Qiskit ``SparsePauliOp``): the one observable type of the project, shared with the
simulator's ``expectation`` and ``HalEstimator``, with the same term order. A label has one
character ``I``/``X``/``Y``/``Z`` per qubit, qubit 0 *rightmost* (Qiskit's order, like the
counts keys), so ``"IZ"`` is Z on qubit 0 and ``"XX"`` is X on qubits 0 and 1.

Measuring takes one circuit per *basis*: terms that agree qubit by qubit (``ZI``, ``IZ``,
``ZZ``) share one, so H2's five terms need two circuits (Z and X). :func:`in_basis` appends the
basis change and the measurements to the circuit's text; the estimate then carries shot
noise of order ``1/sqrt(shots)`` (:func:`basis_statistics` gives its variance). The exact route
asks the backend's ``statevector`` extension instead (see
:func:`hal_workflow.executors._tasks.run_estimates`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from hal_workflow.circuits import Circuit
from hal_workflow.circuits.ir import GateOp, MeasureOp
from hal_workflow.circuits.observables import Grouping, PauliSum, as_observable
from hal_workflow.contract.errors import CircuitError, ValidationError
from hal_workflow.contract.types import ValidationCode, ValidationIssue

__all__ = [
    "Grouping",
    "PauliSum",
    "as_observable",
    "basis_statistics",
    "check_observable",
    "estimate_from_counts",
    "estimate_with_variance",
    "group_terms",
    "in_basis",
    "parity_expectation",
]

_ROTATION = {"X": ["h"], "Y": ["sdg", "h"], "Z": [], "I": []}


def check_observable(observable: Any, num_qubits: int) -> PauliSum:
    """``observable`` as a :class:`PauliSum` on ``num_qubits`` qubits (``ValidationError``
    naming the term otherwise)."""
    return as_observable(observable, num_qubits)


def group_terms(observable: Any) -> Grouping:
    """Greedy qubit-wise commuting groups: a term joins the first basis it agrees with."""
    return as_observable(observable).grouping()


_SCALAR_QUBIT = re.compile(r"^\s*qubit\s+([A-Za-z_]\w*)\s*;", re.MULTILINE)


def _qubit_names(circuit: Circuit) -> list[str]:
    """How the program names qubit ``0, 1, ...``: ``q[i]``, a scalar ``qubit a;`` as ``a``,
    or ``$i`` in a program on physical qubits (a transpiled circuit)."""
    lowered = circuit.lowered
    if not lowered.qubit_registers:
        return [f"${i}" for i in range(lowered.num_qubits)]
    scalars = set(_SCALAR_QUBIT.findall(circuit.qasm))
    return [name if name in scalars and size == 1 else f"{name}[{i}]"
            for name, _, size in lowered.qubit_registers for i in range(size)]


def in_basis(circuit: Circuit, basis: str) -> Circuit:
    """``circuit`` followed by the rotation into ``basis`` and a measurement of every qubit.

    The measurements go to a new register after any existing bits, so qubit ``i`` lands in
    classical bit ``circuit.num_clbits + i``. The circuit itself must not measure.
    """
    lowered = circuit.lowered
    if any(isinstance(op, MeasureOp) for op in lowered.operations):
        raise CircuitError("an expectation value needs a circuit without measurements; "
                           "the executors add the measurements for each basis")
    names = _qubit_names(circuit)
    qasm2 = circuit.qasm.lstrip().upper().startswith("OPENQASM 2")
    n = lowered.num_qubits
    lines = [f"creg hal_m[{n}];" if qasm2 else f"bit[{n}] hal_m;"]
    operations: list[Any] = list(lowered.operations)
    first_line = circuit.qasm.rstrip().count("\n") + 2  # of the "bit[n] hal_m;" line
    for qubit, letter in enumerate(reversed(basis)):
        for gate in _ROTATION[letter]:
            lines.append(f"{gate} {names[qubit]};")
            operations.append(GateOp(gate, (qubit,), line=first_line + len(lines) - 1))
    for qubit in range(n):
        lines.append(f"measure {names[qubit]} -> hal_m[{qubit}];" if qasm2
                     else f"hal_m[{qubit}] = measure {names[qubit]};")
        operations.append(MeasureOp(qubit, lowered.num_clbits + qubit,
                                    line=first_line + len(lines) - 1))
    text = circuit.qasm.rstrip() + "\n" + "\n".join(lines) + "\n"
    # the text is what remote backends parse; here the IR is extended instead of parsing the
    # program again (ANTLR takes ~0.1 s for a 200-gate program, once per basis)
    measured = replace(lowered, num_clbits=lowered.num_clbits + n,
                       operations=tuple(operations),
                       clbit_registers=(*lowered.clbit_registers,
                                        ("hal_m", lowered.num_clbits, n)))
    return Circuit._restore(text, None, None, measured)


def _no_shots() -> ValidationError:
    return ValidationError([ValidationIssue(ValidationCode.SHOTS_OUT_OF_RANGE,
                                            "no shots to estimate from")])


def parity_expectation(counts: Mapping[str, int], label: str, first_clbit: int = 0) -> float:
    """``<label>`` from counts measured in a basis that agrees with ``label``.

    Qubit ``i`` was measured into classical bit ``first_clbit + i``.
    """
    mean, _ = basis_statistics(counts, [label], [1.0], first_clbit)
    return mean


def basis_statistics(counts: Mapping[str, int], labels: Sequence[str],
                     coefficients: Sequence[float], first_clbit: int = 0) -> tuple[float, float]:
    """Mean of ``sum_k c_k P_k`` over the shots of one basis, and the variance of that mean.

    Each shot gives one value of the sum (every ``P_k`` agrees with the basis), so the
    variance accounts for the correlation between terms read from the same shots.
    """
    total = sum(counts.values())
    if total == 0:
        raise _no_shots()
    outcomes = np.fromiter((int(key, 2) if key else 0 for key in counts), dtype=np.int64,
                           count=len(counts))
    weights = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
    values = np.zeros(len(counts))
    for label, coefficient in zip(labels, coefficients, strict=True):
        support = sum(1 << (first_clbit + i) for i, p in enumerate(reversed(label)) if p != "I")
        values += coefficient * (1.0 - 2.0 * (np.bitwise_count(outcomes & support) & 1))
    mean = float(weights @ values / total)
    variance = float(weights @ (values - mean) ** 2 / total)
    return mean, variance / total


def estimate_from_counts(observable: Any, grouping: Grouping,
                         counts_per_basis: Sequence[Mapping[str, int]], first_clbit: int = 0
                         ) -> float:
    """``sum_k c_k <P_k>`` with each ``<P_k>`` read from its basis's counts."""
    return estimate_with_variance(observable, grouping, counts_per_basis, first_clbit)[0]


def estimate_with_variance(observable: Any, grouping: Grouping,
                           counts_per_basis: Sequence[Mapping[str, int]], first_clbit: int = 0
                           ) -> tuple[float, float]:
    """The estimate and its variance (bases are measured independently, so theirs add)."""
    pauli = as_observable(observable)
    mean = variance = 0.0
    for basis, counts in enumerate(counts_per_basis):
        members = [k for k, b in enumerate(grouping.term_basis) if b == basis]
        if not members:
            continue
        m, v = basis_statistics(counts, [pauli.terms[k][0] for k in members],
                                [pauli.terms[k][1] for k in members], first_clbit)
        mean += m
        variance += v
    return mean, variance
