"""Where the primitives' chunks run: in this process, on a Dask ``Client`` or on Parsl.

A chunk is a call of one of the shared worker tasks (:mod:`hal_workflow.executors._tasks`)
with a backend *spec*, the circuit (a ``Circuit``, which pickles as its text), a slice of
the bindings and the index of its first element, so the sweep seeding rule (element ``i`` is
sampled with ``seed + i``) makes the result independent of the chunking and of the worker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hal_workflow.contract.errors import ConfigurationError
from hal_workflow.executors._plan import chunk_ranges, chunk_size_for

__all__ = ["Engine"]


class Engine:
    """``executor`` is None (in process), a ``distributed.Client`` or a Parsl ``Config`` /
    ``DataFlowKernel`` that is loaded."""

    def __init__(self, executor: Any = None, chunk_size: int | None = None) -> None:
        self.kind = _kind(executor)
        self.executor = executor
        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
            raise ConfigurationError(f"chunk_size must be a positive integer, not {chunk_size!r}")
        self.chunk_size = chunk_size

    def slots(self) -> int:
        if self.kind == "dask":
            return sum(self.executor.nthreads().values())
        if self.kind == "parsl":
            from hal_workflow.executors.parsl import _slots

            return _slots()
        return 1

    def ranges(self, n: int) -> list[range]:
        """The chunks of ``n`` bindings: ``chunk_size`` each if set, else one in process and
        a few per slot on an engine."""
        if self.kind == "local" and self.chunk_size is None:
            return [range(0, n)] if n else []
        size = self.chunk_size or chunk_size_for(n, self.slots(), batch=True)
        return chunk_ranges(n, size)

    def map(self, task: Callable[..., Any], calls: Sequence[tuple[Any, ...]]) -> list[Any]:
        """``task(*args)`` for every ``args`` in ``calls``, results in order."""
        if self.kind == "local":
            return [task(*args) for args in calls]
        if self.kind == "dask":
            futures = [self.executor.submit(task, *args, pure=False) for args in calls]
            try:
                return list(self.executor.gather(futures))
            finally:
                self.executor.cancel([f for f in futures if not f.done()])
        app = _parsl_app(task)
        return [future.result() for future in [app(*args) for args in calls]]


def _kind(executor: Any) -> str:
    if executor is None:
        return "local"
    module = type(executor).__module__
    if module.startswith("distributed"):
        return "dask"
    if module.startswith("parsl"):
        import parsl

        try:
            parsl.dfk()
        except Exception as exc:  # parsl's NoDataFlowKernelError
            raise ConfigurationError(
                "executor is a Parsl config but none is loaded; call parsl.load(config) first"
            ) from exc
        return "parsl"
    raise ConfigurationError(
        f"executor must be None, a dask.distributed Client or a loaded Parsl config, not "
        f"{type(executor).__name__}"
    )


_APPS: dict[Callable[..., Any], Any] = {}


def _parsl_app(task: Callable[..., Any]) -> Any:
    from parsl import python_app

    if task not in _APPS:
        _APPS[task] = python_app(task)
    return _APPS[task]
