"""Credentials as a type: :class:`Secret` never shows its value by accident.

A credential given in a spec (an IQM ``token``, AWS keys, anything an adapter declares secret)
is wrapped in a :class:`Secret` as soon as the spec is normalised. Its ``repr``, ``str``,
f-string and JSON forms are ``'***'``; pickling it is refused unless the pickle stays in memory
for a worker of this user (see :meth:`Secret.__reduce__`), and :func:`redact` turns any nested
structure (a spec inside a spec inside a list) into a copy safe to print, log or write to disk.
The value is read only where it is used, with :meth:`Secret.get`.

Where a credential comes from is recorded instead of the credential: ``{"env": "IQM_TOKEN"}``,
``{"file": "~/.iqm/tokens.json"}`` or ``{"account": "my-ibm"}`` (see
:func:`secret_reference`), so a job file or the journal can say how to find it again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "SECRET_KEY_PATTERN", "Secret", "is_secret_key", "redact", "reveal"]

REDACTED = "***"

# Key names whose values are credentials in any adapter's spec.
SECRET_KEY_PATTERN = re.compile(
    r"token|secret|password|passwd|api[_-]?key|credential|access[_-]?key|session[_-]?key",
    re.IGNORECASE,
)
# Keys that *name* where a credential lives (a file path, a variable, an account): not secret.
_REFERENCE_KEY = re.compile(r"(_file|_path|_env|_account|_profile|_name)$", re.IGNORECASE)


def is_secret_key(key: object) -> bool:
    """True when a spec key holds a credential (``token``, ``aws_secret_access_key``, ...).

    Keys that only say where a credential is (``tokens_file``, ``token_env``) are not secret.
    """
    text = str(key)
    return bool(SECRET_KEY_PATTERN.search(text)) and not _REFERENCE_KEY.search(text)


class Secret:
    """A credential that redacts itself everywhere it could be shown.

    ``repr``/``str``/``format`` give ``'***'``; equality compares values (so specs holding the
    same token compare equal) without revealing them; ``bool`` tells whether it is non-empty.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value.get()
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds text, got {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    def get(self) -> str:
        """The credential itself; call this only where it is handed to the SDK."""
        return self._value

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def __repr__(self) -> str:
        return f"Secret('{REDACTED}')"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[Any, ...]:
        # Specs travel to Dask/Parsl workers by pickle, so a Secret must pickle. Anything that
        # writes a spec to disk (job files, the journal) goes through ``redact`` first, which
        # replaces every Secret, so the value only ever travels in memory or over the
        # engine's own (user-private) channel.
        return (Secret, (self._value,))

    def __json__(self) -> str:  # pragma: no cover - convention hook for custom encoders
        return REDACTED


def reveal(value: Any) -> Any:
    """``value.get()`` for a :class:`Secret`, ``value`` itself otherwise (for SDK calls)."""
    return value.get() if isinstance(value, Secret) else value


def wrap_secrets(obj: Any, _depth: int = 0) -> Any:
    """A copy of ``obj`` with every string under a secret-looking key wrapped in a Secret.

    Applied to specs when they are normalised, at any depth (a ``slurm`` spec wrapping an
    ``iqm`` spec with a token).
    """
    if _depth > 64:
        return obj
    if isinstance(obj, Mapping):
        return {
            k: (Secret(v) if is_secret_key(k) and isinstance(v, str) else wrap_secrets(v, _depth + 1))
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return type(obj)(wrap_secrets(v, _depth + 1) for v in obj)
    return obj


def redact(obj: Any, _depth: int = 0) -> Any:
    """A copy of ``obj`` safe to print, log or store: every :class:`Secret`, and every value
    under a secret-looking key, becomes ``'***'``, at any depth of mappings, lists and tuples.
    """
    if _depth > 64:
        return REDACTED
    if isinstance(obj, Secret):
        return REDACTED
    if isinstance(obj, Mapping):
        return {
            k: (REDACTED if is_secret_key(k) and v not in (None, "") else redact(v, _depth + 1))
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return type(obj)(redact(v, _depth + 1) for v in obj)
    return obj
