"""The journal itself: records, filters, redaction, results, several processes, retention."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hal_workflow.contract.secrets import Secret
from hal_workflow.contract.types import ExecutionResult, JobState
from hal_workflow.journal import BLOB_THRESHOLD, Journal, JournalError, circuit_digest


def _result(job_id: str, counts: dict[str, int], **metadata: object) -> ExecutionResult:
    return ExecutionResult(counts=counts, shots=sum(counts.values()), job_id=job_id,
                           backend="sim", executed_program="OPENQASM 3.0;",
                           timings={"execution_s": 0.5}, metadata=metadata)


def test_record_lifecycle_and_read_back(journal: Journal) -> None:
    journal.record_submit("j1", "ibm", {"name": "ibm", "instance": "x"}, circuit="OPENQASM 3.0;",
                          shots=100, parameters={"theta": 0.25}, at=10.0)
    journal.record_state("j1", "RUNNING", at=11.0, vendor_job_id="vendor-7")
    journal.record_state("j1", JobState.COMPLETED, at=12.5)
    journal.record_result("j1", _result("j1", {"01": 60, "10": 40}, seed=3))
    record = journal.get("j1")
    assert record is not None
    assert record.state is JobState.COMPLETED and record.vendor_job_id == "vendor-7"
    assert [h[:2] for h in record.history] == [("QUEUED", 10.0), ("RUNNING", 11.0),
                                               ("COMPLETED", 12.5)]
    assert record.circuit_digest == circuit_digest("OPENQASM 3.0;")
    assert record.parameters == {"theta": 0.25} and record.shots == 100
    data = json.loads(json.dumps(record.to_dict()))
    assert data["state"] == "COMPLETED" and data["spec"] == {"name": "ibm", "instance": "x"}
    result = journal.result("j1")
    assert result == _result("j1", {"01": 60, "10": 40}, seed=3)
    assert journal.find_vendor("vendor-7").job_id == "j1"  # type: ignore[union-attr]
    assert journal.get("nope") is None and journal.result("nope") is None


def test_list_jobs_filters_newest_first(journal: Journal) -> None:
    for i in range(6):
        journal.record_submit(f"j{i}", "sim" if i % 2 else "iqm", {"name": "x"}, at=100.0 + i,
                              state="COMPLETED" if i < 4 else "RUNNING")
    assert [r.job_id for r in journal.list_jobs()] == ["j5", "j4", "j3", "j2", "j1", "j0"]
    assert [r.job_id for r in journal.list_jobs(state="COMPLETED", limit=2)] == ["j3", "j2"]
    assert [r.job_id for r in journal.list_jobs(backend="sim")] == ["j5", "j3", "j1"]
    assert [r.job_id for r in journal.list_jobs(since=103.0)] == ["j5", "j4", "j3"]
    assert [r.job_id for r in journal.list_jobs(state=["RUNNING"], backend="iqm")] == ["j4"]


def test_secrets_never_reach_the_file(journal: Journal) -> None:
    spec = {"name": "iqm", "token": Secret("tok-123456"), "nested": {"api_key": "key-654321"},
            "url": "http://x"}
    journal.record_submit("s1", "iqm", spec)
    journal.flush()
    record = journal.get("s1")
    assert record is not None and record.spec == {
        "name": "iqm", "token": "***", "nested": {"api_key": "***"}, "url": "http://x"}
    raw = b"".join(p.read_bytes() for p in Path(journal.path).parent.glob("journal.sqlite*"))
    assert b"tok-123456" not in raw and b"key-654321" not in raw


def test_large_result_goes_to_a_blob(journal: Journal) -> None:
    counts = {format(i, "016b"): 1 for i in range(BLOB_THRESHOLD // 10)}
    journal.record_submit("big", "sim", None, state="COMPLETED",
                          result=_result("big", counts, probabilities=[0.5] * 100))
    record = journal.get("big")
    assert record is not None and record.has_result
    assert record.result_bytes < BLOB_THRESHOLD  # compressed
    got = journal.result("big")
    assert got is not None and got.counts == counts
    assert list(got.metadata["probabilities"]) == [0.5] * 100


WRITER = """
import sys
from hal_workflow.journal import Journal
j = Journal(sys.argv[1])
for i in range(int(sys.argv[3])):
    j.record_submit(f"{sys.argv[2]}-{i}", "sim", {"name": "sim"}, state="COMPLETED")
j.close()
"""


def test_several_processes_write_one_file(journal: Journal) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(journal.path), f"p{k}", "400"])
             for k in range(4)]
    for i in range(400):
        journal.record_submit(f"main-{i}", "sim", None)
    assert all(p.wait(120) == 0 for p in procs)
    assert journal.count() == 2000
    assert len(journal.list_jobs(limit=None)) == 2000


def test_retention_by_count_age_and_bytes(tmp_path: Path) -> None:
    j = Journal(tmp_path / "r.sqlite", max_jobs=10)
    for i in range(30):
        j.record_submit(f"c{i}", "sim", None, state="COMPLETED", at=1000.0 + i)
    j.record_submit("live", "sim", None, state="RUNNING", at=1.0)
    assert j.prune() == 21
    assert j.get("c0") is None and j.get("c29") is not None and j.get("live") is not None

    j.retention.max_jobs = None
    j.retention.max_age = 3600.0
    j.record_submit("fresh", "sim", None, state="COMPLETED")
    j.prune()
    assert j.get("c29") is None and j.get("fresh") is not None  # old (t=1029) pruned
    assert j.get("live") is not None  # unfinished jobs are never pruned

    j.retention.max_age = None
    j.retention.max_bytes = 3000
    for i in range(10):
        j.record_submit(f"b{i}", "sim", None, state="COMPLETED",
                        result=_result(f"b{i}", {format(k, "08b"): 1 for k in range(40)}))
    j.prune()
    sizes = [r.result_bytes for r in j.list_jobs(limit=None)]
    assert 0 < sum(sizes) <= 3000
    assert j.get("b9") is not None and j.get("b0") is None  # oldest went first
    j.close()


def test_unopenable_journal_is_a_typed_error() -> None:
    with pytest.raises(JournalError, match="/proc/hal-no-such-dir"):
        Journal("/proc/hal-no-such-dir/j.sqlite")


def test_unwritable_journal_warns_once_and_jobs_go_on(tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    j = Journal(tmp_path / "w.sqlite")
    j.path = Path("/proc/hal-no-such-dir/j.sqlite")  # the storage went away after opening
    with caplog.at_level("WARNING", logger="hal_workflow.journal"):
        for i in range(5):
            j.record_submit(f"x{i}", "sim", None)
        j.flush()
        j.record_submit("y", "sim", None)
        j.flush()
    warnings = [r for r in caplog.records if "not writable" in r.getMessage()]
    assert len(warnings) == 1 and "/proc/hal-no-such-dir" in warnings[0].getMessage()


def test_flush_waits_for_the_writer(journal: Journal) -> None:
    start = time.monotonic()
    for i in range(5000):
        journal.record_submit(f"f{i}", "sim", None)
    journal.flush()
    assert journal.count() == 5000
    assert time.monotonic() - start < 60
