"""What every engine shares about sweeps: resuming from the job journal, and progress bars.

A sweep run with ``sweep_id="name"`` stores each element's result in the journal as its
chunk arrives. A rerun with the same id looks the elements up by an input digest (backend
spec, circuit text, shots, binding, element seed), reuses those that match, and computes
only the rest. The sweep's base seed is recorded on its first run, so element ``i`` is
sampled with ``seed + i`` whether it ran before or after an interruption: the combined
results equal an uninterrupted run's. Reused results carry ``metadata["reused"] = True``.

:func:`progress_bar` is the one place deciding how a bar is drawn: plain tqdm on a terminal,
the notebook widget only where ipywidgets works (so Jupyter never warns ``IProgress not
found``), nothing when output is not a terminal unless asked.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hal_workflow.contract.errors import ConfigurationError

if TYPE_CHECKING:
    from hal_workflow.circuits import Circuit
    from hal_workflow.contract.types import ExecutionResult
    from hal_workflow.journal import Journal

__all__ = ["SweepPlan", "plan_sweep", "progress_bar", "reused"]

logger = logging.getLogger(__name__)

MAX_SWEEP_ID = 200
_IGNORED_SPEC_KEYS = frozenset({"threads"})  # changes speed, never results


def _circuit_text(circuit: Circuit | str | Any) -> str:
    if isinstance(circuit, str):
        return circuit
    text = getattr(circuit, "qasm", None)
    return text if isinstance(text, str) else repr(circuit)


def reused(result: ExecutionResult) -> ExecutionResult:
    """``result`` marked ``metadata["reused"] = True`` (read back from the journal)."""
    return dataclasses.replace(result, metadata={**result.metadata, "reused": True})


@dataclass
class SweepPlan:
    """Which elements of a sweep to compute and which to reuse.

    ``seed`` is the base seed (element ``i`` uses ``seed + i``; None: the backend's own
    choice, so no exact resume); ``done`` maps indices to reused results; ``missing`` lists
    the indices to compute, ascending. Without a ``sweep_id`` everything is missing and
    nothing is stored.
    """

    size: int
    seed: int | None
    sweep_id: str | None = None
    journal: Journal | None = None
    digests: list[str] = field(default_factory=list)
    done: dict[int, ExecutionResult] = field(default_factory=dict)
    missing: list[int] = field(default_factory=list)

    @property
    def reused(self) -> int:
        """How many elements came from the journal."""
        return len(self.done)

    def ranges(self, chunk_size: int) -> list[range]:
        """The missing indices as consecutive ranges of at most ``chunk_size`` elements."""
        if chunk_size < 1:
            raise ConfigurationError(f"chunk_size must be at least 1, not {chunk_size}")
        out: list[range] = []
        start = prev = None
        for index in self.missing:
            if start is None or prev is None or index != prev + 1 or index - start >= chunk_size:
                if start is not None and prev is not None:
                    out.append(range(start, prev + 1))
                start = index
            prev = index
        if start is not None and prev is not None:
            out.append(range(start, prev + 1))
        return out

    def store(self, start: int, results: Sequence[ExecutionResult]) -> None:
        """Record computed elements ``start, start + 1, ...`` (a chunk that just arrived)."""
        if self.journal is None or self.sweep_id is None:
            return
        self.journal.record_sweep_elements(
            self.sweep_id, [(start + k, self.digests[start + k], r) for k, r in enumerate(results)])

    def store_indexed(self, elements: Sequence[tuple[int, ExecutionResult]]) -> None:
        """Record computed ``(index, result)`` elements, in any order."""
        if self.journal is None or self.sweep_id is None or not elements:
            return
        self.journal.record_sweep_elements(
            self.sweep_id, [(i, self.digests[i], r) for i, r in elements])

    def chunk_seed(self, start: int) -> int | None:
        """The seed of element ``start`` (``seed + start``), or None."""
        return None if self.seed is None else self.seed + start


def _check_sweep_id(sweep_id: object) -> str:
    if not isinstance(sweep_id, str) or not sweep_id.strip() or len(sweep_id) > MAX_SWEEP_ID:
        raise ConfigurationError(
            f"sweep_id must be a non-empty string of at most {MAX_SWEEP_ID} characters, "
            f"got {sweep_id!r}")
    return sweep_id


def plan_sweep(
    spec: Mapping[str, Any],
    circuit: Circuit | str | Any,
    bindings: Sequence[Mapping[str, float]],
    shots: int,
    seed: int | None = None,
    sweep_id: str | None = None,
    journal: Journal | None = None,
) -> SweepPlan:
    """The plan of a sweep of ``circuit`` over ``bindings`` on the backend ``spec``.

    The base seed is ``seed``, else the spec's ``seed``; with a ``sweep_id`` and neither,
    a fresh one is drawn on the first run and recorded, so a rerun continues with it.
    """
    if seed is None and spec.get("seed") is not None:
        seed = int(spec["seed"])
    size = len(bindings)
    if sweep_id is None:
        return SweepPlan(size, seed, missing=list(range(size)))
    sweep_id = _check_sweep_id(sweep_id)
    if journal is None:
        from hal_workflow import journal as journals

        journal = journals.default()
    stored = journal.begin_sweep(sweep_id, seed, size)
    if stored is None:
        stored = journal.begin_sweep(sweep_id, secrets.randbits(62), size)
    seed = stored
    base = json.dumps({
        "spec": {k: v for k, v in spec.items() if k not in _IGNORED_SPEC_KEYS},
        "circuit": hashlib.sha256(_circuit_text(circuit).encode()).hexdigest(),
        "shots": shots,
    }, sort_keys=True, default=str)
    prefix = hashlib.sha256(base.encode())
    digests = []
    for index, binding in enumerate(bindings):
        h = prefix.copy()
        h.update(json.dumps([index, None if seed is None else seed + index,
                             sorted((str(k), float(v)) for k, v in binding.items())]).encode())
        digests.append(h.hexdigest()[:32])
    found = journal.sweep_elements(sweep_id, dict(enumerate(digests)))
    done = {i: reused(e.result) for i, e in found.items() if i < size}
    missing = [i for i in range(size) if i not in done]
    if done:
        logger.info("sweep %s: %d of %d elements reused from the journal, %d to compute",
                    sweep_id, len(done), size, len(missing))
    return SweepPlan(size, seed, sweep_id, journal, digests, done, missing)


# ------------------------------------------------------------------------------------------
# progress bars
# ------------------------------------------------------------------------------------------


def _notebook_widgets() -> bool:
    """Whether we run in a Jupyter kernel where ipywidgets can draw a bar."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
        if ip is None or "IPKernelApp" not in ip.config:
            return False
        import ipywidgets  # noqa: F401
    except Exception:
        return False
    return True


def progress_bar(total: int, progress: bool | None = None, desc: str = "sweep",
                 initial: int = 0, reused: int = 0) -> Any:
    """A tqdm bar for ``total`` circuits, ``initial`` already done (``reused`` of them from
    the journal, shown in the bar). ``progress=None`` shows it only on a terminal (or in a
    notebook with ipywidgets); False never; True always."""
    if progress is None:
        progress = _notebook_widgets() or bool(getattr(sys.stderr, "isatty", lambda: False)())
    bar_class: Any
    if progress and _notebook_widgets():
        from tqdm.notebook import tqdm as bar_class
    else:
        from tqdm.std import tqdm as bar_class
    bar = bar_class(total=total, initial=initial, disable=not progress, unit="circuit", desc=desc)
    if reused:
        bar.set_postfix(reused=reused, refresh=False)
    return bar
