"""The registry: specs, ``register_backend``, entry points, and its errors."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path
from typing import Any

import pytest
from contract_backends import ClassicalBackend

from hal_workflow.backends.registry import (
    BUILTIN_BACKENDS,
    ENTRY_POINT_GROUP,
    available_backends,
    get_backend,
    normalize_spec,
    register_backend,
)
from hal_workflow.contract import ConfigurationError, CredentialsError

pytestmark = pytest.mark.usefixtures("clean_registry")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("sim", {"name": "sim"}), ("  sim \n", {"name": "sim"}),
     ({"name": "ibm", "backend": "fake_manila"}, {"name": "ibm", "backend": "fake_manila"})],
)
def test_normalize_spec(spec: Any, expected: dict[str, Any]) -> None:
    normalised = normalize_spec(spec)
    assert normalised == expected
    if isinstance(spec, dict):
        assert normalised is not spec  # a fresh dict: callers may not mutate ours


@pytest.mark.parametrize(
    ("spec", "message"),
    [("", "empty"), ({"backend": "x"}, "needs a 'name'"), ({"name": 3}, "needs a 'name'"),
     (42, "not int"), (None, "not NoneType")],
)
def test_bad_specs(spec: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        get_backend(spec)


def test_unknown_name_lists_the_available_ones() -> None:
    register_backend("classical-test", ClassicalBackend)
    with pytest.raises(ConfigurationError) as info:
        get_backend("no-such-backend")
    message = str(info.value)
    assert "'no-such-backend'" in message
    for name in [*BUILTIN_BACKENDS, "classical-test"]:
        assert name in message
    assert "classical-test" in available_backends()


@pytest.mark.parametrize(
    "factory",
    [ClassicalBackend, lambda spec: ClassicalBackend(spec),
     "contract_backends:ClassicalBackend"],
    ids=["class", "callable", "module:attr"],
)
def test_register_backend(factory: Any) -> None:
    register_backend("classical-test", factory)
    backend = get_backend({"name": "classical-test", "num_qubits": 2})
    assert isinstance(backend, ClassicalBackend)
    assert backend.spec == {"name": "classical-test", "num_qubits": 2}
    assert backend.capabilities().num_qubits == 2


def test_spec_pickles_and_rebuilds_an_equal_backend() -> None:
    register_backend("classical-test", ClassicalBackend)
    first = get_backend({"name": "classical-test", "num_qubits": 3})
    second = get_backend(pickle.loads(pickle.dumps(first.spec)))
    assert second is not first and second.capabilities() == first.capabilities()


def test_bad_options_are_configuration_errors() -> None:
    register_backend("classical-test", ClassicalBackend)  # checks its own options
    with pytest.raises(ConfigurationError, match="unknown options"):
        get_backend({"name": "classical-test", "qubitz": 3})

    def by_keywords(spec: dict[str, Any]) -> ClassicalBackend:
        options = {k: v for k, v in spec.items() if k != "name"}
        return keywords_only(**options)

    def keywords_only(*, num_qubits: int = 2) -> ClassicalBackend:
        return ClassicalBackend({"name": "kw", "num_qubits": num_qubits})

    register_backend("kw-test", by_keywords)  # a TypeError from the factory
    with pytest.raises(ConfigurationError, match="'kw-test': bad options"):
        get_backend({"name": "kw-test", "qubitz": 3})


def test_backend_errors_pass_through() -> None:
    def needs_token(spec: dict[str, Any]) -> ClassicalBackend:
        raise CredentialsError("CLASSICAL_TOKEN is not set")

    register_backend("needs-token", needs_token)
    with pytest.raises(CredentialsError, match="CLASSICAL_TOKEN"):
        get_backend("needs-token")


def test_unimportable_target_is_a_configuration_error() -> None:
    register_backend("ghost", "hal_workflow_no_such_module:Backend")
    with pytest.raises(ConfigurationError, match="'ghost' cannot be loaded"):
        get_backend("ghost")


def make_distribution(root: Path, module: str, entries: dict[str, str]) -> None:
    """A minimal installed distribution (``*.dist-info``) declaring backend entry points."""
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    lines = "\n".join(f"{name} = {target}" for name, target in entries.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}\n")


def test_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hal_vendor_demo.py").write_text(textwrap.dedent("""
        from contract_backends import ClassicalBackend

        class VendorBackend(ClassicalBackend):
            pass
    """))
    make_distribution(tmp_path, "hal_vendor_demo", {
        "vendor-demo": "hal_vendor_demo:VendorBackend",
        "vendor-broken": "hal_vendor_missing_module:Backend",
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    register_backend("refresh-cache", ClassicalBackend)  # clears the entry-point cache

    assert {"vendor-demo", "vendor-broken"} <= set(available_backends())
    backend = get_backend({"name": "vendor-demo", "num_qubits": 1})
    assert type(backend).__name__ == "VendorBackend"
    assert backend.capabilities().name == "vendor-demo"
    with pytest.raises(ConfigurationError, match="'vendor-broken' cannot be loaded"):
        get_backend("vendor-broken")


def test_registered_names_shadow_entry_points(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    make_distribution(tmp_path, "hal_vendor_shadow", {"shadowed": "nowhere_at_all:Backend"})
    monkeypatch.syspath_prepend(str(tmp_path))
    register_backend("shadowed", ClassicalBackend)
    assert isinstance(get_backend("shadowed"), ClassicalBackend)
