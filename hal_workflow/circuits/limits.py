"""Bounds on the work a program may cause while it is parsed and lowered.

Validation runs wherever a circuit is built, a SLURM login node included, so no input may
make it unbounded: a 1.2 KB file of doubling gate definitions (2^40 gates) or two nested loops
of 10^6 iterations each are refused by *counting* before anything is expanded. The limits come
from the configuration section ``limits:`` (``hal_workflow/config.yaml``), read once per
parse; each refusal is a :class:`CircuitLimitError` naming the limit, the configuration key and
how to raise it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hal_workflow.contract.errors import CircuitError, ConfigurationError

__all__ = ["CircuitLimitError", "Limits", "with_source"]


class CircuitLimitError(CircuitError):
    """A program exceeds one of the ``limits.*`` configuration bounds.

    ``key`` is the configuration key (``"limits.max-gates"``), ``limit`` its value and
    ``value`` what the program needs (at least); ``what`` says what was counted, with
    ``{value}`` where the count goes.
    """

    def __init__(self, what: str, value: int, key: str, limit: int, *,
                 source: str | None = None, line: int | None = None,
                 column: int | None = None) -> None:
        self.what, self.key, self.limit, self.value = what, key, limit, value
        env = "HAL_WORKFLOW__" + key.upper().replace(".", "__").replace("-", "_")
        super().__init__(
            f"{what.format(value=f'{value:,}')}, over the limit {key} = {limit:,} (raise it in "
            f"the hal-workflow configuration or with the environment variable {env})",
            source=source, line=line, column=column)


@dataclass(frozen=True)
class Limits:
    """The ``limits.*`` configuration values for one parse."""

    max_file_bytes: int = 64 << 20
    max_gates: int = 10_000_000
    max_loop_iterations: int = 10_000_000
    max_nesting_depth: int = 64
    max_parser_bytes: int = 2 << 20

    @classmethod
    def current(cls) -> Limits:
        """The configured limits (``limits.max-file-bytes`` etc.)."""
        from hal_workflow import config

        def value(key: str, default: int) -> int:
            raw = config.get(f"limits.{key}", default)
            try:
                number = int(raw)
            except (TypeError, ValueError):
                raise ConfigurationError(
                    f"configuration key limits.{key} must be a whole number, got {raw!r}"
                ) from None
            if number < 0:
                raise ConfigurationError(
                    f"configuration key limits.{key} must not be negative, got {number}")
            return number

        defaults = cls()
        return cls(
            max_file_bytes=value("max-file-bytes", defaults.max_file_bytes),
            max_gates=value("max-gates", defaults.max_gates),
            max_loop_iterations=value("max-loop-iterations", defaults.max_loop_iterations),
            max_nesting_depth=value("max-nesting-depth", defaults.max_nesting_depth),
            max_parser_bytes=value("max-parser-bytes", defaults.max_parser_bytes),
        )

    def check_text(self, text: str, source: str | None) -> None:
        """Refuse program text over ``limits.max-file-bytes`` (UTF-8 bytes)."""
        size = _size_over(text, self.max_file_bytes)
        if size is not None:
            raise CircuitLimitError("program is {value} bytes", size, "limits.max-file-bytes",
                                    self.max_file_bytes, source=source)

    def check_parser_input(self, text: str, source: str | None, line: int | None) -> None:
        """Refuse handing the full parser more than ``limits.max-parser-bytes``; ``line`` is
        where the fast path stopped (what needs the full parser)."""
        size = _size_over(text, self.max_parser_bytes)
        if size is not None:
            raise CircuitLimitError(
                "program is {value} bytes and needs the full OpenQASM parser (what the "
                "straight-line fast path does not take starts on this line)", size,
                "limits.max-parser-bytes", self.max_parser_bytes, source=source, line=line)

    def check_file(self, path: str) -> None:
        """Refuse a file over ``limits.max-file-bytes`` before reading it."""
        import os

        try:
            size = os.stat(path).st_size
        except OSError:
            return  # reading it reports the problem
        if size > self.max_file_bytes:
            raise CircuitLimitError("program is {value} bytes", size, "limits.max-file-bytes",
                                    self.max_file_bytes, source=path)


def _size_over(text: str, limit: int) -> int | None:
    """The UTF-8 size of ``text`` if it exceeds ``limit``, else None."""
    if len(text) * 4 <= limit:  # a character is at most 4 bytes: no need to count
        return None
    size = len(text.encode("utf-8", "surrogatepass"))
    return size if size > limit else None


def with_source(error: CircuitError, source: str) -> CircuitError:
    """``error`` (same type, position and detail) attributed to ``source``."""
    if isinstance(error, CircuitLimitError):
        return CircuitLimitError(error.what, error.value, error.key, error.limit, source=source,
                                 line=error.line, column=error.column)
    return CircuitError(error.detail, source=source, line=error.line, column=error.column)
