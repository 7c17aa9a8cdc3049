"""The conformance kit run on the built-in simulator and on the example backend."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from conformance_helpers import load_example

from hal_workflow.backends.registry import register_backend
from hal_workflow.testing import ConformanceSuite

register_backend("example", load_example().ExampleBackend)


class TestSimulator(ConformanceSuite):
    backend_spec = "sim"


class TestExampleBackend(ConformanceSuite):
    backend_spec: ClassVar[dict[str, Any]] = {"name": "example", "num_qubits": 10, "seed": 1234}

    @contextlib.asynccontextmanager
    async def queued_job(self, backend: Any) -> AsyncIterator[str | None]:
        # The example runs one job at a time on its device thread: keep that thread busy and
        # the next job waits QUEUED.
        release = threading.Event()
        backend._device.submit(release.wait, 30)
        try:
            yield await backend.submit(self.bell_circuit, 10)
        finally:
            release.set()
