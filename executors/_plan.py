"""How a sweep is cut into tasks: the same plan for every engine.

With the batch extension one task runs a chunk of bindings in one backend call, which
amortises the engine's per-task cost (milliseconds) over many fast circuits. A few chunks per
task slot keep every slot busy to the end even when chunks take unequal time, and a cap keeps
results streaming back on large sweeps. Without the extension each binding is its own task,
so the engine, not a serial loop inside one task, spreads the jobs.
"""

from __future__ import annotations

import math

from hal_workflow.contract.errors import ConfigurationError

CHUNKS_PER_SLOT = 4
MAX_CHUNK = 1000


def chunk_size_for(n: int, slots: int, batch: bool) -> int:
    """Bindings per task for a sweep of ``n`` over ``slots`` concurrent task slots."""
    if not batch:
        return 1
    return max(1, min(MAX_CHUNK, math.ceil(n / (max(1, slots) * CHUNKS_PER_SLOT))))


def chunk_ranges(n: int, size: int) -> list[range]:
    """``range(0, n)`` cut into consecutive pieces of at most ``size``."""
    if size < 1:
        raise ConfigurationError(f"chunk_size must be at least 1, not {size}")
    return [range(start, min(start + size, n)) for start in range(0, n, size)]
