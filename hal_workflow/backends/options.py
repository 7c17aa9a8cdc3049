"""Checks on backend spec options shared by every adapter."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from hal_workflow.contract.errors import ConfigurationError


def check_options(
    spec: Mapping[str, Any], known: Collection[str], backend: str, hint: str | None = None
) -> None:
    """Raise ``ConfigurationError`` naming every key of ``spec`` outside ``known``.

    ``"name"`` is always allowed. The message lists the known options, or ``hint`` instead.
    """
    unknown = sorted(set(spec) - set(known) - {"name"})
    if unknown:
        detail = hint or "known: " + ", ".join(sorted(set(known) - {"name"}))
        raise ConfigurationError(
            f"{backend}: unknown option(s) {', '.join(map(repr, unknown))}; {detail}"
        )
