"""The ``hal-workflow`` command line: list backends, validate and run OpenQASM 3 files.

Errors print one line (``error: bell.qasm:3:4: unknown gate 'hh'``) and exit non-zero:
1 for a failed run or invalid circuit, 2 for bad usage (click's convention).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from hal_workflow.contract.errors import ConfigurationError, HalError

_F = TypeVar("_F", bound=Callable[..., Any])

def _qdmi_specs() -> list[dict[str, Any]]:
    from hal_workflow.backends.qdmi import list_qdmi_devices

    return [{"name": "qdmi", "device": device.id} for device in list_qdmi_devices()]


EXAMPLE_SPECS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "sim": lambda: [{"name": "sim"}],
    "braket": lambda: [{"name": "braket", "device": "local"}],
    "ibm": lambda: [{"name": "ibm", "backend": "fake_manila"}],
    "qdmi": _qdmi_specs,
    "iqm": lambda: (
        [{"name": "iqm", "url": os.environ["IQM_SERVER_URL"]}]
        if os.environ.get("IQM_SERVER_URL")
        else []
    ),
}
"""Specs to show for each built-in backend in ``hal-workflow backends`` (empty: needs input)."""

SPEC_HINTS = {
    "iqm": '{"name": "iqm", "url": URL} (or set IQM_SERVER_URL)',
    "slurm": '{"name": "slurm", "backend": "sim", "partition": ..., "time": ...}',
    "pbs": '{"name": "pbs", "backend": "sim", "queue": ..., "time": ...}',
}


def parse_spec(text: str) -> str | dict[str, Any]:
    """A ``--backend`` value: a name, or a JSON mapping such as '{"name": "sim", "seed": 1}'."""
    text = text.strip()
    if not text.startswith("{"):
        return text
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"--backend is not valid JSON: {exc}") from exc
    if not isinstance(spec, dict):
        raise ConfigurationError("--backend JSON must be an object with a 'name'")
    return spec


def _one_line_errors(command: _F) -> _F:
    """Turn contract errors into one line on stderr and exit status 1."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except HalError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def _load_circuit(path: str) -> Any:
    from hal_workflow.circuits import Circuit

    return Circuit.from_file(path)


def _parse_params(values: tuple[str, ...]) -> dict[str, float] | None:
    params: dict[str, float] = {}
    for item in values:
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            params[name.strip()] = float(value)
        except ValueError:
            raise ConfigurationError(f"--param expects NAME=NUMBER, got {item!r}") from None
    return params or None


@click.group()
@click.version_option(package_name="hal-workflow")
def main() -> None:
    """hal-workflow: quantum backends behind the HAL contract v1."""


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print capabilities as JSON.")
@_one_line_errors
def backends(as_json: bool) -> None:
    """List the backends and what each can run."""
    from hal_workflow.backends.registry import available_backends, get_backend

    rows: list[dict[str, Any]] = []
    for name in available_backends():
        try:
            examples = EXAMPLE_SPECS.get(name, list)()
        except HalError as exc:  # the backend's SDK is missing or broken
            rows.append({"name": name, "spec": SPEC_HINTS.get(name, name),
                         "unavailable": str(exc)})
            continue
        if not examples:
            rows.append({"name": name, "spec": SPEC_HINTS.get(name, name)})
        for example in examples:
            row: dict[str, Any] = {"name": name, "spec": example}
            try:
                row["capabilities"] = get_backend(example).capabilities().to_dict()
            except HalError as exc:
                row["unavailable"] = str(exc)
            rows.append(row)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        caps = row.get("capabilities")
        spec = row["spec"] if isinstance(row["spec"], str) else json.dumps(row["spec"])
        if caps:
            kind = "simulator" if caps["simulator"] else "hardware"
            extensions = ",".join(caps["extensions"]) or "-"
            detail = f"{caps['num_qubits']} qubits, {kind}, extensions: {extensions}"
        else:
            detail = row.get("unavailable", "needs a spec")
        click.echo(f"{row['name']:<8} {detail}\n         spec: {spec}")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--backend", "backend", default="sim", show_default=True,
              help="Backend name or JSON spec.")
@click.option("--shots", type=int, default=None, help="Check this shot count too.")
@_one_line_errors
def validate(file: str, backend: str, shots: int | None) -> None:
    """Check FILE against a backend without running it."""
    from hal_workflow.orchestration.sync import validate as validate_circuit

    result = validate_circuit(_load_circuit(file), parse_spec(backend), shots)
    if result.valid:
        click.echo(f"{file}: valid for {backend}")
        return
    for issue in result.issues:
        click.echo(f"{file}: {issue.code.value}: {issue.message}", err=True)
    sys.exit(1)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--backend", "backend", default="sim", show_default=True,
              help="Backend name or JSON spec.")
@click.option("--shots", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="Bind an input parameter (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole ExecutionResult as JSON.")
@_one_line_errors
def run(file: str, backend: str, shots: int, params: tuple[str, ...], as_json: bool) -> None:
    """Run FILE and print its counts (bit 0 rightmost)."""
    from hal_workflow.orchestration.sync import run as run_circuit

    result = run_circuit(_load_circuit(file), parse_spec(backend), shots, _parse_params(params))
    if as_json:
        click.echo(result.to_json(indent=2))
        return
    for bits, count in sorted(result.counts.items(), key=lambda kv: (-kv[1], kv[0])):
        click.echo(f"{bits or '(no bits)'}  {count}")
    routing = result.metadata.get("routing")
    if routing:  # a route spec: say where it went and why (on stderr: stdout stays counts)
        click.echo(f"routed to {result.backend} by {routing.get('policy')}", err=True)
        for entry in routing.get("candidates", ()):
            detail = entry.get("reason") or f"score {entry.get('score')}"
            click.echo(f"  {entry['candidate']}: {entry['outcome']} ({detail})", err=True)


@main.command("run-job", hidden=True)
@click.argument("job_dir", type=click.Path(file_okay=False))
def run_job(job_dir: str) -> None:
    """Run the job in JOB_DIR (what a scheduler batch script calls on a compute node)."""
    from hal_workflow.orchestration.scheduler import run_job_dir

    sys.exit(run_job_dir(job_dir))


if __name__ == "__main__":
    main()
