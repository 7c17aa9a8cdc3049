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
# The released 1.0 surface, frozen for good: every later 1.x may only add to it.
SNAPSHOT_1_0 = Path(__file__).with_name("contract_v1_0_surface.json")
# The only values a minor version changes: the version it announces.
VERSION_LEAVES = {
    ("CONTRACT_VERSION", "value"),
    ("Backend", "attributes", "contract_version"),
}


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
    assert surface["CONTRACT_VERSION"]["value"] == "1.1"
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


def _changes(old: object, new: object, path: tuple[str, ...] = ()) -> list[str]:
    """What of ``old`` is missing or different in ``new`` (additions in ``new`` are fine)."""
    if path in VERSION_LEAVES:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        return [change for key in old for change in (
            _changes(old[key], new[key], (*path, key)) if key in new
            else [f"{'.'.join((*path, key))}: removed"])]
    if isinstance(old, list) and isinstance(new, list) and path[-1:] == ("fields",):
        # Dataclass fields: only the announced version's default may differ.
        old_f = [f for f in old if not f.startswith("contract_version:")]
        new_f = [f for f in new if not f.startswith("contract_version:")]
        return [] if new_f[: len(old_f)] == old_f else [f"{'.'.join(path)}: {old_f} -> {new_f}"]
    if old != new:
        return [f"{'.'.join(path)}: {old!r} -> {new!r}"]
    return []


def test_1_1_only_adds_to_1_0() -> None:
    """Contract 1.1 (retryable errors, RateLimitedError) changes nothing 1.0 released."""
    old = json.loads(SNAPSHOT_1_0.read_text())
    new = contract_surface()
    assert _changes(old, new) == []
    added = sorted(set(new) - set(old))
    assert added == ["RateLimitedError"]
    assert new["HalError"]["attributes"] == {"retry_after": "None", "retryable": "False"}


def test_additions_check_catches_a_change() -> None:
    old = json.loads(SNAPSHOT_1_0.read_text())
    new = json.loads(SNAPSHOT_1_0.read_text())
    new["JobFailedError"]["init"] = "(self, job_id: 'str') -> 'None'"
    del new["CircuitError"]
    changes = _changes(old, new)
    assert len(changes) == 2 and any("CircuitError: removed" in c for c in changes)
