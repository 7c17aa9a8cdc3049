"""Test-suite-wide: a test run keeps its data (job journal, job directories, budgets) in a
directory of its own, not the user's. (At the repository root, not in tests/: a conftest puts
its directory on sys.path, and tests/qiskit, tests/cirq ... would then shadow the frameworks.)

Every job a test submits is journaled; pointing ``data-dir`` (here and in the subprocesses and
batch jobs the tests start, which inherit the environment) at a temporary directory keeps a
run from filling, or reading back, the data of the person running it. Tests that need their
own still set theirs (``HAL_WORKFLOW__DATA_DIR`` in a subprocess, ``config.set``).
"""

from __future__ import annotations

import os
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if "HAL_WORKFLOW__DATA_DIR" not in os.environ:
        os.environ["HAL_WORKFLOW__DATA_DIR"] = tempfile.mkdtemp(prefix="hal-test-data-")
        from hal_workflow import config as settings

        settings.refresh()
