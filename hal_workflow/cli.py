"""The ``hal-workflow`` command line: run circuits, and submit and follow jobs like ``squeue``.

Verbs: ``backends``, ``validate``, ``run``, ``submit``, ``status``, ``result``, ``cancel``,
``jobs``, ``sweep``, ``sites``, ``config show``. Each takes ``--json`` (machine-readable output on
stdout, errors as ``{"error": {"type": ..., "message": ...}}``). Errors otherwise print one line
(``error: bell.qasm:3:4: unknown gate 'hh'``). Exit status: 0 success, 1 a runtime error (invalid
circuit, failed job, unknown job), 2 bad usage (click's convention: unknown option, bad
``--backend`` JSON, bad ``--param``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from hal_workflow.contract.errors import ConfigurationError, HalError, JobNotFoundError

_F = TypeVar("_F", bound=Callable[..., Any])


def _qdmi_specs() -> list[dict[str, Any]]:
    from hal_workflow.backends.qdmi import list_qdmi_devices

    return [{"name": "qdmi", "device": device.id} for device in list_qdmi_devices()]


def _iqm_specs() -> list[dict[str, Any]]:
    import os

    url = os.environ.get("IQM_SERVER_URL")
    return [{"name": "iqm", "url": url}] if url else []


EXAMPLE_SPECS: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "sim": lambda: [{"name": "sim"}],
    "braket": lambda: [{"name": "braket", "device": "local"}],
    "ibm": lambda: [{"name": "ibm", "backend": "fake_manila"}],
    "qdmi": _qdmi_specs,
    "iqm": _iqm_specs,
}
"""Specs to show for each built-in backend in ``hal-workflow backends`` (empty: needs input)."""

SPEC_HINTS = {
    "iqm": '{"name": "iqm", "url": URL} (or set IQM_SERVER_URL)',
    "slurm": '{"name": "slurm", "backend": "sim", "partition": ..., "time": ...}',
    "pbs": '{"name": "pbs", "backend": "sim", "queue": ..., "time": ...}',
}

IN_PROCESS_BACKENDS = frozenset({"sim", "qdmi"})
"""Backends whose jobs always run inside the submitting process."""


def jobs_outlive_process(spec: Mapping[str, Any]) -> bool:
    """Whether jobs of ``spec`` survive the process that submitted them (reattachable by id).

    In-process engines (the simulator, QDMI's DDSIM, Braket's LocalSimulator, IBM's fake
    backends) keep their jobs in memory; scheduler jobs and cloud jobs outlive the submitter.
    """
    name = str(spec.get("name", ""))
    if name in IN_PROCESS_BACKENDS:
        return False
    if name == "braket":
        return not str(spec.get("device", "local")).startswith("local")
    if name == "ibm":
        return not str(spec.get("backend", "")).startswith("fake_")
    return True


# --------------------------------------------------------------------------- plumbing

class _Output:
    """Where a command writes: plain text, or one JSON document on stdout."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def emit(self, data: Any, text: str | Callable[[], str]) -> None:
        if self.as_json:
            click.echo(json.dumps(data, indent=2, default=str))
        else:
            click.echo(text() if callable(text) else text)

    def note(self, line: str) -> None:
        """One line for people (stderr), never mixed into JSON output."""
        click.echo(f"note: {line}", err=True)


def _fail(as_json: bool, exc: BaseException, code: int) -> None:
    if isinstance(exc, click.ClickException):
        message = exc.format_message()
    else:
        message = str(exc) or type(exc).__name__
    if as_json:
        click.echo(json.dumps({"error": {"type": type(exc).__name__, "message": message,
                                         "exit_code": code}}))
    else:
        click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _command(command: _F) -> _F:
    """Add ``--json`` and turn errors into one line (or a JSON error) and an exit status."""

    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
    @wraps(command)
    def wrapper(*args: Any, as_json: bool, **kwargs: Any) -> Any:
        out = _Output(as_json or _json_default())
        try:
            return command(out, *args, **kwargs)
        except click.UsageError as exc:
            if out.as_json:
                _fail(True, exc, 2)
            raise
        except HalError as exc:
            _fail(out.as_json, exc, 1)

    return wrapper  # type: ignore[return-value]


