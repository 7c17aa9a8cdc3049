"""Credentials never leak: distinctive tokens for every adapter, every path they could take.

Each adapter gets a token no output may contain: IQM (a spec ``token`` by value and by
reference, checked by the local server), IBM (``QISKIT_IBM_TOKEN`` and a saved account),
Braket (AWS keys in the environment and in a profile). The paths: ``repr``/``str`` of
backends, specs and ``hal.submit``'s ``Job``; log records at DEBUG; exceptions and their
pickles; pickled specs and jobs (for credentials given by reference); the SLURM job directory
of a job dispatched on the real test cluster; the CLI's ``--json`` output and its errors.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("iqm.iqm_client")

from iqm_server import IQMMockServer

import hal_workflow as hal
from hal_workflow.backends.registry import get_backend
from hal_workflow.contract import (
    ConfigurationError,
    CredentialsError,
    HalError,
    JobNotFoundError,
)
from hal_workflow.contract.secrets import to_storable
from hal_workflow.testing import circuits

IQM_TOKEN = "LEAK-iqm-3f9a1c77d2"
IBM_TOKEN = "LEAK-ibm-88be04a1c5"
AWS_SECRET = "LEAK-aws-51c2e9b0f4"
TOKENS = (IQM_TOKEN, IBM_TOKEN, AWS_SECRET)
BELL = circuits.bell()[0]


def assert_clean(*texts: object) -> None:
    for text in texts:
        blob = text if isinstance(text, bytes) else str(text).encode()
        for token in TOKENS:
            assert token.encode() not in blob, f"{token} leaked into {blob[:300]!r}"


@pytest.fixture(scope="module")
def server() -> Iterator[IQMMockServer]:
    """An IQM server that accepts only IQM_TOKEN (so the token really was used)."""
    with IQMMockServer(token=IQM_TOKEN) as running:
        yield running


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("IQM_TOKEN", "IQM_TOKENS_FILE", "IQM_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HAL_LEAK_IQM_TOKEN", IQM_TOKEN)
    monkeypatch.setenv("QISKIT_IBM_TOKEN", IBM_TOKEN)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIALEAKTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return tmp_path


def specs(server: IQMMockServer) -> dict[str, dict[str, Any]]:
    return {
        "iqm-value": {"name": "iqm", "url": server.url, "token": IQM_TOKEN},
        "iqm-reference": {"name": "iqm", "url": server.url, "token": {"env": "HAL_LEAK_IQM_TOKEN"}},
        "ibm": {"name": "ibm", "backend": "fake_manila", "seed": 3},
        "braket": {"name": "braket", "device": "local"},
    }


def test_repr_logs_jobs_results_and_errors(server: IQMMockServer, environment: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[object] = []
    for label, spec in specs(server).items():
        backend = get_backend(spec)
        job = hal.submit(BELL, spec, shots=20)
        result = job.result(timeout=120)
        assert sum(result.counts.values()) == 20, label
        seen += [repr(backend), str(backend), backend.spec, repr(job), str(job),
                 result.to_json(), repr(result), json.dumps(job.backend_spec, default=repr)]
        logging.getLogger("hal_workflow.test").debug("spec %s backend %r job %r", backend.spec,
                                                     backend, job)
        # Errors: a bad option, an unknown job, a circuit that cannot run.
        for call in (lambda s=spec: get_backend({**s, "bogus": 1}),
                     lambda s=spec: hal.Job("no-such-job", s).status(),
                     lambda s=spec: hal.run("OPENQASM 3.0; qubit[99] q; h q;", s, shots=5)):
            with pytest.raises(HalError) as info:
                call()
            seen += [str(info.value), repr(info.value), pickle.dumps(info.value)]
    assert_clean(*seen, caplog.text)
    assert any(record.levelno == logging.DEBUG and record.name.startswith("hal_workflow")
               for record in caplog.records)


def test_pickles_of_referenced_credentials(server: IQMMockServer, environment: Path) -> None:
    spec = specs(server)["iqm-reference"]
    job = hal.submit(BELL, spec, shots=10)
    for data in (pickle.dumps(job), pickle.dumps(job.backend_spec), pickle.dumps(spec)):
        assert_clean(data)
    again = pickle.loads(pickle.dumps(job))  # and it still works where it is unpickled
    assert sum(again.result(timeout=60).counts.values()) == 10


def test_a_value_never_goes_to_disk(server: IQMMockServer, environment: Path) -> None:
    wrapped = {"name": "slurm", "backend": get_backend(specs(server)["iqm-value"]).spec}
    with pytest.raises(CredentialsError, match=r"'backend\.token' holds a credential by value"):
        to_storable(wrapped)
    assert_clean(json.dumps(to_storable(specs(server)["iqm-reference"])))


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hal_workflow.cli", *args], capture_output=True,
                          text=True, timeout=180, env=env)


def test_cli_json_and_errors(server: IQMMockServer, environment: Path) -> None:
    program = environment / "bell.qasm"
    program.write_text(BELL)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    outputs = []
    for spec in specs(server).values():
        ok = cli("run", str(program), "--backend", json.dumps(spec), "--shots", "16", "--json",
                 env=env)
        assert ok.returncode == 0, ok.stderr
        assert sum(json.loads(ok.stdout)["counts"].values()) == 16
        bad = cli("run", str(program), "--backend", json.dumps({**spec, "bogus": 1}), env=env)
        assert bad.returncode == 1 and bad.stderr.startswith("error: ")
        assert len(bad.stderr.strip().splitlines()) == 1  # one line, no traceback
        outputs += [ok.stdout, ok.stderr, bad.stdout, bad.stderr]
    assert_clean(*outputs)


# -- SLURM dispatch on the real test cluster -------------------------------------------------------
@pytest.mark.slurm
def test_slurm_job_directory_holds_no_credential(server: IQMMockServer, environment: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    root = environment / "jobs"
    spec = {"name": "slurm", "site": "ci", "job_root": str(root),
            "backend": specs(server)["iqm-reference"]}
    try:
        backend = get_backend(spec)
        job = hal.submit(BELL, spec, shots=30)
        result = job.result(timeout=240)
        assert sum(result.counts.values()) == 30
        assert len(server.jobs) >= 1  # the compute node used the token (the server checks it)
        files = [p for p in root.rglob("*") if p.is_file()]
        assert any(p.name == "job.json" for p in files)
        stored = json.loads(next(p for p in files if p.name == "job.json").read_text())
        assert stored["backend"]["token"] == {"env": "HAL_LEAK_IQM_TOKEN"}
        assert_clean(*(p.read_bytes() for p in files), repr(backend), repr(job), caplog.text,
                     result.to_json())
        # A token given by value is refused before anything is submitted.
        with pytest.raises((CredentialsError, ConfigurationError)) as info:
            hal.submit(BELL, {**spec, "backend": specs(server)["iqm-value"]}, shots=5)
        assert_clean(str(info.value))
    finally:
        ids = [json.loads(p.read_text()).get("id") for p in root.rglob("scheduler_job.json")]
        if any(ids):
            subprocess.run(["scancel", *map(str, filter(None, ids))], capture_output=True,
                           timeout=30, check=False)
    with pytest.raises(JobNotFoundError):
        hal.Job("1@" + str(root / "missing"), spec).status()
