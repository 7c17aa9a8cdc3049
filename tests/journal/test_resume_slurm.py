"""A resumed sweep through a SLURM spec submits one sparse array of the missing elements
(task ``i`` seeded ``seed + i``), and its counts equal the in-process sweep's."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hal_workflow as hal
import hal_workflow.orchestration.sync
from hal_workflow.journal import Journal

pytestmark = pytest.mark.slurm

PROGRAM = """OPENQASM 3.0;
include "stdgates.inc";
input float theta;
qubit[3] q;
bit[3] c;
h q[0];
rx(theta) q[1];
cx q[0], q[2];
c = measure q;
"""


def test_slurm_sweep_resumes_with_a_sparse_array(journal: Journal, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAL_WORKFLOW_JOB_ROOT", str(tmp_path / "jobs"))
    inner = {"name": "sim", "threads": 1}
    spec = {"name": "slurm", "backend": inner, "partition": "debug", "time": "00:05:00"}
    bindings = [{"theta": math.pi * i / 7} for i in range(8)]
    batch_class = type(hal.orchestration.sync.backend_for(spec).extension("batch"))
    calls: list[tuple[int, list[int] | None, int | None]] = []
    job_ids: list[str] = []
    submit_sweep = batch_class.submit_sweep

    async def spy(self: object, circuit: object, part: list, shots: int, *, seed: int | None = None,
                  indices: list[int] | None = None) -> list:
        calls.append((len(part), None if indices is None else list(indices), seed))
        ids = await submit_sweep(self, circuit, part, shots, seed=seed, indices=indices)
        job_ids.extend(ids)
        return ids

    monkeypatch.setattr(batch_class, "submit_sweep", spy)
    first = hal.sweep(PROGRAM, bindings[:5], spec, 300, seed=21, sweep_id="slurm-resume",
                      progress=False)
    assert calls == [(5, [0, 1, 2, 3, 4], 21)] and len(first) == 5  # one array
    whole = hal.sweep(PROGRAM, bindings, spec, 300, sweep_id="slurm-resume", progress=False)
    reused = [bool(r.metadata.get("reused")) for r in whole]
    assert reused == [True] * 5 + [False] * 3
    assert calls[1:] == [(3, [5, 6, 7], 21)]  # one sparse array of the rest, recorded seed
    reference = hal.sweep(PROGRAM, bindings, inner, 300, seed=21, progress=False)
    assert [r.counts for r in whole] == [r.counts for r in reference]
    # a SLURM job is read back by id alone, from a fresh process: spec from the journal
    journal.flush()
    record = journal.get(job_ids[-1])
    assert record is not None and record.state.value == "COMPLETED" and record.shots == 300
    out = subprocess.run([sys.executable, "-c", READ, job_ids[-1]], capture_output=True,
                         text=True, timeout=300, env=os.environ.copy())
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == dict(whole[7].counts)


READ = """
import sys, json
import hal_workflow as hal
print(json.dumps(dict(hal.Job(sys.argv[1]).result().counts)))
"""