def _json_default() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("as_json"))


def parse_spec(text: str) -> str | dict[str, Any]:
    """A ``--backend`` value: a name, or a JSON mapping such as '{"name": "sim", "seed": 1}'."""
    text = text.strip()
    if not text.startswith("{"):
        return text
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--backend") from exc
    if not isinstance(spec, dict):
        raise click.BadParameter("JSON must be an object with a 'name'", param_hint="--backend")
    return spec


def _default_backend() -> str:
    from hal_workflow import config

    value = config.get("default-backend", "sim")
    return value if isinstance(value, str) else json.dumps(value)


def _load_circuit(path: str) -> Any:
    from hal_workflow.circuits import Circuit

    return Circuit.from_file(path)


def _parse_params(values: tuple[str, ...]) -> dict[str, float] | None:
    params: dict[str, float] = {}
    for item in values:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            params[name.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(f"expects NAME=NUMBER, got {item!r}",
                                     param_hint="--param") from None
    return params or None


def _unbound_hint(circuit: Any, params: Mapping[str, float] | None) -> None:
    """Name ``--param`` for each input parameter the command line left unbound."""
    names = sorted(getattr(circuit, "parameters", ()) or ())
    missing = [n for n in names if n not in (params or {})]
    if missing:
        flags = " ".join(f"--param {n}=VALUE" for n in missing)
        raise click.UsageError(f"unbound input parameter(s) {', '.join(missing)}: add {flags}")


_backend_option = click.option(
    "--backend", "backend", default=None, metavar="SPEC",
    help="Backend name or JSON spec (default: the configured default-backend, 'sim').")


# --------------------------------------------------------------------------- the journal

def _journal() -> Any:
    """The job journal (``hal_workflow.journal.default()``)."""
    from hal_workflow import journal

    return journal.default()


def _job(job_id: str, backend: str | None) -> Any:
    """A :class:`~hal_workflow.orchestration.sync.Job` for ``job_id``: its spec from
    ``--backend`` or else from the job journal (``JobNotFoundError`` if it has none)."""
    from hal_workflow.backends.registry import normalize_spec
    from hal_workflow.orchestration.sync import Job

    if backend is None:
        return Job(job_id)
    return Job(job_id, normalize_spec(parse_spec(backend)))


@contextlib.contextmanager
def _reattaching(out: _Output, job: Any) -> Iterator[None]:
    """On ``JobNotFoundError`` for a backend whose jobs end with their process, say so."""
    try:
        yield
    except JobNotFoundError:
        if not jobs_outlive_process(job.backend_spec):
            out.note(f"{job.backend_spec['name']} jobs run inside the process that submitted "
                     "them and cannot be reattached by id from another process; only their "
                     "journal record (state, result) outlives it")
        raise


# --------------------------------------------------------------------------- commands

@click.group()
@click.version_option(package_name="hal-workflow")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"],
                                               case_sensitive=False),
              default=None, help="Log level of the hal_workflow loggers.")
@click.option("--json", "as_json", is_flag=True, help="--json for every command.")
def main(verbose: int, log_level: str | None, as_json: bool) -> None:
    """hal-workflow: quantum backends behind the HAL contract v1."""
    level = log_level.upper() if log_level else (
        "DEBUG" if verbose > 1 else "INFO" if verbose == 1 else "WARNING")
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("hal_workflow").setLevel(level)


