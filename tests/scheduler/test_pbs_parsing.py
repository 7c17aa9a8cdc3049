"""PBS Pro and Torque status parsing on recorded ``qstat`` output (no PBS server needed).

The PBS Pro samples follow OpenPBS's documented ``qstat -x -f -F json`` layout (no PBS
server is installable here; see ``data/README.md``); the wrapper samples were recorded from
Slurm's ``slurm-wlm-torque``. The end-to-end tests below put small stand-in ``qsub``/``qstat``
/``qdel`` scripts on PATH that print those recordings, so the whole status path runs:
command line, parsing, id matching, and the job directory's say in how a job ended.
"""

from __future__ import annotations

import asyncio
import json
import logging
import stat
from pathlib import Path

import pytest
from scheduler_helpers import BELL, DATA

from hal_workflow.backends.registry import register_backend
from hal_workflow.contract.errors import JobNotFoundError
from hal_workflow.contract.types import JobState
from hal_workflow.orchestration.jobdir import JobDir, Task
from hal_workflow.orchestration.scheduler import PBSBackend, make_job_id
from hal_workflow.orchestration.schedulers import pbs, slurm
from hal_workflow.orchestration.schedulers.base import Phase


def test_pbspro_json_states_and_exit_codes() -> None:
    jobs = pbs.parse_qstat_json((DATA / "pbspro_qstat_x_f_json.json").read_text())
    assert set(jobs) == {f"100{i}.pbs-server" for i in range(1, 7)}
    states = {job_id: pbs.translate(job_id, record, "pbspro") for job_id, record in jobs.items()}
    assert states["1001.pbs-server"].phase is Phase.RUNNING
    finished = states["1002.pbs-server"]
    assert (finished.phase, finished.outcome, finished.exit_status) == (Phase.ENDED, None, 0)
    walltime = states["1003.pbs-server"]
    assert walltime.outcome is JobState.FAILED
    assert walltime.reason == ("TIMEOUT: walltime exceeded "
                               "(job killed: walltime 65 exceeded limit 60)")
    killed = states["1004.pbs-server"]  # 271 = SIGTERM: qdel, preemption... the dir decides
    assert (killed.phase, killed.outcome, killed.exit_status) == (Phase.ENDED, None, 271)
    assert states["1005.pbs-server"].phase is Phase.QUEUED
    assert states["1006.pbs-server"].phase is Phase.QUEUED
    assert states["1006.pbs-server"].vendor_state == "H"


def test_pbspro_array_parent_and_subjobs() -> None:
    jobs = pbs.parse_qstat_json((DATA / "pbspro_qstat_x_f_json_array.json").read_text())
    scheduler = pbs.PBS("pbspro")
    ids = [scheduler.task_id("1010[].pbs-server", i) for i in range(3)]
    assert ids == ["1010[0].pbs-server", "1010[1].pbs-server", "1010[2].pbs-server"]
    phases = [pbs.translate(i, jobs[i], "pbspro").phase for i in ids]
    assert phases == [Phase.ENDED, Phase.RUNNING, Phase.QUEUED]
    parent = pbs.translate("1010[].pbs-server", jobs["1010[].pbs-server"], "pbspro")
    assert (parent.vendor_state, parent.phase) == ("B", Phase.RUNNING)


def test_torque_text_with_wrapped_values() -> None:
    jobs = pbs.parse_qstat_full((DATA / "torque_qstat_f.txt").read_text())
    assert list(jobs) == ["4711.torque-head.cluster", "4712.torque-head.cluster",
                          "4713.torque-head.cluster", "4714[1].torque-head.cluster"]
    done = jobs["4711.torque-head.cluster"]
    assert done["Variable_List"].endswith("PBS_O_HOST=login1.cluster,"
                                          "PBS_O_SERVER=torque-head.cluster")
    assert "PBS_O_SHELL=/bin/bash" in done["Variable_List"]
    assert done["submit_args"] == "-V -o pbs.out -e pbs.err job.sh"
    states = {k: pbs.translate(k, v, "torque") for k, v in jobs.items()}
    assert states["4711.torque-head.cluster"].exit_status == 0
    assert states["4711.torque-head.cluster"].outcome is None
    assert states["4712.torque-head.cluster"].reason == "TIMEOUT: walltime exceeded"
    assert states["4713.torque-head.cluster"].phase is Phase.RUNNING
    assert states["4714[1].torque-head.cluster"].phase is Phase.QUEUED


