"""Job lifecycle hooks that a site config names: accounting, notifications, bookkeeping.

Three events: ``before_submit`` (the script is written, nothing is submitted yet; a failing
hook stops the submission), ``after_submit`` (the scheduler accepted the job) and
``on_terminal`` (the first time any process observes the job COMPLETED, FAILED or CANCELLED;
exactly once per job, guarded by the job directory). A hook is either

- a Python callable named ``"package.module:function"``, called with a :class:`HookContext`, or
- a shell command, run with ``bash -c`` in the job directory and the context in ``HAL_*``
  environment variables (``HAL_EVENT``, ``HAL_JOB_ID``, ``HAL_JOB_IDS``, ``HAL_JOB_DIR``,
  ``HAL_SCHEDULER``, ``HAL_BACKEND``, ``HAL_JOB_STATE``, ``HAL_JOB_REASON``, ``HAL_SCRIPT``).

Write ``{"call": "mod:fn"}`` or ``{"run": "cmd"}`` to be explicit; a bare string is a callable
when it looks like ``dotted.module:function`` and a shell command otherwise.
"""

from __future__ import annotations

import importlib
import logging
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hal_workflow.contract.errors import ConfigurationError, SubmissionError
from hal_workflow.orchestration.schedulers.base import clean_environment

logger = logging.getLogger(__name__)

EVENTS = ("before_submit", "after_submit", "on_terminal")
_CALLABLE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


@dataclass(frozen=True)
class HookContext:
    """What a hook learns about the job. ``job_id`` is None before submission; after it,
    ``job_ids`` lists every id of the submission (one per array task)."""

    event: str
    backend: str
    scheduler: str
    job_dir: str
    script: str
    job_id: str | None = None
    job_ids: tuple[str, ...] = ()
    state: str | None = None
    reason: str | None = None
    spec: Mapping[str, Any] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        values = {
            "HAL_EVENT": self.event, "HAL_BACKEND": self.backend,
            "HAL_SCHEDULER": self.scheduler, "HAL_JOB_DIR": self.job_dir,
            "HAL_SCRIPT": self.script, "HAL_JOB_ID": self.job_id,
            "HAL_JOB_IDS": " ".join(self.job_ids) or None,
            "HAL_JOB_STATE": self.state, "HAL_JOB_REASON": self.reason,
        }
        return {k: v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class Hook:
    """One hook: a Python ``target`` (``module:function``) or a shell ``command``."""

    target: str | None = None
    command: str | None = None

    @classmethod
    def parse(cls, item: str | Mapping[str, str]) -> Hook:
        if isinstance(item, Mapping):
            if set(item) == {"call"}:
                return cls(target=str(item["call"]))
            if set(item) == {"run"}:
                return cls(command=str(item["run"]))
            raise ConfigurationError(f"a hook is {{'call': 'mod:fn'}} or {{'run': 'cmd'}}, "
                                     f"got {dict(item)!r}")
        if not isinstance(item, str) or not item.strip():
            raise ConfigurationError(f"a hook is a string or a mapping, got {item!r}")
        text = item.strip()
        return cls(target=text) if _CALLABLE.match(text) else cls(command=text)

    def __str__(self) -> str:
        return self.target or self.command or "?"

    def _function(self) -> Callable[[HookContext], Any]:
        assert self.target is not None
        module_name, _, attribute = self.target.partition(":")
        try:
            value: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                value = getattr(value, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(f"hook {self.target!r} cannot be loaded: {exc}") from exc
        if not callable(value):
            raise ConfigurationError(f"hook {self.target!r} is not callable")
        return value  # type: ignore[no-any-return]

    def __call__(self, context: HookContext) -> None:
        if self.target is not None:
            self._function()(context)
            return
        assert self.command is not None
        logger.debug("hook %s: running %s", context.event, self.command)
        proc = subprocess.run(
            ["bash", "-c", self.command], capture_output=True, text=True, check=False,
            env={**clean_environment(), **context.environment()}, cwd=context.job_dir,
            timeout=300,
        )
        if proc.returncode != 0:
            detail = (proc.stderr.strip() or proc.stdout.strip()).replace("\n", " | ")
            raise RuntimeError(f"exited with status {proc.returncode}: {detail}")


def parse_hooks(config: Mapping[str, Any] | None) -> dict[str, tuple[Hook, ...]]:
    """Hooks by event from a site's ``hooks`` mapping (``before-submit`` spelling accepted)."""
    hooks: dict[str, tuple[Hook, ...]] = {event: () for event in EVENTS}
    for key, items in (config or {}).items():
        event = str(key).replace("-", "_")
        if event not in EVENTS:
            raise ConfigurationError(f"unknown hook event {key!r}; use {', '.join(EVENTS)}")
        if isinstance(items, (str, Mapping)):
            items = [items]
        hooks[event] = tuple(Hook.parse(item) for item in (items or []))
    return hooks


def run_hooks(hooks: Sequence[Hook], context: HookContext) -> None:
    """Run ``hooks`` in order. Before submission a failure raises ``SubmissionError`` (the job
    is not submitted); afterwards it is logged, since the job exists whatever a hook says."""
    for hook in hooks:
        try:
            hook(context)
        except Exception as exc:
            message = f"{context.event} hook {hook} failed: {exc}"
            if context.event == "before_submit":
                raise SubmissionError(message) from exc
            logger.warning("%s (job %s)", message, context.job_id)
