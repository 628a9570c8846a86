"""SimulationBroker through the Engine: timing, every order type, cash, shorts, costs.

Each test's numbers are worked by hand in its comments. Bars are (day, asset, o, h, l, c[, v]).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
import pytest

from tests.conftest import Scripted, bars, day
from tradeloop import (
    BacktestResult,
    ConfigError,
    Engine,
    FixedCommission,
    HistoricalFeed,
    OrderError,
    PerShareCommission,
    SimulationBroker,
    VolumeShareSlippage,
)

# Three quiet days of one asset.
X3 = [
    (0, "X", 100, 101, 99, 100),
    (1, "X", 102, 103, 101, 102.5),
    (2, "X", 104, 105, 103, 104),
]


def run(
    rows: list[tuple[Any, ...]], script: Mapping[tuple[int, str], Any], **options: Any
) -> tuple[BacktestResult, Scripted]:
    strategy = Scripted(script)
    result = Engine(feed=HistoricalFeed(bars(rows)), strategy=strategy, **options).run()
    return result, strategy


def fills(result: BacktestResult) -> list[tuple[int, str, str, float, float]]:
    """(day index, asset, side, qty, price) for every fill."""
    return [
        ((row["timestamp"] - day(0)).days, row["asset_id"], row["side"], row["qty"], row["price"])
        for row in result.fills.iter_rows(named=True)
    ]


def test_market_order_decided_on_bar_fills_at_next_open() -> None:
    result, _ = run(X3, {(0, "X"): lambda s, e: s.buy("X", 10)}, commission=0.001)
    assert fills(result) == [(1, "X", "buy", 10, 102.0)]
    # cash 100,000 − 10 × 102 − 0.1 % × 1,020 = 98,978.98; equity adds 10 × close 102.5
    curve = result.equity_curve
    assert curve["cash"].to_list()[1] == pytest.approx(98_978.98)
    assert curve["equity"].to_list() == pytest.approx([100_000.0, 100_003.98, 100_018.98])


def test_market_order_with_close_timing_fills_at_decision_close() -> None:
    result, strategy = run(X3, {(0, "X"): lambda s, e: s.buy("X", 10)}, fill_timing="close")
    assert fills(result) == [(0, "X", "buy", 10, 100.0)]
    # the strategy saw no position at day 0 (decided before the close fill) and 10 at day 1
    assert [seen[2] for seen in strategy.seen] == [0, 10, 10]


def test_market_order_on_last_bar_stays_open_and_is_reported() -> None:
    result, _ = run(X3, {(2, "X"): lambda s, e: s.buy("X", 1)})
    assert result.fills.height == 0
    assert result.orders["status"].to_list() == ["accepted"]


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (101.5, [(1, "X", "buy", 10, 101.5)]),  # day 1 low 101 reaches 101.5
        (103.0, [(1, "X", "buy", 10, 102.0)]),  # day 1 opens at 102, better than the limit
        (100.0, []),  # never trades at or below 100 after day 0
    ],
)
def test_buy_limit_fills_at_limit_or_better_open(limit: float, expected: list[Any]) -> None:
    result, _ = run(X3, {(0, "X"): lambda s, e: s.buy("X", 10, limit=limit)})
    assert fills(result) == expected


def test_sell_stop_gapped_through_fills_at_open_not_at_stop() -> None:
    rows = [*X3[:2], (2, "X", 95, 96, 94, 95.5)]
    script = {
        (0, "X"): lambda s, e: s.buy("X", 10),
        (1, "X"): lambda s, e: s.sell("X", 10, stop=98.0),
    }
    result, _ = run(rows, script)
    # bought at day 1 open 102; day 2 opens at 95, below the 98 stop -> filled at 95
    assert fills(result) == [(1, "X", "buy", 10, 102.0), (2, "X", "sell", 10, 95.0)]
    assert result.trades["pnl"].to_list() == pytest.approx([-70.0])


def test_buy_stop_limit_triggered_intrabar_fills_at_stop() -> None:
    result, _ = run(X3, {(0, "X"): lambda s, e: s.buy("X", 5, stop=102.5, limit=103.0)})
    assert fills(result) == [(1, "X", "buy", 5, 102.5)]
    assert result.orders["order_type"].to_list() == ["stop_limit"]


def test_buy_stop_limit_triggered_intrabar_closing_through_limit_fills_at_limit() -> None:
    # stop 103, limit 102.5. Day 1: open 102 (below the stop), high 104 triggers it at 103,
    # then the close 102.2 is below the limit: the price fell through 102.5 after the
    # trigger, so it fills at 102.5 on day 1 (not later)
    rows = [X3[0], (1, "X", 102, 104, 101, 102.2), X3[2]]
    result, _ = run(rows, {(0, "X"): lambda s, e: s.buy("X", 5, stop=103.0, limit=102.5)})
    assert fills(result) == [(1, "X", "buy", 5, 102.5)]


def test_buy_stop_limit_triggered_intrabar_closing_above_limit_rests_to_next_bar() -> None:
    # the same order, day 1 closing at 103.5: nothing proves a return to 102.5 after the
    # trigger, so it rests as a limit 102.5; day 2 opens 102.4 (below it) -> the open
    rows = [X3[0], (1, "X", 102, 104, 101, 103.5), (2, "X", 102.4, 103, 102, 102.8)]
    result, _ = run(rows, {(0, "X"): lambda s, e: s.buy("X", 5, stop=103.0, limit=102.5)})
    assert fills(result) == [(2, "X", "buy", 5, 102.4)]


def test_day_order_expires_after_its_first_session() -> None:
    # a DAY limit at 90 can fill only on day 1 (its first eligible bar); on day 2 it expires
    result, _ = run(X3, {(0, "X"): lambda s, e: s.buy("X", 10, limit=90.0, tif="day")})
    assert result.orders["status"].to_list() == ["expired"]


def test_gtc_order_waits_until_price_reaches_it() -> None:
    rows = [*X3, (3, "X", 101, 102, 99.5, 100), (4, "X", 100, 100.5, 98, 99)]
    result, _ = run(rows, {(0, "X"): lambda s, e: s.buy("X", 10, limit=99.0)})
    # days 1-3 stay above 99 (day 3 low 99.5); day 4 low 98 fills the limit at 99
    assert fills(result) == [(4, "X", "buy", 10, 99.0)]


def test_day_order_on_intraday_bars_lives_until_utc_midnight() -> None:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
    times = [t0, t0 + timedelta(minutes=1), t0 + timedelta(minutes=2), t0 + timedelta(days=1)]
    frame = pl.DataFrame(
        {
            "timestamp": times,
            "asset_id": "X",
            "open": [100.0, 100.0, 100.0, 97.0],
            "high": [100.5, 100.5, 100.5, 97.5],
            "low": [99.5, 99.5, 98.5, 96.0],
            "close": [100.0, 100.0, 99.0, 97.0],
        }
    )

    class DayLimit(Scripted):
        def on_market_event(self, event: Any, context: Any) -> None:
            if event.timestamp == t0:
                self.buy("X", 1, limit=98.0, tif="day")
                self.buy("X", 1, limit=97.5, tif="day")

    result = Engine(feed=HistoricalFeed(frame), strategy=DayLimit({})).run()
    # limit 98: minute 2 trades down to 98.5 only -> unfilled; the next day's bar would fill
    # it (open 97) but the day order has expired by then. Limit 97.5 expires the same way.
    assert result.fills.height == 0
    assert result.orders["status"].to_list() == ["expired", "expired"]


def test_buy_that_exceeds_cash_is_rejected_and_run_continues() -> None:
    script = {
        (0, "X"): lambda s, e: (s.buy("X", 600), s.buy("X", 500)),
        (1, "X"): lambda s, e: s.buy("X", 10),
    }
    result, _ = run(X3, script, initial_cash=100_000)
    # order 1 reserves 600 × 100 = 60,000; order 2 needs 50,000 > 40,000 left -> rejected
    orders = result.orders
    assert orders["status"].to_list() == ["filled", "rejected", "filled"]
    assert "insufficient cash" in orders["message"][1]
    assert fills(result) == [(1, "X", "buy", 600, 102.0), (2, "X", "buy", 10, 104.0)]


def test_buy_that_gaps_above_cash_fills_what_cash_allows() -> None:
    rows = [(0, "X", 100, 101, 99, 100), (1, "X", 110, 111, 109, 110)]
    result, _ = run(rows, {(0, "X"): lambda s, e: s.buy("X", 99)}, initial_cash=10_000)
    # accepted at the 100 close (9,900 <= 10,000); the open gaps to 110, so cash buys
    # floor(10,000 / 110) = 90 shares; the other 9 are cancelled with a message
    assert fills(result) == [(1, "X", "buy", 90, 110.0)]
    order = result.orders.row(0, named=True)
    assert order["status"] == "cancelled"
    assert "covered only 90" in order["message"]
    assert result.equity_curve["cash"][-1] == pytest.approx(100.0)


def test_sell_that_reduces_position_is_never_blocked_by_cash() -> None:
    rows = [*X3, (3, "X", 104, 105, 103, 104)]
    script = {(0, "X"): lambda s, e: s.buy("X", 10), (1, "X"): lambda s, e: s.sell("X", 10)}
    broker = SimulationBroker(1_025.0, commission=FixedCommission(5.0))
    strategy = Scripted(script)
    result = Engine(HistoricalFeed(bars(rows)), strategy, broker).run()
    # buy 10 at 102 + 5 = 1,025: cash 0. Selling needs a 5 commission that cash cannot
    # cover, and still fills: 10 × 104 − 5 = 1,035
    assert fills(result) == [(1, "X", "buy", 10, 102.0), (2, "X", "sell", 10, 104.0)]
    assert result.equity_curve["cash"].to_list()[1:3] == pytest.approx([0.0, 1_035.0])


def test_sell_more_than_held_is_rejected_when_shorting_disabled() -> None:
    script = {(0, "X"): lambda s, e: s.sell("X", 5)}
    result, _ = run(X3, script)
    assert result.orders["status"].to_list() == ["rejected"]
    assert "shorting disabled" in result.orders["message"][0]


def test_short_sale_when_enabled_credits_cash_and_marks_negative() -> None:
    result, _ = run(X3, {(0, "X"): lambda s, e: s.sell("X", 5)}, allow_short=True)
    assert fills(result) == [(1, "X", "sell", 5, 102.0)]
    # cash 100,000 + 510; equity at day 2 = 100,510 − 5 × 104 = 99,990
    assert result.equity_curve["cash"][-1] == pytest.approx(100_510.0)
    assert result.equity_curve["equity"][-1] == pytest.approx(99_990.0)
    assert result.final_positions == {"X": -5}


def test_fractional_quantity_needs_fractional_broker() -> None:
    with pytest.raises(OrderError, match="fractional"):
        run(X3, {(0, "X"): lambda s, e: s.buy("X", 2.5)})
    result, _ = run(X3, {(0, "X"): lambda s, e: s.buy("X", 2.5)}, fractional=True)
    assert fills(result) == [(1, "X", "buy", 2.5, 102.0)]


def test_volume_share_slippage_splits_a_large_order_over_bars() -> None:
    rows = [
        (0, "X", 100, 101, 99, 100, 1_000),
        (1, "X", 100, 101, 99, 100, 100),
        (2, "X", 100, 101, 99, 100, 100),
        (3, "X", 100, 101, 99, 100, 100),
    ]
    slip = VolumeShareSlippage(volume_limit=0.1, price_impact=0.1)
    result, _ = run(rows, {(0, "X"): lambda s, e: s.buy("X", 25)}, slippage=slip)
    # 10 % of 100 = 10 per bar: 10, 10, 5. Impact 0.1 × (10/100)² = 0.1 % -> 100.1;
    # the last 5 is a 5 % share: 0.1 × 0.05² = 0.025 % -> 100.025
    assert fills(result) == [
        (1, "X", "buy", 10, pytest.approx(100.1)),
        (2, "X", "buy", 10, pytest.approx(100.1)),
        (3, "X", "buy", 5, pytest.approx(100.025)),
    ]
    assert result.orders["status"].to_list() == ["filled"]
    assert result.fills["slippage"].to_list() == pytest.approx([1.0, 1.0, 0.125])


def test_slippage_never_pushes_a_limit_fill_past_its_limit() -> None:
    result, _ = run(X3, {(0, "X"): lambda s, e: s.buy("X", 10, limit=101.5)}, slippage=0.01)
    assert fills(result) == [(1, "X", "buy", 10, 101.5)]


def test_per_share_commission_charged_on_each_fill() -> None:
    script = {(0, "X"): lambda s, e: s.buy("X", 100), (1, "X"): lambda s, e: s.sell("X", 100)}
    result, _ = run(X3, script, commission=PerShareCommission(0.005, minimum=1.0))
    assert result.fills["commission"].to_list() == [1.0, 1.0]
    # bought 100 at 102, sold at 104: gross 200, commission 2 -> trade pnl 198
    assert result.trades["pnl"].to_list() == pytest.approx([198.0])
    assert result["commission"] == 2.0
    assert result["final_value"] == pytest.approx(100_198.0)


def test_sells_fill_before_buys_at_the_same_open() -> None:
    rows = [
        (0, "A", 100, 101, 99, 100),
        (0, "B", 50, 51, 49, 50),
        (1, "A", 100, 101, 99, 100),
        (1, "B", 50, 51, 49, 50),
        (2, "A", 100, 101, 99, 100),
        (2, "B", 50, 51, 49, 50),
    ]
    script = {
        (0, "A"): lambda s, e: s.buy("A", 1_000),  # all cash into A
        (1, "B"): lambda s, e: (s.sell("A", 1_000), s.buy("B", 2_000)),  # swap A for B
    }
    result, _ = run(rows, script)
    # the buy of B is admitted because the pending sale of A counts as proceeds, and at day 2
    # the sale fills first, so the buy has the cash
    assert fills(result) == [
        (1, "A", "buy", 1_000, 100.0),
        (2, "A", "sell", 1_000, 100.0),
        (2, "B", "buy", 2_000, 50.0),
    ]


def test_cancel_removes_open_order_and_frees_its_cash() -> None:
    def place_and_cancel(s: Any, e: Any) -> Any:
        first = s.buy("X", 900, limit=50.0)  # reserves 45,000, would never fill
        assert s.cancel(first) is True
        assert s.cancel(first) is False  # no longer open
        return s.buy("X", 450)  # 45,000 fits only because the cancel freed the reserve

    result, _ = run(X3, {(0, "X"): place_and_cancel}, initial_cash=50_000)
    assert result.orders["status"].to_list() == ["cancelled", "filled"]


def test_broker_options_with_explicit_broker_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="broker was passed"):
        Engine(HistoricalFeed(bars(X3)), Scripted({}), SimulationBroker(), initial_cash=5)


def test_unknown_fill_timing_raises_config_error_naming_choices() -> None:
    with pytest.raises(ConfigError, match="next_open"):
        SimulationBroker(fill_timing="vwap")


def test_cash_shortfall_reject_rejects_a_gapped_buy_whole() -> None:
    rows = [(0, "X", 100, 101, 99, 100), (1, "X", 110, 111, 109, 110)]
    script = {(0, "X"): lambda s, e: s.buy("X", 99)}
    result, _ = run(rows, script, initial_cash=10_000, cash_shortfall="reject")
    # admitted at the 100 close (9,900 <= 10,000); at the 110 open it needs 10,890 > 10,000,
    # so nothing fills and the order is rejected with the numbers (partial would buy 90)
    assert fills(result) == []
    order = result.orders.row(0, named=True)
    assert order["status"] == "rejected"
    assert "10,890.00" in order["message"]
    assert "cash_shortfall='reject'" in order["message"]
    assert result.equity_curve["cash"][-1] == pytest.approx(10_000.0)
    assert result.config["cash_shortfall"] == "reject"


def test_cash_shortfall_reject_still_fills_a_buy_that_fits() -> None:
    rows = [(0, "X", 100, 101, 99, 100), (1, "X", 101, 111, 100, 110)]
    script = {(0, "X"): lambda s, e: s.buy("X", 99)}
    result, _ = run(rows, script, initial_cash=10_000, cash_shortfall="reject")
    # 99 × 101 = 9,999 <= 10,000: fits at the fill, so it fills whole
    assert fills(result) == [(1, "X", "buy", 99, 101.0)]


def test_cash_shortfall_reject_after_a_partial_fill_cancels_the_rest() -> None:
    # 15 × 100 = 1,500 is admitted. Volume share 10 % of 100 = 10 a bar: day 1 fills 10 at
    # 100 (cash 500 left); day 2 opens 110: the last 5 need 550 > 500, so the rest is
    # cancelled (not rejected: part of the order filled)
    rows = [
        (0, "X", 100, 101, 99, 100, 1_000),
        (1, "X", 100, 101, 99, 100, 100),
        (2, "X", 110, 111, 109, 110, 100),
    ]
    slip = VolumeShareSlippage(volume_limit=0.1, price_impact=0.0)
    script = {(0, "X"): lambda s, e: s.buy("X", 15)}
    result, _ = run(rows, script, initial_cash=1_500, slippage=slip, cash_shortfall="reject")
    assert fills(result) == [(1, "X", "buy", 10, 100.0)]
    assert result.orders["status"].to_list() == ["cancelled"]


def test_cash_shortfall_unknown_policy_raises_config_error_naming_choices() -> None:
    with pytest.raises(ConfigError, match="partial"):
        SimulationBroker(cash_shortfall="some")


def test_good_till_date_fills_until_its_date_then_expires() -> None:
    rows = [*X3, (3, "X", 101, 102, 99.5, 100), (4, "X", 98, 99, 97, 98)]
    # a buy limit 99 good till day 3 (21:00, day 3's bar time): days 1-3 never trade at 99
    # (day 3 low 99.5); day 4 would fill it (low 97), but it is past the date -> expired
    script = {(0, "X"): lambda s, e: s.buy("X", 10, limit=99.0, expire_at=day(3))}
    result, _ = run(rows, script)
    assert result.fills.height == 0
    assert result.orders["status"].to_list() == ["expired"]
    assert result.orders["tif"].to_list() == ["gtd"]
    # good till day 4 it fills on day 4, at its open 98 (better than the limit)
    script = {(0, "X"): lambda s, e: s.buy("X", 10, limit=99.0, expire_at=day(4))}
    result, _ = run(rows, script)
    assert fills(result) == [(4, "X", "buy", 10, 98.0)]


def test_good_till_date_without_a_date_raises_order_error() -> None:
    with pytest.raises(OrderError, match="expire_at"):
        run(X3, {(0, "X"): lambda s, e: s.buy("X", 10, limit=99.0, tif="gtd")})
