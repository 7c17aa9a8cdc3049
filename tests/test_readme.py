"""The README's Python examples run as written (SLURM: tests/scheduler/test_readme_slurm.py)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
LOCAL_BLOCKS = [b for b in BLOCKS if '"slurm"' not in b and '"pbs"' not in b]


def test_readme_has_the_examples_this_test_runs() -> None:
    assert len(LOCAL_BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(LOCAL_BLOCKS)))
def test_readme_python_block_runs(index: int, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / f"readme_{index}.py"
    code = LOCAL_BLOCKS[index]
    if "Client(" in code:  # close the Dask cluster the example starts
        code += "\nclient.close()\n"
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
