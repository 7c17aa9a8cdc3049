"""The README's SLURM example runs as written on the test cluster (job root under tmp)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SECTION = README.split("\n## SLURM and PBS\n", 1)[1].split("\n## ", 1)[0]
SLURM_BLOCKS = [b for b in re.findall(r"```python\n(.*?)```", SECTION, flags=re.DOTALL)
                if '"slurm"' in b]  # the section's own examples (others have tests of theirs)

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


def test_readme_has_a_slurm_example() -> None:
    assert SLURM_BLOCKS


@pytest.mark.parametrize("index", range(len(SLURM_BLOCKS)))
def test_readme_slurm_example_runs(index: int, tmp_path: Path, job_root: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HAL_WORKFLOW_JOB_ROOT", str(job_root))
    script = tmp_path / "readme_slurm.py"
    script.write_text(SLURM_BLOCKS[index])
    namespace = runpy.run_path(str(script), run_name="readme_example")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("slurm:sim ") and set(namespace["result"].counts) == {"00", "11"}
    assert out[1].endswith(tuple(p.name for p in job_root.iterdir()))
    assert out[2] == "True"