@main.command()
@_command
def backends(out: _Output) -> None:
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

    def text() -> str:
        lines = []
        for row in rows:
            caps = row.get("capabilities")
            spec = row["spec"] if isinstance(row["spec"], str) else json.dumps(row["spec"])
            if caps:
                kind = "simulator" if caps["simulator"] else "hardware"
                extensions = ",".join(caps["extensions"]) or "-"
                detail = f"{caps['num_qubits']} qubits, {kind}, extensions: {extensions}"
            else:
                detail = row.get("unavailable", "needs a spec")
            lines.append(f"{row['name']:<8} {detail}\n         spec: {spec}")
        return "\n".join(lines)

    out.emit(rows, text)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@_backend_option
@click.option("--shots", type=int, default=None, help="Check this shot count too.")
@_command
def validate(out: _Output, file: str, backend: str | None, shots: int | None) -> None:
    """Check FILE against a backend without running it."""
    from hal_workflow.orchestration.sync import validate as validate_circuit

    backend = backend or _default_backend()
    result = validate_circuit(_load_circuit(file), parse_spec(backend), shots)
    if out.as_json or result.valid:
        out.emit(result.to_dict(), f"{file}: valid for {backend}")
    else:
        for issue in result.issues:
            click.echo(f"{file}: {issue.code.value}: {issue.message}", err=True)
    if not result.valid:
        sys.exit(1)


def _circuit_and_params(file: str, params: tuple[str, ...]) -> tuple[Any, dict[str, float] | None]:
    circuit = _load_circuit(file)
    bound = _parse_params(params)
    _unbound_hint(circuit, bound)
    return circuit, bound


def _counts_text(counts: Mapping[str, int]) -> str:
    return "\n".join(f"{bits or '(no bits)'}  {count}"
                     for bits, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


_shots_option = click.option("--shots", type=click.IntRange(min=1), default=1000,
                             show_default=True)
_param_option = click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                             help="Bind an input parameter (repeatable).")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@_backend_option
@_shots_option
@_param_option
@_command
def run(out: _Output, file: str, backend: str | None, shots: int,
        params: tuple[str, ...]) -> None:
    """Run FILE and print its counts (bit 0 rightmost)."""
    from hal_workflow.orchestration.sync import run as run_circuit

    spec = parse_spec(backend or _default_backend())
    circuit, bound = _circuit_and_params(file, params)
    result = run_circuit(circuit, spec, shots, bound)
    out.emit(result.to_dict(), lambda: _counts_text(result.counts))
    routing = result.metadata.get("routing")
    if routing:  # a route spec: where it went and why (--json has it in the metadata)
        out.note(f"routed to {result.backend} by {routing.get('policy')}")
        for entry in routing.get("candidates", ()):
            detail = entry.get("reason") or f"score {entry.get('score')}"
            out.note(f"  {entry['candidate']}: {entry['outcome']} ({detail})")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@_backend_option
@_shots_option
@_param_option
@_command
def submit(out: _Output, file: str, backend: str | None, shots: int,
           params: tuple[str, ...]) -> None:
    """Submit FILE without waiting and print the job id.

    Jobs of in-process backends (sim, qdmi, local simulators) cannot outlive this command:
    it waits for them, so the journal holds their result.
    """
    from hal_workflow.orchestration.sync import submit as submit_circuit

    spec = parse_spec(backend or _default_backend())
    circuit, bound = _circuit_and_params(file, params)
    job = submit_circuit(circuit, spec, shots, bound)
    if not jobs_outlive_process(job.backend_spec):
        job.wait()
        out.note(f"{job.backend_spec['name']} jobs run inside this process: this command waited"
                 " for the result, which the job journal keeps (hal-workflow result ID)")
    out.emit({"job_id": job.job_id, "backend": job.backend_spec}, job.job_id)


@main.command()
@click.argument("job_id")
@_backend_option
@_command
def status(out: _Output, job_id: str, backend: str | None) -> None:
    """Print the state of job JOB_ID (its spec from the job journal, or --backend)."""
    job = _job(job_id, backend)
    with _reattaching(out, job):
        state = job.status()
    out.emit(state.to_dict(), lambda: f"{job_id}  {state.state.value}" + (
        f"  {state.reason}" if state.reason else ""))


