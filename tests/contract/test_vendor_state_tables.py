"""Each adapter's vendor-state table against a table written from the vendor's documentation.

The expected tables below are transcribed from each vendor's documentation (cited per table),
not from our adapters. The set of vendor states is read from the installed SDK, so a state a
new SDK release adds fails here until someone decides what it means.
"""

from __future__ import annotations

from hal_workflow.contract import JobState

Q, R, C, F, X = (JobState.QUEUED, JobState.RUNNING, JobState.COMPLETED, JobState.FAILED,
                 JobState.CANCELLED)

# IBM Qiskit Runtime, "Job status" (qiskit-ibm-runtime RuntimeJobV2.status(), JobStatus enum):
# INITIALIZING and VALIDATING happen before the job runs; DONE is success; ERROR a failure.
IBM = {"INITIALIZING": Q, "QUEUED": Q, "VALIDATING": Q, "RUNNING": R, "DONE": C,
       "ERROR": F, "CANCELLED": X}

# Amazon Braket API reference, QuantumTaskStatus: CREATED | QUEUED | RUNNING | COMPLETED |
# FAILED | CANCELLING | CANCELLED. CANCELLING is a task that was running and is being stopped:
# contract §7.1 keeps such a job RUNNING until CANCELLED is observed.
BRAKET = {"CREATED": Q, "QUEUED": Q, "RUNNING": R, "CANCELLING": R, "COMPLETED": C,
          "FAILED": F, "CANCELLED": X}

# IQM Server API (iqm-client 36, station-control JobStatus): waiting (in the queue),
# processing (being executed), completed, failed, cancelled (by the user or an admin).
IQM = {"waiting": Q, "processing": R, "completed": C, "failed": F, "cancelled": X}

# QDMI specification, QDMI_JOB_STATUS: CREATED (not yet submitted), SUBMITTED, QUEUED, RUNNING,
# DONE, CANCELED, FAILED.
QDMI = {"CREATED": Q, "SUBMITTED": Q, "QUEUED": Q, "RUNNING": R, "DONE": C, "CANCELED": X,
        "FAILED": F}


def test_ibm_runtime_states() -> None:
    from qiskit.providers.jobstatus import JobStatus as RuntimeStatus

    from hal_workflow.backends.ibm import runtime_state

    assert {s.name for s in RuntimeStatus} == set(IBM), "the SDK knows other job states"
    for status in RuntimeStatus:  # the local mode hands back the enum
        assert runtime_state(status) == (IBM[status.name], status.name), status
    for name, state in IBM.items():  # the cloud hands back strings
        assert runtime_state(name)[0] is state, name


def test_braket_task_states() -> None:
    from braket.aws.aws_quantum_task import AwsQuantumTask

    from hal_workflow.backends.braket import task_state

    sdk_terminal = AwsQuantumTask.TERMINAL_STATES
    assert sdk_terminal <= set(BRAKET), f"the SDK has terminal states {sdk_terminal - set(BRAKET)}"
    for name, state in BRAKET.items():
        assert task_state(name) is state, name
        assert task_state(name).is_terminal == (name in sdk_terminal), name


def test_iqm_job_states() -> None:
    from iqm.station_control.interface.models.jobs_new import JobStatus as IQMStatus

    from hal_workflow.backends.iqm import STATE_TABLE

    assert {s.value for s in IQMStatus} == set(IQM), "the SDK knows other job states"
    terminal = {s.value for s in IQMStatus.terminal_statuses()}
    for name, state in IQM.items():
        assert STATE_TABLE[name] is state, name
        assert state.is_terminal == (name in terminal), name


def test_qdmi_job_states() -> None:
    from mqt.core import qdmi

    from hal_workflow.backends.qdmi import JOB_STATES

    assert {s.name for s in qdmi.Job.Status} == set(QDMI), "the SDK knows other job states"
    for name, state in QDMI.items():
        assert JOB_STATES[name] is state, name
