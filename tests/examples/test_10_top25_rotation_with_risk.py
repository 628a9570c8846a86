"""examples/10_top25_rotation_with_risk.py: rebalance days, top-25 picks and exits recomputed."""

from __future__ import annotations

from types import ModuleType

import polars as pl
import pytest

from tests.examples.ledger import Ledger, by_timestamp, whole_shares
from tests.examples.running import Run, load_example, number, run_script
from tradeloop import BacktestResult

NAME = "10_top25_rotation_with_risk.py"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_script(NAME, tmp_path_factory.mktemp("top25"))


@pytest.fixture(scope="module")
def example() -> ModuleType:
    return load_example(NAME)


@pytest.fixture(scope="module")
def data(example: ModuleType) -> tuple[pl.DataFrame, pl.DataFrame]:
    bars: pl.DataFrame
    features: pl.DataFrame
    bars, features = example.build_data()
    return bars, features


@pytest.fixture(scope="module")
def result(example: ModuleType, data: tuple[pl.DataFrame, pl.DataFrame]) -> BacktestResult:
    result: BacktestResult = example.backtest(*data)[0]
    return result


def test_top25_runs_as_a_script_with_exits_attributed_to_rules(
    run: Run, result: BacktestResult
) -> None:
    run.assert_ok()
    assert "126,000 bars, 500 assets" in run.stdout
    assert "Exits by rule:" in run.stdout
    for rule in ("strategy", "trailing_stop", "volatility_stop"):
        assert rule in run.stdout
    assert number(r"Final value\s+([\d,.]+)", run.stdout) == pytest.approx(
        result["final_value"], abs=0.01
    )
    assert number(r"elapsed: ([\d.]+) s", run.stdout) < 20


def test_top25_trades_are_the_rebalance_rule_recomputed_from_the_features(
    example: ModuleType, data: tuple[pl.DataFrame, pl.DataFrame], result: BacktestResult
) -> None:
    bars, features = data
    market = features.filter(pl.col("asset_id").is_null())
    vix = dict(market.select(pl.col("timestamp").dt.replace_time_zone("UTC"), "vix").iter_rows())
    per_asset = features.filter(pl.col("asset_id").is_not_null()).with_columns(
        pl.col("timestamp").dt.replace_time_zone("UTC")
    )
    scores = {
        (ts, a): (score, atr)
        for ts, a, score, atr in per_asset.select(
            "timestamp", "asset_id", "ml_score", "atr"
        ).iter_rows()
    }

    # Bar k (counted from 1) rebalances when k % 5 == 0 and VIX <= 30: the 25 best ml_scores
    # among assets with an ATR get 1/25 of equity each (whole shares at the close), everything
    # else held is sold. Positions and equity come from the fills (risk exits included).
    ledger = Ledger(result.fills, 1_000_000.0)
    expected, rebalances, high_vix = [], 0, 0
    for k, (ts, rows) in enumerate(by_timestamp(bars), start=1):
        ledger.advance(ts)
        ledger.mark({r["asset_id"]: r["close"] for r in rows})
        if vix[ts] > example.MAX_VIX:
            high_vix += 1
            continue
        if k % example.REBALANCE_EVERY:
            continue
        rebalances += 1
        ready = [
            (scores[ts, r["asset_id"]][0], r["asset_id"])
            for r in rows
            if scores[ts, r["asset_id"]][1] is not None
        ]
        top = {a for _, a in sorted(ready)[-example.TOP_N :]}
        equity = ledger.equity()
        closes = {r["asset_id"]: r["close"] for r in rows}
        for asset in sorted(top | set(ledger.positions)):
            target = whole_shares(equity / example.TOP_N, closes[asset]) if asset in top else 0.0
            delta = target - ledger.held(asset)
            if delta:
                expected.append((ts, asset, "buy" if delta > 0 else "sell", abs(delta)))
    strategy_orders = result.orders.filter(pl.col("reason") == "strategy")
    actual = strategy_orders.select("submitted_at", "asset_id", "side", "qty").iter_rows()
    assert sorted(actual) == sorted(expected)
    assert rebalances > 40
    assert high_vix > 0  # the data has risk-off days for the filter to skip

    assert result.equity_curve["n_positions"].max() <= example.TOP_N
    risk_exits = set(result.orders.filter(pl.col("reason") != "strategy")["reason"])
    assert risk_exits <= {"volatility_stop", "trailing_stop", "time_exit"}
    assert {"volatility_stop", "trailing_stop"} <= risk_exits
