"""The public surface of contract v1 is frozen: compare it with the checked-in snapshot.

A released contract version never changes (docs/contract-v1.md, "Versioning"). If this test
fails, an accidental change reached ``hal_workflow.contract``: undo it, or, for a deliberate
change that comes with a new contract version or extension, regenerate the snapshot with::

    python -m hal_workflow.testing.surface > tests/contract/contract_v1_surface.json
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

from hal_workflow.testing.surface import contract_surface

SNAPSHOT = Path(__file__).with_name("contract_v1_surface.json")


def render(surface: object) -> list[str]:
    return json.dumps(surface, indent=1, sort_keys=True).splitlines()


def test_surface_matches_snapshot() -> None:
    expected = render(json.loads(SNAPSHOT.read_text()))
    actual = render(contract_surface())
    diff = list(difflib.unified_diff(expected, actual, "snapshot", "hal_workflow.contract",
                                     lineterm=""))
    assert not diff, "contract v1 surface changed:\n" + "\n".join(diff) + "\n" + __doc__


def test_surface_describes_the_contract() -> None:
    import hal_workflow.contract as contract

    surface = contract_surface()
    assert set(surface) == set(contract.__all__)
    assert surface["CONTRACT_VERSION"]["value"] == "1.0"
    assert surface["Backend"]["methods"]["submit"].startswith("async (self, circuit")
    assert [f.split(":")[0] for f in surface["JobStatus"]["fields"]] == [
        "job_id", "state", "reason", "vendor_state", "queue_position", "observed_at"]


def test_a_changed_signature_shows_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from hal_workflow.contract import Backend

    before = contract_surface()

    async def submit(self: Backend, circuit: str, shots: int = 1000) -> str:  # default added
        raise NotImplementedError

    monkeypatch.setattr(Backend, "submit", submit)
    after = contract_surface()
    assert after["Backend"]["methods"]["submit"] != before["Backend"]["methods"]["submit"]
    assert render(after) != render(json.loads(SNAPSHOT.read_text()))
