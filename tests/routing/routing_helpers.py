"""Circuits and specs shared by the routing tests (circuits from the conformance kit)."""

from __future__ import annotations

from typing import Any

from hal_workflow.testing import circuits

BELL = circuits.bell()[0]
GHZ3 = circuits.ghz(3)[0]
FLIP = circuits.rotation("theta")
"""ry(theta): theta = 0 always reads 0, theta = pi always reads 1 (exact on noiseless engines)."""


def ghz(n: int) -> str:
    return circuits.ghz(n)[0]


def iqm_spec(server: Any, **options: Any) -> dict[str, Any]:
    return {"name": "iqm", "url": server.url, "seed": 3, **options}


IBM = {name: {"name": "ibm", "backend": name, "seed": 5}
       for name in ("fake_manila", "fake_lima", "fake_belem", "fake_quito")}