@pytest.mark.parametrize(("sample", "phase"), [("running", Phase.RUNNING),
                                                 ("done", Phase.ENDED)])
def test_slurm_torque_wrapper_recordings(sample: str, phase: Phase) -> None:
    text = (DATA / f"slurm_torque_wrapper_qstat_f_{sample}.txt").read_text()
    jobs = pbs.parse_qstat_full(text)
    assert list(jobs) == ["19"]
    assert jobs["19"]["Resource_List.walltime"] == "00:05:00"
    state = pbs.translate("19", jobs["19"], "torque")
    assert state.phase is phase and state.outcome is None and state.exit_status is None


@pytest.mark.parametrize("letter", sorted(pbs.STATE_TABLE))
def test_every_pbs_letter_is_mapped(letter: str) -> None:
    state = pbs.translate("1", {"job_state": letter}, "pbspro")
    assert state.phase is pbs.STATE_TABLE[letter]
    assert state.vendor_state == letter


@pytest.mark.parametrize("code", sorted(slurm.TRANSLATE_TABLE))
def test_every_slurm_state_is_mapped(code: str) -> None:
    phase, outcome, reason = slurm.TRANSLATE_TABLE[code]
    state = slurm.translate("7", code)
    assert (state.phase, state.outcome, state.reason) == (phase, outcome, reason)
    assert (outcome is not None) == (phase is Phase.ENDED)
    assert (reason is not None) == (outcome is JobState.FAILED or code == "REVOKED"
                                    or code.startswith("REQUEUE"))  # requeues say so


def test_requeue_and_node_down_show_as_reasons() -> None:
    """squeue's %r reason reaches SchedulerState.reason for requeued and node-down jobs."""
    requeued = slurm.translate("7", "REQUEUED", pending_reason="BeginTime")
    assert requeued.phase is Phase.QUEUED and requeued.reason is not None
    assert "requeued" in requeued.reason and "BeginTime" in requeued.reason
    down = slurm.translate("7", "PENDING", pending_reason="ReqNodeNotAvail, UnavailableNodes:n1")
    assert down.phase is Phase.QUEUED and down.reason is not None
    assert "ReqNodeNotAvail" in down.reason and "down" in down.reason
    assert slurm.translate("7", "PENDING", pending_reason="NodeDown").reason is not None
    assert slurm.translate("7", "PENDING", pending_reason="Priority").reason is None


def test_slurm_state_spellings_and_unknown_codes(caplog: pytest.LogCaptureFixture) -> None:
    assert slurm.translate("7", "CANCELLED by 1000").outcome is JobState.CANCELLED
    assert slurm.translate("7", "TIMEOUT").reason == "TIMEOUT: time limit reached"
    with caplog.at_level(logging.WARNING):
        state = slurm.translate("7", "BRAND_NEW_STATE")
        slurm.translate("8", "BRAND_NEW_STATE")
    assert state.phase is Phase.QUEUED and state.outcome is None
    assert sum("BRAND_NEW_STATE" in r.message for r in caplog.records) == 1  # warned once
    with caplog.at_level(logging.WARNING):
        assert pbs.translate("9", {"job_state": "Z"}, "torque").phase is Phase.QUEUED
    assert any("'Z'" in r.message for r in caplog.records)