@main.command()
@click.argument("job_id")
@_backend_option
@click.option("--wait/--no-wait", default=False, help="Wait for the job to finish.")
@click.option("--timeout", type=float, default=None, help="Seconds to wait at most.")
@_command
def result(out: _Output, job_id: str, backend: str | None, wait: bool,
           timeout: float | None) -> None:
    """Print the result of job JOB_ID (counts, or the whole ExecutionResult with --json)."""
    job = _job(job_id, backend)
    with _reattaching(out, job):
        if not wait and not job.status().is_terminal:
            raise HalError(f"job {job_id} has not finished; add --wait to wait for it")
        value = job.result(timeout=timeout)
    out.emit(value.to_dict(), lambda: _counts_text(value.counts))


@main.command()
@click.argument("job_id")
@_backend_option
@_command
def cancel(out: _Output, job_id: str, backend: str | None) -> None:
    """Cancel job JOB_ID (scancel/qdel for scheduler jobs, the vendor's cancel otherwise)."""
    job = _job(job_id, backend)
    with _reattaching(out, job):
        job.cancel()
        state = job.status()
    out.emit(state.to_dict(), f"{job_id}  {state.state.value}")


_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _parse_age(text: str | None) -> float | None:
    if text is None:
        return None
    unit = text[-1:].lower()
    try:
        return float(text[:-1]) * _AGE_UNITS[unit] if unit in _AGE_UNITS else float(text)
    except ValueError:
        raise click.BadParameter(f"expects a number with s/m/h/d/w, got {text!r}",
                                 param_hint="--since") from None


@main.command()
@click.option("--state", "states", multiple=True,
              type=click.Choice(["QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"],
                                case_sensitive=False), help="Only jobs in this state (repeatable).")
@click.option("--backend", "backend_name", default=None, metavar="NAME",
              help="Only jobs of this backend name.")
@click.option("--since", default=None, metavar="AGE", help="Only jobs submitted within AGE "
              "(e.g. 90s, 30m, 2h, 7d).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@_command
def jobs(out: _Output, states: tuple[str, ...], backend_name: str | None, since: str | None,
         limit: int) -> None:
    """List the jobs you submitted, newest first (from the job journal)."""
    journal = _journal()
    age = _parse_age(since)
    kwargs: dict[str, Any] = {"limit": limit}
    if states:
        kwargs["state"] = [s.upper() for s in states]
    if backend_name:
        kwargs["backend"] = backend_name
    if age is not None:
        kwargs["since"] = time.time() - age
    rows = [r.to_dict() for r in journal.list_jobs(**kwargs)]

    def text() -> str:
        lines = [f"{'JOB ID':<40} {'STATE':<10} {'BACKEND':<10} SUBMITTED"]
        for row in rows:
            name = row.get("backend") or "-"
            when = row.get("submitted_at")
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when)) if when else "-"
            lines.append(f"{row.get('job_id', '?'):<40} {row.get('state', '?'):<10} "
                         f"{name!s:<10} {stamp}")
        return "\n".join(lines)

    out.emit(rows, text)


