"""The shared validation checks adapters use for shots, width and parameter bindings."""

from __future__ import annotations

import pytest

from hal_workflow.compilation.checks import (
    binding_issues,
    bound_values,
    shots_issues,
    width_issues,
)
from hal_workflow.contract import ValidationCode, ValidationError


@pytest.mark.parametrize("shots", [None, 1, 1000])
def test_shots_in_range(shots: int | None) -> None:
    assert shots_issues(shots, 1000) == []


@pytest.mark.parametrize("shots", [0, -1, 1001, 2.5, True, "10"])
def test_shots_out_of_range(shots: object) -> None:
    (issue,) = shots_issues(shots, 1000)  # type: ignore[arg-type]
    assert issue.code is ValidationCode.SHOTS_OUT_OF_RANGE and "1000" in issue.message


def test_width() -> None:
    assert width_issues(5, 5, "dev") == []
    (issue,) = width_issues(6, 5, "dev")
    assert issue.code is ValidationCode.TOO_MANY_QUBITS
    assert "6" in issue.message and "dev has 5" in issue.message


def test_bindings() -> None:
    assert binding_issues(("a", "b"), {"a": 1, "b": 2}) == []
    issues = binding_issues(("a", "b"), {"a": 1, "z": 3})
    assert [i.code for i in issues] == [ValidationCode.UNBOUND_PARAMETERS] * 2
    assert "b" in issues[0].message and "z" in issues[1].message
    assert bound_values(("b", "a"), {"a": 1, "b": 2.5}) == [2.5, 1.0]
    assert bound_values((), None) == []
    with pytest.raises(ValidationError, match="no value for input"):
        bound_values(("a",), None, "dev")
    with pytest.raises(ValidationError, match="must be a number"):
        bound_values(("a",), {"a": "x"})
