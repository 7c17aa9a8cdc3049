"""Credentials as a type: :class:`Secret` never shows its value by accident.

A credential in a spec (an IQM ``token``, AWS keys, anything an adapter declares secret in
``Backend.secret_keys``) is wrapped in a :class:`Secret` when the registry normalises the
spec, at any depth (a ``slurm`` spec wrapping an ``iqm`` spec). Its ``repr``, ``str``,
f-string and JSON forms are ``'***'``; :func:`redact` turns any nested structure into a copy
safe to print or log. The value is read only where it is handed to an SDK, with
:meth:`Secret.get` (or :func:`reveal`).

A credential can be given by value (``"token": "abc"``) or by *reference*:
``"token": {"env": "IQM_TOKEN"}`` or ``"token": {"file": "~/.iqm/token"}``. A referenced
secret is read where it is used, so a Dask, Parsl or SLURM worker reads its own environment or
file; it pickles as the reference only. What goes to disk (SLURM/PBS ``job.json``, the
journal) passes through :func:`to_storable`, which keeps references and never writes a value.

Keys that only *name* where a credential lives are not secret: ``tokens_file``,
``token_env``, ``aws_credential_file``, ``profile``, ``account`` (a path, a variable or an
account name must stay readable in job files so the worker can find the credential again).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hal_workflow.contract.errors import ConfigurationError, CredentialsError

__all__ = [
    "REDACTED",
    "SECRET_KEY_PATTERN",
    "Secret",
    "declare_secret_keys",
    "fingerprint",
    "fingerprint_default",
    "is_secret_key",
    "redact",
    "reveal",
    "to_storable",
    "wrap_secrets",
]

REDACTED = "***"
MAX_SECRET_FILE_BYTES = 1 << 16  # a token file is small; refuse to read a large one

# Key names whose values are credentials in any adapter's spec.
SECRET_KEY_PATTERN = re.compile(
    r"token|secret|password|passwd|api[_-]?key|credential|access[_-]?key|session[_-]?key",
    re.IGNORECASE,
)
# Keys that *name* where a credential lives (a file path, a variable, an account): not secret.
_REFERENCE_KEY = re.compile(r"(_file|_path|_env|_account|_profile|_name)$", re.IGNORECASE)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Secret keys adapters declare beyond the pattern (``Backend.secret_keys``), for every spec.
_declared: set[str] = set()


def declare_secret_keys(keys: Iterable[str]) -> None:
    """Treat ``keys`` as secret in every spec from now on (``Backend`` subclasses call this
    with their ``secret_keys`` when they are defined)."""
    _declared.update(map(str, keys))


def is_secret_key(key: object) -> bool:
    """True when a spec key holds a credential (``token``, ``aws_secret_access_key``, a key an
    adapter declared in ``Backend.secret_keys``).

    Keys that only say where a credential is (``tokens_file``, ``token_env``) are not secret.
    """
    text = str(key)
    if text in _declared:
        return True
    return bool(SECRET_KEY_PATTERN.search(text)) and not _REFERENCE_KEY.search(text)


def _reference(value: Mapping[str, Any], key: str = "secret") -> dict[str, str]:
    """``value`` checked as a reference: ``{"env": NAME}`` or ``{"file": PATH}``."""
    if set(value) == {"env"} and isinstance(value["env"], str) and _ENV_NAME.fullmatch(
            value["env"]):
        return {"env": value["env"]}
    if set(value) == {"file"} and isinstance(value["file"], str) and value["file"].strip():
        return {"file": value["file"]}
    raise ConfigurationError(
        f"spec key {key!r}: a credential reference is {{'env': VARIABLE}} or "
        f"{{'file': PATH}}, got keys {sorted(map(str, value))}"
    )


def _is_reference(value: object) -> bool:
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in ("env", "file")


class Secret:
    """A credential that redacts itself everywhere it could be shown.

    Holds a value (``Secret("abc")``) or a reference to one
    (``Secret(source={"env": "IQM_TOKEN"})``), read by :meth:`get` when needed.
    ``repr``/``str``/``format`` give ``'***'``; equality compares values or references without
    revealing them; ``bool`` is true unless it holds the empty string.
    """

    __slots__ = ("_source", "_value")
    _value: str | None
    _source: dict[str, str] | None

    def __init__(self, value: str | Secret | None = None, *,
                 source: Mapping[str, Any] | None = None) -> None:
        if isinstance(value, Secret):
            other: Secret = value
            value, source = other._value, other.source
        if (value is None) == (source is None):
            raise TypeError("a Secret holds either a value or a source")
        if value is not None and not isinstance(value, str):
            raise TypeError(f"a Secret holds text, got {type(value).__name__}")
        object.__setattr__(self, "_value", value)
        object.__setattr__(self, "_source", None if source is None else _reference(source))

    @property
    def source(self) -> dict[str, str] | None:
        """Where the credential is read from (``{"env": ...}``/``{"file": ...}``), or None
        for a credential given by value."""
        return None if self._source is None else dict(self._source)

    def get(self) -> str:
        """The credential itself; call this only where it is handed to the SDK.

        Raises:
            CredentialsError: the referenced variable is unset or the file cannot be read
                (the message names the variable or file, never a value).
        """
        if self._value is not None:
            return self._value
        assert self._source is not None
        if "env" in self._source:
            name = self._source["env"]
            text = os.environ.get(name)
            if not text:
                raise CredentialsError(f"the credential variable {name} is not set here")
            return text
        path = Path(os.path.expandvars(self._source["file"])).expanduser()
        try:
            if path.stat().st_size > MAX_SECRET_FILE_BYTES:
                raise CredentialsError(
                    f"credential file {path} is over {MAX_SECRET_FILE_BYTES} bytes")
            return path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialsError(
                f"cannot read credential file {path}: {type(exc).__name__}") from None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        if self._source is not None:
            return f"Secret(source={self._source!r})"
        return f"Secret('{REDACTED}')"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __bool__(self) -> bool:
        return self._source is not None or bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return (self._value, self._source) == (other._value, other._source)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((Secret, self._value, tuple(sorted((self._source or {}).items()))))

    def __reduce__(self) -> tuple[Any, ...]:
        # Specs travel to Dask/Parsl workers by pickle, so a Secret must pickle. A reference
        # pickles as the reference (the worker reads its own variable or file); a value pickles
        # as the value, for the engine's own user-private channel. Anything written to disk
        # goes through ``to_storable`` first, which never writes a value.
        if self._source is not None:
            return (_from_source, (dict(self._source),))
        return (Secret, (self._value,))

    def __json__(self) -> Any:  # pragma: no cover - convention hook for custom encoders
        return self.source or REDACTED


def _from_source(source: dict[str, str]) -> Secret:
    return Secret(source=source)


def reveal(value: Any) -> Any:
    """``value.get()`` for a :class:`Secret`, ``value`` itself otherwise (for SDK calls)."""
    return value.get() if isinstance(value, Secret) else value


def wrap_secrets(obj: Any) -> Any:
    """A copy of ``obj`` with every credential under a secret key held as a :class:`Secret`.

    Under a secret key (see :func:`is_secret_key`), text becomes ``Secret(text)`` and a
    reference ``{"env": ...}``/``{"file": ...}`` becomes ``Secret(source=...)``; other values
    are walked. Applied to specs when they are normalised, at any depth (the registry bounds
    the depth beforehand).
    """
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if is_secret_key(key) and isinstance(value, str | Secret):
                out[key] = Secret(value)
            elif is_secret_key(key) and _is_reference(value):
                out[key] = Secret(source=_reference(value, str(key)))
            else:
                out[key] = wrap_secrets(value)
        return out
    if isinstance(obj, list | tuple):
        return type(obj)(wrap_secrets(v) for v in obj)
    return obj


def redact(obj: Any, _depth: int = 0) -> Any:
    """A copy of ``obj`` safe to print or log: every :class:`Secret` and every text value
    under a secret key becomes ``'***'`` (a referenced secret shows its reference), at any
    depth of mappings, lists and tuples."""
    if _depth > 256:
        return REDACTED
    if isinstance(obj, Secret):
        return REDACTED if obj.source is None else obj.source
    if isinstance(obj, Mapping):
        return {
            k: (REDACTED if is_secret_key(k) and isinstance(v, str) and v else
                redact(v, _depth + 1))
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return type(obj)(redact(v, _depth + 1) for v in obj)
    return obj


def to_storable(spec: Any, *, strict: bool = True, _path: str = "") -> Any:
    """A JSON-ready copy of ``spec`` for disk (job files, the journal): credentials given by
    reference stay references (``{"env": "IQM_TOKEN"}``), so a worker reading the file finds
    them again; no credential value is ever written.

    A credential given by value cannot be stored: with ``strict`` (the default) that raises
    ``CredentialsError`` naming the key, so a job that would need it on another node is refused
    before it is submitted; with ``strict=False`` it is stored as ``'***'`` (a record that can
    show, but not rebuild, the backend).
    """
    if isinstance(spec, Secret):
        if spec.source is not None:
            return spec.source
        if strict:
            raise CredentialsError(
                f"spec key {_path or 'secret'!r} holds a credential by value, which is never "
                "written to disk; give it by reference instead, {'env': VARIABLE} or "
                "{'file': PATH} (or the adapter's own tokens_file, profile or account)"
            )
        return REDACTED
    if isinstance(spec, Mapping):
        out = {}
        for key, value in spec.items():
            where = f"{_path}.{key}" if _path else str(key)
            if is_secret_key(key) and isinstance(value, str):
                value = Secret(value)
            out[str(key)] = to_storable(value, strict=strict, _path=where)
        return out
    if isinstance(spec, list | tuple):
        return [to_storable(v, strict=strict, _path=f"{_path}[{i}]") for i, v in enumerate(spec)]
    return spec


_SALT = os.urandom(16)  # per process: a fingerprint is no oracle for a guessed token


def fingerprint_default(value: Any) -> Any:
    """``json.dumps``'s ``default`` for :func:`fingerprint`: a Secret as a salted digest."""
    if isinstance(value, Secret):
        raw = json.dumps([value._value, value._source], sort_keys=True).encode()
        return "secret:" + hmac.new(_SALT, raw, hashlib.sha256).hexdigest()
    return str(value)


def fingerprint(spec: Any) -> str:
    """A canonical text for ``spec`` that tells specs apart by their credentials too, for
    in-process caches (one backend per spec): a :class:`Secret` shows as a salted digest of
    its value or its reference. The salt is per process; never store a fingerprint.
    """
    return json.dumps(spec, sort_keys=True, default=fingerprint_default)