def read_bindings(path: str) -> list[dict[str, float]]:
    """Bindings from a JSON list of objects or a CSV file with one column per parameter."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"--bindings: cannot read {path}: {exc.strerror}") from exc
    if file.suffix.lower() == ".csv":
        rows: Sequence[Mapping[str, Any]] = list(csv.DictReader(text.splitlines()))
        where = "row"
        offset = 2  # the header is line 1
    else:
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"--bindings: {path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
            ) from exc
        if not isinstance(loaded, list) or not all(isinstance(r, dict) for r in loaded):
            raise ConfigurationError(f"--bindings: {path} must hold a JSON list of objects")
        rows, where, offset = loaded, "element", 0
    bindings: list[dict[str, float]] = []
    for index, row in enumerate(rows):
        try:
            bindings.append({str(k).strip(): float(v) for k, v in row.items()})
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"--bindings: {path}: {where} {index + offset} has a value that is not a "
                f"number: {dict(row)}") from None
    if not bindings:
        raise ConfigurationError(f"--bindings: {path} holds no bindings")
    return bindings


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--bindings", "bindings_file", required=True, type=click.Path(dir_okay=False),
              help="A JSON list of {name: value} objects, or a CSV with one column per name.")
@_backend_option
@_shots_option
@click.option("--chunk", type=click.IntRange(min=1), default=None,
              help="Bindings per batch (default: about 1% of the sweep).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: when stderr is a terminal).")
@_command
def sweep(out: _Output, file: str, bindings_file: str, backend: str | None, shots: int,
          chunk: int | None, progress: bool | None) -> None:
    """Run FILE once per binding in --bindings, results in input order.

    With a seed in the spec, element i is sampled with seed + i, as on every engine.
    """
    from tqdm.auto import tqdm

    from hal_workflow.executors._tasks import run_sweep

    spec = parse_spec(backend or _default_backend())
    circuit = _load_circuit(file)
    bindings = read_bindings(bindings_file)
    _unbound_hint(circuit, bindings[0])
    size = chunk or max(1, len(bindings) // 100)
    show = sys.stderr.isatty() if progress is None else progress
    results = []
    with tqdm(total=len(bindings), disable=not show, unit="circuit", file=sys.stderr) as bar:
        for first in range(0, len(bindings), size):
            part = bindings[first:first + size]
            results.extend(run_sweep(spec, circuit, part, shots, first_index=first))
            bar.update(len(part))

    def text() -> str:
        return "\n".join(
            f"{i}  {json.dumps(b)}  " + "  ".join(f"{k}:{v}" for k, v in sorted(
                r.counts.items(), key=lambda kv: (-kv[1], kv[0])))
            for i, (b, r) in enumerate(zip(bindings, results, strict=True)))

    out.emit([r.to_dict() for r in results], text)


@main.command()
@_command
def sites(out: _Output) -> None:
    """List the site files found, and the Parsl and Dask sites."""
    from hal_workflow.orchestration.sites import available_sites, find_site

    rows = [{"name": name, "file": str(find_site(name))} for name in available_sites()]
    engine_sites: dict[str, list[str]] = {}
    try:
        from hal_workflow.executors.config import list_sites

        engine_sites = {"parsl": list_sites("parsl"), "dask": list_sites("dask")}
    except ImportError:
        pass
    data = {"sites": rows, **engine_sites}

    def text() -> str:
        lines = [f"{row['name']:<20} {row['file']}" for row in rows]
        lines += [f"{engine} sites: {', '.join(names)}" for engine, names in engine_sites.items()]
        return "\n".join(lines)

    out.emit(data, text)


@main.group("config")
def config_group() -> None:
    """Show the configuration."""


@config_group.command("show")
@click.argument("key", required=False)
@_command
def config_show(out: _Output, key: str | None) -> None:
    """Print the merged configuration (or KEY) and where each value came from."""
    from hal_workflow import config

    rows = config.explain(key)
    out.emit(rows, lambda: "\n".join(
        f"{row['key']} = {json.dumps(row['value'], default=str)}    # {row['source']}"
        for row in rows))


@main.command("run-job", hidden=True)
@click.argument("job_dir", type=click.Path(file_okay=False))
def run_job(job_dir: str) -> None:
    """Run the job in JOB_DIR (what a scheduler batch script calls on a compute node)."""
    from hal_workflow.orchestration.scheduler import run_job_dir

    sys.exit(run_job_dir(job_dir))


if __name__ == "__main__":
    main(prog_name="hal-workflow")
