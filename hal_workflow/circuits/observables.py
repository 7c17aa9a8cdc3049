"""The one observable type of hal-workflow: a real-weighted sum of Pauli strings.

:class:`PauliSum` is what the simulator's exact ``expectation``, the executors' measured
``estimate`` and the Qiskit ``HalEstimator`` all take, with the same term order (the order
given) and the same label convention: one character ``I``/``X``/``Y``/``Z`` per qubit, qubit 0
*rightmost* (Qiskit's order, like counts keys), so ``"IZ"`` is Z on qubit 0.

:func:`as_observable` accepts a ``PauliSum``, a label (``"XZ"``), a mapping ``{label: coeff}``,
a sequence of ``(label, coeff)`` pairs (``(coeff, label)`` pairs are read too), or any object
with ``to_list()`` (Qiskit's ``SparsePauliOp``) or ``to_label()`` (a ``Pauli``), without
importing Qiskit. Anything else, a label of the wrong length or with other letters, or a
non-Hermitian sum (a coefficient with an imaginary part) raises
:class:`~hal_workflow.contract.errors.ValidationError` naming the term.

Measuring takes one circuit per *basis*: terms that agree qubit by qubit (``ZI``, ``IZ``,
``ZZ``) share one (:meth:`PauliSum.grouping`).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hal_workflow.contract.errors import ValidationError
from hal_workflow.contract.types import ValidationCode, ValidationIssue

__all__ = ["BASIS_SEED_STRIDE", "Grouping", "PauliSum", "as_observable", "group_labels"]

BASIS_SEED_STRIDE = 1 << 32
"""Measured estimates from basis circuits sample element ``i`` of basis ``k`` with seed
``seed + k * stride + i``: each basis its own stream (so their variances add), independent of
chunking. (The simulator, which samples every basis from one state, draws all bases of element
``i`` from the one stream ``seed + i``: the same distribution, other samples.)"""

_HERMITIAN_TOL = 1e-10
_PHASES = {"": 1, "-": -1, "i": 1j, "-i": -1j, "+": 1, "+i": 1j}
_PREFIXED = re.compile(r"^(?P<phase>[+-]?i?)(?P<body>[IXYZ]+)$")  # Pauli("-iXZ").to_label()


def _invalid(message: str, code: ValidationCode = ValidationCode.UNSUPPORTED_FEATURE
             ) -> ValidationError:
    return ValidationError([ValidationIssue(code, message)])


@dataclass(frozen=True)
class Grouping:
    """Measurement bases of an observable and, per term, the basis it is read from.

    A basis has one letter per qubit (``X``, ``Y`` or ``Z``; qubit 0 rightmost).
    """

    bases: tuple[str, ...]
    term_basis: tuple[int, ...]


def group_labels(labels: Iterable[str]) -> Grouping:
    """Greedy qubit-wise commuting groups: a label joins the first basis it agrees with."""
    bases: list[list[str]] = []
    term_basis = []
    for label in labels:
        for index, basis in enumerate(bases):
            if all(p == "I" or b in ("I", p) for p, b in zip(label, basis, strict=True)):
                bases[index] = [b if p == "I" else p for p, b in zip(label, basis, strict=True)]
                term_basis.append(index)
                break
        else:
            bases.append(list(label))
            term_basis.append(len(bases) - 1)
    return Grouping(tuple("".join(b).replace("I", "Z") for b in bases), tuple(term_basis))


@dataclass(frozen=True)
class PauliSum:
    """``sum_k coeff_k P_k`` over ``num_qubits`` qubits; ``terms`` are ``(label, coeff)``."""

    terms: tuple[tuple[str, float], ...]
    num_qubits: int

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label, _ in self.terms)

    @property
    def coefficients(self) -> np.ndarray:
        return np.array([c for _, c in self.terms], dtype=np.float64)

    def grouping(self) -> Grouping:
        """Qubit-wise commuting measurement bases of the terms (see :func:`group_labels`)."""
        return group_labels(self.labels)

    def masks(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per term: the X mask, Z mask (bit ``q`` = qubit ``q``) and number of ``Y``s."""
        xs, zs, ys = [], [], []
        for label, _ in self.terms:
            x = z = y = 0
            for q, ch in enumerate(reversed(label)):
                if ch in "XY":
                    x |= 1 << q
                if ch in "ZY":
                    z |= 1 << q
                y += ch == "Y"
            xs.append(x)
            zs.append(z)
            ys.append(y)
        return (np.array(xs, dtype=np.int64), np.array(zs, dtype=np.int64),
                np.array(ys, dtype=np.int64))

    def to_list(self) -> list[tuple[str, float]]:
        """The terms as ``(label, coeff)`` pairs (``SparsePauliOp.from_list`` reads them)."""
        return list(self.terms)


