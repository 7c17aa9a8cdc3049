"""The README's Qiskit section: every block runs (the local ones also run in test_readme.py;
the SLURM one here, on the test cluster), and prints what the comments say it does."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SECTION = README.split("## Qiskit\n", 1)[1].split("\n## ", 1)[0]
BLOCKS = re.findall(r"```python\n(.*?)```", SECTION, flags=re.DOTALL)


def run_block(code: str, tmp_path: Path) -> dict[str, object]:
    script = tmp_path / "qiskit_readme.py"
    if "Client(" in code:
        code += "\nclient.close()\n"
    script.write_text(code)
    return runpy.run_path(str(script), run_name="readme_example")


def test_the_section_has_four_examples() -> None:
    assert len(BLOCKS) == 4
    assert sum('"slurm"' in b for b in BLOCKS) == 1


def test_local_examples_compute_what_they_claim(tmp_path: Path) -> None:
    import numpy as np

    first = run_block(BLOCKS[0], tmp_path)
    counts = first["counts"]
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 1000  # type: ignore[union-attr]
    assert abs(counts.get("11", 0) / 1000 - np.sin(0.6) ** 2) < 0.06  # type: ignore[union-attr]
    third = run_block(BLOCKS[2], tmp_path)
    measured, exact = third["measured"], third["exact"]
    z = np.abs(measured.data.evs - exact.data.evs) / measured.data.stds  # type: ignore[attr-defined]
    assert measured.data.evs.shape == (100,) and np.all(z < 5)  # type: ignore[attr-defined]


def test_vqe_on_dask_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_block(BLOCKS[3], tmp_path)
    printed = float(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == pytest.approx(-1.8572, abs=2e-3)


@pytest.mark.slurm
def test_slurm_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAL_WORKFLOW_JOB_ROOT", str(tmp_path / "jobs"))
    block = next(b for b in BLOCKS if '"slurm"' in b)
    namespace = run_block(block, tmp_path)
    counts = namespace["job"].result().get_counts()  # type: ignore[attr-defined]
    assert set(counts) == {"000", "111"} and sum(counts.values()) == 1000
