"""pytest plugin (``pytest11`` entry point ``hal_workflow``): run the kit from the command line.

``pytest --hal-backend SPEC`` checks the backend SPEC (a registry name such as ``sim``, or a
JSON mapping such as ``'{"name": "ibm", "backend": "fake_manila"}'``) with the conformance
kit. With no test paths on the command line only the kit runs; with paths, the kit runs beside
them. ``--hal-knob NAME=VALUE`` (repeatable; VALUE is JSON, else a string) sets a suite knob,
e.g. ``--hal-knob noisy=true --hal-knob shots=4000``.

This module is imported in every pytest run of every project that has hal-workflow
installed, so it imports nothing from hal-workflow until the option is used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

CLI_SUITE = Path(__file__).with_name("cli_suite.py")
SPEC_KEY = pytest.StashKey["str | dict[str, Any]"]()
KNOBS_KEY = pytest.StashKey["dict[str, Any]"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hal-workflow", "hal-workflow backend conformance kit")
    group.addoption(
        "--hal-backend",
        dest="hal_backend",
        metavar="SPEC",
        default=None,
        help="run the HAL contract conformance kit on this backend spec (name or JSON mapping)",
    )
    group.addoption(
        "--hal-knob",
        dest="hal_knobs",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="set a ConformanceSuite knob for --hal-backend (VALUE as JSON), e.g. noisy=true",
    )


def parse_spec(text: str) -> str | dict[str, Any]:
    """A spec from the command line: a JSON mapping, or else a plain name."""
    text = text.strip()
    if text.startswith("{"):
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise pytest.UsageError(f"--hal-backend: not valid JSON: {exc}") from None
        if not isinstance(spec, dict):
            raise pytest.UsageError("--hal-backend: a JSON spec must be an object")
        return spec
    return text


def parse_knobs(items: list[str]) -> dict[str, Any]:
    knobs: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise pytest.UsageError(f"--hal-knob expects NAME=VALUE, got {item!r}")
        try:
            knobs[name.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            knobs[name.strip()] = raw
    return knobs


def pytest_configure(config: pytest.Config) -> None:
    spec = config.getoption("hal_backend", None)
    if not spec:
        return
    config.stash[SPEC_KEY] = parse_spec(spec)
    config.stash[KNOBS_KEY] = parse_knobs(config.getoption("hal_knobs"))
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        config.args[:] = [str(CLI_SUITE)]
    elif str(CLI_SUITE) not in config.args:
        config.args.append(str(CLI_SUITE))
