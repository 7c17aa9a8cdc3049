"""Helpers shared by the executor tests (imported by name: conftest puts this folder on
``sys.path``, and Dask workers inherit it)."""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@functools.cache
def example(name: str) -> ModuleType:
    """``examples/<name>.py`` imported as module ``name`` (once per session)."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def parsl_loaded(site: str, run_dir: Path) -> Iterator[object]:
    """Parsl loaded with a repository site config and two workers; cleaned up after."""
    import parsl

    from hal_workflow.executors.config import parsl_config

    options = {"max_threads": 2} if site == "local_threads" else {"max_workers": 2}
    with parsl.load(parsl_config(site, run_dir=str(run_dir), **options)) as dfk:
        yield dfk
