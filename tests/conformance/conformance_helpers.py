"""Shared by the conformance tests: loading the example backend, running one kit check."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from hal_workflow.testing.conformance import ConformanceSuite, Harness

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "example_backend.py"


def load_example() -> Any:
    """Import ``examples/example_backend.py`` (not a package) as module ``example_backend``."""
    if "example_backend" not in sys.modules:
        spec = importlib.util.spec_from_file_location("example_backend", EXAMPLE)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["example_backend"] = module
        spec.loader.exec_module(module)
    return sys.modules["example_backend"]


def run_check(backend: Any, check: str, suite: type[ConformanceSuite] = ConformanceSuite,
              **arguments: Any) -> None:
    """Run the kit's ``check`` method on ``backend`` outside pytest's collection.

    The method's fixtures (``hal``, ``backend``, ``caps``, ``bell_trace``) are built here the
    way the suite's class-scoped fixtures build them.
    """
    loop = asyncio.new_event_loop()
    try:
        instance = suite()
        hal = Harness(instance, backend, loop)
        wanted = inspect.signature(getattr(instance, check)).parameters
        available = {"hal": hal, "backend": backend, "caps": backend.capabilities()}
        if "bell_trace" in wanted:
            trace = hal.trace(instance.bell_circuit, instance._shots(backend))
            available["bell_trace"] = hal.run(trace, "Bell job")
        kwargs = {k: v for k, v in available.items() if k in wanted} | arguments
        getattr(instance, check)(**kwargs)
    finally:
        loop.run_until_complete(backend.aclose())
        loop.close()
