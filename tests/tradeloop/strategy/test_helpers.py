"""Strategy helpers: sizing rules, targets without duplicate orders, errors outside a run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.conftest import Scripted, bars
from tradeloop import Engine, MarketEvent, Strategy, StrategyNotRunningError

AB = [
    (0, "A", 100, 101, 99, 100),
    (0, "B", 50, 51, 49, 50),
    (1, "A", 100, 101, 99, 100),
    (1, "B", 50, 51, 49, 50),
    (2, "A", 110, 111, 109, 110),
    (2, "B", 40, 41, 39, 40),
    (3, "A", 110, 111, 109, 110),
    (3, "B", 40, 41, 39, 40),
]


def run(script: Mapping[tuple[int, str], Any], **options: Any) -> tuple[Any, Scripted]:
    strategy = Scripted(script)
    return Engine(feed=bars(AB), strategy=strategy, **options).run(), strategy


def qtys(result: Any) -> list[tuple[str, str, float]]:
    return [(r["asset_id"], r["side"], r["qty"]) for r in result.fills.iter_rows(named=True)]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.get_position("A"),
        lambda s: s.get_cash(),
        lambda s: s.get_portfolio_value(),
        lambda s: s.buy_percent("A", 0.1),
        lambda s: s.close_position("A"),
        lambda s: s.rebalance_to_weights({"A": 0.5}),
    ],
)
def test_helpers_outside_a_run_raise_value_error(call: Any) -> None:
    with pytest.raises(ValueError, match="Broker not initialized") as info:
        call(Strategy())
    assert isinstance(info.value, StrategyNotRunningError)


def test_buy_percent_sizes_from_portfolio_value_at_latest_close() -> None:
    result, _ = run({(0, "A"): lambda s, e: s.buy_percent("A", 0.10)})
    # 10 % of 100,000 = 10,000 at the close of 100 -> 100 shares
    assert qtys(result) == [("A", "buy", 100)]


def test_buy_percent_with_explicit_price_rounds_toward_zero() -> None:
    result, _ = run({(0, "A"): lambda s, e: s.buy_percent("A", 0.10, price=130.0)})
    assert qtys(result) == [("A", "buy", 76)]  # 10,000 / 130 = 76.9 -> 76


def test_set_position_percent_called_every_bar_does_not_stack_orders() -> None:
    script = {(d, "A"): (lambda s, e: s.set_position_percent("A", 0.5)) for d in range(3)}
    result, _ = run(script)
    # day 0: target 50,000 / 100 = 500 shares (order open); day 1: 500 held -> nothing;
    # day 2: equity 100,000 + 500 × 10 = 105,000, target 52,500 / 110 = 477 -> sell 23
    assert qtys(result) == [("A", "buy", 500), ("A", "sell", 23)]


def test_size_by_confidence_targets_max_percent_times_confidence() -> None:
    result, _ = run({(0, "B"): lambda s, e: s.size_by_confidence("B", 0.85, max_percent=0.20)})
    assert qtys(result) == [("B", "buy", 340)]  # 0.20 × 0.85 × 100,000 / 50 = 340


def test_rebalance_sells_unnamed_assets_and_funds_buys_with_sales() -> None:
    script = {
        (0, "A"): lambda s, e: s.buy("A", 900),
        (1, "B"): lambda s, e: s.rebalance_to_weights({"B": 0.9}),
    }
    result, strategy = run(script)
    # day 1 equity = 10,000 cash + 900 × 100 = 100,000; target B = 90,000 / 50 = 1,800 and
    # A -> 0. Only 10,000 cash, but the pending sale of A funds the buy; both fill on day 2.
    assert qtys(result) == [("A", "buy", 900), ("A", "sell", 900), ("B", "buy", 1_800)]
    assert [o.asset_id for o in strategy.returned[(1, "B")]] == ["A", "B"]


def test_close_position_cancels_open_orders_and_flattens() -> None:
    script = {
        (0, "A"): lambda s, e: s.buy("A", 10),
        (1, "A"): lambda s, e: (s.buy("A", 5, limit=1.0), s.close_position("A")),
    }
    result, _ = run(script)
    assert result.orders["status"].to_list() == ["filled", "cancelled", "filled"]
    assert result.final_positions == {}


def test_close_position_when_flat_returns_none() -> None:
    _, strategy = run({(0, "A"): lambda s, e: s.close_position("A")})
    assert strategy.returned[(0, "A")] is None


def test_reduce_position_sells_the_fraction_rounded_down() -> None:
    script = {
        (0, "A"): lambda s, e: s.buy("A", 15),
        (1, "A"): lambda s, e: s.reduce_position("A", 0.5),
    }
    result, _ = run(script)
    assert qtys(result) == [("A", "buy", 15), ("A", "sell", 7)]


def test_unrealized_pnl_and_pct_follow_latest_close() -> None:
    class Probe(Strategy):
        def __init__(self) -> None:
            super().__init__()
            self.values: list[tuple[Any, ...]] = []

        def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
            if event.asset_id != "A":
                return
            if self.get_position("A") == 0 and not self.get_open_orders("A"):
                self.buy("A", 10)
            self.values.append(
                (
                    self.get_unrealized_pnl("A"),
                    self.get_unrealized_pnl_pct("A"),
                    self.get_position_value("A"),
                    self.get_positions(),
                )
            )

    probe = Probe()
    Engine(feed=bars(AB), strategy=probe).run()
    # bought 10 at day 1 open 100; day 2 close 110: +100, +10 %, value 1,100
    assert probe.values[0] == (0.0, None, 0.0, {})
    assert probe.values[1] == (0.0, 0.0, 1_000.0, {"A": 10})
    assert probe.values[2] == (pytest.approx(100.0), pytest.approx(0.10), 1_100.0, {"A": 10})


def test_short_unrealized_pct_is_positive_when_price_falls() -> None:
    script = {
        (0, "B"): lambda s, e: s.sell("B", 10),
        (2, "B"): lambda s, e: s.get_unrealized_pnl_pct("B"),
    }
    _, strategy = run(script, allow_short=True)
    assert strategy.returned[(2, "B")] == pytest.approx(0.2)  # shorted at 50, now 40


def test_misspelt_order_option_raises_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="limt"):
        run({(0, "A"): lambda s, e: s.buy_percent("A", 0.1, limt=99)})


def test_on_start_fill_and_end_callbacks_run_with_broker_attached() -> None:
    class Lifecycle(Strategy):
        def __init__(self) -> None:
            super().__init__()
            self.log: list[str] = []

        def on_start(self) -> None:
            self.log.append(f"start cash={self.get_cash():.0f}")

        def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
            if event.asset_id == "A" and self.get_position("A") == 0 and not self.get_open_orders():
                self.buy("A", 1)

        def on_fill(self, fill: Any) -> None:
            self.log.append(f"fill {fill.asset_id} {fill.qty:g}@{fill.price:g}")

        def on_end(self) -> None:
            self.log.append(f"end position={self.get_position('A'):g}")

    strategy = Lifecycle()
    Engine(feed=bars(AB), strategy=strategy).run()
    assert strategy.log == ["start cash=100000", "fill A 1@100", "end position=1"]
    with pytest.raises(ValueError, match="Broker not initialized"):
        strategy.get_cash()


def test_legacy_on_market_data_with_one_argument_is_called() -> None:
    class Legacy(Strategy):
        def __init__(self) -> None:
            super().__init__()
            self.closes: list[float] = []

        def on_market_data(self, event: MarketEvent) -> None:
            self.closes.append(event.data.close)

    legacy = Legacy()
    Engine(feed=bars(AB), strategy=legacy).run()
    assert legacy.closes == [100, 50, 100, 50, 110, 40, 110, 40]


def test_on_order_hears_every_status_change_in_order() -> None:
    class Listening(Scripted):
        def __init__(self, script: Any) -> None:
            super().__init__(script)
            self.heard: list[tuple[int, str, float]] = []

        def on_order(self, order: Any) -> None:
            self.heard.append((order.id, order.status.value, order.filled_qty))

    script = {
        (0, "A"): lambda s, e: (
            s.buy("A", 10),  # 1: accepted, filled at day 1's open
            s.buy("A", 10_000),  # 2: rejected, more than the cash
            s.buy("A", 5, limit=1.0, tif="day"),  # 3: accepted, expires on day 2
            s.buy("A", 5, limit=2.0),  # 4: accepted, then cancelled on day 1
        ),
        (1, "A"): lambda s, e: s.cancel(4),
    }
    frame = bars([(d, "A", 10, 11, 9, 10) for d in range(3)])
    strategy = Listening(script)
    Engine(feed=frame, strategy=strategy, initial_cash=1_000.0).run()
    assert strategy.heard == [
        (1, "accepted", 0.0),
        (2, "rejected", 0.0),
        (3, "accepted", 0.0),
        (4, "accepted", 0.0),
        (1, "filled", 10.0),
        (4, "cancelled", 0.0),
        (3, "expired", 0.0),
    ]
