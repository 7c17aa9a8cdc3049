"""Packaging promises: a light import, the public names, the extras and the console script.

(These tests live in tests/project/, not tests/: a test module directly in tests/ puts tests/
on sys.path, where tests/cudaq and tests/qrisp would pass for the SDKs of those names.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import hal_workflow

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numba", "qiskit", "braket", "iqm", "mqt", "dask", "distributed", "parsl", "pyqir",
         "antlr4", "openqasm3", "scipy")


def test_import_loads_no_heavy_sdk() -> None:
    code = "import hal_workflow, sys, json; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = {name.split(".")[0] for name in json.loads(out.stdout)}
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_contract_version_and_lazy_names() -> None:
    assert hal_workflow.CONTRACT_VERSION == "1.1"
    for name in ("Circuit", "get_backend", "run", "sweep", "submit", "validate", "Job"):
        assert name in hal_workflow.__all__
        assert callable(getattr(hal_workflow, name))
    with pytest.raises(AttributeError):
        hal_workflow.no_such_name  # noqa: B018


def test_extras_cover_every_adapter_and_engine() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = meta["optional-dependencies"]
    for extra in ("sim", "dask", "parsl", "ibm", "braket", "iqm", "qdmi", "qir", "all", "test"):
        assert extra in extras, extra
    assert any(dep.startswith("iqm-client>=36") for dep in extras["iqm"])
    assert meta["scripts"]["hal-workflow"] == "hal_workflow.cli:main"


def test_console_script_reports_version() -> None:
    out = subprocess.run([sys.executable, "-m", "hal_workflow.cli", "--version"],
                         check=True, capture_output=True, text=True)
    assert hal_workflow.__version__ in out.stdout


def test_executors_install_as_subpackage() -> None:
    import hal_workflow.executors as executors

    assert Path(executors.__file__).resolve().parent == ROOT / "executors"


@pytest.mark.parametrize(
    ("module", "sdk"),
    [
        ("hal_workflow.backends.ibm", "qiskit_ibm_runtime"),
        ("hal_workflow.backends.braket", "braket.devices"),
        ("hal_workflow.backends.iqm", "iqm.iqm_client"),
        ("hal_workflow.backends.qdmi", "mqt.core.qdmi"),
        ("hal_workflow.circuits.qir", "pyqir"),
        ("hal_workflow.executors.dask", "dask_jobqueue"),
        ("hal_workflow.executors.parsl", "parsl"),
    ],
)
def test_every_adapter_and_engine_imports_together(module: str, sdk: str) -> None:
    """``[all]`` installs every adapter in one environment (the one the tests run in)."""
    import importlib

    assert importlib.import_module(sdk).__name__ == sdk
    assert importlib.import_module(module).__name__ == module


def test_installed_distributions_are_consistent() -> None:
    out = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_iqm_client_is_the_modern_api() -> None:
    from importlib.metadata import version

    assert int(version("iqm-client").split(".")[0]) >= 36


def test_every_subpackage_is_packaged() -> None:
    """A package directory missing from pyproject's list would be missing from the wheel."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts)
             for init in (ROOT / "hal_workflow").rglob("__init__.py")}
    executors = ROOT / "executors"
    found |= {".".join(("hal_workflow", *init.parent.relative_to(ROOT).parts))
              for init in executors.rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)


def test_tab_completion_sees_the_lazy_names() -> None:
    names = dir(hal_workflow)
    for name in ("run", "sweep", "submit", "Circuit", "get_backend", "config", "JobState"):
        assert name in names, name
    assert hal_workflow.config.get("default-backend") == "sim"


def test_a_plain_install_has_a_working_default_backend() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {dep.split(">")[0].split("[")[0] for dep in meta["dependencies"]}
    assert "numba" in core  # "sim", the default backend, needs nothing else
    assert any(dep.startswith("ipywidgets") for dep in meta["optional-dependencies"]["jupyter"])


def test_a_bell_pair_does_not_import_numba() -> None:
    """Small circuits run on the NumPy kernels: no numba import, no compilation, on any run."""
    code = ("import sys, hal_workflow as hal; r = hal.run(hal.Circuit.bell(), 'sim', 100); "
            "print(sorted(r.counts), 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.split("]")[1].strip() == "False" and "'00'" in out.stdout
