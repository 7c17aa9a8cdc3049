"""Expectation values of Pauli sums: from measured counts, or exactly from a statevector.

An observable is a sequence of ``(coefficient, label)`` terms; a label has one character
``I``/``X``/``Y``/``Z`` per qubit, qubit 0 *rightmost* (Qiskit's order, like the counts keys),
so ``"IZ"`` is Z on qubit 0 and ``"XX"`` is X on qubits 0 and 1.

Measuring takes one circuit per *basis*: terms that agree qubit by qubit (``ZI``, ``IZ``,
``ZZ``) share one, so H2's five terms need two circuits (Z and X). :func:`in_basis` appends the
basis change and the measurements to the circuit's text; the estimate then carries shot
noise of order ``1/sqrt(shots)``. The exact route asks the backend's ``statevector``
extension instead (see :func:`hal_workflow.executors._tasks.run_estimates`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hal_workflow.circuits import Circuit
from hal_workflow.circuits.ir import MeasureOp
from hal_workflow.contract.errors import CircuitError, ConfigurationError

PauliSum = Sequence[tuple[float, str]]

_ROTATION = {"X": ["h"], "Y": ["sdg", "h"], "Z": [], "I": []}


def check_observable(observable: PauliSum, num_qubits: int) -> list[tuple[float, str]]:
    """The terms as a list, after checking every label's letters and length."""
    terms = []
    for coefficient, label in observable:
        label = label.upper()
        if len(label) != num_qubits or set(label) - set("IXYZ"):
            raise ConfigurationError(
                f"Pauli label {label!r} must have {num_qubits} letters from I, X, Y, Z"
            )
        terms.append((float(coefficient), label))
    return terms


@dataclass(frozen=True)
class Grouping:
    """Measurement bases for an observable and, per term, the basis it is read from."""

    bases: tuple[str, ...]
    term_basis: tuple[int, ...]


def group_terms(terms: Sequence[tuple[float, str]]) -> Grouping:
    """Greedy qubit-wise commuting groups: a term joins the first basis it agrees with."""
    bases: list[list[str]] = []
    term_basis = []
    for _, label in terms:
        for index, basis in enumerate(bases):
            if all(p == "I" or b in ("I", p) for p, b in zip(label, basis, strict=True)):
                bases[index] = [b if p == "I" else p for p, b in zip(label, basis, strict=True)]
                term_basis.append(index)
                break
        else:
            bases.append(list(label))
            term_basis.append(len(bases) - 1)
    return Grouping(tuple("".join(b).replace("I", "Z") for b in bases), tuple(term_basis))


def in_basis(circuit: Circuit, basis: str) -> Circuit:
    """``circuit`` followed by the rotation into ``basis`` and a measurement of every qubit.

    The measurements go to a new register after any existing bits, so qubit ``i`` lands in
    classical bit ``circuit.num_clbits + i``. The circuit itself must not measure.
    """
    lowered = circuit.lowered
    if any(isinstance(op, MeasureOp) for op in lowered.operations):
        raise CircuitError("an expectation value needs a circuit without measurements; "
                           "the executors add the measurements for each basis")
    names = [f"{name}[{i}]" for name, _, size in lowered.qubit_registers for i in range(size)]
    qasm2 = circuit.qasm.lstrip().upper().startswith("OPENQASM 2")
    n = lowered.num_qubits
    lines = [f"creg hal_m[{n}];" if qasm2 else f"bit[{n}] hal_m;"]
    for qubit, letter in enumerate(reversed(basis)):
        lines += [f"{gate} {names[qubit]};" for gate in _ROTATION[letter]]
    for qubit in range(n):
        lines.append(f"measure {names[qubit]} -> hal_m[{qubit}];" if qasm2
                     else f"hal_m[{qubit}] = measure {names[qubit]};")
    return Circuit.from_qasm(circuit.qasm.rstrip() + "\n" + "\n".join(lines) + "\n")


def parity_expectation(counts: Mapping[str, int], label: str, first_clbit: int = 0) -> float:
    """``<label>`` from counts measured in a basis that agrees with ``label``.

    Qubit ``i`` was measured into classical bit ``first_clbit + i``.
    """
    support = [first_clbit + i for i, p in enumerate(reversed(label)) if p != "I"]
    total = sum(counts.values())
    if total == 0:
        raise ValueError("no shots to estimate from")
    signed = 0
    for key, n in counts.items():
        ones = sum(key[len(key) - 1 - bit] == "1" for bit in support)
        signed += -n if ones % 2 else n
    return signed / total


def estimate_from_counts(terms: Sequence[tuple[float, str]], grouping: Grouping,
                         counts_per_basis: Sequence[Mapping[str, int]], first_clbit: int = 0
                         ) -> float:
    """``sum_k c_k <P_k>`` with each ``<P_k>`` read from its basis's counts."""
    return sum(
        coefficient * parity_expectation(counts_per_basis[basis], label, first_clbit)
        for (coefficient, label), basis in zip(terms, grouping.term_basis, strict=True)
    )
