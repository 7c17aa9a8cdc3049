"""The README's Python and command-line examples run as written (SLURM's:
tests/scheduler/test_readme_slurm.py)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
LOCAL_BLOCKS = [b for b in BLOCKS if '"slurm"' not in b and '"pbs"' not in b]


def test_readme_has_the_examples_this_test_runs() -> None:
    assert len(LOCAL_BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(LOCAL_BLOCKS)))
def test_readme_python_block_runs(index: int, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / f"readme_{index}.py"
    code = LOCAL_BLOCKS[index]
    script.write_text(code)
    # not "__main__": Dask's spawned workers would re-run a main script (as in a notebook)
    namespace = runpy.run_path(str(script), run_name="readme_example")
    out = capsys.readouterr().out
    for name in ("result", "results"):
        value = namespace.get(name)
        if isinstance(value, list):
            assert value and all(sum(r.counts.values()) == r.shots for r in value)
        elif value is not None:
            assert set(value.counts) == {"00", "11"}
    assert out.strip(), "every README example prints something"


SHELL_BLOCK = next(b for b in re.findall(r"```bash\n(.*?)```", README, flags=re.DOTALL)
                   if "hal-workflow submit" in b)


def test_readme_command_line_block_runs(tmp_path: Path) -> None:
    """The Quickstart's command-line block, run line by line with ``bash -e`` after the
    README's own set-up (no extra beyond ``[examples]`` needed), from the repository root."""
    import os
    import subprocess
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "hal-workflow"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m hal_workflow.cli "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "HAL_WORKFLOW__DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run(["bash", "-e", "-c", SHELL_BLOCK], cwd=Path(__file__).parents[2],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "COMPLETED" in out.stdout and '"counts"' in out.stdout
    assert "scheduler.poll-interval = 1.0" in out.stdout
