"""Qrisp on HAL backends (extra ``qrisp``): :class:`~hal_workflow.qrisp.backend.HalQrispBackend`.

Importing this package does not import Qrisp; the name loads on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["HalQrispBackend"]


def __getattr__(name: str) -> Any:
    if name != "HalQrispBackend":
        raise AttributeError(f"module 'hal_workflow.qrisp' has no attribute {name!r}")
    return getattr(import_module("hal_workflow.qrisp.backend"), name)
