"""The README's CUDA-Q example (fenced ```python cudaq, so the main README test, which runs
without cudaq, leaves it to this one) runs as written."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

pytest.importorskip("cudaq", reason="cudaq is not installed here: run .ci/extra-tests.sh cudaq")

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
BLOCKS = re.findall(r"```python cudaq\n(.*?)```", README, flags=re.DOTALL)


def test_cudaq_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert len(BLOCKS) == 1
    script = tmp_path / "readme_cudaq.py"
    script.write_text(BLOCKS[0])
    namespace = runpy.run_path(str(script), run_name="readme_example")
    assert set(namespace["counts"]) == {"00", "11"}
    assert "00" in capsys.readouterr().out
