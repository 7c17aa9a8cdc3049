"""What the framework integrations (PennyLane, Cirq, Qrisp) share: seeded sweeps and
counts turned back into per-shot rows.

Seeding follows the sweep rule: element ``j`` of a sweep starting at seed ``s`` is sampled
with ``s + j``, whether it goes through the ``batch`` extension or one ``submit`` at a time,
on backends whose calls take a ``seed``; other backends keep their own sampling.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from hal_workflow.contract.backend import Backend
    from hal_workflow.contract.types import ExecutionResult

__all__ = ["counts_to_rows", "run_sweep", "takes_seed"]


def takes_seed(method: Any) -> bool:
    """Whether ``method`` accepts a ``seed`` keyword."""
    try:
        return "seed" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


async def run_sweep(backend: Backend, text: str, bindings: Sequence[Mapping[str, float]],
                    shots: int, seed: int | None, timeout: float | None = None
                    ) -> list[ExecutionResult]:
    """Run ``text`` once per binding (empty bindings: the same circuit again), results in
    order: one ``submit_sweep``/``submit_batch`` call where the backend offers ``batch``,
    else one ``submit`` each; element ``j`` seeded ``seed + j`` (see the module docstring)."""
    batch = backend.extension("batch")
    if batch is not None:
        kwargs = {"seed": seed} if seed is not None and takes_seed(batch.submit_sweep) else {}
        if any(bindings):
            job_ids = await batch.submit_sweep(text, list(bindings), shots, **kwargs)
        else:
            job_ids = await batch.submit_batch([text] * len(bindings), shots, **kwargs)
    else:
        seeded = seed is not None and takes_seed(backend.submit)
        job_ids = [
            await backend.submit(text, shots, dict(b) or None,
                                 **({"seed": seed + j} if seeded else {}))  # type: ignore[operator]
            for j, b in enumerate(bindings)
        ]
    return [await backend.result_when_done(j, timeout=timeout) for j in job_ids]


def counts_to_rows(counts: Mapping[str, int], width: int, seed: int | None) -> np.ndarray:
    """``shots x width`` 0/1 array, column ``b`` = classical bit ``b`` (counts keys have bit 0
    rightmost); rows in a seeded random order, so any slice of them is a fair sample."""
    keys = list(counts)
    reps = np.array([counts[k] for k in keys], dtype=np.int64)
    bits = np.array([[int(k[width - 1 - b]) for b in range(width)] for k in keys],
                    dtype=np.int8).reshape(len(keys), width)
    rows = np.repeat(bits, reps, axis=0)
    np.random.default_rng(seed).shuffle(rows, axis=0)
    return rows
