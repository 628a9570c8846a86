"""examples/04_complete_example.py: the design doc's complete example, checked by hand."""

from __future__ import annotations

import pytest

from tests.examples.running import Run, number, run_script


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_script("04_complete_example.py", tmp_path_factory.mktemp("complete"))


def test_complete_example_runs_as_a_script_writing_only_its_parquet_to_the_workdir(
    run: Run,
) -> None:
    run.assert_ok(writes=frozenset({"ml_data.parquet"}))
    assert run.seconds < 20


def test_complete_example_final_value_matches_hand_computation(run: Run) -> None:
    # The design doc's data: open = close = 100 + 0.1 i, prediction 0.6 + 0.04 (i mod 10),
    # confidence 0.7 + 0.05 (i mod 5), VIX 15 + (i mod 20); fills at the next bar's open.
    # i = 2    first entry: prediction 0.68 > 0.65, confidence 0.80 > 0.75, VIX 17 < 30:
    #          size_by_confidence 0.20 x 0.80 = 16 % of 100,000 at 100.2 -> 159 sh, filled at
    #          i = 3's open 100.3.
    # i = 154  first close with a 15 % gain (115.4 / 100.3 - 1 = 15.05 %): sold at i = 155's
    #          open 115.5. Cash 100,000 + 159 x (115.5 - 100.3) = 102,416.80.
    # i = 155..159 have VIX 30..34 (no entry), i = 160, 161 predictions 0.60, 0.64;
    # i = 162  prediction 0.68, confidence 0.80: 16 % of 102,416.80 at 116.2 -> 141 sh,
    #          filled at i = 163's open 116.3. Never +15 % (133.7) or -5 % again; last close
    #          (i = 251) is 125.1.
    cash = 100_000 + 159 * (115.5 - 100.3)
    final = cash + 141 * (125.1 - 116.3)
    assert final == pytest.approx(103_657.60)
    assert number(r"Final Value: \$([\d,.]+)", run.stdout) == pytest.approx(final, abs=0.005)
    assert number(r"Return: (-?[\d.]+)%", run.stdout) == pytest.approx(
        (final / 100_000 - 1) * 100, abs=0.005
    )
