"""Validation checks every adapter makes the same way: shots, width and parameter bindings.

Each check returns :class:`ValidationIssue` objects (empty when fine) so ``validate`` can report
every problem at once, and ``submit`` raises them together as one ``ValidationError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hal_workflow.contract.errors import ValidationError
from hal_workflow.contract.types import ValidationCode, ValidationIssue

__all__ = ["binding_issues", "bound_values", "shots_issues", "width_issues"]


def shots_issues(
    shots: int | None, max_shots: int, *, required: bool = False
) -> list[ValidationIssue]:
    """An issue unless ``shots`` is an integer from 1 to ``max_shots``, or None (not given)
    where it is not ``required`` (``validate``; ``submit`` requires it). Booleans, floats
    and text are refused here, up front, rather than failing inside a job."""
    if shots is None and not required:
        return []
    if isinstance(shots, int) and not isinstance(shots, bool) and 1 <= shots <= max_shots:
        return []
    return [ValidationIssue(
        ValidationCode.SHOTS_OUT_OF_RANGE,
        f"shots must be an integer from 1 to {max_shots}, got {shots!r}",
    )]


def width_issues(num_qubits: int, available: int, backend: str) -> list[ValidationIssue]:
    """An issue when a circuit on ``num_qubits`` qubits does not fit ``available`` ones."""
    if num_qubits <= available:
        return []
    return [ValidationIssue(
        ValidationCode.TOO_MANY_QUBITS,
        f"circuit uses {num_qubits} qubits, {backend} has {available}",
    )]


def binding_issues(
    parameters: Sequence[str], binding: Mapping[str, float] | None
) -> list[ValidationIssue]:
    """Issues for inputs of the circuit without a value and for values of unknown names."""
    binding = binding or {}
    issues = []
    missing = [p for p in parameters if p not in binding]
    if missing:
        issues.append(ValidationIssue(
            ValidationCode.UNBOUND_PARAMETERS, f"no value for input(s) {', '.join(missing)}"
        ))
    unknown = sorted(set(binding) - set(parameters))
    if unknown:
        issues.append(ValidationIssue(
            ValidationCode.UNBOUND_PARAMETERS,
            f"unknown input(s) {', '.join(unknown)}; the circuit's inputs are "
            f"{', '.join(parameters) or 'none'}",
        ))
    return issues


def bound_values(
    parameters: Sequence[str], binding: Mapping[str, float] | None, backend: str | None = None
) -> list[float]:
    """The values of ``binding`` in the order of ``parameters``.

    Raises:
        ValidationError: an input has no value, a value names no input, or is not a number.
    """
    binding = binding or {}
    issues = binding_issues(parameters, binding)
    values = []
    for name in parameters:
        if name not in binding:
            continue
        try:
            values.append(float(binding[name]))
        except (TypeError, ValueError):
            issues.append(ValidationIssue(
                ValidationCode.UNBOUND_PARAMETERS,
                f"input {name} must be a number, got {binding[name]!r}",
            ))
    if issues:
        raise ValidationError(issues, backend)
    return values
