"""The one configuration: self-documenting defaults, the file and variable layers in order,
where each value came from, and the old variables with their warning."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import yaml

from hal_workflow import config


def test_every_default_key_is_documented_by_a_comment() -> None:
    """Each key has a comment on its line or in its paragraph (keys grouped under one
    comment); section headers need none."""
    lines = config.DEFAULTS_FILE.read_text().splitlines()
    paragraph_comment = False
    undocumented = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            paragraph_comment = False
            continue
        if stripped.startswith("#"):
            paragraph_comment = True
            continue
        key = re.match(r"\s*([a-z0-9-]+):(.*)", line)
        assert key, f"config.yaml line {index + 1}: {line!r}"
        is_section = key.group(2).strip() == "" and index + 1 < len(lines) and (
            lines[index + 1].startswith(" " * (len(line) - len(line.lstrip()) + 2)))
        if not (is_section or "#" in key.group(2) or paragraph_comment):
            undocumented.append(key.group(1))
    assert not undocumented, undocumented
    assert yaml.safe_load(config.DEFAULTS_FILE.read_text())["default-backend"] == "sim"


@pytest.fixture
def layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "etc"
    user = tmp_path / "home" / ".config" / "hal-workflow"
    site.mkdir()
    user.mkdir(parents=True)
    (site / "cluster.yaml").write_text("scheduler:\n  poll-interval: 5\n  job-root: /shared\n")
    (user / "mine.yaml").write_text("scheduler:\n  poll-interval: 2\n")
    monkeypatch.setenv("HAL_WORKFLOW_ROOT_CONFIG", str(site))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HAL_WORKFLOW__RETRY__JITTER", "0.25")
    return tmp_path


def test_files_then_variables_later_wins_and_sources_are_named(layers: Path) -> None:
    assert config.get("scheduler.poll-interval") == 2  # the user's file beats the site's
    assert config.get("scheduler.job-root") == "/shared"  # the site's file beats the default
    assert config.get("retry.jitter") == 0.25
    sources = {row["key"]: row["source"] for row in config.explain()}
    assert sources["scheduler.poll-interval"].endswith("home/.config/hal-workflow/mine.yaml")
    assert sources["scheduler.job-root"] == str(layers / "etc" / "cluster.yaml")
    assert sources["retry.jitter"] == "environment HAL_WORKFLOW__RETRY__JITTER"
    with config.set({"retry.max-attempts": 2}):
        row = config.explain("retry.max-attempts")
        assert row == [{"key": "retry.max-attempts", "value": 2,
                        "source": "set in this process"}]


def test_old_variables_set_the_new_keys_with_a_future_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAL_WORKFLOW_SITES", f"{tmp_path}/a:{tmp_path}/b")
    monkeypatch.setenv("HAL_WORKFLOW_CONFIG_DIR", str(tmp_path / "engines"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert config.get("sites.path") == [f"{tmp_path}/a", f"{tmp_path}/b"]
        assert config.get("sites.engine-path") == [str(tmp_path / "engines")]
    messages = [str(w.message) for w in caught if w.category is FutureWarning]
    assert any("HAL_WORKFLOW_SITES" in m and "'sites.path'" in m for m in messages)
    assert any("HAL_WORKFLOW_CONFIG_DIR" in m and "'sites.engine-path'" in m for m in messages)


def test_install_hint_for_this_checkout() -> None:
    import sys

    hint = config.install_hint("dask")
    assert hint.startswith(sys.executable) and "pip install" in hint and "[dask]" in hint
