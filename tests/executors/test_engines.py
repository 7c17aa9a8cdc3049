"""``open_engine``: one sweep interface over local, Dask and Parsl, started and stopped."""

from __future__ import annotations

import parsl
import pytest

from hal_workflow.circuits import Circuit
from hal_workflow.contract.errors import ConfigurationError
from hal_workflow.executors.engines import open_engine, parse_spec

CIRCUIT = Circuit.from_qasm('OPENQASM 3.0; include "stdgates.inc"; input float t; qubit[1] q; '
                            "bit[1] c; rx(t) q[0]; c = measure q;")
ROTATION = Circuit.from_qasm('OPENQASM 3.0; include "stdgates.inc"; input float t; qubit[1] q; '
                             "rx(t) q[0];")
BINDINGS = [{"t": 0.0}, {"t": 3.141592653589793}]
SPEC = {"name": "sim", "threads": 1}


def check(engine: object) -> None:
    results = engine.sweep(CIRCUIT, BINDINGS, SPEC, shots=50)  # type: ignore[attr-defined]
    assert [r.counts for r in results] == [{"0": 50}, {"1": 50}]
    values = engine.estimate(ROTATION, [(2.0, "Z")], BINDINGS, SPEC)  # type: ignore[attr-defined]
    assert values == pytest.approx([2.0, -2.0])


def test_local_engine() -> None:
    with open_engine("local") as engine:
        check(engine)


def test_dask_engine_connects_to_a_running_scheduler(dask_client: object) -> None:
    address = dask_client.scheduler.address  # type: ignore[attr-defined]
    with open_engine("dask", address=address) as engine:
        assert engine.client.scheduler.address == address
        check(engine)
    assert dask_client.status == "running"  # type: ignore[attr-defined]  # only ours closed


def test_parsl_engine_loads_and_cleans_up(tmp_path: object) -> None:
    with open_engine("parsl", workers=1, site="local_threads") as engine:
        assert engine.dfk is parsl.dfk()
        check(engine)
    with pytest.raises(parsl.errors.NoDataFlowKernelError):
        parsl.dfk()


def test_unknown_engine() -> None:
    with pytest.raises(ConfigurationError, match="local, dask, parsl"), open_engine("ray"):
        pass


def test_backend_specs_from_the_command_line() -> None:
    assert parse_spec(" sim ") == "sim"
    assert parse_spec('{"name": "sim", "seed": 3}') == {"name": "sim", "seed": 3}
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        parse_spec('{"name": ')