# ------------------------------------------------------------------ the PBS path end to end
FAKE = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "{log}"
case "$(basename "$0")" in
  qsub) echo "{qsub_id}" ;;
  qdel) exit 0 ;;
  qstat) if [ -f "{answer}" ]; then cat "{answer}"
         else echo "qstat: Unknown Job Id $*" >&2; exit 153; fi ;;
esac
"""


class FakePBS:
    """``qsub``/``qstat``/``qdel`` stand-ins on PATH that print a recorded answer."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        self.log = root / "commands.log"
        self.answer = root / "answer"
        self.qsub_id = "1003.pbs-server"
        self._write()
        monkeypatch.setenv("PATH", f"{self.bin}:{__import__('os').environ['PATH']}")

    def _write(self) -> None:
        for name in ("qsub", "qstat", "qdel"):
            path = self.bin / name
            path.write_text(FAKE.format(log=self.log, answer=self.answer, qsub_id=self.qsub_id))
            path.chmod(path.stat().st_mode | stat.S_IXUSR)

    def answer_with(self, text: str | None, qsub_id: str | None = None) -> None:
        if qsub_id is not None:
            self.qsub_id = qsub_id
            self._write()
        if text is None:
            self.answer.unlink(missing_ok=True)
        else:
            self.answer.write_text(text)

    def commands(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def fake_pbs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakePBS:
    return FakePBS(tmp_path, monkeypatch)


@pytest.fixture
def pbspro(tmp_path: Path) -> PBSBackend:
    register_backend("procsim", "hal_scheduler_testkit:ProcessBackend")
    # the fake qstat changes its answer at once: poll it every time (interval from the spec)
    return PBSBackend({"name": "pbs", "flavor": "pbspro", "queue": "workq", "time": "00:10:00",
                       "backend": {"name": "procsim", "root": str(tmp_path / "vendor")},
                       "job_root": str(tmp_path / "jobs"), "poll_interval": 1e-6})


def _one_job(answer: dict[str, object], job_id: str) -> str:
    """A ``qstat -F json`` answer holding one recorded job."""
    return json.dumps({"timestamp": 1, "pbs_version": "22.05.11", "pbs_server": "pbs-server",
                       "Jobs": {job_id: answer}})


def _record(name: str, job_id: str) -> dict[str, object]:
    jobs = pbs.parse_qstat_json((DATA / name).read_text())
    return jobs[job_id]


def test_pbspro_submit_status_and_endings(fake_pbs: FakePBS, pbspro: PBSBackend) -> None:
    async def scenario() -> None:
        job_id = await pbspro.submit(BELL, 100)
        scheduler_id, _, path = job_id.partition("@")
        assert scheduler_id == "1003.pbs-server"
        qsub = fake_pbs.commands()[0]
        assert qsub.startswith(f"qsub -V -o {path}/pbs.out -e {path}/pbs.err {path}/job.sh")
        script = (Path(path) / "job.sh").read_text()
        assert "#PBS -q workq\n" in script and "#PBS -l walltime=00:10:00\n" in script
        assert "#PBS -l select=1:ncpus=1\n" in script

        queued = _record("pbspro_qstat_x_f_json.json", "1005.pbs-server")
        fake_pbs.answer_with(_one_job(queued, "1003.pbs-server.cluster.example"))
        status = await pbspro.status(job_id)  # matched although qstat names a longer server
        assert (status.state, status.vendor_state) == (JobState.QUEUED, "Q")
        assert "qstat -x -f -F json 1003.pbs-server" in fake_pbs.commands()

        # the walltime kill: FAILED with PBS's reason, even though run-job left an error file
        JobDir(path).write("error", {"reason": "stopped by SIGTERM", "signal": 15})
        killed = _record("pbspro_qstat_x_f_json.json", "1003.pbs-server")
        fake_pbs.answer_with(_one_job(killed, "1003.pbs-server"))
        status = await pbspro.status(job_id)
        assert status.state is JobState.FAILED
        assert status.reason is not None and status.reason.startswith("TIMEOUT: walltime")
        # terminal states are kept: PBS forgetting the job changes nothing
        fake_pbs.answer_with(None)
        assert (await pbspro.status(job_id)).reason == status.reason

    asyncio.run(scenario())


@pytest.mark.parametrize(("files", "state", "reason"), [
    ({"result": {"counts": {"00": 1}, "shots": 1, "job_id": "x", "backend": "procsim"}},
     JobState.COMPLETED, None),
    ({"cancel": {"requested_at": 1}}, JobState.CANCELLED, "cancelled"),
    ({"error": {"reason": "CircuitError: <string>:3: unknown gate"}}, JobState.FAILED,
     "CircuitError: <string>:3: unknown gate"),
    ({}, JobState.FAILED, "the job ended without writing a result (pbs state F, Exit_status 271"),
])
def test_pbs_end_is_read_from_the_job_directory(
    fake_pbs: FakePBS, pbspro: PBSBackend, files: dict[str, dict[str, object]],
    state: JobState, reason: str | None,
) -> None:
    """PBS's F covers every ending; the directory tells COMPLETED, CANCELLED and FAILED apart."""
    job_id = asyncio.run(pbspro.submit(BELL, 1))
    directory = JobDir(job_id.partition("@")[2])
    for stem, data in files.items():
        directory.write(stem, data)
    fake_pbs.answer_with(_one_job(_record("pbspro_qstat_x_f_json.json", "1004.pbs-server"),
                                  "1003.pbs-server"))
    status = asyncio.run(pbspro.status(job_id))
    assert status.state is state
    assert (status.reason or "").startswith(reason or "")
    assert status.vendor_state == "F"


def test_pbspro_array_submission_and_subjob_status(fake_pbs: FakePBS,
                                                  pbspro: PBSBackend) -> None:
    fake_pbs.answer_with(None, qsub_id="1010[].pbs-server")
    ids = asyncio.run(pbspro.submit_sweep(
        BELL.replace("h q[0];", "input float t;\nrx(t) q[0];"), [{"t": 0.0}, {"t": 1.0},
                                                                  {"t": 2.0}], 10))
    path = ids[0].partition("@")[2]
    assert [i.partition("@")[0] for i in ids] == [f"1010[].pbs-server_{n}" for n in range(3)]
    assert f"-o {path}/pbs.out.^array_index^" in fake_pbs.commands()[0]
    assert " -J 0-2 " in fake_pbs.commands()[0]
    fake_pbs.answer_with((DATA / "pbspro_qstat_x_f_json_array.json").read_text())
    states = [asyncio.run(pbspro.status(i)).state for i in ids]
    assert states[1:] == [JobState.RUNNING, JobState.QUEUED]
    # subjob 0 ended (X) but wrote no result: FAILED, naming where its output is
    assert states[0] is JobState.FAILED
    # one qstat per round for every tracked subjob (and the array, for subjobs not started)
    wanted = {"1010[].pbs-server", "1010[1].pbs-server", "1010[2].pbs-server"}
    assert any(c.startswith("qstat -x -f -F json ") and wanted <= set(c.split())
               for c in fake_pbs.commands())


def test_foreign_and_malformed_ids_are_not_found(pbspro: PBSBackend, tmp_path: Path) -> None:
    with pytest.raises(JobNotFoundError, match="SCHEDULER_ID@JOB_DIR"):
        asyncio.run(pbspro.status("12345"))
    with pytest.raises(JobNotFoundError, match="no hal-workflow job directory"):
        asyncio.run(pbspro.status(f"12@{tmp_path}"))
    directory = JobDir.create(tmp_path / "jobs")
    directory.write_inputs("slurm", {"name": "sim"}, 10, [BELL], [Task(0, 0, None)], array=False,
                           submit={"job_name": "hal-test", "tag": "hal-workflow:test"})
    directory.write("scheduler_job", {"id": "12"})
    with pytest.raises(JobNotFoundError, match="holds a slurm job"):
        asyncio.run(pbspro.status(str(make_job_id("12", directory))))
