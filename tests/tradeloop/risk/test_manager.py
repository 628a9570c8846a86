"""RiskManager through the Engine: exits checked the way an exchange sees a bar, by hand.

Every position here is opened by a market buy decided on day 0 and filled at day 1's open
of 100, so each level is easy to work out: a 5 % stop is 95, a 10 % target is 110.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.conftest import Scripted, bars
from tradeloop import Engine, HistoricalFeed, MarketEvent, Strategy
from tradeloop.risk import (
    DynamicTrailingStop,
    MaxDrawdownHalt,
    MaxExposure,
    MaxPositionSize,
    RiskManager,
    StopLoss,
    TakeProfit,
    TimeBasedExit,
    VolatilityScaledStopLoss,
)

ENTRY = [(0, "X", 100, 101, 99, 100), (1, "X", 100, 101, 99.5, 100)]
BUY_10 = {(0, "X"): lambda s, e: s.buy("X", 10)}


def run(
    rows: list[tuple[Any, ...]],
    *rules: Any,
    script: Any = None,
    signals: Mapping[str, list[float]] | None = None,
    **options: Any,
) -> Any:
    risk = RiskManager()
    for rule in rules:
        risk.add_rule(rule)
    strategy = Scripted(BUY_10 if script is None else script)
    result = Engine(
        feed=HistoricalFeed(bars(rows, signals)), strategy=strategy, risk=risk, **options
    ).run()
    return result, strategy, risk


def exits(result: Any) -> list[tuple[int, str, float, str]]:
    return [
        (r["bar_index"], r["side"], r["price"], r["reason"])
        for r in result.fills.iter_rows(named=True)
        if r["reason"] != "strategy"
    ]


def test_stop_hit_inside_the_bar_fills_at_the_stop() -> None:
    result, strategy, _ = run(
        [*ENTRY, (2, "X", 98, 99, 94, 95), (3, "X", 95, 96, 94, 95)], StopLoss(0.05)
    )
    assert exits(result) == [(2, "sell", 95.0, "stop_loss")]
    assert result.trades["exit_reason"].to_list() == ["stop_loss"]
    # the strategy's day-2 callback already sees the position gone
    assert [seen[2] for seen in strategy.seen] == [0, 10, 0, 0]


def test_stop_gapped_through_at_the_open_fills_at_the_open() -> None:
    result, _, _ = run([*ENTRY, (2, "X", 93, 94, 90, 92)], StopLoss(0.05))
    assert exits(result) == [(2, "sell", 93.0, "stop_loss")]


def test_stop_can_fire_on_the_entry_bar_after_the_fill() -> None:
    result, _, _ = run([(0, "X", 100, 101, 99, 100), (1, "X", 100, 101, 94, 96)], StopLoss(0.05))
    # filled at the open 100, then the bar traded down to 94: out at 95 the same bar
    assert exits(result) == [(1, "sell", 95.0, "stop_loss")]


def test_target_inside_the_bar_fills_at_the_target_and_a_gap_at_the_open() -> None:
    inside, _, _ = run([*ENTRY, (2, "X", 104, 111, 103, 108)], TakeProfit(0.10))
    assert exits(inside) == [(2, "sell", pytest.approx(110.0), "take_profit")]
    gap, _, _ = run([*ENTRY, (2, "X", 112, 113, 111, 112)], TakeProfit(0.10))
    assert exits(gap) == [(2, "sell", 112.0, "take_profit")]


def test_bar_reaching_both_stop_and_target_takes_the_stop() -> None:
    result, _, _ = run([*ENTRY, (2, "X", 100, 111, 94, 100)], StopLoss(0.05), TakeProfit(0.10))
    assert exits(result) == [(2, "sell", 95.0, "stop_loss")]


def test_time_exit_leaves_at_the_open_after_max_bars() -> None:
    rows = [*ENTRY, *[(d, "X", 100 + d, 101 + d, 99 + d, 100 + d) for d in range(2, 7)]]
    result, _, _ = run(rows, TimeBasedExit(max_bars=3))
    # entered on bar 1; bar 4 is the third bar after it: out at bar 4's open of 104
    assert exits(result) == [(4, "sell", 104.0, "time_exit")]
    assert result.trades["bars_held"].to_list() == [3]


def test_trailing_stop_follows_the_high_water_mark() -> None:
    rows = [
        (0, "X", 100, 101, 99, 100),
        (1, "X", 100, 104, 99.5, 103),  # entry bar: high-water mark becomes 104
        (2, "X", 103, 103.5, 98, 99),  # stop 104 × 0.95 = 98.8, low 98 -> out at 98.8
    ]
    rule = DynamicTrailingStop(initial_trail_pct=0.05, tighten_rate=0.0, min_trail_pct=0.05)
    result, _, _ = run(rows, rule)
    assert exits(result) == [(2, "sell", pytest.approx(98.8), "trailing_stop")]


def test_volatility_stop_uses_atr_from_the_decision_bar() -> None:
    rows = [*ENTRY, (2, "X", 99, 99.5, 95.5, 97)]
    # ATR at the decision bar (day 0) is 2.0: stop 100 − 2 × 2.0 = 96; later ATRs are ignored
    result, _, _ = run(
        rows, VolatilityScaledStopLoss(atr_multiplier=2.0), signals={"atr": [2.0, 0.1, 0.1]}
    )
    assert exits(result) == [(2, "sell", 96.0, "volatility_stop")]


def test_priority_beats_tightness_and_ties_go_to_the_tighter_stop() -> None:
    rows = [*ENTRY, (2, "X", 99, 99.5, 96.5, 97), (3, "X", 97, 97, 94, 95)]
    loose_first, _, _ = run(rows, StopLoss(0.05, priority=200), StopLoss(0.02, name="tight"))
    # the 95 stop outranks the 98 stop: day 2 (low 96.5) survives, day 3 (low 94) does not
    assert exits(loose_first) == [(3, "sell", 95.0, "stop_loss")]
    tie, _, _ = run(rows, StopLoss(0.05), StopLoss(0.02, name="tight"))
    assert exits(tie) == [(2, "sell", 98.0, "tight")]


def test_short_position_stop_sits_above_entry() -> None:
    rows = [*ENTRY, (2, "X", 102, 106, 101, 105)]
    script = {(0, "X"): lambda s, e: s.sell("X", 10)}
    result, _, _ = run(rows, StopLoss(0.05), script=script, allow_short=True)
    assert exits(result) == [(2, "buy", 105.0, "stop_loss")]
    assert result.final_positions == {}


def test_risk_state_holds_only_open_positions() -> None:
    _, _, risk = run([*ENTRY, (2, "X", 98, 99, 94, 95), (3, "X", 95, 96, 94, 95)], StopLoss(0.05))
    assert risk._held == {}
    assert risk._latest == {}
    assert risk.exits == {"stop_loss": 1}


# -- guards ------------------------------------------------------------------------------------

AB = [
    (0, "A", 100, 101, 99, 100),
    (0, "B", 50, 51, 49, 50),
    (1, "A", 100, 101, 99, 100),
    (1, "B", 50, 51, 49, 50),
    (2, "A", 100, 101, 99, 100),
    (2, "B", 50, 51, 49, 50),
]


def test_max_position_size_cuts_the_order_and_says_why() -> None:
    script = {(0, "A"): lambda s, e: s.buy_percent("A", 0.5)}
    result, _, risk = run(AB, MaxPositionSize(0.10), script=script)
    order = result.orders.row(0, named=True)
    # 10 % of 100,000 at 100 = 100 shares instead of 500
    assert (order["qty"], order["filled_qty"]) == (100.0, 100.0)
    assert "max_position_size: cut to 100" in order["message"]
    assert risk.guard_messages == {"max_position_size": 1}


def test_max_exposure_counts_open_positions() -> None:
    script = {
        (0, "A"): lambda s, e: s.buy("A", 600),  # 60,000
        (1, "B"): lambda s, e: s.buy("B", 1_000),  # 50,000 more would be 110 %
    }
    result, _, _ = run(AB, MaxExposure(1.0), script=script)
    # at day 1: equity 100,000, gross 60,000 -> room 40,000 / 50 = 800 shares of B
    assert result.orders["qty"].to_list() == [600.0, 800.0]


def test_drawdown_halt_blocks_entries_but_not_exits() -> None:
    rows = [
        (0, "A", 100, 101, 99, 100),
        (1, "A", 100, 101, 99, 100),
        (2, "A", 70, 71, 69, 70),  # 900 shares lose 27,000: equity 73,000, −27 %
        (3, "A", 70, 71, 69, 70),
        (4, "A", 70, 71, 69, 70),
    ]
    script = {
        (0, "A"): lambda s, e: s.buy("A", 900),
        (2, "A"): lambda s, e: s.buy("A", 10),  # refused: halted at day 2
        (3, "A"): lambda s, e: s.sell("A", 900),  # exits still allowed
    }
    result, _, risk = run(rows, MaxDrawdownHalt(0.2), script=script)
    statuses = result.orders.select("side", "status").rows()
    assert statuses == [("buy", "filled"), ("buy", "rejected"), ("sell", "filled")]
    assert "trading halted" in result.orders["message"][1]
    assert result.config["halted_at"] is not None
    assert "halted" in result.summary()
    assert risk.halted_at is not None


@pytest.mark.parametrize(
    "guards",
    [
        (MaxPositionSize(0.95), MaxDrawdownHalt(0.2)),
        (MaxExposure(2.0), MaxPositionSize(0.95), MaxDrawdownHalt(0.2)),
        (MaxDrawdownHalt(0.2), MaxPositionSize(0.95)),
    ],
    ids=["size-then-halt", "exposure-size-halt", "halt-first"],
)
def test_guards_combined_a_cut_by_one_guard_never_lets_a_halted_order_through(
    guards: tuple[Any, ...],
) -> None:
    """Day 2: A falls to 70 (900 shares: equity 73,000, −27 %), then a buy of 2,000 B at 50.
    MaxPositionSize alone would cut it to 1,387 shares (95 % of 73,000 / 50); the drawdown
    halt refuses it whatever guard runs first (a cut must keep the order's timestamp)."""
    rows = [
        (0, "A", 100, 101, 99, 100),
        (0, "B", 50, 51, 49, 50),
        (1, "A", 100, 101, 99, 100),
        (1, "B", 50, 51, 49, 50),
        (2, "A", 70, 71, 69, 70),
        (2, "B", 50, 51, 49, 50),
        (3, "A", 70, 71, 69, 70),
        (3, "B", 50, 51, 49, 50),
    ]
    script = {
        (0, "A"): lambda s, e: s.buy("A", 900),
        (2, "B"): lambda s, e: s.buy("B", 2_000),
    }
    result, _, risk = run(rows, *guards, script=script)
    assert result.orders.row(0, named=True)["filled_qty"] == 900.0  # 90 % of equity: no cut
    second = result.orders.row(1, named=True)
    assert (second["asset_id"], second["status"], second["filled_qty"]) == ("B", "rejected", 0.0)
    assert "trading halted" in second["message"]
    assert str(risk.halted_at).startswith("2024-01-03")


def test_strategy_and_risk_share_one_feature_provider() -> None:
    import polars as pl

    from tests.conftest import day
    from tradeloop import PrecomputedFeatureProvider

    features = pl.DataFrame(
        {
            "timestamp": [day(0), day(1), day(2), day(0)],
            "asset_id": ["X", "X", "X", None],
            "atr": [2.0, 5.0, 5.0, None],
            "vix": [None, None, None, 20.0],
        }
    )
    provider = PrecomputedFeatureProvider(features)
    seen: list[float] = []

    class UsesAtr(Strategy):
        def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
            seen.append(event.signals["atr"])
            if event.timestamp == day(0):
                self.buy("X", 10)

    risk = RiskManager(feature_provider=provider).add_rule(VolatilityScaledStopLoss(2.0))
    rows = [*ENTRY, (2, "X", 99, 99.5, 95.5, 97)]
    result = Engine(feed=bars(rows), strategy=UsesAtr(), features=provider, risk=risk).run()
    assert seen == [2.0, 5.0, 5.0]
    assert exits(result) == [(2, "sell", 96.0, "volatility_stop")]


def test_context_is_built_once_per_asset_and_bar_for_all_rules() -> None:
    from dataclasses import dataclass, field

    from tradeloop.risk import RiskContext, RiskDecision

    @dataclass
    class Spy:
        name: str
        priority: int = 100
        seen: list[RiskContext] = field(default_factory=list)

        def evaluate(self, ctx: RiskContext) -> RiskDecision:
            self.seen.append(ctx)
            return RiskDecision.hold()

    first, second = Spy("first"), Spy("second")
    rows = [*ENTRY, *[(d, "X", 100, 101, 99, 100) for d in range(2, 6)]]
    run(rows, first, second)
    # checked on bars 1..5 while held; both rules got the very same context object each time
    assert len(first.seen) == len(second.seen) == 5
    assert all(a is b for a, b in zip(first.seen, second.seen, strict=True))
    assert [ctx.bars_held for ctx in first.seen] == [0, 1, 2, 3, 4]
    assert first.seen[0].high_water_mark == 100.0  # the entry price on the entry bar
    assert first.seen[1].high_water_mark == 101.0  # then the highest high since entry


class StopAndTell(Scripted):
    """Buys 10 on day 0 and rests its own sell stop at 90 on day 1; records on_order."""

    def __init__(self) -> None:
        super().__init__(
            {
                (0, "X"): lambda s, e: s.buy("X", 10),
                (1, "X"): lambda s, e: (s.sell("X", 10, stop=90.0), s.buy("X", 5, limit=80.0)),
            }
        )
        self.told: list[tuple[int, str, str]] = []

    def on_order(self, order: Any) -> None:
        self.told.append((order.id, order.status.value, order.message))


RESTING = [*ENTRY, (2, "X", 98, 99, 94, 95), (3, "X", 95, 96, 88, 89), (4, "X", 89, 90, 87, 88)]


def test_risk_exit_cancels_the_strategys_resting_exit_and_says_so() -> None:
    # the 5 % stop (95) closes the 10 on day 2; the strategy's own sell stop at 90 would
    # otherwise sell 10 more on day 3 (low 88) with nothing held. It is cancelled with the
    # rule's name, heard in on_order; the buy limit at 80 (adding, not exiting) stays
    strategy = StopAndTell()
    risk = RiskManager().add_rule(StopLoss(0.05))
    result = Engine(HistoricalFeed(bars(RESTING)), strategy, risk=risk).run()
    assert exits(result) == [(2, "sell", 95.0, "stop_loss")]
    assert (2, "cancelled", "risk exit stop_loss closed the position") in strategy.told
    assert result.orders["status"].to_list() == ["filled", "cancelled", "accepted", "filled"]


def test_risk_exit_keeps_resting_exits_when_told_to() -> None:
    # cancel_resting_exits=False: the stale stop stays; on day 3 it tries to sell 10 with
    # nothing held and shorting off, so it fills nothing and is cancelled at the fill
    strategy = StopAndTell()
    risk = RiskManager(cancel_resting_exits=False).add_rule(StopLoss(0.05))
    result = Engine(HistoricalFeed(bars(RESTING)), strategy, risk=risk).run()
    assert result.orders["status"].to_list()[1] == "cancelled"
    assert "sold what was held" in result.orders["message"][1]


def test_risk_exit_cancels_a_brackets_legs() -> None:
    script = {(0, "X"): lambda s, e: s.buy("X", 10, stop_loss=80.0, take_profit=130.0)}
    result, _, _ = run(RESTING, StopLoss(0.05), script=script)
    # the rule's 95 stop fires on day 2 first; both legs (80 and 130) are cancelled
    assert exits(result) == [(2, "sell", 95.0, "stop_loss")]
    assert result.orders["status"].to_list() == ["filled", "cancelled", "cancelled", "filled"]