def _label(raw: Any, num_qubits: int | None, where: str) -> tuple[str, complex]:
    """A checked label and the phase of a prefix such as ``-i`` (Qiskit ``Pauli`` labels)."""
    if not isinstance(raw, str):
        raise _invalid(f"{where}: a Pauli label is a string, got {type(raw).__name__}")
    text = raw.strip()
    match = _PREFIXED.match(text)
    phase_text, body = (match["phase"], match["body"]) if match else ("", text.upper())
    phase = _PHASES.get(phase_text)
    if phase is None or not body or set(body) - set("IXYZ"):
        raise _invalid(f"{where}: Pauli label {raw!r} must be letters from I, X, Y, Z")
    if num_qubits is not None and len(body) != num_qubits:
        raise _invalid(
            f"{where}: Pauli label {raw!r} acts on {len(body)} qubits, the circuit has "
            f"{num_qubits}",
            ValidationCode.TOO_MANY_QUBITS if len(body) > num_qubits
            else ValidationCode.UNSUPPORTED_FEATURE,
        )
    return body, phase


def _coefficient(raw: Any, label: str) -> complex:
    if isinstance(raw, bool) or not isinstance(raw, numbers.Complex):
        raise _invalid(f"coefficient of {label!r} must be a number, got {raw!r}")
    value = complex(raw)
    if not (math.isfinite(value.real) and math.isfinite(value.imag)):
        raise _invalid(f"coefficient of {label!r} must be finite, got {raw!r}")
    return value


def _pairs(observable: Any) -> list[tuple[Any, Any]]:
    """``(label, coeff)`` pairs of any accepted form, before checking."""
    if isinstance(observable, str):
        return [(observable, 1.0)]
    if isinstance(observable, Mapping):
        return list(observable.items())
    to_list = getattr(observable, "to_list", None)
    if callable(to_list) and not isinstance(observable, (list, tuple)):
        return [tuple(pair) for pair in to_list()]  # SparsePauliOp: (label, complex coeff)
    to_label = getattr(observable, "to_label", None)
    if callable(to_label):
        return [(to_label(), 1.0)]  # a Pauli, phase prefix included
    if isinstance(observable, Sequence) or isinstance(observable, np.ndarray):
        pairs = []
        for item in observable:
            if isinstance(item, str):
                pairs.append((item, 1.0))
                continue
            if not (isinstance(item, Sequence) and len(item) == 2):
                raise _invalid(
                    f"an observable term is a (label, coefficient) pair, got {item!r}")
            first, second = item
            pairs.append((second, first) if isinstance(second, str) else (first, second))
        return pairs
    raise _invalid(
        "an observable is a Pauli label, a {label: coeff} mapping, (label, coeff) pairs, a "
        f"SparsePauliOp or a Pauli, not {type(observable).__name__}"
    )


def as_observable(observable: Any, num_qubits: int | None = None) -> PauliSum:
    """``observable`` as a :class:`PauliSum` (see the module docstring for the forms).

    With ``num_qubits``, every label must have that many letters. Terms keep their order;
    repeated labels are kept as separate terms.
    """
    if isinstance(observable, PauliSum):
        if num_qubits is not None and observable.num_qubits != num_qubits:
            raise _invalid(f"the observable acts on {observable.num_qubits} qubits, the "
                           f"circuit has {num_qubits}")
        return observable
    pairs = _pairs(observable)
    if not pairs:
        raise _invalid("the observable has no terms")
    width = num_qubits
    checked: list[tuple[str, complex]] = []
    for index, (raw_label, raw_coeff) in enumerate(pairs):
        label, phase = _label(raw_label, width, f"term {index}")
        width = len(label)
        checked.append((label, phase * _coefficient(raw_coeff, label)))
    totals: dict[str, complex] = {}
    for label, value in checked:
        totals[label] = totals.get(label, 0) + value
    scale = max(1.0, max(abs(v) for v in totals.values()))
    for label, value in totals.items():
        if abs(value.imag) > _HERMITIAN_TOL * scale:
            raise _invalid(
                f"the observable is not Hermitian: the coefficient of {label!r} is {value} "
                "(a Pauli sum is Hermitian only with real coefficients)"
            )
    assert width is not None
    return PauliSum(tuple((label, value.real) for label, value in checked), width)
