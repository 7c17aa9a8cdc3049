"""Every journal test gets its own journal file, as the process default and in the
environment of the subprocesses it starts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hal_workflow import journal as journals


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[journals.Journal]:
    path = tmp_path / "journal.sqlite"
    monkeypatch.setenv("HAL_WORKFLOW__JOURNAL__PATH", str(path))
    fresh = journals.Journal(path)
    previous = journals.set_default(fresh)
    yield fresh
    journals.set_default(previous)
    fresh.close()
