"""examples/01_quick_start.py: the design doc's quick start, checked against a hand computation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.examples.running import Run, number, run_script

NAME = "01_quick_start.py"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_script(NAME, tmp_path_factory.mktemp("quick_start"))


def test_quick_start_runs_as_a_script_writing_only_its_parquet_to_the_workdir(run: Run) -> None:
    run.assert_ok(writes=frozenset({"ml_data.parquet"}))
    assert run.seconds < 20


def test_quick_start_without_examples_dir_cleans_up_its_temporary_directory(
    tmp_path: Path,
) -> None:
    run = run_script(NAME, tmp_path, workdir=False)
    assert run.returncode == 0, run.stderr
    assert list(tmp_path.iterdir()) == []


def test_quick_start_final_value_matches_hand_computation(run: Run) -> None:
    # 100,000 cash, no costs; an order decided on a bar fills at the next bar's open.
    # bar 0  close 100, prediction 0.72 / confidence 0.85: buy 10 % of 100,000 / 100 = 100 sh
    # bar 1  fills at open 101 (cash 89,900); prediction 0.45: nothing
    # bar 2  close 104, 0.89 / 0.92: buy 10 % of (89,900 + 100 x 104) / 104 = 96.4 -> 96 sh
    # bar 3  fills at open 103 (cash 80,012; 196 sh); 0.50: nothing
    # bar 4  prediction 0.25 < 0.3: close the 196 sh
    # bar 5  sells at open 106.5 (cash 100,886); 0.60: nothing
    # bar 6  close 106, 0.75 / 0.95: buy 10 % of 100,886 / 106 = 95.2 -> 95 sh
    # bar 7  fills at open 107 (cash 90,721); ends at close 108
    final = 100_000 - 100 * 101 - 96 * 103 + 196 * 106.5 - 95 * 107 + 95 * 108
    assert final == 100_981.0
    assert number(r"Final value: ([\d,.]+)", run.stdout) == pytest.approx(final, abs=0.005)
    assert number(r"Return: (-?[\d.]+)%", run.stdout) == pytest.approx(
        (final / 100_000 - 1) * 100, abs=0.005
    )
    assert number(r"Fills: (\d+)", run.stdout) == 4
