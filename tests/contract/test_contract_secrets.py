"""Secrets have a type: Secret, references, deep wrapping, storable specs, spec input errors."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path
from typing import Any, ClassVar

import pytest
from contract_backends import ClassicalBackend

from hal_workflow import config
from hal_workflow.backends.registry import (
    check_spec_data,
    get_backend,
    normalize_spec,
    register_backend,
    spec_from_text,
)
from hal_workflow.contract import ConfigurationError, CredentialsError, HalError, redact_spec
from hal_workflow.contract.secrets import Secret, is_secret_key, redact, reveal, to_storable

TOKEN = "tok-DISTINCT-8c1f2"  # never expected in any output

NESTED = {"name": "slurm", "partition": "debug",
          "backend": {"name": "iqm", "url": "http://x", "token": TOKEN,
                      "extra": [{"aws_secret_access_key": TOKEN + "-aws"}]}}


def test_secret_never_shows_its_value() -> None:
    secret = Secret(TOKEN)
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r:>40}", "%s" % (secret,),  # noqa: UP031
                 json.dumps(redact({"k": secret}))):
        assert TOKEN not in text
    assert secret.get() == TOKEN == reveal(secret) and reveal("plain") == "plain"
    assert secret == Secret(TOKEN) and secret != Secret("other") and hash(secret) == hash(
        Secret(TOKEN))
    assert not Secret("") and secret
    with pytest.raises(AttributeError):
        secret._value = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Secret(42)  # type: ignore[arg-type]


def test_referenced_secret_is_read_where_it_is_used(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    by_env = Secret(source={"env": "HAL_TEST_TOKEN"})
    monkeypatch.delenv("HAL_TEST_TOKEN", raising=False)
    with pytest.raises(CredentialsError, match="HAL_TEST_TOKEN is not set") as info:
        by_env.get()
    assert TOKEN not in str(info.value)
    monkeypatch.setenv("HAL_TEST_TOKEN", TOKEN)
    assert by_env.get() == TOKEN
    # It pickles as the reference: a worker reads its own environment.
    data = pickle.dumps(by_env)
    assert TOKEN.encode() not in data
    monkeypatch.setenv("HAL_TEST_TOKEN", "worker-token")
    assert pickle.loads(data).get() == "worker-token"

    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    by_file = Secret(source={"file": str(path)})
    assert by_file.get() == TOKEN and TOKEN not in repr(by_file)
    with pytest.raises(CredentialsError, match=r"cannot read credential file .*missing"):
        Secret(source={"file": str(tmp_path / "missing")}).get()
    path.write_bytes(b"x" * 70_000)
    with pytest.raises(CredentialsError, match="over 65536 bytes"):
        by_file.get()


@pytest.mark.parametrize("bad", [{"env": "1BAD"}, {"env": "A; rm"}, {"file": ""},
                                 {"env": "A", "file": "b"}, {"env": 3}])
def test_bad_references_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="credential reference"):
        Secret(source=bad)


def test_normalise_wraps_secrets_at_any_depth() -> None:
    spec = normalize_spec(NESTED)
    inner = spec["backend"]
    assert isinstance(inner["token"], Secret) and inner["token"].get() == TOKEN
    assert isinstance(inner["extra"][0]["aws_secret_access_key"], Secret)
    assert spec["partition"] == "debug" and inner["url"] == "http://x"
    assert NESTED["backend"]["token"] == TOKEN  # type: ignore[index]  # input left alone
    for text in (repr(spec), str(spec), repr(redact_spec(spec)), json.dumps(redact(spec)),
                 json.dumps(redact_spec(NESTED))):
        assert TOKEN not in text
    assert normalize_spec(spec) == spec  # idempotent


def test_references_survive_normalising_and_storing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IQM_TOKEN", TOKEN)
    given = {"name": "slurm", "backend": {"name": "iqm", "token": {"env": "IQM_TOKEN"}}}
    spec = normalize_spec(given)
    assert spec["backend"]["token"].get() == TOKEN
    stored = to_storable(spec)
    assert stored == given and TOKEN not in json.dumps(stored)
    assert normalize_spec(json.loads(json.dumps(stored))) == spec  # round trip
    assert repr(spec).count("IQM_TOKEN") == 1 and TOKEN not in repr(spec)


def test_a_value_is_never_stored() -> None:
    spec = normalize_spec(NESTED)
    with pytest.raises(CredentialsError, match=r"'backend.token' holds a credential by value"):
        to_storable(spec)
    with pytest.raises(CredentialsError):
        to_storable(NESTED)  # plain text under a secret key: the same
    loose = to_storable(spec, strict=False)
    assert loose["backend"]["token"] == "***" and TOKEN not in json.dumps(loose)
    assert loose["backend"]["extra"][0]["aws_secret_access_key"] == "***"


def test_adapter_declared_secret_keys(clean_registry: Any) -> None:
    class Vendor(ClassicalBackend):
        secret_keys: ClassVar[frozenset[str]] = frozenset({"vendor_pin"})

    assert is_secret_key("vendor_pin") and Vendor.secret_keys == {"vendor_pin"}
    seen: list[dict[str, Any]] = []

    def factory(spec: dict[str, Any]) -> ClassicalBackend:
        seen.append(spec)
        return ClassicalBackend({"name": "classical", "token": spec["vendor_pin"]})

    register_backend("vendor-test", factory)
    backend = get_backend({"name": "vendor-test", "vendor_pin": TOKEN})
    assert isinstance(seen[0]["vendor_pin"], Secret) and seen[0]["vendor_pin"].get() == TOKEN
    assert TOKEN not in repr(backend) and TOKEN not in repr(seen)
    # Nested in a wrapping spec too.
    assert isinstance(normalize_spec({"name": "w", "backend": {"vendor_pin": TOKEN}})[
        "backend"]["vendor_pin"], Secret)


def test_secret_in_logs_and_errors(caplog: pytest.LogCaptureFixture) -> None:
    spec = normalize_spec(NESTED)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("hal_workflow.test").debug("spec %s / %r", spec, spec)
    assert "hal_workflow.test" in caplog.text and TOKEN not in caplog.text
    error = ConfigurationError(f"bad spec {spec}")
    assert TOKEN not in str(error) and TOKEN.encode() not in pickle.dumps(error)


def deep(levels: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "sim"}
    for _ in range(levels - 1):
        spec = {"name": "slurm", "backend": spec}
    return spec


@pytest.mark.parametrize(("spec", "message"), [
    (None, "not NoneType"), (42, "not int"), (3.5, "not float"), (["sim"], "not list"),
    (b"sim", "not bytes"), ({"name": " "}, "needs a 'name'"),
    ({"name": "sim", "seed": object()}, "'seed' holds a object"),
    ({"name": "sim", "opts": {"f": print}}, "'opts.f' holds a builtin_function_or_method"),
    ({"name": "sim", 3: "x"}, "keys are text"),
    (deep(20_000), "deeper than 32 levels.*limits.max-spec-depth"),
])
def test_spec_input_errors_are_one_configuration_error(spec: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        get_backend(spec)


def test_spec_depth_limit_is_configurable_and_cycles_are_refused() -> None:
    check_spec_data(deep(30))
    with config.set({"limits.max-spec-depth": 4}):
        with pytest.raises(ConfigurationError, match="deeper than 4"):
            normalize_spec(deep(5))
    looped: dict[str, Any] = {"name": "slurm"}
    looped["backend"] = looped
    with pytest.raises(ConfigurationError, match="deeper than"):
        normalize_spec(looped)


def test_spec_from_text() -> None:
    assert spec_from_text(" sim ") == "sim"
    assert spec_from_text('{"name": "sim", "seed": 3, "s": "{[{["}') == {
        "name": "sim", "seed": 3, "s": "{[{["}
    for text, message in [("{" * 20_000, "deeper than 32"), ('{"name": ', "not valid JSON"),
                          ('{"a": "\\"}}}}"}' + "}", "not valid JSON")]:
        with pytest.raises(ConfigurationError, match=message):
            spec_from_text(text)
    with pytest.raises(ConfigurationError, match="deeper than"):
        spec_from_text(json.dumps(deep(40)), source="spec.json")


def test_bad_option_values_are_configuration_errors(clean_registry: Any) -> None:
    class Strict(ClassicalBackend):
        def __init__(self, spec: dict[str, Any]) -> None:
            self.width = int(spec.get("width", 1))  # ValueError for "x"
            super().__init__(spec)

    register_backend("strict-test", Strict)
    with pytest.raises(ConfigurationError, match="'strict-test': bad options: ValueError"):
        get_backend({"name": "strict-test", "width": "x"})
    assert isinstance(ConfigurationError("x"), HalError)


def test_fingerprints_tell_tokens_apart_without_showing_them() -> None:
    from hal_workflow.orchestration.sync import spec_key

    one = spec_key({"name": "iqm", "token": TOKEN})
    assert one == spec_key({"name": "iqm", "token": TOKEN})
    assert one != spec_key({"name": "iqm", "token": TOKEN + "x"})
    assert one != spec_key({"name": "iqm", "token": {"env": "IQM_TOKEN"}})
    assert TOKEN not in one
