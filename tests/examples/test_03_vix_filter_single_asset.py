"""examples/03_vix_filter_single_asset.py: VIX joined as a signal, fills checked by hand."""

from __future__ import annotations

import pytest

from tests.examples.running import Run, number, run_script


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_script("03_vix_filter_single_asset.py", tmp_path_factory.mktemp("vix_single"))


def test_vix_filter_single_asset_runs_as_a_script_writing_only_to_the_workdir(run: Run) -> None:
    run.assert_ok(writes=frozenset({"aapl_daily.parquet", "vix_daily.parquet"}))
    assert run.seconds < 20


def test_vix_filter_single_asset_spike_exits_then_reenters_as_computed_by_hand(run: Run) -> None:
    # Stand-in bars (business days from 2024-01-02), VIX joined as a signal, no costs:
    # 01-02  VIX 18, pred 0.85, flat: buy 95 % of 100,000 at 100 -> 950 sh
    # 01-03  fills at open 101 (cash 4,050); pred 0.60: hold
    # 01-04  VIX 22, pred 0.90 but already long: hold
    # 01-05  VIX 35 > 30: close; 01-08 sells at open 99 (cash 98,100); VIX 33: no entry
    # 01-09  VIX 25, pred 0.85: buy 95 % of 98,100 at 100 -> 931 sh
    # 01-10  fills at open 102 (cash 3,138); VIX missing that day, ffill keeps 25; pred 0.70
    # 01-11  pred 0.30 < 0.4: close; 01-12 sells at open 104.5 (cash 100,427.50)
    # 01-12  VIX 18, pred 0.82: buy 95 % of 100,427.50 at 104 -> 917 sh
    # 01-15  fills at open 105 (cash 4,142.50); ends at close 106
    fills = [line for line in run.stdout.splitlines() if line.startswith("fill ")]
    assert fills == [
        "fill 2024-01-03 buy 950 @ 101.00",
        "fill 2024-01-08 sell 950 @ 99.00",
        "fill 2024-01-10 buy 931 @ 102.00",
        "fill 2024-01-12 sell 931 @ 104.50",
        "fill 2024-01-15 buy 917 @ 105.00",
    ]
    final = 100_000 - 950 * 101 + 950 * 99 - 931 * 102 + 931 * 104.5 - 917 * 105 + 917 * 106
    assert final == 101_344.5
    assert number(r"Final value: ([\d,.]+)", run.stdout) == pytest.approx(final, abs=0.005)
