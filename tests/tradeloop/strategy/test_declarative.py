"""SignalStrategy: the compiled kernel, the event path and a hand-written twin agree exactly."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from tests.conftest import bars
from tradeloop import (
    CompileFallbackWarning,
    Context,
    Engine,
    FixedCommission,
    FixedSizer,
    MarketEvent,
    PercentSizer,
    PerShareCommission,
    Rule,
    SignalStrategy,
    Strategy,
)
from tradeloop.data.synthetic import synthetic_market
from tradeloop.risk import RiskManager, StopLoss


def declarative(compile: bool = True, sizer: Any = None) -> SignalStrategy:
    return SignalStrategy(
        entry_rules=[
            Rule.signal_above("ml_pred", 0.6),
            Rule.context_below("VIX", 30),
            Rule.not_in_position(),
        ],
        exit_rules=[
            Rule.signal_below("ml_pred", 0.45),
            Rule.stop_loss(0.03),
            Rule.take_profit(0.05),
            Rule.context_above("VIX", 35),
        ],
        position_sizer=sizer or PercentSizer(0.3),
        compile=compile,
    )


class HandWritten(Strategy):
    """The same strategy as ``declarative()``, written the ordinary way."""

    def __init__(self, sizer: Any = None) -> None:
        super().__init__()
        self.sizer = sizer or PercentSizer(0.3)

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        asset = event.asset_id
        if self.get_open_orders(asset):
            return
        vix = context.get("VIX")
        if self.get_position(asset) == 0:
            if event.signals["ml_pred"] > 0.6 and vix is not None and vix < 30:
                if isinstance(self.sizer, PercentSizer):
                    self.buy_percent(asset, self.sizer.percent)
                else:
                    self.buy(asset, self.sizer.qty)
            return
        pnl = self.get_unrealized_pnl_pct(asset)
        assert pnl is not None
        if event.signals["ml_pred"] < 0.45:
            self.close_position(asset, reason="signal_below(ml_pred<0.45)")
        elif pnl <= -0.03:
            self.close_position(asset, reason="stop_loss")
        elif pnl >= 0.05:
            self.close_position(asset, reason="take_profit")
        elif vix is not None and vix > 35:
            self.close_position(asset, reason="context_above(VIX>35)")


def run(strategy: Strategy, frame: pl.DataFrame, vix: pl.DataFrame, **options: Any) -> Any:
    return Engine(feed=frame, strategy=strategy, context=Context(vix), **options).run()


@pytest.mark.parametrize(
    ("seed", "costs"),
    [
        (1, {"commission": 0.001, "slippage": 0.0005}),
        (2, {"commission": PerShareCommission(0.01, minimum=1.0)}),
        (3, {"commission": FixedCommission(2.5), "slippage": 0.001}),
        (4, {}),
    ],
)
def test_compiled_event_path_and_hand_written_twin_give_identical_fills(
    seed: int, costs: dict[str, Any]
) -> None:
    frame, vix = synthetic_market(n_assets=6, n_bars=300, seed=seed)
    compiled = run(declarative(), frame, vix, **costs)
    event_path = run(declarative(compile=False), frame, vix, **costs)
    twin = run(HandWritten(), frame, vix, **costs)
    assert compiled.fills.height > 100
    assert_frame_equal(compiled.fills, event_path.fills)
    assert_frame_equal(compiled.fills, twin.fills)
    assert_frame_equal(compiled.orders, twin.orders)
    assert compiled["final_value"] == event_path["final_value"] == twin["final_value"]
    assert_frame_equal(compiled.equity_curve, twin.equity_curve)
    # every exit reason is one of the declared rules
    assert set(compiled.trades["exit_reason"]) <= {
        "signal_below(ml_pred<0.45)",
        "stop_loss",
        "take_profit",
        "context_above(VIX>35)",
    }


def test_fixed_sizer_parity_and_rejections_counted_the_same() -> None:
    frame, vix = synthetic_market(n_assets=4, n_bars=250, seed=9)
    sizer = FixedSizer(400)  # 4 assets × 400 × ~100-175: cash runs out, some buys rejected
    compiled = run(declarative(sizer=sizer), frame, vix)
    twin = run(HandWritten(sizer=sizer), frame, vix)
    assert_frame_equal(compiled.orders, twin.orders)
    assert compiled.orders.filter(pl.col("status") == "rejected").height > 0


def test_compiled_run_fills_at_next_open_worked_by_hand() -> None:
    rows = [
        (0, "X", 10, 11, 9, 10),
        (1, "X", 12, 13, 11, 12),
        (2, "X", 13, 14, 12, 13),
        (3, "X", 14, 15, 13, 14),
    ]
    strategy = SignalStrategy(
        [Rule.signal_above("p", 0.5)], [Rule.signal_below("p", 0.5)], PercentSizer(0.5)
    )
    frame = bars(rows, {"p": [0.9, 0.9, 0.1, 0.9]})
    result = Engine(feed=frame, strategy=strategy, initial_cash=1_000).run()
    # day 0: 50 % of 1,000 at the close 10 -> 50 shares, filled at day 1's open 12;
    # day 2: p < 0.5 -> sell 50 at day 3's open 14: +100
    assert result.fills.select("side", "qty", "price").rows() == [
        ("buy", 50.0, 12.0),
        ("sell", 50.0, 14.0),
    ]
    assert result["final_value"] == pytest.approx(1_100.0)
    assert result.trades["exit_reason"].to_list() == ["signal_below(p<0.5)"]


@pytest.mark.parametrize(
    ("options", "why"),
    [
        ({"fill_timing": "close"}, "fill_timing"),
        ({"risk": RiskManager().add_rule(StopLoss(0.05))}, "RiskManager"),
        ({"fractional": True}, "fractional"),
        ({"cash_shortfall": "reject"}, "cash_shortfall"),
    ],
)
def test_uncompilable_setup_falls_back_with_warning_and_same_results(
    options: dict[str, Any], why: str
) -> None:
    frame, vix = synthetic_market(n_assets=3, n_bars=120, seed=5)
    with pytest.warns(CompileFallbackWarning, match=why):
        fallback = run(declarative(), frame, vix, **options)
    same = run(
        declarative(compile=False),
        frame,
        vix,
        **{
            k: (RiskManager().add_rule(StopLoss(0.05)) if k == "risk" else v)
            for k, v in options.items()
        },
    )
    assert_frame_equal(fallback.fills, same.fills)


def test_unknown_signal_in_a_rule_fails_on_the_event_path_with_a_clear_error() -> None:
    frame, vix = synthetic_market(n_assets=2, n_bars=20, seed=5)
    strategy = SignalStrategy([Rule.signal_above("ml_prd", 0.5)], [Rule.stop_loss(0.1)])
    with pytest.warns(CompileFallbackWarning), pytest.raises(KeyError, match="ml_prd"):
        run(strategy, frame, vix)


def test_signal_strategy_needs_rules() -> None:
    from tradeloop import ConfigError

    with pytest.raises(ConfigError, match="entry rule"):
        SignalStrategy([], [Rule.stop_loss(0.1)])
    with pytest.raises(ConfigError, match="not a Rule"):
        SignalStrategy(["ml_pred > 0.8"], [])  # type: ignore[list-item]


RULE_CHOICES = [
    Rule.signal_above("ml_pred", 0.55),
    Rule.signal_above("confidence", 0.6),
    Rule.signal_below("ml_pred", 0.5),
    Rule.context_below("VIX", 25),
    Rule.context_above("VIX", 20),
    Rule.stop_loss(0.02),
    Rule.take_profit(0.03),
]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 1_000),
    entry=st.lists(st.sampled_from(RULE_CHOICES), min_size=1, max_size=3),
    exit_=st.lists(st.sampled_from(RULE_CHOICES), min_size=0, max_size=3),
    percent=st.floats(0.05, 1.2),
    costs=st.sampled_from(
        [
            {},
            {"commission": 0.002, "slippage": 0.001},
            {"commission": PerShareCommission(0.02, minimum=3.0)},
        ]
    ),
    ragged=st.booleans(),
)
def test_compiled_matches_event_path_for_random_rule_sets(
    seed: int,
    entry: list[Rule],
    exit_: list[Rule],
    percent: float,
    costs: dict[str, Any],
    ragged: bool,
) -> None:
    frame, vix = synthetic_market(n_assets=3, n_bars=60, seed=seed)
    if ragged:  # some assets miss some bars: the kernel reads each row's asset code
        frame = frame.filter(pl.int_range(pl.len()) % 7 != 3)

    def build(compile: bool) -> SignalStrategy:
        return SignalStrategy(entry, exit_, PercentSizer(percent), compile=compile)

    compiled = run(build(True), frame, vix, **costs)
    event_path = run(build(False), frame, vix, **costs)
    assert compiled.config["compiled"] is True
    assert event_path.config["compiled"] is False
    assert_frame_equal(compiled.fills, event_path.fills)
    assert_frame_equal(compiled.orders, event_path.orders)
    assert compiled["final_value"] == event_path["final_value"]


def test_compiled_broker_reads_back_the_event_paths_orders_and_fills() -> None:
    # a compiled run keeps its orders and fills as columns; read through the broker they
    # must be the very Order/Fill values the event path's broker holds as objects
    frame, vix = synthetic_market(n_assets=4, n_bars=250, seed=9)
    sizer = FixedSizer(400)  # some buys rejected: their messages are built when read
    engines = [
        Engine(feed=frame, strategy=declarative(sizer=sizer, compile=c), context=Context(vix))
        for c in (True, False)
    ]
    for engine in engines:
        engine.run()
    compiled, event_path = (engine.broker for engine in engines)
    assert len(compiled.orders) == len(event_path.orders) > 20
    assert list(compiled.orders) == list(event_path.orders)
    assert list(compiled.fills) == list(event_path.fills)
    assert compiled.orders[-1] is compiled.orders[len(compiled.orders) - 1]
