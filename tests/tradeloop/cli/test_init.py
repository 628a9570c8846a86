"""``tradeloop init NAME``: the scaffold runs (its Makefile's demo and tests) as generated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tradeloop.cli import main
from tradeloop.cli.init import SCAFFOLD
from tradeloop.config import load_config


def test_init_scaffolds_a_project_whose_demo_and_tests_run(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path / "alpha")]) == 0
    root = tmp_path / "alpha"
    for relative in [*SCAFFOLD.values(), "data/bars.parquet"]:
        assert (root / relative).is_file(), relative
    assert "# alpha" in (root / "README.md").read_text()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    demo = subprocess.run(
        ["make", "demo"], cwd=root, env=env, capture_output=True, text=True, timeout=180
    )
    assert demo.returncode == 0, demo.stderr
    assert "Total return" in demo.stdout
    assert (root / "report.html").stat().st_size > 100_000
    tests = subprocess.run(
        ["make", "test"], cwd=root, env=env, capture_output=True, text=True, timeout=180
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout
    sweep = subprocess.run(
        ["make", "sweep"], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert sweep.returncode == 0, sweep.stderr
    assert "sweep report written" in sweep.stderr
    assert (root / "sweep.html").is_file()


def test_init_paper_config_is_valid_for_the_daemon(tmp_path: Path) -> None:
    assert main(["init", str(tmp_path / "beta")]) == 0
    config = load_config(tmp_path / "beta" / "paper.toml", env={})
    assert config.mode == "paper"
    assert config.strategy == "strategy.py:MyStrategy"


def test_init_refuses_a_folder_that_is_not_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "gamma").mkdir()
    (tmp_path / "gamma" / "notes.txt").write_text("mine")
    assert main(["init", str(tmp_path / "gamma")]) == 1
    assert "exists and is not empty" in capsys.readouterr().err
    assert (tmp_path / "gamma" / "notes.txt").read_text() == "mine"
