"""The README's Qrisp example (fenced ```python qrisp, so the main README test, which runs
without qrisp, leaves it to this one) runs as written."""

from __future__ import annotations

import re
import runpy
import warnings
from pathlib import Path

import pytest

pytest.importorskip("qrisp", reason="qrisp is not installed here: run .ci/extra-tests.sh qrisp")

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
BLOCKS = re.findall(r"```python qrisp\n(.*?)```", README, flags=re.DOTALL)


def test_qrisp_example_runs(tmp_path: Path) -> None:
    assert len(BLOCKS) == 1
    script = tmp_path / "readme_qrisp.py"
    script.write_text(BLOCKS[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Qrisp 0.9 marks VirtualBackend deprecated
        namespace = runpy.run_path(str(script), run_name="readme_example")
    assert namespace["distribution"] == {9: 1.0}
